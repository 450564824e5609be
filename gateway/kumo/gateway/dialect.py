"""A dialect: a set of HTTP routes whose every failure renders in one error shape.

Each dialect (native REST, OpenStack's services, EC2) is its own Starlette app built by
`Dialect.app(routes)`. Handlers raise `RpcFailure` (from gRPC calls or their own checks);
`Dialect.endpoint` turns it, and any unexpected exception (logged, never shown), into the
dialect's error body with the HTTP status from grpc-gateway's table and the dialect's
overrides. Unknown paths and wrong methods render the same way.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import grpc
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from kumo.gateway.errors import RpcFailure

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]
# Renders a failure as a response with the given HTTP status.
Renderer = Callable[[RpcFailure, int], Response]

_HTTP_TO_CODE = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.ABORTED,
}


class Dialect:
    """Routes sharing one error renderer and status overrides."""

    def __init__(
        self, name: str, render: Renderer, overrides: Mapping[int, int] | None = None
    ) -> None:
        self.name = name
        self.render = render
        self.overrides = dict(overrides or {})

    def error(self, failure: RpcFailure, http_status: int | None = None) -> Response:
        """The dialect's response for a failure."""
        return self.render(failure, http_status or failure.http_status(self.overrides))

    def endpoint(self, handler: Handler) -> Handler:
        """Wraps a handler so that every failure renders in this dialect."""

        async def wrapped(request: Request) -> Response:
            try:
                return await handler(request)
            except RpcFailure as failure:
                return self.error(failure)
            except Exception:
                log.exception("%s: unexpected error serving %s", self.name, request.url.path)
                return self.error(RpcFailure.of(grpc.StatusCode.INTERNAL, "internal error"))

        return wrapped

    def route(self, path: str, handler: Handler, methods: Sequence[str]) -> Route:
        """A route whose failures render in this dialect."""
        return Route(path, self.endpoint(handler), methods=list(methods))

    def app(self, routes: Sequence[BaseRoute]) -> Starlette:
        """A Starlette app of the routes; unknown paths and methods render as errors too."""

        async def http_error(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, HTTPException)
            code = _HTTP_TO_CODE.get(exc.status_code, grpc.StatusCode.UNIMPLEMENTED)
            message = exc.detail if isinstance(exc.detail, str) else "request refused"
            return self.error(RpcFailure.of(code, message), exc.status_code)

        return Starlette(routes=list(routes), exception_handlers={HTTPException: http_error})


async def json_value(request: Request) -> Any:
    """The request body as JSON (`{}` when empty); INVALID_ARGUMENT when it is not JSON."""
    raw = await request.body()
    try:
        return json.loads(raw or b"{}")
    except ValueError as error:
        raise RpcFailure.of(
            grpc.StatusCode.INVALID_ARGUMENT, f"the body is not valid JSON: {error}"
        ) from None


async def json_body(request: Request) -> dict[str, Any]:
    """The request body as a JSON object; INVALID_ARGUMENT otherwise."""
    body = await json_value(request)
    if not isinstance(body, dict):
        raise RpcFailure.of(grpc.StatusCode.INVALID_ARGUMENT, "the body must be a JSON object")
    return body


def object_at(body: Mapping[str, Any], key: str) -> dict[str, Any]:
    """`body[key]` when it is a JSON object, `{}` when it is absent or null; INVALID_ARGUMENT
    when it is anything else (a client's `{"flavor": "x"}` is its mistake, not a 500)."""
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid(f"'{key}' must be an object")
    return value


def list_at(body: Mapping[str, Any], key: str) -> list[Any]:
    """`body[key]` when it is a JSON array, `[]` when it is absent or null; INVALID_ARGUMENT
    when it is anything else."""
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid(f"'{key}' must be a list")
    return value


async def json_member(request: Request, key: str, missing: str | None = None) -> dict[str, Any]:
    """The `{key: {...}}` object of the request body, as `object_at` reads it; INVALID_ARGUMENT
    also when the body is not a JSON object. With `missing` (the dialect's words), `key` is
    required: a body without a `key` object is INVALID_ARGUMENT with that message."""
    body = await json_body(request)
    if missing is not None and not isinstance(body.get(key), dict):
        raise invalid(missing)
    return object_at(body, key)


INT32 = range(-(2**31), 2**31)


def integer(value: Any, field: str) -> int:
    """A 32-bit integer field of a request body (or a string of one); 0 when it is absent,
    null or empty. INVALID_ARGUMENT for anything else, or a number out of that range."""
    try:
        number = int(value or 0)
    except (TypeError, ValueError):
        raise invalid(f"{field} must be an integer") from None
    if number not in INT32:
        raise invalid(f"{field} is out of range")
    return number


def invalid(message: str) -> RpcFailure:
    """An INVALID_ARGUMENT failure raised by the gateway."""
    return RpcFailure.of(grpc.StatusCode.INVALID_ARGUMENT, message)
