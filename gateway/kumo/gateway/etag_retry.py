"""Read-modify-write under an etag, done again while others change the resource meanwhile.

The dialects change part of a resource (one metadata item, a tag, a rule) by reading it,
changing it and writing it back with the etag read; the API refuses the write (ABORTED)
when the resource changed in between, whether by another client or by Kumo itself (an
instance's etag changes as it builds). Clients of Nova and EC2 expect such a change to
land, not a conflict, so the whole read-change-write is done again, after a short random
pause that grows with each attempt so that concurrent writers stop colliding.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from google.rpc import code_pb2

from kumo.gateway.errors import RpcFailure

T = TypeVar("T")

ATTEMPTS = 12
FIRST_PAUSE = 0.002  # seconds; doubled per attempt, at most MAX_PAUSE
MAX_PAUSE = 0.1


async def until_written(
    attempt: Callable[[], Awaitable[T]], conflict: Callable[[Exception], bool]
) -> T:
    """`attempt()`'s result; `attempt` is awaited again while it raises an exception for
    which `conflict` is true, up to ATTEMPTS times in all. Raises what the last attempt
    raises, and at once what `conflict` does not accept."""
    for tried in range(ATTEMPTS - 1):
        try:
            return await attempt()
        except Exception as error:
            if not conflict(error):
                raise
        await asyncio.sleep(random.uniform(0, min(MAX_PAUSE, FIRST_PAUSE * 2**tried)))
    return await attempt()


def aborted(error: Exception) -> bool:
    """Whether `error` is a Kumo call refused with ABORTED (as the OpenStack dialects'
    calls raise it): the `conflict` of `until_written` for them."""
    return isinstance(error, RpcFailure) and error.code == code_pb2.ABORTED
