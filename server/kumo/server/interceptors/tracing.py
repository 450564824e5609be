"""One OpenTelemetry server span per call, continuing the caller's trace.

The caller's context arrives in W3C `traceparent` metadata. When no tracer
provider is configured the interceptor is not installed at all.
"""

from __future__ import annotations

from typing import Any

import grpc
from opentelemetry import propagate, trace

from kumo.server.interceptors.base import Behavior, UnaryInterceptor
from kumo.server.request_ids import current_request_id


class TracingInterceptor(UnaryInterceptor):
    """Starts a SERVER span named after the method."""

    def __init__(self, tracer: trace.Tracer) -> None:
        super().__init__()
        self._tracer = tracer

    def wrap(self, method: str, behavior: Behavior) -> Behavior:
        service, _, name = method.lstrip("/").rpartition("/")

        async def traced(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            carrier = {m.key: str(m.value) for m in context.invocation_metadata() or ()}
            with self._tracer.start_as_current_span(
                method,
                context=propagate.extract(carrier),
                kind=trace.SpanKind.SERVER,
                attributes={
                    "rpc.system": "grpc",
                    "rpc.service": service,
                    "rpc.method": name,
                    "kumo.request_id": current_request_id(),
                },
            ):
                return await behavior(request, context)

        return traced
