"""claims, resize and live migration

Host usage moves from a sum over instances to claim rows plus per-host totals;
existing placements become INSTANCE claims. Instances get resize and migration
records; operations a progress detail.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 12:41:29.903117
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "claims",
        sa.Column("instance_uid", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("host_id", sa.String(length=63), nullable=False),
        sa.Column("vcpus", sa.Integer(), nullable=False),
        sa.Column("memory_mib", sa.BigInteger(), nullable=False),
        sa.Column("disk_gib", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["host_id"], ["hosts.id"], name=op.f("fk_claims_host_id_hosts")),
        sa.PrimaryKeyConstraint("instance_uid", "kind", name=op.f("pk_claims")),
    )
    with op.batch_alter_table("claims", schema=None) as batch_op:
        batch_op.create_index("ix_claims_host", ["host_id"], unique=False)

    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("used_vcpus", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("used_memory_mib", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("used_disk_gib", sa.BigInteger(), nullable=False, server_default="0")
        )

    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("resize_serial", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("resize_from", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column("observed_resize_serial", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("migration_host_id", sa.String(length=63), nullable=True))
        batch_op.add_column(
            sa.Column("migration_serial", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("migration", sa.JSON(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_instances_migration_host_id"), ["migration_host_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_instances_migration_host_id_hosts"),
            "hosts",
            ["migration_host_id"],
            ["id"],
        )

    with op.batch_alter_table("operations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("detail", sa.LargeBinary(), nullable=True))

    op.execute(
        "INSERT INTO claims (instance_uid, kind, host_id, vcpus, memory_mib, disk_gib) "
        "SELECT uid, 'instance', host_id, vcpus, memory_mib, disk_gib "
        "FROM instances WHERE host_id IS NOT NULL"
    )
    for column in ("vcpus", "memory_mib", "disk_gib"):
        op.execute(
            f"UPDATE hosts SET used_{column} = COALESCE("
            f"(SELECT SUM(c.{column}) FROM claims c WHERE c.host_id = hosts.id), 0)"
        )


def downgrade() -> None:
    with op.batch_alter_table("operations", schema=None) as batch_op:
        batch_op.drop_column("detail")

    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_instances_migration_host_id_hosts"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_instances_migration_host_id"))
        batch_op.drop_column("migration")
        batch_op.drop_column("migration_serial")
        batch_op.drop_column("migration_host_id")
        batch_op.drop_column("observed_resize_serial")
        batch_op.drop_column("resize_from")
        batch_op.drop_column("resize_serial")

    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.drop_column("used_disk_gib")
        batch_op.drop_column("used_memory_mib")
        batch_op.drop_column("used_vcpus")

    with op.batch_alter_table("claims", schema=None) as batch_op:
        batch_op.drop_index("ix_claims_host")

    op.drop_table("claims")
