"""Removes records that have outlived their purpose.

Revoked-token entries go once the token would have expired anyway; request-id
records (AIP-155) after `IDEMPOTENCY_WINDOW`. Hosts' claim totals are recounted
from the claims (a mismatch, which only a bug could cause, is logged and fixed).
Runs at start and then every `INTERVAL`; both are idempotent, so several
replicas may run them at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from kumo.server.controllers import claims
from kumo.server.db.base import utcnow
from kumo.server.db.engine import Database
from kumo.server.db.models import IdempotencyRow, RevokedTokenRow

log = logging.getLogger(__name__)

IDEMPOTENCY_WINDOW = timedelta(hours=24)
INTERVAL_SECONDS = 600.0


def sweep(session: Session) -> int:
    """Deletes expired records; returns how many."""
    now = utcnow()
    removed = session.execute(delete(RevokedTokenRow).where(RevokedTokenRow.expire_time < now))
    stale = session.execute(
        delete(IdempotencyRow).where(IdempotencyRow.create_time < now - IDEMPOTENCY_WINDOW)
    )
    wrong = claims.recount(session)
    if wrong:
        log.warning("fixed the claim totals of %d host(s)", wrong)
    return int(removed.rowcount + stale.rowcount)  # type: ignore[attr-defined]


class Janitor:
    """The periodic sweep as an asyncio task."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Starts sweeping. Idempotent."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="kumo-janitor")

    async def stop(self) -> None:
        """Stops sweeping. Idempotent."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                if count := await self._db.run(sweep):
                    log.info("janitor removed %d expired records", count)
            except Exception:
                log.exception("janitor sweep failed; retrying later")
            await asyncio.sleep(INTERVAL_SECONDS)
