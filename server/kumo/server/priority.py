"""Foreground first: the calls people and tools make run before background work.

One API process serves user-facing calls (create, list, delete, ...) and, on the same
event loop, background work: the operations it runs (an instance's build and delete steps)
and the host agents' reports. Each instance's life costs several times more background
work than the call that started it, so under a burst of creates every call used to wait
behind the builds of the ones before it. Here background work yields:

- `Foreground.serving()` marks a user-facing call for its duration;
- code running as background work (`background(foreground)` set in its task) calls
  `await foreground.turn()` before each transaction (`Database.run` and `Database.read`
  do it), which returns at once while no user-facing call runs or ended in the last
  `quiet_seconds`, and otherwise waits for that quiet;
- so that background work never starves, one waiting transaction is let through every
  `turn_seconds` even while calls keep coming.

Nothing is dropped or reordered within background work; it is only deferred, so a burst of
creates answers sooner and the builds run in the gaps and after it. Long waits (WaitOperation,
streams) are neither foreground nor background: they would hold the background back for
their whole length.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar


class Foreground:
    """Tracks user-facing calls and hands out turns to background work."""

    def __init__(self, quiet_seconds: float = 0.01, turn_seconds: float = 0.02) -> None:
        self.quiet_seconds = quiet_seconds
        self.turn_seconds = turn_seconds
        self._serving = 0
        self._last_end = 0.0
        self._last_turn = 0.0

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        """Marks one user-facing call while the block runs. Re-entrant (a count)."""
        self._serving += 1
        try:
            yield
        finally:
            self._serving -= 1
            self._last_end = time.monotonic()

    @property
    def busy(self) -> bool:
        """Whether a user-facing call runs now or ended less than `quiet_seconds` ago."""
        return bool(self._serving) or time.monotonic() - self._last_end < self.quiet_seconds

    async def turn(self) -> None:
        """Returns when background work may run its next transaction (see the module
        docstring), after first letting the event loop serve what is ready. Never raises."""
        await asyncio.sleep(0)
        while self.busy:
            now = time.monotonic()
            turn_in = self.turn_seconds - (now - self._last_turn)
            if turn_in <= 0:
                self._last_turn = now
                return
            # Serving: look again a quiet period on (the call may have ended by then).
            quiet_in = self.quiet_seconds - (0 if self._serving else now - self._last_end)
            await asyncio.sleep(min(turn_in, quiet_in))


_background: ContextVar[Foreground | None] = ContextVar("kumo_background", default=None)


def background(foreground: Foreground) -> None:
    """Marks the running task (and the tasks it starts) as background work of
    `foreground`'s process. Idempotent."""
    _background.set(foreground)


async def background_turn() -> None:
    """`turn()` of the process's `Foreground` when the running task is background work;
    returns at once (without yielding) otherwise."""
    foreground = _background.get()
    if foreground is not None:
        await foreground.turn()
