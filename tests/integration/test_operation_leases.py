"""Operations written under a lease the local controller offered: started at once without a
claim pass, the slot given back when the write fails, and claimed like any orphan when the
controller never starts them (it died between the commit and the start)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from google.protobuf import empty_pb2
from google.protobuf.message import Message
from sqlalchemy.orm import Session

from kumo.server.config import OperationsConfig
from kumo.server.controllers.operations import OperationExecutor
from kumo.server.db.base import utcnow
from kumo.server.db.engine import Database
from kumo.server.db.migrate import upgrade
from kumo.server.db.models import OperationRow
from kumo.server.notifier import Notifier
from kumo.server.operations import store
from kumo.server.operations.handlers import HandlerRegistry, OperationContext
from tests.conftest import BACKENDS, database_url_for

KIND = "test.Record"


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest) -> Iterator[Database]:
    database = Database(database_url_for(request.param, request))
    upgrade(database.engine)
    try:
        yield database
    finally:
        database.close()


def _executor(
    db: Database,
    runs: list[int],
    lease_seconds: float = 15.0,
    hold: asyncio.Event | None = None,
) -> OperationExecutor:
    """A controller running KIND, which records its attempt (after `hold` is set, if given)."""

    async def record(ctx: OperationContext) -> Message:
        if hold is not None:
            await hold.wait()
        runs.append(ctx.attempt)
        return empty_pb2.Empty()

    registry = HandlerRegistry()
    registry.register(KIND, record)
    # A poll far longer than the test: only wake-ups and adoptions start anything.
    config = OperationsConfig(concurrency=2, poll_seconds=600, lease_seconds=lease_seconds)
    return OperationExecutor(db, registry, Notifier(), config)


def _write(db: Database, lease: store.Lease | None) -> str:
    def write(session: Session) -> str:
        row = store.create(session, project_id="p", kind=KIND, target="t", lease=lease)
        return store.name_of(row)

    return db.transaction(write)


def _row(db: Database, name: str) -> OperationRow | None:
    return db.transaction(lambda s: s.get(OperationRow, name.removeprefix("operations/")))


async def _until_done(db: Database, name: str) -> OperationRow:
    for _ in range(200):
        row = _row(db, name)
        if row is not None and row.done:
            return row
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} did not finish")


def test_adopted_operation_runs_at_once_as_a_first_attempt(db: Database) -> None:
    async def scenario() -> None:
        runs: list[int] = []
        executor = _executor(db, runs)
        executor.start()
        await asyncio.sleep(0.2)  # the first claim pass has run and found nothing
        lease = executor.offer()
        assert lease is not None
        name = _write(db, lease)
        written = _row(db, name)
        assert written is not None
        assert (written.state, written.attempts, written.lease_owner) == (
            store.OperationState.RUNNING,
            1,
            executor.owner,
        )
        await executor.adopt(lease, name)
        done = await _until_done(db, name)
        assert done.state == store.OperationState.SUCCEEDED and runs == [1]
        await executor.stop()

    asyncio.run(scenario())


def test_offers_stop_at_the_concurrency_and_a_failed_write_gives_its_slot_back(
    db: Database,
) -> None:
    async def scenario() -> None:
        executor = _executor(db, [])
        first, second = executor.offer(), executor.offer()
        assert first is not None and second is not None
        assert executor.offer() is None  # concurrency 2

        def write_then_fail(session: Session) -> None:
            store.create(session, project_id="p", kind=KIND, target="t", lease=first)
            raise RuntimeError("the rest of the transaction failed")

        with pytest.raises(RuntimeError):
            db.transaction(write_then_fail)
        assert first.row is not None
        await executor.adopt(first, None)  # rolled back: nothing to start
        assert _row(db, store.name_of(first.row)) is None
        assert executor.offer() is not None  # the slot is free again
        await executor.stop()

    asyncio.run(scenario())


def test_an_operation_never_adopted_is_claimed_once_its_lease_runs_out(db: Database) -> None:
    async def scenario() -> None:
        runs: list[int] = []
        writer = _executor(db, [], lease_seconds=1.5)
        lease = writer.offer()
        name = _write(db, lease)  # ...and the writer dies before starting it
        survivor = _executor(db, runs)
        survivor.start()
        await asyncio.sleep(0.2)  # its first claim pass, well within the lease
        assert runs == []  # still leased to the dead writer
        row = _row(db, name)
        assert row is not None and row.lease_expire_time is not None
        await asyncio.sleep(max(0.0, (row.lease_expire_time - utcnow()).total_seconds()) + 0.1)
        survivor.wake()
        done = await _until_done(db, name)
        assert done.state == store.OperationState.SUCCEEDED and runs == [2]
        await survivor.stop()

    asyncio.run(scenario())


def test_an_operation_written_while_every_slot_is_taken_starts_when_one_frees(
    db: Database,
) -> None:
    async def scenario() -> None:
        runs: list[int] = []
        hold = asyncio.Event()
        executor = _executor(db, runs, hold=hold)
        executor.start()
        names = []
        for _ in range(2):  # both slots, held busy
            lease = executor.offer()
            names.append(_write(db, lease))
            await executor.adopt(lease, names[-1])
        assert executor.offer() is None
        waiting = _write(db, None)  # PENDING, for a claim pass
        await executor.adopt(None, waiting)
        await asyncio.sleep(0.2)
        assert runs == []
        hold.set()  # the two end; a freed slot claims the third at once, not at the poll
        for name in (*names, waiting):
            assert (await _until_done(db, name)).state == store.OperationState.SUCCEEDED
        await executor.stop()

    asyncio.run(scenario())
