"""operations keep where they came from: the method, request id and user that started them

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-26 19:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("operations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("method", sa.String(length=127), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("request_id", sa.String(length=128), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("requester", sa.String(length=63), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("operations", schema=None) as batch_op:
        batch_op.drop_column("requester")
        batch_op.drop_column("request_id")
        batch_op.drop_column("method")
