"""Alembic migrations, driven from code (no alembic.ini).

`upgrade(db)` brings a database to the newest schema; it is idempotent. The
migration scripts live in `kumo/server/db/migrations/versions/`.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> AlembicConfig:
    """An Alembic config whose env.py uses `engine`."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Applies every migration up to `revision`. Idempotent."""
    command.upgrade(alembic_config(engine), revision)
