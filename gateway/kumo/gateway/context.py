"""What the gateway knows about the request being served, for the gRPC calls it makes.

The middleware sets it once per request (`begin`); `grpc_backend.Backend.call` reads it to
send the request id, the trace context and the remaining deadline to the API server.
"""

from __future__ import annotations

import time
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass
class RequestContext:
    """One HTTP request's id, deadline (time.monotonic) and W3C trace headers."""

    request_id: str
    deadline: float
    trace_headers: dict[str, str] = field(default_factory=dict)

    def remaining(self) -> float:
        """Seconds left before the deadline (never below a millisecond)."""
        return max(self.deadline - time.monotonic(), 0.001)


_current: ContextVar[RequestContext | None] = ContextVar("kumo_gateway_request", default=None)


def new_request_id() -> str:
    """An OpenStack-style request id: `req-<uuid4>`."""
    return f"req-{uuid.uuid4()}"


def begin(request_id: str, timeout: float) -> RequestContext:
    """Starts the context of a request in the current task."""
    context = RequestContext(request_id=request_id, deadline=time.monotonic() + timeout)
    _current.set(context)
    return context


def current() -> RequestContext:
    """The current request's context; a fresh one (60 s) outside a request, e.g. in tests."""
    context = _current.get()
    if context is None:
        context = begin(new_request_id(), 60.0)
    return context
