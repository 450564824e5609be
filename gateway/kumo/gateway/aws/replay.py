"""Refusing replayed signatures: a bounded in-memory record of signatures already used.

A signature is remembered until the end of its validity window (15 minutes after its
X-Amz-Date, or a presigned request's X-Amz-Expires), so a second request carrying it in
that window is refused; after the window, the time check refuses it anyway. Presigned
requests are single-use for every action. Header-signed requests are checked for
actions that change something: SigV4 has no nonce, so a client that sends the same
read twice within one second (X-Amz-Date's precision) signs it identically, and a
replayed read changes nothing. botocore fills `ClientToken` with a fresh UUID for
RunInstances, so its legitimate repeats sign differently.

The record holds at most `capacity` signatures (oldest expiry evicted first when full) and
is per gateway process: several gateway replicas each keep their own.
"""

from __future__ import annotations

import heapq
from datetime import datetime


class ReplayCache:
    """Signatures seen and when each stops mattering. Not thread-safe (one event loop)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._until: dict[str, datetime] = {}
        self._heap: list[tuple[datetime, str]] = []

    def first_use(self, signature: str, valid_until: datetime, now: datetime) -> bool:
        """Records `signature`; False if it was already recorded and is still valid."""
        self._expire(now)
        if signature in self._until:
            return False
        while len(self._until) >= self.capacity:
            _, oldest = heapq.heappop(self._heap)
            self._until.pop(oldest, None)
        self._until[signature] = valid_until
        heapq.heappush(self._heap, (valid_until, signature))
        return True

    def _expire(self, now: datetime) -> None:
        while self._heap and self._heap[0][0] < now:
            _, signature = heapq.heappop(self._heap)
            self._until.pop(signature, None)
