"""Gives every call a request id: the caller's `x-request-id` if sane, else a new one.

The id is kept in a context variable for logs and errors, and returned to the
caller as `x-request-id` trailing metadata.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar
from typing import Any

import grpc

from kumo.server.interceptors.base import Behavior, UnaryInterceptor, metadata_value

_SANE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_request_id: ContextVar[str] = ContextVar("kumo_request_id", default="")


def current_request_id() -> str:
    """The id of the call being served, or '' outside a call."""
    return _request_id.get()


class RequestIdInterceptor(UnaryInterceptor):
    """Sets the request id before anything else runs."""

    def wrap(self, method: str, behavior: Behavior) -> Behavior:
        async def with_request_id(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            given = metadata_value(context, "x-request-id")
            rid = given if given and _SANE.fullmatch(given) else f"req-{uuid.uuid4().hex}"
            _request_id.set(rid)
            context.set_trailing_metadata((("x-request-id", rid),))
            return await behavior(request, context)

        return with_request_id
