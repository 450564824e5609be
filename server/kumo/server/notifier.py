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


class Wakeup(asyncio.Event):
    """An event that also gathers what its notifications were about since it was last
    cleared: `about` holds the details they gave, or is None once one came without a
    detail (it was about everything under its key)."""

    def __init__(self) -> None:
        super().__init__()
        self.about: set[str] | None = set()

    def note(self, detail: str | None) -> None:
        """Sets the event and records `detail` (None: about everything)."""
        if detail is None:
            self.about = None
        elif self.about is not None:
            self.about.add(detail)
        self.set()

    def clear(self) -> None:
        """Unsets the event and forgets what it gathered."""
        super().clear()
        self.about = set()


class Notifier:
    """Events keyed by text."""

    def __init__(self) -> None:
        self._events: dict[str, set[Wakeup]] = defaultdict(set)

    def notify(self, key: str, about: str | None = None) -> None:
        """Wakes every waiter on `key`, telling them what changed under it (`about`, e.g.
        one instance's uid under `host:<id>`; None: anything may have)."""
        for event in self._events.get(key, ()):
            event.note(about)

    async def wait(self, key: str, timeout: float) -> None:
        """Returns when `key` is notified or after `timeout` seconds, whichever is first."""
        with self.listening(key) as event, contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)

    @contextlib.contextmanager
    def listening(self, key: str) -> Iterator[Wakeup]:
        """An event that every `notify(key)` sets while the block runs, registered on
        entry (clear it after each wake-up to wait for the next).

        `wait` registers only when called, so a notification sent while the caller
        reads the state it is about (or sends what it read) is lost. Enter this before
        reading instead, and wait on the event afterwards."""
        event = Wakeup()
        self._events[key].add(event)
        try:
            yield event
        finally:
            waiters = self._events.get(key)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._events[key]
