"""The real `kumo-api` console script as a child process, for crash and shutdown tests.

`ApiProcess.start()` runs it with a clean `KUMO_*` environment and waits for
its "serving gRPC on" line; `kill()` is SIGKILL (a crash), `terminate()` is
SIGTERM (a graceful stop). Everything is by pid, and `close()` kills whatever
is still running, so a fixture can always clean up.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

from tests.support.cloud import ADMIN_PASSWORD

_SERVING = re.compile(r"serving gRPC on (\S+):(\d+)")


def kumo_api() -> Path:
    """The `kumo-api` script installed next to the running interpreter."""
    return Path(sys.executable).parent / "kumo-api"


def api_settings(workdir: Path, database_url: str) -> dict[str, str]:
    """The KUMO_* settings of a test or benchmark API server: its data under `workdir`, the
    test admin password, fast password hashing."""
    return {
        "KUMO_DATA_DIR": str(workdir / "data"),
        "KUMO_DATABASE__URL": database_url,
        "KUMO_BOOTSTRAP__ADMIN_PASSWORD": ADMIN_PASSWORD,
        "KUMO_AUTH__SCRYPT_LOG2_N": "10",
    }


class ApiProcess:
    """One run of `kumo-api`; start it again after it ends to restart on the same data."""

    def __init__(self, env: Mapping[str, str]) -> None:
        # KUMO_* settings for the process; the parent's own KUMO_* variables are not passed on.
        self.env = dict(env)
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0
        self.output: list[str] = []
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None

    @property
    def address(self) -> str:
        """`127.0.0.1:<port>` of the running process."""
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The process id."""
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 60, **overrides: str) -> None:
        """Starts the process (with `overrides` on top of `env`) and waits until it serves.

        Raises RuntimeError, with the process's output, if it exits or does not
        serve within `timeout` seconds.
        """
        assert self.proc is None or self.proc.poll() is not None, "already running"
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUMO_")}
        env.update(self.env)
        env.update(overrides)
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONFAULTHANDLER"] = "1"
        self.output = []
        self.port = 0
        self._ready.clear()
        self.proc = subprocess.Popen(
            [str(kumo_api()), "--host", "127.0.0.1", "--port", "0"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self._reader.start()
        # Set when the process serves, or when its output ends (it exited).
        self._ready.wait(timeout)
        if not self.port or self.proc.poll() is not None:
            self.close()
            raise RuntimeError("kumo-api did not start:\n" + self.tail())

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                self.output.append(line.rstrip("\n"))
                if not self.port and (match := _SERVING.search(line)) is not None:
                    self.port = int(match.group(2))
                    self._ready.set()
        finally:
            self._ready.set()

    def tail(self, lines: int = 40) -> str:
        """The last lines the process printed (for failure messages)."""
        return "\n".join(self.output[-lines:])

    def kill(self) -> None:
        """SIGKILL: the process dies at once, as in a crash; waits for it."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._join()

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, then waits up to `timeout` seconds; returns the exit code.

        Raises RuntimeError, with the process's output and its threads' stacks,
        if it does not exit in time (it is then killed).
        """
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # SIGABRT makes faulthandler print every thread's stack into the output.
            os.kill(self.proc.pid, signal.SIGABRT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
            self.close()
            raise RuntimeError(
                f"kumo-api did not stop within {timeout} s of SIGTERM:\n{self.tail(150)}"
            ) from None
        self._join()
        return code

    def _join(self) -> None:
        if self._reader is not None:
            self._reader.join(timeout=10)

    def close(self) -> None:
        """Kills the process if it is still running. Idempotent."""
        if self.proc is not None and self.proc.poll() is None:
            self.kill()
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
