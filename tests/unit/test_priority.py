"""Foreground first (kumo.server.priority and its interceptor), on one event loop."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from kumo.server.interceptors.priority import PriorityInterceptor
from kumo.server.priority import Foreground, background, background_turn


async def _turns_while(foreground: Foreground, seconds: float) -> int:
    """How many turns background work gets while one call is served for `seconds`."""
    turns = 0

    async def work() -> None:
        nonlocal turns
        background(foreground)
        while True:
            await background_turn()
            turns += 1

    with foreground.serving():
        worker = asyncio.create_task(work())
        await asyncio.sleep(seconds)
        during = turns
    await asyncio.sleep(foreground.quiet_seconds * 3)
    after = turns
    worker.cancel()
    assert after > during + 100, "idle again: background work runs freely"
    return during


def test_background_work_waits_for_calls_but_is_not_starved() -> None:
    """While a call is served, background work gets one turn per turn_seconds (the first
    at once), not more and not none; once calls stop, it runs freely."""
    during = asyncio.run(_turns_while(Foreground(quiet_seconds=0.05, turn_seconds=0.1), 0.55))
    assert 2 <= during <= 7


def test_other_work_never_waits() -> None:
    """Code not marked as background work passes `background_turn` at once."""

    async def scenario() -> float:
        foreground = Foreground(quiet_seconds=5, turn_seconds=5)
        with foreground.serving():
            start = time.monotonic()
            for _ in range(100):
                await background_turn()
            return time.monotonic() - start

    assert asyncio.run(scenario()) < 1  # a single wait would be 5 s


def test_idle_background_work_does_not_wait() -> None:
    """With no call served (nor one just ended) background work's turns come at once."""

    async def scenario() -> float:
        background(Foreground(quiet_seconds=5, turn_seconds=5))
        start = time.monotonic()
        for _ in range(100):
            await background_turn()
        return time.monotonic() - start

    assert asyncio.run(scenario()) < 1  # a single wait would be 5 s


@pytest.mark.parametrize(
    ("method", "busy", "deferred"),
    [
        ("/kumo.compute.v1.ComputeService/CreateInstance", True, False),
        ("/kumo.agent.v1.AgentService/ReportInstanceStatus", False, True),
        ("/kumo.agent.v1.AgentService/Heartbeat", False, False),
        ("/google.longrunning.Operations/WaitOperation", False, False),
    ],
)
def test_calls_are_sorted(method: str, busy: bool, deferred: bool) -> None:
    """User calls are foreground; agents' calls (but Heartbeat) are background work;
    WaitOperation is neither. `deferred`: a second transaction of the call waits while
    another call is served."""
    foreground = Foreground(quiet_seconds=5, turn_seconds=5)
    seen: dict[str, Any] = {}

    async def behavior(request: Any, context: Any) -> str:
        seen["busy"] = foreground.busy
        with foreground.serving():  # another call, served meanwhile
            await background_turn()  # (the first turn of background work comes at once)
            try:
                await asyncio.wait_for(background_turn(), 0.2)
                seen["deferred"] = False
            except TimeoutError:
                seen["deferred"] = True
        return "done"

    wrapped = PriorityInterceptor(foreground).wrap(method, behavior)
    assert asyncio.run(wrapped(None, None)) == "done"
    assert seen == {"busy": busy, "deferred": deferred}
