"""floating IPs indexed by the port they map to (project_id, port_id)

Every read of instances outer-joins their ports' floating IPs by (project, port id);
without the index that join scans the whole table.

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-26 22:20:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_floating_ips_port", "floating_ips", ["project_id", "port_id"])


def downgrade() -> None:
    op.drop_index("ix_floating_ips_port", table_name="floating_ips")
