"""The AWS EC2 dialect (API version 2016-11-15) of the gateway.

Requests are parsed and responses rendered from botocore's own EC2 service model
(`model.py`, `query.py`, `xml.py`); SigV4 signatures are checked against Kumo
access keys by the identity service (`sigv4.py`); each implemented operation is
a small adapter over Kumo's gRPC services (`operations/`), named in one dispatch
table (`dispatch.py`). `app.create_app` is the ASGI application.
"""
