"""Claims and host totals (controllers/claims.py) on a real database of each backend."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.server.controllers.claims import INSTANCE, MOVE, Ratios, Usage, claim, recount, release
from kumo.server.db.engine import Database
from kumo.server.db.migrate import upgrade
from kumo.server.db.models import ClaimRow, HostRow, PoolRow, RackRow, RegionRow, ZoneRow
from kumo.topology.v1 import resources_pb2 as tpb
from tests.conftest import BACKENDS, database_url_for

# Memory may be overcommitted by half: 1000 MiB offer 1500.
RATIOS = Ratios(vcpus=4.0, memory=1.5, disk=1.0)
SMALL = Usage(vcpus=1, memory_mib=400, disk_gib=1)


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest) -> Database:
    database = Database(database_url_for(request.param, request))
    upgrade(database.engine)

    def seed(session: Session) -> None:
        session.add(RegionRow(id="r"))
        session.flush()
        session.add(ZoneRow(id="z", region_id="r"))
        session.flush()
        session.add(PoolRow(id="p", zone_id="z", hypervisor_kind=tpb.HYPERVISOR_KIND_KVM))
        session.flush()
        session.add(RackRow(id="k", pool_id="p"))
        session.flush()
        for host in ("h1", "h2"):
            session.add(HostRow(id=host, rack_id="k", vcpus=4, memory_mib=1000, disk_gib=10))

    database.transaction(seed)
    request.addfinalizer(database.close)
    return database


def _used(db: Database, host: str) -> tuple[int, int, int]:
    row = db.transaction(lambda s: s.get(HostRow, host))
    assert row is not None
    return row.used_vcpus, row.used_memory_mib, row.used_disk_gib


def test_limits_use_the_fractional_ratio(db: Database) -> None:
    """Three claims of 400 MiB fit under 1000 MiB times 1.5, the fourth does not and changes
    nothing (a ratio rounded to 2 would let it in)."""
    fitted = [
        db.transaction(lambda s, i=i: claim(s, f"i{i}", INSTANCE, "h1", SMALL, RATIOS))
        for i in range(4)
    ]
    assert fitted == [True, True, True, False]
    assert _used(db, "h1") == (3, 1200, 3)
    assert db.transaction(lambda s: s.get(ClaimRow, ("i3", INSTANCE))) is None


def test_claim_again_replaces_and_release_gives_back(db: Database) -> None:
    """The same claim twice counts once; a MOVE claim adds to the other host; releasing
    one kind, then all, brings the totals back to zero, as `recount` agrees."""
    for _ in range(2):
        assert db.transaction(lambda s: claim(s, "i", INSTANCE, "h1", SMALL, RATIOS))
    assert db.transaction(lambda s: claim(s, "i", MOVE, "h2", Usage(2, 100, 0)))
    assert (_used(db, "h1"), _used(db, "h2")) == ((1, 400, 1), (2, 100, 0))

    db.transaction(lambda s: release(s, "i", MOVE))
    assert (_used(db, "h1"), _used(db, "h2")) == ((1, 400, 1), (0, 0, 0))
    db.transaction(lambda s: release(s, "i"))
    db.transaction(lambda s: release(s, "i"))  # idempotent
    assert (_used(db, "h1"), _used(db, "h2")) == ((0, 0, 0), (0, 0, 0))
    assert db.transaction(lambda s: s.scalars(select(ClaimRow)).all()) == []
    assert db.transaction(recount) == 0
