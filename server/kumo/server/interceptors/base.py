"""The common shape of Kumo's interceptors: wrap each method's unary behaviour once.

grpc.aio asks every interceptor for the handler of every call; the wrapped
handler is built on the first call of a method and reused afterwards.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeAlias

import grpc

# The servicer context of a grpc.aio call (grpc ships no type information).
Context: TypeAlias = Any
Behavior = Callable[[Any, Context], Coroutine[Any, Any, Any]]


class UnaryInterceptor(grpc.aio.ServerInterceptor):
    """Wraps unary-unary methods with `wrap`; other kinds go through `wrap_stream`."""

    def __init__(self) -> None:
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None:
            return cached
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        if handler.unary_unary is not None:
            wrapped = handler._replace(unary_unary=self.wrap(method, handler.unary_unary))
        else:
            wrapped = self.wrap_stream(method, handler)
        self._wrapped[method] = wrapped
        return wrapped

    def wrap(self, method: str, behavior: Behavior) -> Behavior:
        """Returns the behaviour to run instead of `behavior` for `method`."""
        raise NotImplementedError

    def wrap_stream(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """Returns the handler for a streaming method; unchanged by default."""
        return handler


def metadata_value(context: grpc.aio.ServicerContext[Any, Any], key: str) -> str | None:
    """The first value of invocation metadata `key`, or None."""
    for item in context.invocation_metadata() or ():
        if item.key == key:
            return str(item.value)
    return None
