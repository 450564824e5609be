"""instance tombstones keep the image, hostname and key pairs that ListInstances filters on

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-27 13:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEXT = ("image_project_id", "image_id", "hostname")


def upgrade() -> None:
    with op.batch_alter_table("instance_tombstones", schema=None) as batch_op:
        for name in _TEXT:
            batch_op.add_column(
                sa.Column(name, sa.String(length=63), nullable=False, server_default="")
            )
        batch_op.add_column(sa.Column("key_pairs", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("instance_tombstones", schema=None) as batch_op:
        for name in (*_TEXT, "key_pairs"):
            batch_op.drop_column(name)
