"""Tombstones of deleted instances: written once, read by name, dropped after the retention."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kumo.compute.v1 import resources_pb2 as cpb
from kumo.server.db.engine import Database
from kumo.server.db.migrate import upgrade
from kumo.server.db.models import (
    InstanceRow,
    InstanceTombstoneRow,
    ProjectRow,
    RegionRow,
    ZoneRow,
)
from kumo.server.services.compute import tombstones
from kumo.server.services.compute.common import INSTANCES

HOUR = 3600.0
NAME = "projects/p1/zones/z1/instances/web"


def _database(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path}/t.db")
    upgrade(db.engine)

    def topology(session: Session) -> None:
        session.add_all([ProjectRow(id="p1"), RegionRow(id="r1")])
        session.flush()
        session.add(ZoneRow(id="z1", region_id="r1"))

    db.transaction(topology)
    return db


def _delete_instance(db: Database, retention: float, labels: dict[str, str]) -> str:
    """Creates instance `web` and deletes it as the DELETE operation does; its uid."""

    def create(session: Session) -> str:
        row = InstanceRow(
            id="web",
            project_id="p1",
            zone_id="z1",
            flavor_id="small",
            image_project_id="p1",
            image_id="img",
            hostname="web",
            labels=labels,
            vcpus=1,
            memory_mib=128,
            disk_gib=1,
            host_id=None,
            state=cpb.Instance.STATE_RUNNING,
        )
        session.add(row)
        session.flush()
        return row.uid

    uid = db.transaction(create)

    def forget(session: Session) -> None:
        row = session.scalars(select(InstanceRow).where(InstanceRow.uid == uid)).one()
        tombstones.bury(session, row, retention)
        session.delete(row)

    db.transaction(forget)
    return uid


def _exhume(db: Database, retention: float) -> cpb.Instance | None:
    with db.engine.connect() as connection:
        return tombstones.exhume(connection, NAME, retention)


def _count(db: Database) -> int:
    count = select(func.count()).select_from(InstanceTombstoneRow)
    return int(db.transaction(lambda s: s.scalar(count)) or 0)


def test_a_deleted_instance_reads_back_deleted_then_expires(tmp_path: Path) -> None:
    db = _database(tmp_path)
    uid = _delete_instance(db, HOUR, {"tier": "web"})
    shown = _exhume(db, HOUR)
    assert shown is not None
    assert (shown.name, shown.uid, shown.state, shown.labels["tier"]) == (
        NAME,
        uid,
        cpb.Instance.STATE_DELETED,
        "web",
    )
    assert _count(db) == 1
    # Older than the retention asked for: not shown.
    assert _exhume(db, 0) is None

    # The same name used again and deleted: the newest tombstone is the one shown; both kept.
    newer = _delete_instance(db, HOUR, {"tier": "db"})
    shown = _exhume(db, HOUR)
    assert shown is not None and (shown.uid, shown.labels["tier"]) == (newer, "db")
    assert _count(db) == 2

    # A deletion drops the tombstones past the retention: pushed two hours back, both go.
    def age(session: Session) -> None:
        for row in session.scalars(select(InstanceTombstoneRow)):
            row.deleted_at -= timedelta(hours=2)

    db.transaction(age)
    third = _delete_instance(db, HOUR, {})
    assert _count(db) == 1
    shown = _exhume(db, HOUR)
    assert shown is not None and shown.uid == third


def test_no_retention_keeps_no_tombstone(tmp_path: Path) -> None:
    db = _database(tmp_path)
    _delete_instance(db, HOUR, {})
    _delete_instance(db, 0, {})
    assert _count(db) == 0
    assert _exhume(db, HOUR) is None


def test_tombstones_take_every_instance_filter() -> None:
    """A filter ListInstances accepts for live instances also applies to deleted ones."""
    assert set(tombstones.DELETED.filters) == set(INSTANCES.filters)
