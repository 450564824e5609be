"""Leader leases: one holder at a time, renewal, release and take-over after expiry."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from kumo.server.controllers.leader import LeaderLease
from kumo.server.db.engine import Database
from kumo.server.db.migrate import upgrade


def test_one_holder_at_a_time(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/lease.db")
    upgrade(db.engine)
    first, second = LeaderLease(db, "x", 0.5), LeaderLease(db, "x", 0.5)
    other_name = LeaderLease(db, "y", 0.5)

    async def scenario() -> None:
        assert await first.hold()
        assert not await second.hold()
        assert await first.hold()  # renewal
        assert await other_name.hold()  # names are independent
        await first.release()
        assert await second.hold()  # released: taken at once
        assert not await first.hold()
        time.sleep(0.6)  # second stops renewing: its lease expires
        assert await first.hold()

    try:
        asyncio.run(scenario())
    finally:
        db.close()
