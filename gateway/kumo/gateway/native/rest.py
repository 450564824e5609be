"""Serves the native REST API: one dispatcher over every binding of `native.services`.

A request is matched against the bindings (method and path template); its message is built
as grpc-gateway builds it (the body into the field the rule names, or the whole message for
`*`; query parameters into the other fields, dotted paths for nested ones, repeated keys for
repeated fields; path variables last) and parsed by json_format with unknown fields
rejected. The call carries the `Authorization: Bearer` token unchanged; the answer is the
response message as JSON (lowerCamelCase names), failures a `google.rpc.Status` JSON with
grpc-gateway's HTTP status.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import grpc
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, ServiceDescriptor
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from kumo.gateway.dialect import Dialect, invalid, json_value
from kumo.gateway.errors import RpcFailure
from kumo.gateway.grpc_backend import Backend
from kumo.gateway.native.bindings import Binding, bindings

_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def render_status(failure: RpcFailure, http_status: int) -> Response:
    """A failure as grpc-gateway renders it: the google.rpc.Status as JSON."""
    return JSONResponse(failure.to_json(), status_code=http_status)


DIALECT = Dialect("native", render_status)


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer` header, if any."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _field(descriptor: Descriptor, path: str) -> tuple[str, FieldDescriptor]:
    """The field a dotted query parameter names (proto or lowerCamelCase names), and its
    dotted proto path."""
    field: FieldDescriptor | None = None
    current: Descriptor | None = descriptor
    names = []
    for part in path.split("."):
        if current is not None:
            field = current.fields_by_name.get(part) or current.fields_by_camelcase_name.get(part)
        if current is None or field is None:
            raise invalid(f"unknown query parameter {path!r}")
        names.append(field.name)
        current = field.message_type
    assert field is not None
    return ".".join(names), field


def _query_value(field: FieldDescriptor, values: list[str]) -> Any:
    def one(value: str) -> Any:
        if field.type == FieldDescriptor.TYPE_BOOL:
            if value not in ("true", "false"):
                raise invalid(f"{field.name}: expected true or false")
            return value == "true"
        return value

    if field.is_repeated:
        return [one(v) for v in values]
    if len(values) > 1:
        raise invalid(f"{field.name}: given more than once")
    return one(values[0])


def _set_path(target: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        child = target.setdefault(part, {})
        if not isinstance(child, dict):
            raise invalid(f"{path}: conflicts with another value")
        target = child
    target[last] = value


def build_request(
    binding: Binding, path_values: dict[str, str], query: Iterable[tuple[str, str]], body: Any
) -> Any:
    """The request message of a call; INVALID_ARGUMENT for unknown or malformed fields."""
    descriptor = binding.method.input_type
    values: dict[str, Any] = {}
    grouped: dict[str, list[str]] = {}
    for key, value in query:
        grouped.setdefault(key, []).append(value)
    for key, given in grouped.items():
        path, field = _field(descriptor, key)
        _set_path(values, path, _query_value(field, given))
    if binding.body == "*":
        if not isinstance(body, dict):
            raise invalid("the body must be a JSON object")
        values.update(body)
    elif binding.body:
        values[binding.body] = body
    for field, value in path_values.items():
        _set_path(values, field, value)
    message = message_factory.GetMessageClass(descriptor)()
    try:
        json_format.ParseDict(values, message, ignore_unknown_fields=False)
    except json_format.ParseError as error:
        raise invalid(str(error)) from None
    return message


class NativeRest:
    """Dispatches `/v1/...` requests to the bound gRPC methods."""

    def __init__(self, backend: Backend, services: Sequence[ServiceDescriptor]) -> None:
        self.backend = backend
        self.bindings = list(bindings(services))
        self._callables: dict[str, Any] = {}

    def _callable(self, binding: Binding) -> Any:
        path = binding.grpc_path
        if path not in self._callables:
            request_class = message_factory.GetMessageClass(binding.method.input_type)
            response_class = message_factory.GetMessageClass(binding.method.output_type)
            self._callables[path] = self.backend.channel.unary_unary(
                path,
                request_serializer=request_class.SerializeToString,
                response_deserializer=response_class.FromString,
            )
        return self._callables[path]

    def find(self, http_method: str, path: str) -> tuple[Binding, dict[str, str]]:
        """The binding serving a request; NOT_FOUND (404) or 405 when none does."""
        allowed = False
        for binding in self.bindings:
            if binding.regex.fullmatch(path):
                allowed = True
            values = binding.match(http_method, path)
            if values is not None:
                return binding, values
        if allowed:
            raise RpcFailure.of(grpc.StatusCode.UNIMPLEMENTED, "method not allowed", 405)
        raise RpcFailure.of(grpc.StatusCode.NOT_FOUND, f"no method serves {path}")

    async def handle(self, request: Request) -> Response:
        """Serves one request."""
        binding, values = self.find(request.method, request.url.path)
        body = await json_value(request) if binding.body else None
        message = build_request(binding, values, request.query_params.multi_items(), body)
        response = await self.backend.call(self._callable(binding), message, bearer_token(request))
        return JSONResponse(json_format.MessageToDict(response))

    def app(self) -> Starlette:
        """The ASGI app, to mount at the root of the gateway for `/v1` paths."""
        return DIALECT.app([DIALECT.route("/{path:path}", self.handle, _METHODS)])
