"""Placement: which host an instance goes to, claimed atomically.

Filters: the instance's zone, its pool if requested, KVM pools, hosts that are
ENABLED with a fresh heartbeat, a requested host (administrators), capacity
with the configured overcommit ratios, hosts already tried for this build, and
the server group's (anti-)affinity. Weigher: spread (most free memory) or pack
(least), with the soft group policies as a stronger preference.

Filters and weigher are one query over the hosts' claim totals (`claims.py`),
which returns the best few; the first is claimed with a conditional UPDATE,
and if a concurrent placement took the room first, the next. No host row is
locked while choosing, so placements on different hosts do not wait for each
other.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import ColumnElement, Select, case, literal, select
from sqlalchemy.orm import Session

from kumo.compute.v1 import resources_pb2 as cpb
from kumo.server.config import Config
from kumo.server.controllers.claims import INSTANCE, Ratios, Usage, claim, on_host
from kumo.server.db.base import utcnow
from kumo.server.db.models import HostRow, InstanceRow, PoolRow, RackRow, ServerGroupRow
from kumo.topology.v1 import resources_pb2 as tpb

# How many of the best hosts one placement tries before it gives up (each try is a
# conditional UPDATE that fails only if a concurrent placement took the room).
CANDIDATES = 8


class NoValidHost(Exception):
    """No host passes every filter; the message says which filter emptied the list."""


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


def ratios(config: Config) -> Ratios:
    """The configured overcommit ratios."""
    settings = config.scheduler
    return Ratios(
        settings.cpu_allocation_ratio, settings.ram_allocation_ratio, settings.disk_allocation_ratio
    )


def place(
    session: Session,
    config: Config,
    instance: InstanceRow,
    sizes: Usage,
    excluded: set[str],
    kind: str = INSTANCE,
    requested_host: str | None = None,
) -> str:
    """Chooses a host for `instance`, claims `sizes` there (a claim of `kind`) and
    returns the host id. The instance row is not changed. Only `requested_host` (else
    the instance's own requested host, for an INSTANCE claim) is considered if given.

    Filters, group policy and weigher run in the database: one query returns the
    best few hosts, tried in order. Raises NoValidHost with the reason (which filter
    emptied the list) when no host qualifies.
    """
    limits = ratios(config)
    sizes = on_host(instance, sizes)
    cutoff = utcnow() - timedelta(seconds=config.topology.heartbeat_timeout_seconds)
    live = [
        PoolRow.zone_id == instance.zone_id,
        PoolRow.hypervisor_kind == tpb.HYPERVISOR_KIND_KVM,
        HostRow.admin_state == tpb.Host.STATE_ENABLED,
        HostRow.last_heartbeat_time >= cutoff,
    ]
    if instance.pool_id:
        live.append(PoolRow.id == instance.pool_id)
    wanted = requested_host or (instance.requested_host_id if kind == INSTANCE else None)
    if wanted:
        live.append(HostRow.id == wanted)
    if excluded:
        live.append(HostRow.id.not_in(excluded))
    room = [
        HostRow.used_vcpus + sizes.vcpus <= HostRow.vcpus * limits.vcpus,
        HostRow.used_memory_mib + sizes.memory_mib <= HostRow.memory_mib * limits.memory,
        HostRow.used_disk_gib + sizes.disk_gib <= HostRow.disk_gib * limits.disk,
    ]
    policy, peers = _group_hosts(session, instance)
    grouped: list[ColumnElement[bool]] = []
    if policy == cpb.ServerGroup.POLICY_AFFINITY and peers:
        grouped.append(HostRow.id.in_(peers))
    elif policy == cpb.ServerGroup.POLICY_ANTI_AFFINITY and peers:
        grouped.append(HostRow.id.not_in(peers))
    free = HostRow.memory_mib * limits.memory - HostRow.used_memory_mib
    weight = free.desc() if config.scheduler.weigher == "spread" else free.asc()
    order = [weight, HostRow.id]
    if policy in (cpb.ServerGroup.POLICY_SOFT_AFFINITY, cpb.ServerGroup.POLICY_SOFT_ANTI_AFFINITY):
        among = case((HostRow.id.in_(peers), 1), else_=0) if peers else literal(0)
        preferred = among.desc() if policy == cpb.ServerGroup.POLICY_SOFT_AFFINITY else among
        order.insert(0, preferred)

    def hosts(*conditions: ColumnElement[bool]) -> Select[str]:
        return (
            select(HostRow.id)
            .join(RackRow, HostRow.rack_id == RackRow.id)
            .join(PoolRow, RackRow.pool_id == PoolRow.id)
            .where(*conditions)
        )

    best = session.scalars(hosts(*live, *room, *grouped).order_by(*order).limit(CANDIDATES))
    for host_id in best.all():
        if claim(session, instance.uid, kind, host_id, sizes, limits):
            return str(host_id)
    if session.scalar(hosts(*live).limit(1)) is None:
        raise NoValidHost("no enabled, live KVM host in the requested zone/pool/host")
    if session.scalar(hosts(*live, *room).limit(1)) is None:
        raise NoValidHost("no host has enough free vCPUs, memory and disk")
    if session.scalar(hosts(*live, *room, *grouped).limit(1)) is None:
        raise NoValidHost("the server group's policy leaves no host")
    raise NoValidHost("concurrent placements took the room on every fitting host")
