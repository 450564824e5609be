"""Foreground first (kumo.server.priority and its interceptor), on one event loop."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from kumo.server.interceptors.priority import PriorityInterceptor
from kumo.server.priority import Foreground, background, background_turn

TRANSACTION_SECONDS = 0.01


async def _transaction() -> None:
    """One background transaction: the loop is held for its length, as SQLite's are."""
    async with background_turn():
        time.sleep(TRANSACTION_SECONDS)


async def _turns_while(foreground: Foreground, seconds: float) -> tuple[int, int]:
    """Background transactions run while one call is served for `seconds`, and in the
    five quiet periods after it."""
    turns = 0

    async def work() -> None:
        nonlocal turns
        background(foreground)
        while True:
            await _transaction()
            turns += 1

    with foreground.serving():
        worker = asyncio.create_task(work())
        await asyncio.sleep(seconds)
        during = turns
    await asyncio.sleep(foreground.quiet_seconds * 5)
    worker.cancel()
    return during, turns - during


def test_background_work_keeps_its_share_while_calls_are_served() -> None:
    """While a call is served, background work runs one transaction at a time with pauses
    that leave it its share of the loop (0.2: 10 ms of work, then 40 ms of pause), not more
    and not none; once calls stop, it runs without pauses."""
    foreground = Foreground(quiet_seconds=0.05, share=0.2)
    during, after = asyncio.run(_turns_while(foreground, 0.6))
    assert 4 <= during <= 13  # 0.6 s / 50 ms, plus the first, which comes at once
    assert after >= 8  # 0.25 s less one quiet period, 10 ms each: ~20


async def _twenty_transactions() -> float:
    start = time.monotonic()
    for _ in range(20):
        await _transaction()
    return time.monotonic() - start


@pytest.mark.parametrize("as_background", [False, True])
def test_no_pause_for_other_work_nor_for_idle_background_work(as_background: bool) -> None:
    """Code not marked as background work passes `background_turn` at once, even while a
    call is served; background work does too while no call is served (nor just ended)."""

    async def scenario() -> float:
        foreground = Foreground(quiet_seconds=5, share=0.01)
        if as_background:
            background(foreground)
            return await _twenty_transactions()
        with foreground.serving():
            return await _twenty_transactions()

    assert asyncio.run(scenario()) < 20 * TRANSACTION_SECONDS + 1  # one pause would be 1 s


def test_share_is_checked() -> None:
    with pytest.raises(ValueError):
        Foreground(share=0)


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
    another call is served (the first comes at once; with a share of 0.01 the pause after
    it is 99 times its length)."""
    foreground = Foreground(quiet_seconds=5, share=0.01)
    seen: dict[str, Any] = {}

    async def behavior(request: Any, context: Any) -> str:
        seen["busy"] = foreground.busy
        with foreground.serving():  # another call, served meanwhile
            await _transaction()
            try:
                await asyncio.wait_for(_transaction(), 0.3)
                seen["deferred"] = False
            except TimeoutError:
                seen["deferred"] = True
        return "done"

    wrapped = PriorityInterceptor(foreground).wrap(method, behavior)
    assert asyncio.run(wrapped(None, None)) == "done"
    assert seen == {"busy": busy, "deferred": deferred}
