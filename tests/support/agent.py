"""A real kumo-agent in a background thread with its own event loop."""

from __future__ import annotations

import asyncio
import tempfile
import threading
from pathlib import Path
from typing import Any

from kumo.agent.config import AgentConfig, CredentialsConfig
from kumo.agent.main import Agent, run_agent
from kumo.drivers.compute.base import ComputeDriver


class AgentThread:
    """Runs `run_agent(config, driver=...)` until `stop()`; waits for registration."""

    def __init__(
        self,
        endpoint: str,
        token: str,
        host: str,
        rack: str,
        driver: ComputeDriver | None = None,
        **options: Any,
    ) -> None:
        self.config = AgentConfig(
            api_endpoint=endpoint,
            host=host,
            rack=f"racks/{rack}",
            credentials=CredentialsConfig(token=token),
            state_dir=Path(tempfile.mkdtemp(prefix=f"kumo-agent-{host}-")),
            heartbeat_interval_seconds=2,
            resync_interval_seconds=5,
            retry_initial_seconds=0.2,
            stop_timeout_seconds=1,
            **options,
        )
        self.driver = driver
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.agent: Agent = self._call(run_agent(self.config, driver=driver))
        self._call(asyncio.wait_for(self.agent.registered.wait(), 60))

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=90)

    def stop(self) -> None:
        """Stops the agent (guests keep running) and its loop. Idempotent."""
        if self.loop.is_running():
            self._call(self.agent.stop())
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
