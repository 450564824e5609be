"""Wake-ups keyed by text: operations finishing (`op:<id>`), instances reporting
(`instance:<uid>`), a host's assignments changing (`host:<id>`), an operation written for
any controller to claim (`OPERATIONS`), network desired state changing (`NETWORK`).

Delivered at once in this process; with a relay (on PostgreSQL, `replica_wakeups`) also to
the other API replicas. Either way a wake-up is a hint: every waiter also polls the
database on a short interval as the safety net.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Protocol

OPERATIONS = "operations"
NETWORK = "network"


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


class Relay(Protocol):
    """Carries notifications to the other replicas."""

    def publish(self, key: str, about: str | None = None) -> None: ...


class Notifier:
    """Events keyed by text."""

    def __init__(self) -> None:
        self._events: dict[str, set[Wakeup]] = defaultdict(set)
        self._subscribers: dict[str, list[Callable[[], None]]] = defaultdict(list)
        self.relay: Relay | None = None

    def notify(self, key: str, about: str | None = None) -> None:
        """Wakes every waiter on `key`, here and (through the relay) in the other
        replicas, telling them what changed under it (`about`, e.g. one instance's uid
        under `host:<id>`; None: anything may have)."""
        self.deliver(key, about)
        if self.relay is not None:
            self.relay.publish(key, about)

    def deliver(self, key: str, about: str | None = None) -> None:
        """Wakes the waiters and subscribers on `key` in this process only."""
        for event in self._events.get(key, ()):
            event.note(about)
        for callback in self._subscribers.get(key, ()):
            callback()

    def subscribe(self, key: str, callback: Callable[[], None]) -> None:
        """Calls `callback()` on every notification of `key` from now on, until
        `unsubscribe` (a controller's wake-up)."""
        self._subscribers[key].append(callback)

    def unsubscribe(self, key: str, callback: Callable[[], None]) -> None:
        """Stops `subscribe`'s calls of `callback` for `key`. Idempotent."""
        if callback in self._subscribers.get(key, ()):
            self._subscribers[key].remove(callback)

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
