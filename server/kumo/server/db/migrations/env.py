"""Alembic environment: runs migrations on the engine handed in by kumo.server.db.migrate."""

from alembic import context

from kumo.server.db.base import Base
from kumo.server.db.models import __all__ as _models  # noqa: F401  (fills Base.metadata)

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=engine.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()
