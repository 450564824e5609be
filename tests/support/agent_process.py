"""The real `kumo-agent` console script as a child process, for crash tests.

`AgentProcess` is `ApiProcess` (tests.support.process) for the agent: the same
clean `KUMO_*` environment, output capture, `kill()` (SIGKILL, a crash),
`terminate()` and `close()`, all by pid. `start()` waits until the agent logs
that it registered its host with the API.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

from tests.support.process import ApiProcess

_REGISTERED = "registered hosts/"


def kumo_agent() -> Path:
    """The `kumo-agent` script installed next to the running interpreter."""
    return Path(sys.executable).parent / "kumo-agent"


class AgentProcess(ApiProcess):
    """One run of `kumo-agent`; start it again after it ends to restart on the same state.

    `env` holds its `KUMO_AGENT_*` settings (the parent's own `KUMO_*` are not passed on).
    `port` and `address` mean nothing here.
    """

    def __init__(self, env: Mapping[str, str]) -> None:
        super().__init__(env)
        self._registered = False

    def start(self, timeout: float = 60, **overrides: str) -> None:
        """Starts the process and waits until it has registered its host.

        Raises RuntimeError, with the process's output, if it exits or does not
        register within `timeout` seconds (it is then killed).
        """
        assert self.proc is None or self.proc.poll() is not None, "already running"
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUMO_")}
        env.update(self.env)
        env.update(overrides)
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONFAULTHANDLER"] = "1"
        self.output = []
        self._ready.clear()
        self._registered = False
        self.proc = subprocess.Popen(
            [str(kumo_agent()), "--log-level", "INFO"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self._reader.start()
        # Set when the agent registered, or when its output ends (it exited).
        self._ready.wait(timeout)
        if not self._registered or self.proc.poll() is not None:
            self.close()
            raise RuntimeError("kumo-agent did not register:\n" + self.tail())

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                self.output.append(line.rstrip("\n"))
                if not self._registered and _REGISTERED in line:
                    self._registered = True
                    self._ready.set()
        finally:
            self._ready.set()
