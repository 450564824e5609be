"""The gateway's side of gRPC: one channel to the API and calls that carry the request.

`Backend.call(method, request, token)` invokes a unary method (a bound stub attribute such as
`backend.stub(ComputeServiceStub).GetInstance`) with

- `authorization: Bearer <token>` when a token is given (the server authorizes; the gateway
  never decides tenancy itself),
- `x-request-id` (the HTTP request's id, so server logs and traces join up),
- the W3C trace context of the current span (`traceparent`, via OpenTelemetry's propagator),
- the time left of the HTTP request's deadline as the gRPC timeout,

and turns a failed call into `errors.RpcFailure`. `stream_from`/`stream_to` do the same for
server- and client-streaming methods. A dialect (OpenStack, EC2, native) needs nothing else.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Any, TypeVar

import grpc
from opentelemetry import propagate

from kumo.gateway import context
from kumo.gateway.errors import from_rpc_error

S = TypeVar("S")

Metadata = tuple[tuple[str, str], ...]

_CHANNEL_OPTIONS = (("grpc.lb_policy_name", "round_robin"),)


def call_metadata(token: str | None) -> Metadata:
    """The metadata of a call made for the current request."""
    request = context.current()
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    pairs = [("x-request-id", request.request_id), *carrier.items()]
    if token:
        pairs.append(("authorization", f"Bearer {token}"))
    return tuple(pairs)


class Backend:
    """A channel to the API server and typed stubs on it. Create inside the event loop."""

    def __init__(self, target: str) -> None:
        self.target = target
        # Round robin: a target naming several API replicas (`ipv4:host:port,host:port`,
        # or a DNS name with an address per replica) spreads the calls over all of them.
        self.channel = grpc.aio.insecure_channel(target, options=_CHANNEL_OPTIONS)
        self._stubs: dict[type[Any], Any] = {}

    def stub(self, stub_class: type[S]) -> S:
        """The (cached) stub of a service on this channel."""
        if stub_class not in self._stubs:
            self._stubs[stub_class] = stub_class(self.channel)  # type: ignore[call-arg]
        return self._stubs[stub_class]  # type: ignore[no-any-return]

    async def call(self, method: Any, request: Any, token: str | None) -> Any:
        """Calls a unary method; raises RpcFailure when the call fails."""
        try:
            return await method(
                request, metadata=call_metadata(token), timeout=context.current().remaining()
            )
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from None

    async def stream_from(self, method: Any, request: Any, token: str | None) -> AsyncIterator[Any]:
        """Iterates a server-streaming method's responses; raises RpcFailure."""
        call = method(request, metadata=call_metadata(token), timeout=context.current().remaining())
        try:
            async for response in call:
                yield response
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from None
        finally:
            call.cancel()

    async def stream_to(self, method: Any, requests: AsyncIterable[Any], token: str | None) -> Any:
        """Calls a client-streaming method with `requests`; raises RpcFailure."""
        try:
            return await method(
                requests, metadata=call_metadata(token), timeout=context.current().remaining()
            )
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from None

    async def close(self) -> None:
        """Closes the channel. Idempotent."""
        await self.channel.close()
