"""Foreground first: the calls people and tools make run before background work.

One API process serves user-facing calls (create, list, delete, ...) and, on the same
event loop, background work: the operations it runs (an instance's build and delete steps)
and the host agents' reports. Each instance's life costs several times more background
work than the call that started it, so under a burst of creates every call used to wait
behind the builds of the ones before it. Here background work yields:

- `Foreground.serving()` marks a user-facing call for its duration;
- code running as background work (`background(foreground)` set in its task) runs each
  transaction inside `background_turn()` (`Database.run` and `Database.read` do it). While
  no user-facing call runs or ended in the last `quiet_seconds`, a turn comes at once, as
  many at a time as the code asks for.
- Otherwise the API is busy, and background transactions go one at a time, each only once
  the last has been followed by enough of a pause that background work keeps `share` of
  the loop: after 1 ms (a transaction and the task's code after it) and a share of 0.05,
  19 ms. So a steady stream of calls slows convergence to that share and never stops it,
  and once the API is busy a call waits for at most the one background stretch that was
  running when it came.

Nothing is dropped or reordered within background work; it is only deferred, so a burst of
creates answers sooner and the builds run in the gaps and after it. Long waits
(WaitOperation, streams) are neither foreground nor background: they would hold the
background back for their whole length.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar


class Foreground:
    """Tracks user-facing calls and hands out turns to background work."""

    def __init__(self, quiet_seconds: float = 0.01, share: float = 0.05) -> None:
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        self.quiet_seconds = quiet_seconds
        self._pause_per_second = (1 - share) / share
        self._serving = 0
        self._last_end = 0.0
        self._turns = 0  # background transactions running under a busy turn
        self._turn_over = asyncio.Event()  # set while no busy turn runs
        self._turn_over.set()
        self._resume_at = 0.0  # when the next busy turn may start

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

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Runs the block (one background transaction) when its turn comes (see the module
        docstring), after first letting the event loop serve what is ready."""
        await asyncio.sleep(0)
        if not await self._wait_while_busy():
            yield
            return
        self._turns += 1
        self._turn_over.clear()
        start = time.monotonic()
        try:
            yield
        finally:
            self._turns -= 1
            if not self._turns:
                self._turn_over.set()
            # The pause is set from the whole stretch this turn took: the transaction (on
            # the loop, or on the database's threads) and the task's code after it until
            # it next waits, which is when the loop runs this callback.
            asyncio.get_running_loop().call_soon(self._rest, start)

    def _rest(self, start: float) -> None:
        end = time.monotonic()
        self._resume_at = max(self._resume_at, end + (end - start) * self._pause_per_second)

    async def _wait_while_busy(self) -> bool:
        """Waits until the API is idle (False) or a busy turn is free (True)."""
        while self.busy:
            now = time.monotonic()
            if not self._turns and now >= self._resume_at:
                return True
            # Serving: look again a quiet period on (the call may have ended by then).
            quiet_in = self.quiet_seconds - (0 if self._serving else now - self._last_end)
            if self._turns:  # another's transaction runs on the database's threads
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(quiet_in, 0.0005)):
                        await self._turn_over.wait()
            else:
                await asyncio.sleep(max(min(quiet_in, self._resume_at - now), 0.0005))
        return False


_background: ContextVar[Foreground | None] = ContextVar("kumo_background", default=None)


def background(foreground: Foreground | None) -> None:
    """Marks the running task (and the tasks it starts from now on) as background work of
    `foreground`'s process; None: as not background work (undoing an inherited mark).
    Idempotent."""
    _background.set(foreground)


@contextlib.asynccontextmanager
async def background_turn() -> AsyncIterator[None]:
    """Runs the block in the turn of the process's `Foreground` when the running task is
    background work; at once (without yielding) otherwise."""
    foreground = _background.get()
    if foreground is None:
        yield
        return
    async with foreground.turn():
        yield
