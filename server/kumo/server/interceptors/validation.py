"""Rejects requests with unknown fields or unset REQUIRED fields (see api.validation)."""

from __future__ import annotations

from typing import Any

import grpc

from kumo.server.api.validation import validate_request
from kumo.server.interceptors.base import Behavior, UnaryInterceptor


class ValidationInterceptor(UnaryInterceptor):
    """Runs the contract-derived checks before the service method."""

    def wrap(self, method: str, behavior: Behavior) -> Behavior:
        async def validated(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            validate_request(request)
            return await behavior(request, context)

        return validated

    def wrap_stream_unary(self, method: str, behavior: Behavior) -> Behavior:
        return behavior  # each streamed message is checked by its service
