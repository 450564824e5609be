"""volumes attached at boot may go with their instance (AttachedVolume.delete_with_instance)

The flag moves to the attachment: an instance made with `delete_boot_volume` gets it on its
boot volume's attachment (the instances' column stays: Instance.delete_boot_volume shows it).

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-26 12:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("volume_attachments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "delete_with_instance", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
    op.execute(
        "UPDATE volume_attachments SET delete_with_instance = true WHERE EXISTS ("
        "SELECT 1 FROM instances i WHERE i.project_id = volume_attachments.project_id"
        " AND i.zone_id = volume_attachments.zone_id"
        " AND i.id = volume_attachments.instance_id"
        " AND i.boot_volume_id = volume_attachments.volume_id AND i.delete_boot_volume)"
    )


def downgrade() -> None:
    with op.batch_alter_table("volume_attachments", schema=None) as batch_op:
        batch_op.drop_column("delete_with_instance")
