"""Placement: which host an instance goes to, claimed atomically.

Filters: the instance's zone, its pool if requested, KVM pools, hosts that are
ENABLED with a fresh heartbeat, a requested host (administrators), capacity
with the configured overcommit ratios, hosts already tried for this build, and
the server group's (anti-)affinity. Weigher: spread (most free memory) or pack
(least), with the soft group policies as a stronger preference.

The claim is the instance row's `host_id` plus its sizes: a host's usage is
the sum over the instances placed on it. `place` computes and writes the claim
in one transaction, locking the candidate host rows on PostgreSQL, so two
concurrent placements can never overcommit a host.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from kumo.compute.v1 import resources_pb2 as cpb
from kumo.server.config import Config
from kumo.server.db.base import utcnow
from kumo.server.db.models import HostRow, InstanceRow, PoolRow, RackRow, ServerGroupRow
from kumo.topology.v1 import resources_pb2 as tpb

# A candidate host: (id, vcpus, memory_mib, disk_gib).
Candidate = Row[str, int, int, int]


@dataclass(frozen=True)
class Usage:
    """What the instances placed on a host claim."""

    vcpus: int = 0
    memory_mib: int = 0
    disk_gib: int = 0


class NoValidHost(Exception):
    """No host passes every filter; the message says which filter emptied the list."""


def usage_by_host(session: Session, host_ids: Sequence[str]) -> dict[str, Usage]:
    """Claimed resources per host."""
    rows = session.execute(
        select(
            InstanceRow.host_id,
            func.sum(InstanceRow.vcpus),
            func.sum(InstanceRow.memory_mib),
            func.sum(InstanceRow.disk_gib),
        )
        .where(InstanceRow.host_id.in_(host_ids))
        .group_by(InstanceRow.host_id)
    )
    return {str(host): Usage(int(c or 0), int(m or 0), int(d or 0)) for host, c, m, d in rows}


def _group_hosts(session: Session, instance: InstanceRow) -> tuple[int, set[str]]:
    if instance.server_group_id is None:
        return 0, set()
    group = session.get(ServerGroupRow, (instance.project_id, instance.server_group_id))
    hosts = session.scalars(
        select(InstanceRow.host_id).where(
            InstanceRow.project_id == instance.project_id,
            InstanceRow.server_group_id == instance.server_group_id,
            InstanceRow.host_id.is_not(None),
            InstanceRow.uid != instance.uid,
        )
    )
    return (group.policy if group else 0), {h for h in hosts if h}


def place(
    session: Session,
    config: Config,
    instance: InstanceRow,
    sizes: Usage,
    excluded: set[str],
) -> str:
    """Chooses a host for `instance`, claims `sizes` there and returns the host id.

    Raises NoValidHost with the reason when no host qualifies.
    """
    settings = config.scheduler
    cutoff = utcnow() - timedelta(seconds=config.topology.heartbeat_timeout_seconds)
    # Plain columns, not ORM entities: no identity map, no joined rack/pool per host.
    query = (
        select(HostRow.id, HostRow.vcpus, HostRow.memory_mib, HostRow.disk_gib)
        .join(RackRow, HostRow.rack_id == RackRow.id)
        .join(PoolRow, RackRow.pool_id == PoolRow.id)
        .where(
            PoolRow.zone_id == instance.zone_id,
            PoolRow.hypervisor_kind == tpb.HYPERVISOR_KIND_KVM,
            HostRow.admin_state == tpb.Host.STATE_ENABLED,
            HostRow.last_heartbeat_time >= cutoff,
        )
        .order_by(HostRow.id)
    )
    if instance.pool_id:
        query = query.where(PoolRow.id == instance.pool_id)
    if instance.requested_host_id:
        query = query.where(HostRow.id == instance.requested_host_id)
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        query = query.with_for_update(of=HostRow.__table__)
    hosts = [h for h in session.execute(query) if h.id not in excluded]
    if not hosts:
        raise NoValidHost("no enabled, live KVM host in the requested zone/pool/host")
    used = usage_by_host(session, [h.id for h in hosts])

    def fits(host: Candidate) -> bool:
        have = used.get(host.id, Usage())
        return bool(
            have.vcpus + sizes.vcpus <= host.vcpus * settings.cpu_allocation_ratio
            and have.memory_mib + sizes.memory_mib
            <= host.memory_mib * settings.ram_allocation_ratio
            and have.disk_gib + sizes.disk_gib <= host.disk_gib * settings.disk_allocation_ratio
        )

    hosts = [h for h in hosts if fits(h)]
    if not hosts:
        raise NoValidHost("no host has enough free vCPUs, memory and disk")
    policy, peers = _group_hosts(session, instance)
    if policy == cpb.ServerGroup.POLICY_AFFINITY and peers:
        hosts = [h for h in hosts if h.id in peers]
    elif policy == cpb.ServerGroup.POLICY_ANTI_AFFINITY:
        hosts = [h for h in hosts if h.id not in peers]
    if not hosts:
        raise NoValidHost("the server group's policy leaves no host")

    def weight(host: Candidate) -> tuple[int, float]:
        free = (
            host.memory_mib * settings.ram_allocation_ratio - used.get(host.id, Usage()).memory_mib
        )
        preference = 0
        if policy == cpb.ServerGroup.POLICY_SOFT_AFFINITY:
            preference = 1 if host.id in peers else 0
        elif policy == cpb.ServerGroup.POLICY_SOFT_ANTI_AFFINITY:
            preference = 0 if host.id in peers else 1
        return preference, free if settings.weigher == "spread" else -free

    chosen = max(hosts, key=weight)
    instance.host_id = chosen.id
    instance.vcpus, instance.memory_mib, instance.disk_gib = (
        sizes.vcpus,
        sizes.memory_mib,
        sizes.disk_gib,
    )
    session.flush()
    return str(chosen.id)
