"""Error bodies in each OpenStack service's own shape, never a traceback.

Nova (nova/api/openstack/wsgi.py Fault): `{"itemNotFound": {"code": 404, "message": ...}}`,
the key named by the HTTP status. Keystone: `{"error": {"code", "title", "message"}}`.
Glance (webob's JSON error): `{"code": "404 Not Found", "title", "message"}`. Neutron:
`{"NeutronError": {"type", "message", "detail"}}`.
"""

from __future__ import annotations

from http import HTTPStatus

from google.rpc import code_pb2
from starlette.responses import JSONResponse, Response

from kumo.gateway.errors import RpcFailure

_NOVA_KEYS = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    406: "notAcceptable",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    429: "overLimit",
    501: "notImplemented",
    503: "serviceUnavailable",
}

# Nova answers a quota failure with 403 and an action in the wrong state with 409.
NOVA_OVERRIDES = {code_pb2.RESOURCE_EXHAUSTED: 403, code_pb2.FAILED_PRECONDITION: 409}
# Keystone and Glance refuse a conflicting state with 409 too.
CONFLICT_OVERRIDES = {code_pb2.FAILED_PRECONDITION: 409}


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def nova_error(failure: RpcFailure, status: int) -> Response:
    """Nova's fault body."""
    key = _NOVA_KEYS.get(status, "computeFault")
    return JSONResponse({key: {"code": status, "message": failure.message}}, status_code=status)


def keystone_error(failure: RpcFailure, status: int) -> Response:
    """Keystone's error body."""
    body = {"error": {"code": status, "title": _title(status), "message": failure.message}}
    return JSONResponse(body, status_code=status)


def glance_error(failure: RpcFailure, status: int) -> Response:
    """Glance's (webob) JSON error body."""
    body = {
        "code": f"{status} {_title(status)}",
        "title": _title(status),
        "message": failure.message,
    }
    return JSONResponse(body, status_code=status)


def neutron_error(failure: RpcFailure, status: int) -> Response:
    """Neutron's error body."""
    kind = _title(status).replace(" ", "")
    body = {"NeutronError": {"type": f"HTTP{kind}", "message": failure.message, "detail": ""}}
    return JSONResponse(body, status_code=status)
