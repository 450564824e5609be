"""The common shape of Kumo's interceptors: wrap each method's behaviour once.

grpc.aio asks every interceptor for the handler of every call; the wrapped
handler is built on the first call of a method and reused afterwards. An
interceptor writes one `wrap` for unary calls; the same wrapper serves
client-streaming calls (the request is then an iterator) and, around the
creation of the response iterator, server-streaming calls.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeAlias

import grpc

# The servicer context of a grpc.aio call (grpc ships no type information).
Context: TypeAlias = Any
Behavior = Callable[[Any, Context], Coroutine[Any, Any, Any]]
StreamBehavior = Callable[[Any, Context], AsyncIterator[Any]]


class UnaryInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every method's behaviour with `wrap` (see the module docstring)."""

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
        elif handler.stream_unary is not None:
            wrapped = handler._replace(
                stream_unary=self.wrap_stream_unary(method, handler.stream_unary)
            )
        elif handler.unary_stream is not None:
            wrapped = handler._replace(
                unary_stream=self.wrap_unary_stream(method, handler.unary_stream)
            )
        else:  # bidirectional streams: none in Kumo's contracts
            wrapped = handler
        self._wrapped[method] = wrapped
        return wrapped

    def wrap(self, method: str, behavior: Behavior) -> Behavior:
        """Returns the behaviour to run instead of `behavior` for `method`."""
        raise NotImplementedError

    def wrap_stream_unary(self, method: str, behavior: Behavior) -> Behavior:
        """For client-streaming methods; `wrap` by default."""
        return self.wrap(method, behavior)

    def wrap_unary_stream(self, method: str, behavior: StreamBehavior) -> StreamBehavior:
        """For server-streaming methods: `wrap` runs around the creation of the
        response iterator; the items then flow through unchanged."""

        async def create(request: Any, context: Context) -> AsyncIterator[Any]:
            return behavior(request, context)

        start = self.wrap(method, create)

        async def streamed(request: Any, context: Context) -> AsyncIterator[Any]:
            responses = await start(request, context)
            if inspect.isawaitable(responses):  # a servicer that sends with context.write()
                await responses  # (the standard health servicer's Watch)
                return
            async for item in responses:
                yield item

        return streamed


def metadata_value(context: grpc.aio.ServicerContext[Any, Any], key: str) -> str | None:
    """The first value of invocation metadata `key`, or None."""
    for item in context.invocation_metadata() or ():
        if item.key == key:
            return str(item.value)
    return None
