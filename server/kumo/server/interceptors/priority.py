"""Sorts calls into foreground and background work (see kumo.server.priority).

- The host agents' calls are background work, except Heartbeat: a host's liveness must
  not wait behind a burst of user calls.
- WaitOperation and server streams other than the agents' are neither: they last as long
  as what they wait for, and would hold background work back all that time.
- Every other unary call is foreground.
"""

from __future__ import annotations

from typing import Any

import grpc

from kumo.server.interceptors.base import Behavior, StreamBehavior, UnaryInterceptor
from kumo.server.priority import Foreground, background

_AGENT = "/kumo.agent.v1.AgentService/"
_NEITHER = frozenset({"/google.longrunning.Operations/WaitOperation", f"{_AGENT}Heartbeat"})


class PriorityInterceptor(UnaryInterceptor):
    """Marks each call as `foreground`'s or as background work."""

    def __init__(self, foreground: Foreground) -> None:
        super().__init__()
        self._foreground = foreground

    def wrap(self, method: str, behavior: Behavior) -> Behavior:
        if method in _NEITHER:
            return behavior
        foreground = self._foreground
        if method.startswith(_AGENT):

            async def in_background(
                request: Any, context: grpc.aio.ServicerContext[Any, Any]
            ) -> Any:
                background(foreground)
                return await behavior(request, context)

            return in_background

        async def in_foreground(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            with foreground.serving():
                return await behavior(request, context)

        return in_foreground

    def wrap_stream_unary(self, method: str, behavior: Behavior) -> Behavior:
        return behavior  # uploads last as long as the client sends

    def wrap_unary_stream(self, method: str, behavior: StreamBehavior) -> StreamBehavior:
        if not method.startswith(_AGENT):
            return behavior
        return super().wrap_unary_stream(method, behavior)
