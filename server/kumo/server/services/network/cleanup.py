"""Project deletion: every networking record of the project, in one transaction.

The project's floating IPs, ports (router interfaces included) and routers give
their addresses back, then its subnets, networks and security groups go. OVN is
left to the network reconciler, which removes what no longer has a record.
Idempotent (a second run finds nothing). Fails (the deletion's operation with it)
if another project still uses one of the project's external networks.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kumo.server.db.models import (
    FloatingIpRow,
    NetworkRow,
    PortRow,
    RouterRow,
    SecurityGroupRow,
    SubnetRow,
)
from kumo.server.network import ipam
from kumo.server.operations.handlers import OperationContext


def delete_project_networking(session: Session, project_id: str) -> None:
    """Deletes every networking record of `project_id` and frees its addresses."""
    holders: tuple[type[FloatingIpRow] | type[PortRow] | type[RouterRow], ...] = (
        FloatingIpRow,
        PortRow,
        RouterRow,
    )
    for holder in holders:
        for uid in list(session.scalars(select(holder.uid).where(holder.project_id == project_id))):
            ipam.release(session, uid)
        session.execute(delete(holder).where(holder.project_id == project_id))
    records: tuple[type[SubnetRow] | type[NetworkRow] | type[SecurityGroupRow], ...] = (
        SubnetRow,
        NetworkRow,
        SecurityGroupRow,
    )
    for record in records:
        session.execute(delete(record).where(record.project_id == project_id))


async def cleanup_project(ctx: OperationContext, project_id: str) -> None:
    """The DeleteProject hook (resumable)."""
    await ctx.checkpoint(5, "deleting networks")
    await ctx.db.run(lambda s: delete_project_networking(s, project_id))
