"""The gateway's read-change-write under an etag: done again on a conflict, and only then."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from kumo.gateway import etag_retry
from kumo.gateway.etag_retry import ATTEMPTS, until_written


class Conflict(Exception):
    """The write was refused: the resource changed in between."""


Attempt = Callable[[], Awaitable[str]]


def _failing(times: int, error: Exception) -> tuple[list[int], Attempt]:
    calls: list[int] = []

    async def attempt() -> str:
        calls.append(len(calls))
        if len(calls) <= times:
            raise error
        return "written"

    return calls, attempt


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(etag_retry, "FIRST_PAUSE", 0.0)


def _run(attempt: Attempt) -> str:
    return asyncio.run(until_written(attempt, lambda e: isinstance(e, Conflict)))


def test_conflicts_are_tried_again_until_the_write_lands() -> None:
    calls, attempt = _failing(ATTEMPTS - 1, Conflict())
    assert _run(attempt) == "written"
    assert len(calls) == ATTEMPTS


def test_after_every_attempt_the_last_conflict_is_raised() -> None:
    calls, attempt = _failing(ATTEMPTS, Conflict())
    with pytest.raises(Conflict):
        _run(attempt)
    assert len(calls) == ATTEMPTS


def test_other_failures_are_raised_at_once() -> None:
    calls, attempt = _failing(1, ValueError("refused"))
    with pytest.raises(ValueError):
        _run(attempt)
    assert len(calls) == 1
