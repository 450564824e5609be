"""Unit tests of atomic quota charging on a real SQLite database."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from kumo.server.db.engine import Database
from kumo.server.db.migrate import upgrade
from kumo.server.db.models import ProjectRow, QuotaRow
from kumo.server.errors import QuotaExceeded
from kumo.server.quota import charge, create_project_quota


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path}/q.db")
    upgrade(database.engine)
    database.transaction(lambda s: s.add(ProjectRow(id="p", state=1)))
    database.transaction(lambda s: create_project_quota(s, "p", {"vcpus": 4, "ram_mib": -1}))
    return database


def _in_use(db: Database, resource: str) -> int:
    value = db.transaction(
        lambda s: s.scalar(select(QuotaRow.in_use).where(QuotaRow.resource == resource))
    )
    assert value is not None
    return value


def test_charge_up_to_the_limit_then_refuse(db: Database) -> None:
    """Charges add up to the limit; one more is refused and nothing changes."""
    db.transaction(lambda s: charge(s, "p", {"vcpus": 3}))
    db.transaction(lambda s: charge(s, "p", {"vcpus": 1}))
    with pytest.raises(QuotaExceeded) as info:
        db.transaction(lambda s: charge(s, "p", {"vcpus": 1, "ram_mib": 100}))
    assert info.value.resource == "vcpus"
    assert _in_use(db, "vcpus") == 4
    assert _in_use(db, "ram_mib") == 0  # the whole transaction rolled back


def test_unlimited_and_release(db: Database) -> None:
    """-1 is unlimited; releases never go below zero."""
    db.transaction(lambda s: charge(s, "p", {"ram_mib": 10**9}))
    db.transaction(lambda s: charge(s, "p", {"vcpus": -5}))
    assert _in_use(db, "vcpus") == 0
    assert _in_use(db, "ram_mib") == 10**9
