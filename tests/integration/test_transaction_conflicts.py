"""Transactions PostgreSQL aborts for a conflict are run again (kumo.server.db.engine).

Two transactions that lock two rows in opposite orders wait for each other; PostgreSQL
breaks the deadlock by aborting one of them. `Database.transaction` runs that one again once
the other has committed, so both callers succeed and each change is applied exactly once.
A conflict that keeps coming back is raised after CONFLICT_RETRIES (tests/unit/
test_interceptors.py: it reaches a gRPC caller as ABORTED). A versioned row (db.base.Base)
changed by another transaction since this one read it is a conflict too: the transaction
runs again on the row as it is now instead of overwriting the other change.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from kumo.server.db.engine import CONFLICT_RETRIES, Database
from kumo.server.db.models.identity import ProjectRow
from tests.support.postgres import PostgresServer
from tests.unit.test_interceptors import deadlock


@pytest.fixture
def counters(postgres: PostgresServer) -> Iterator[Database]:
    db = Database(postgres.create_database())
    db.transaction(lambda s: s.execute(text("CREATE TABLE counters (id int PRIMARY KEY, n int)")))
    db.transaction(lambda s: s.execute(text("INSERT INTO counters VALUES (1, 0), (2, 0)")))
    try:
        yield db
    finally:
        db.close()


def test_two_transactions_locking_in_opposite_orders_both_commit_once(counters: Database) -> None:
    both_hold_one = threading.Barrier(2, timeout=10)
    runs: Counter[str] = Counter()
    lock = threading.Lock()

    def add_one_to_both(first: int, second: int) -> str:
        name = f"{first} then {second}"

        def change(session: Session) -> str:
            with lock:
                runs[name] += 1
                first_run = runs[name] == 1
            session.execute(text("UPDATE counters SET n = n + 1 WHERE id = :id"), {"id": first})
            if first_run:  # (a second run goes straight on: the other holds its row until done)
                both_hold_one.wait()
            session.execute(text("UPDATE counters SET n = n + 1 WHERE id = :id"), {"id": second})
            return name

        return counters.transaction(change)

    with ThreadPoolExecutor(2) as pool:
        done = sorted(pool.map(add_one_to_both, (1, 2), (2, 1)))
    assert done == ["1 then 2", "2 then 1"]
    assert sorted(runs.values()) == [1, 2], runs  # PostgreSQL aborted one; it ran again
    rows = counters.transaction(lambda s: s.execute(text("SELECT id, n FROM counters")).all())
    assert sorted(tuple(row) for row in rows) == [(1, 2), (2, 2)]


def test_a_conflict_that_keeps_coming_back_is_raised_and_other_errors_are_not_retried(
    counters: Database,
) -> None:
    calls = Counter[str]()

    def conflicting(session: Session) -> None:
        calls["conflict"] += 1
        session.execute(text("UPDATE counters SET n = n + 1 WHERE id = 1"))
        raise deadlock()

    def broken(session: Session) -> None:
        calls["broken"] += 1
        session.execute(text("SELECT no_such_column FROM counters"))

    with pytest.raises(OperationalError):
        counters.transaction(conflicting)
    with pytest.raises(Exception, match="no_such_column"):
        counters.transaction(broken)
    assert calls == {"conflict": CONFLICT_RETRIES + 1, "broken": 1}
    rows = counters.transaction(lambda s: s.execute(text("SELECT n FROM counters")).all())
    assert [row.n for row in rows] == [0, 0]  # nothing of the aborted runs was kept


def test_a_versioned_row_changed_meanwhile_is_read_again_not_overwritten(
    postgres: PostgresServer,
) -> None:
    db = Database(postgres.create_database())
    ProjectRow.metadata.tables["projects"].create(db.engine)
    db.transaction(lambda s: s.add(ProjectRow(id="p", labels={})))
    both_read = threading.Barrier(2, timeout=10)
    runs: Counter[str] = Counter()
    lock = threading.Lock()

    def label(key: str) -> None:
        def change(session: Session) -> None:
            with lock:
                runs[key] += 1
                first_run = runs[key] == 1
            row = session.get(ProjectRow, "p")
            assert row is not None
            if first_run:  # both read version 1; the second to write finds version 2
                both_read.wait()
            row.labels = {**row.labels, key: "set"}
            row.version += 1
            session.flush()

        db.transaction(change)

    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(label, ["a", "b"]))
        row = db.transaction(lambda s: s.get(ProjectRow, "p"))
        assert row is not None
        assert row.labels == {"a": "set", "b": "set"} and row.version == 3
        assert sorted(runs.values()) == [1, 2], runs
    finally:
        db.close()
