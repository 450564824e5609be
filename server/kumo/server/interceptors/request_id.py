"""Gives every call a request id: the caller's `x-request-id` if sane, else a new one.

The id is kept for the call (kumo.server.request_ids) and returned to the caller as
`x-request-id` trailing metadata.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import grpc

from kumo.server.interceptors.base import Behavior, UnaryInterceptor, metadata_value
from kumo.server.request_ids import set_request_id

_SANE = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class RequestIdInterceptor(UnaryInterceptor):
    """Sets the request id before anything else runs."""

    def wrap(self, method: str, behavior: Behavior) -> Behavior:
        async def with_request_id(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            given = metadata_value(context, "x-request-id")
            rid = given if given and _SANE.fullmatch(given) else f"req-{uuid.uuid4().hex}"
            set_request_id(rid)
            context.set_trailing_metadata((("x-request-id", rid),))
            return await behavior(request, context)

        return with_request_id
