"""Pure ASGI middleware of the gateway, one concern each, outermost first in `app.py`:

- `RequestContextMiddleware`: a request id (`x-openstack-request-id` on every response, the
  caller's own if it sent a well-formed one) and the request's deadline (`context.begin`);
  a request still running 1 s after its deadline is answered 504 if nothing was sent yet.
- `AccessLogMiddleware`: one log line per request (method, path, status, bytes, ms, id).
- `TracingMiddleware`: a SERVER span continuing the caller's W3C trace context; the gRPC
  calls made inside carry it on (`grpc_backend.call_metadata`).
- `BodyLimitMiddleware`: refuses bodies over a bound (413), by Content-Length at once and by
  counting while the body streams; routes named by `large` get a larger bound.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kumo.gateway import context
from kumo.gateway.errors import RpcFailure

access_log = logging.getLogger("kumo.gateway.access")

REQUEST_ID_HEADER = b"x-openstack-request-id"
_REQUEST_ID = re.compile(rb"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


class RequestContextMiddleware:
    """Request id and deadline for every HTTP request."""

    def __init__(self, app: ASGIApp, timeout_seconds: float) -> None:
        self.app = app
        self.timeout = timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, REQUEST_ID_HEADER) or b""
        request_id = given.decode() if _REQUEST_ID.match(given) else context.new_request_id()
        context.begin(request_id, self.timeout)
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            async with asyncio.timeout(self.timeout + 1.0):
                await self.app(scope, receive, send_with_id)
        except TimeoutError:
            if started:
                raise
            body = RpcFailure.of(grpc.StatusCode.DEADLINE_EXCEEDED, "the request timed out")
            await _send_json(send_with_id, 504, body.to_json())


class AccessLogMiddleware:
    """Logs each request at INFO on `kumo.gateway.access`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status, size = 500, 0

        async def counting(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting)
        finally:
            access_log.info(
                "%s %s %d %dB %.1fms %s",
                scope["method"],
                scope["path"],
                status,
                size,
                (time.perf_counter() - start) * 1000,
                context.current().request_id,
            )


class TracingMiddleware:
    """One SERVER span per request, child of the caller's trace context."""

    def __init__(self, app: ASGIApp, tracer: trace.Tracer) -> None:
        self.app = app
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {
            key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]
        }
        token = otel_context.attach(propagate.extract(carrier))
        try:
            with self.tracer.start_as_current_span(
                f"{scope['method']} {scope['path']}",
                kind=trace.SpanKind.SERVER,
                attributes={
                    "http.request.method": scope["method"],
                    "url.path": scope["path"],
                    "kumo.request_id": context.current().request_id,
                },
            ):
                await self.app(scope, receive, send)
        finally:
            otel_context.detach(token)


class BodyLimitMiddleware:
    """Bounds request bodies: `limit` bytes, or `large_limit` where `large(scope)`."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        large_limit: int,
        large: Callable[[Scope], bool],
    ) -> None:
        self.app = app
        self.limit = limit
        self.large_limit = large_limit
        self.large = large

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.large_limit if self.large(scope) else self.limit
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _send_json(send, 413, _too_large(limit).to_json())
            return
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _too_large(limit)
            return message

        await self.app(scope, bounded, send)


def _too_large(limit: int) -> RpcFailure:
    return RpcFailure.of(
        grpc.StatusCode.OUT_OF_RANGE, f"the request body is larger than {limit} bytes", 413
    )


async def _send_json(send: Send, status: int, body: Any) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
