"""ports record the instance interface they are (instance_uid, interface_index,
delete_with_instance)

Until now an instance's interfaces were the ports whose id was `nic<index>-<instance uid>`
(made by Kumo with the instance). Existing ones get those columns from their ids; ports
adopted by an instance (AttachNetworkInterface or CreateInstance with an existing port)
keep their own ids and are found by the columns.

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-26 21:40:00.000000
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MADE = re.compile(r"nic(\d+)-(.+)")


def upgrade() -> None:
    with op.batch_alter_table("ports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("instance_uid", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("interface_index", sa.SmallInteger(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "delete_with_instance", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
    ports = sa.table(
        "ports",
        sa.column("project_id", sa.String),
        sa.column("id", sa.String),
        sa.column("device_owner", sa.String),
        sa.column("instance_uid", sa.String),
        sa.column("interface_index", sa.SmallInteger),
        sa.column("delete_with_instance", sa.Boolean),
    )
    connection = op.get_bind()
    made = connection.execute(
        sa.select(ports.c.project_id, ports.c.id).where(ports.c.device_owner == "compute:instance")
    ).all()
    for project_id, port_id in made:
        match = _MADE.fullmatch(port_id)
        if match is None:
            continue
        connection.execute(
            sa.update(ports)
            .where(ports.c.project_id == project_id, ports.c.id == port_id)
            .values(
                instance_uid=match.group(2),
                interface_index=int(match.group(1)),
                delete_with_instance=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("ports", schema=None) as batch_op:
        batch_op.drop_column("delete_with_instance")
        batch_op.drop_column("interface_index")
        batch_op.drop_column("instance_uid")
