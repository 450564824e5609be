"""The REST gateway (ASGI): native REST derived from the contracts' HTTP bindings, and the
OpenStack (Keystone, Nova, Glance) dialect over the same gRPC services; `aws/` (EC2) reuses
the generic parts.

Generic parts, for every dialect:
    context.py        per-request context (request id, deadline, trace carrier) in contextvars
    errors.py         RpcFailure (a google.rpc.Status) and grpc-gateway's status -> HTTP table
    grpc_backend.py   Backend: one channel, `call()` adds token, request id, traceparent, deadline
    dialect.py        Dialect: routes whose failures render in the dialect's error shape
    middleware.py     request id, access log, body limit, timeout, tracing (pure ASGI)
    app.py            create_app(): mounts the dialects
"""
