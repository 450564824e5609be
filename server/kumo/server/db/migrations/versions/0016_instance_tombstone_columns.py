"""instance tombstone columns for listing

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-26 06:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kumo.server.db.base

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("display_name", "labels", "flavor_id", "pool_id", "create_time")


def upgrade() -> None:
    # Tombstones only keep deleted instances readable for a while: those written before
    # these columns existed are dropped rather than given made-up values.
    op.execute(sa.text("DELETE FROM instance_tombstones"))
    with op.batch_alter_table("instance_tombstones", schema=None) as batch_op:
        batch_op.add_column(sa.Column("display_name", sa.String(length=63), nullable=False))
        batch_op.add_column(sa.Column("labels", sa.JSON(), nullable=False))
        batch_op.add_column(sa.Column("flavor_id", sa.String(length=63), nullable=False))
        batch_op.add_column(sa.Column("pool_id", sa.String(length=63), nullable=True))
        batch_op.add_column(
            sa.Column("create_time", kumo.server.db.base.UTCDateTime(timezone=True), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("instance_tombstones", schema=None) as batch_op:
        for column in reversed(_COLUMNS):
            batch_op.drop_column(column)
