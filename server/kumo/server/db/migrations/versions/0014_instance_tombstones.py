"""instance tombstones

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-26 06:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kumo.server.db.base

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "instance_tombstones",
        sa.Column("uid", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=63), nullable=False),
        sa.Column("zone_id", sa.String(length=63), nullable=False),
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("deleted_at", kumo.server.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("instance", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_instance_tombstones_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("uid", name=op.f("pk_instance_tombstones")),
    )
    op.create_index(
        "ix_instance_tombstones_name", "instance_tombstones", ["project_id", "zone_id", "id"]
    )
    op.create_index("ix_instance_tombstones_deleted_at", "instance_tombstones", ["deleted_at"])


def downgrade() -> None:
    op.drop_index("ix_instance_tombstones_deleted_at", table_name="instance_tombstones")
    op.drop_index("ix_instance_tombstones_name", table_name="instance_tombstones")
    op.drop_table("instance_tombstones")
