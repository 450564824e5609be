"""A real Kumo API server on port 0, run in a background thread with its own event loop.

Tests talk to it over real gRPC channels with the synchronous stubs.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from kumo.server.app import KumoServer, create_server
from kumo.server.config import Config


class ServerThread:
    """Starts `create_server(config)` in a thread; `stop()` stops it gracefully."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.server: KumoServer = self.call(self._start())
        self.port = self.server.port
        self.address = f"127.0.0.1:{self.port}"

    async def _start(self) -> KumoServer:
        server, _ = create_server(self.config)
        await server.start()
        return server

    def call(self, coroutine: Any) -> Any:
        """Runs `coroutine` on the server's loop and returns its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def stop(self) -> None:
        """Stops the server and its loop. Idempotent."""
        if self.loop.is_running():
            self.call(self.server.stop(0))
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
