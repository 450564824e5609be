"""In-process wake-ups keyed by text: operations finishing (`op:<id>`), instances
reporting (`instance:<uid>`), a host's assignments changing (`host:<id>`).

Other replicas' changes are not seen here: every waiter also polls the database
on a short interval as the safety net (ARCHITECTURE: LISTEN/NOTIFY on
PostgreSQL is the planned cross-replica path).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Iterator


class Notifier:
    """Events keyed by text."""

    def __init__(self) -> None:
        self._events: dict[str, set[asyncio.Event]] = defaultdict(set)

    def notify(self, key: str) -> None:
        """Wakes every waiter on `key`."""
        for event in self._events.get(key, ()):
            event.set()

    async def wait(self, key: str, timeout: float) -> None:
        """Returns when `key` is notified or after `timeout` seconds, whichever is first."""
        with self.listening(key) as event, contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)

    @contextlib.contextmanager
    def listening(self, key: str) -> Iterator[asyncio.Event]:
        """An event that every `notify(key)` sets while the block runs, registered on
        entry (clear it after each wake-up to wait for the next).

        `wait` registers only when called, so a notification sent while the caller
        reads the state it is about (or sends what it read) is lost. Enter this before
        reading instead, and wait on the event afterwards."""
        event = asyncio.Event()
        self._events[key].add(event)
        try:
            yield event
        finally:
            waiters = self._events.get(key)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._events[key]
