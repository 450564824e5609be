"""The EC2 dialect as an ASGI application: `create_app(api_endpoint)`.

Each request (POST form body or GET query, at any path) goes: SigV4 parts
(`sigv4.signed_request`) → the identity service checks them and returns the caller →
replay check → Action looked up in botocore's model (InvalidAction if unknown) and in the
dispatch table (UnsupportedOperation if not implemented) → parameters parsed by the
model → handler → XML rendered by the model. Every failure is EC2's `<Response><Errors>`
envelope with its documented code and status; an unexpected exception is logged and
answered InternalError (500) without its text.

The gRPC channel to the API server is opened at ASGI start-up (lifespan) or on the first
request, in the serving event loop, and closed at shutdown.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import grpc

from kumo.gateway.aws import model, query, sigv4, xml
from kumo.gateway.aws.backend import Backend
from kumo.gateway.aws.dispatch import HANDLERS, read_only
from kumo.gateway.aws.errors import Ec2Error
from kumo.gateway.aws.replay import ReplayCache

log = logging.getLogger(__name__)
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
MAX_BODY = 1 << 20


class Ec2App:
    """The ASGI application (HTTP and lifespan scopes)."""

    def __init__(self, api_endpoint: str, replay: ReplayCache | None = None) -> None:
        self.api_endpoint = api_endpoint
        self.replay = replay or ReplayCache()
        self._backend: Backend | None = None
        model.ec2_model()  # fail at start-up, not at the first request, if botocore lacks it
        for action in HANDLERS:  # the writers of every answer, before the first request
            operation = model.operation(action)
            assert operation is not None  # dispatch's table names the model's operations
            xml.compile_operation(operation)

    @property
    def backend(self) -> Backend:
        """The backend, its channel opened on first use (in the running loop)."""
        if self._backend is None:
            self._backend = Backend(grpc.aio.insecure_channel(self.api_endpoint))
        return self._backend

    async def close(self) -> None:
        """Closes the channel. Idempotent."""
        if self._backend is not None:
            await self._backend.channel.close()
            self._backend = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _ = self.backend
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = str(uuid.uuid4())
        try:
            body = await _read_body(receive)
            status, payload = 200, await self.handle(scope, body, request_id)
        except Ec2Error as error:
            status, payload = error.status, xml.render_error(error.code, error.message, request_id)
        except Exception:
            log.exception("EC2 request %s failed", request_id)
            status = 500
            payload = xml.render_error("InternalError", "An internal error occurred", request_id)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"text/xml;charset=UTF-8"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"x-amzn-requestid", request_id.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def handle(self, scope: Scope, body: bytes, request_id: str) -> bytes:
        """The XML answer to one request. Raises Ec2Error."""
        method = scope["method"]
        if method not in ("GET", "POST"):
            raise Ec2Error("InvalidAction", f"Method {method} is not supported.")
        headers: dict[str, list[str]] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
        raw_query = scope.get("query_string", b"").decode("latin-1")
        now = datetime.now(UTC)
        # The path as the client sent (and signed) it, even when mounted under a prefix.
        raw_path = scope.get("raw_path")
        path = unquote(raw_path.decode("latin-1")) if raw_path else scope.get("path", "/")
        signed = sigv4.signed_request(method, path, raw_query, headers, body, now)
        caller = await self.backend.authenticate(signed)
        fields = sigv4.query_pairs(raw_query)
        if method == "POST" and body:
            try:
                fields += sigv4.query_pairs(body.decode("utf-8"))
            except UnicodeDecodeError:
                raise Ec2Error(
                    "InvalidParameterValue", "The body is not UTF-8 form data."
                ) from None
        action = dict(fields).get("Action", "")
        if not action:
            raise Ec2Error("MissingAction", "The request must contain the parameter Action.")
        if (signed.presigned or not read_only(action)) and not self.replay.first_use(
            signed.signature, signed.valid_until, now
        ):
            raise Ec2Error("AuthFailure", "This request signature was already used (replay).")
        operation = model.operation(action)
        if operation is None:
            raise Ec2Error(
                "InvalidAction", f"The action {action} is not valid for this web service."
            )
        handler = HANDLERS.get(action)
        if handler is None:
            raise Ec2Error(
                "UnsupportedOperation", f"The operation {action} is not supported by Kumo."
            )
        params = query.parse(fields, operation.input_shape)
        if params.get("DryRun"):
            raise Ec2Error(
                "DryRunOperation", "Request would have succeeded, but DryRun flag is set."
            )
        result = await handler(self.backend, caller, params)
        return xml.render(operation, result, request_id)


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise Ec2Error("InvalidParameterValue", "The request body is larger than 1 MiB.")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def create_app(api_endpoint: str, replay: ReplayCache | None = None) -> Ec2App:
    """The EC2 ASGI app calling the Kumo API server at `api_endpoint` (`host:port`).
    `replay` is the record of used signatures (a fresh one, 100,000 entries, by default)."""
    return Ec2App(api_endpoint, replay)
