"""Runs the gateway's ASGI app under uvicorn inside the caller's event loop.

`GatewayServer(settings, host, port)`: `await start()` binds (port 0 picks a free one, read
back from `port`), `await stop()` finishes in-flight requests and closes. Used by
`kumo-gateway`, `kumo up` and the tests.
"""

from __future__ import annotations

import asyncio
import socket

import uvicorn
from opentelemetry import trace

from kumo.gateway.app import Settings, create_app


class GatewayServer:
    """The gateway listening on host:port."""

    def __init__(
        self,
        settings: Settings,
        host: str = "127.0.0.1",
        port: int = 0,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self.settings = settings
        self.host = host
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only for
        # sockets that say so, and without it every response waits ~40 ms for a delayed ACK.
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind((host, port))
        self.port: int = self.socket.getsockname()[1]
        config = uvicorn.Config(
            create_app(settings, tracer),
            log_config=None,
            access_log=False,  # the app logs each request itself (kumo.gateway.access)
            timeout_graceful_shutdown=5,
            # Longer than clients' polling intervals (the openstack CLI's --wait polls every
            # 5 s, uvicorn's default): a connection closed just as a client reuses it is a
            # "connection reset" error in the client.
            timeout_keep_alive=75,
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """`http://host:port`."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Starts serving; returns once the socket accepts requests."""
        # _serve, not serve: the owner of the process handles SIGINT/SIGTERM (uvicorn's
        # serve() would take them over).
        self._task = asyncio.create_task(self.server._serve(sockets=[self.socket]))
        while not self.server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stops serving. Idempotent."""
        if self._task is None:
            return
        self.server.should_exit = True
        await self._task
        self._task = None
