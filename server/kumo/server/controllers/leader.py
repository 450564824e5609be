"""Leader leases: one process at a time runs a singleton controller.

`LeaderLease(db, name).hold()` takes or renews the lease row `name` for this
process for `ttl` seconds and says whether it holds it. Taking succeeds when the
row is free, expired or already ours; it is one conditional UPDATE (or an INSERT
for a new name), so two replicas can never both win. A holder that stops renewing
(crashed, partitioned) loses the lease when it expires.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kumo.server.db.base import utcnow
from kumo.server.db.engine import Database
from kumo.server.db.models import LeaderLeaseRow


class LeaderLease:
    """A named lease this process competes for."""

    def __init__(self, db: Database, name: str, ttl_seconds: float, owner: str = "") -> None:
        self.db = db
        self.name = name
        self.ttl = timedelta(seconds=ttl_seconds)
        self.owner = owner or uuid.uuid4().hex

    def _hold(self, session: Session) -> bool:
        now = utcnow()
        taken = session.execute(
            update(LeaderLeaseRow)
            .where(
                LeaderLeaseRow.name == self.name,
                or_(LeaderLeaseRow.owner == self.owner, LeaderLeaseRow.expire_time < now),
            )
            .values(owner=self.owner, expire_time=now + self.ttl)
        ).rowcount  # type: ignore[attr-defined]
        if taken:
            return True
        if session.get(LeaderLeaseRow, self.name) is not None:
            return False
        try:
            with session.begin_nested():
                session.add(
                    LeaderLeaseRow(name=self.name, owner=self.owner, expire_time=now + self.ttl)
                )
        except IntegrityError:
            return False  # another replica created it first
        return True

    async def hold(self) -> bool:
        """Takes or renews the lease; returns whether this process holds it."""
        return await self.db.run(self._hold)

    async def release(self) -> None:
        """Gives the lease up (if held) so another replica can take it at once."""

        def give_up(session: Session) -> None:
            session.execute(
                update(LeaderLeaseRow)
                .where(LeaderLeaseRow.name == self.name, LeaderLeaseRow.owner == self.owner)
                .values(expire_time=utcnow() - timedelta(seconds=1))
            )

        await self.db.run(give_up)
