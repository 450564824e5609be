"""key pairs get a `display_name` (Nova's and EC2's names, which need not be ids)

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-27 13:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("key_pairs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("display_name", sa.String(length=255), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("key_pairs", schema=None) as batch_op:
        batch_op.drop_column("display_name")
