"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from kumo.server.db.base import Base
from kumo.server.db.engine import Database
from kumo.server.db.migrate import upgrade


def test_migrations_match_the_models(tmp_path: Path) -> None:
    """No difference between `upgrade head` and the models (a missing migration fails here)."""
    db = Database(f"sqlite:///{tmp_path}/m.db")
    upgrade(db.engine)
    upgrade(db.engine)  # idempotent
    with db.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
