"""In-process wake-ups for callers waiting on an operation (WaitOperation).

Other replicas' changes are not seen here; waiters also poll the database on a
short interval as the safety net.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict


class OperationNotifier:
    """Events keyed by operation id."""

    def __init__(self) -> None:
        self._events: dict[str, set[asyncio.Event]] = defaultdict(set)

    def notify(self, op_id: str) -> None:
        """Wakes every waiter on `op_id`."""
        for event in self._events.pop(op_id, ()):
            event.set()

    async def wait(self, op_id: str, timeout: float) -> None:
        """Returns when `op_id` is notified or after `timeout` seconds, whichever is first."""
        event = asyncio.Event()
        self._events[op_id].add(event)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
        finally:
            waiters = self._events.get(op_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._events[op_id]
