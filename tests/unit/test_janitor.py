"""Unit test of the janitor's sweep on a real SQLite database."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from kumo.server.controllers.janitor import IDEMPOTENCY_WINDOW, sweep
from kumo.server.db.base import utcnow
from kumo.server.db.engine import Database
from kumo.server.db.migrate import upgrade
from kumo.server.db.models import IdempotencyRow, RevokedTokenRow


def test_sweep_removes_only_expired_records(tmp_path: Path) -> None:
    """Expired revocations and old request ids go; current ones stay."""
    db = Database(f"sqlite:///{tmp_path}/j.db")
    upgrade(db.engine)
    now = utcnow()

    def seed(session: object) -> None:
        session.add_all(  # type: ignore[attr-defined]
            [
                RevokedTokenRow(token_id="old", expire_time=now - timedelta(seconds=1)),
                RevokedTokenRow(token_id="live", expire_time=now + timedelta(hours=1)),
                IdempotencyRow(
                    user_id="u",
                    request_id="a",
                    method="m",
                    request_hash="h",
                    response=b"",
                    create_time=now - IDEMPOTENCY_WINDOW - timedelta(minutes=1),
                ),
                IdempotencyRow(
                    user_id="u", request_id="b", method="m", request_hash="h", response=b""
                ),
            ]
        )

    db.transaction(seed)
    assert db.transaction(sweep) == 2
    assert (
        db.transaction(lambda s: s.scalar(select(func.count()).select_from(RevokedTokenRow))) == 1
    )
    assert db.transaction(lambda s: s.scalar(select(IdempotencyRow.request_id))) == "b"
