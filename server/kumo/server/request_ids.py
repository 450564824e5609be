"""The request id of the call being served: a context variable that the gRPC request-id
interceptor sets first thing (kumo.server.interceptors.request_id) and that logs, errors,
traces and new operations read."""

from __future__ import annotations

from contextvars import ContextVar

_request_id: ContextVar[str] = ContextVar("kumo_request_id", default="")


def current_request_id() -> str:
    """The id of the call being served, or '' outside a call."""
    return _request_id.get()


def set_request_id(request_id: str) -> None:
    """Makes `request_id` the id of the call being served (in this context)."""
    _request_id.set(request_id)
