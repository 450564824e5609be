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

import functools
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import ColumnElement, Float, Select, bindparam, case, select
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


@dataclass(frozen=True)
class _Shape:
    """What the placement query of one instance looks like; its values are parameters."""

    pool: bool  # the instance asks for a pool
    host: bool  # one host is asked for
    excluded: bool  # hosts already tried
    policy: int  # the server group's policy, 0 when it has no other member placed
    spread: bool  # the weigher: spread (most free memory first) or pack


def _hosts(*conditions: ColumnElement[bool]) -> Select[str]:
    return (
        select(HostRow.id)
        .join(RackRow, HostRow.rack_id == RackRow.id)
        .join(PoolRow, RackRow.pool_id == PoolRow.id)
        .where(*conditions)
    )


def _filters(
    shape: _Shape,
) -> tuple[list[ColumnElement[bool]], list[ColumnElement[bool]], list[ColumnElement[bool]]]:
    """The live, room and group filters of `shape`, over bound parameters."""
    live = [
        PoolRow.zone_id == bindparam("zone"),
        PoolRow.hypervisor_kind == tpb.HYPERVISOR_KIND_KVM,
        HostRow.admin_state == tpb.Host.STATE_ENABLED,
        HostRow.last_heartbeat_time >= bindparam("cutoff"),
    ]
    if shape.pool:
        live.append(PoolRow.id == bindparam("pool"))
    if shape.host:
        live.append(HostRow.id == bindparam("host"))
    if shape.excluded:
        live.append(HostRow.id.not_in(bindparam("excluded", expanding=True)))
    vcpu_ratio, memory_ratio, disk_ratio = (
        bindparam(name, type_=Float) for name in ("vcpu_ratio", "memory_ratio", "disk_ratio")
    )
    room = [
        HostRow.used_vcpus + bindparam("vcpus") <= HostRow.vcpus * vcpu_ratio,
        HostRow.used_memory_mib + bindparam("memory") <= HostRow.memory_mib * memory_ratio,
        HostRow.used_disk_gib + bindparam("disk") <= HostRow.disk_gib * disk_ratio,
    ]
    grouped: list[ColumnElement[bool]] = []
    if shape.policy == cpb.ServerGroup.POLICY_AFFINITY:
        grouped.append(HostRow.id.in_(bindparam("peers", expanding=True)))
    elif shape.policy == cpb.ServerGroup.POLICY_ANTI_AFFINITY:
        grouped.append(HostRow.id.not_in(bindparam("peers", expanding=True)))
    return live, room, grouped


@functools.cache
def _best_hosts(shape: _Shape) -> Select[str]:
    """The query of the best CANDIDATES hosts for `shape`, built once per shape (docs/
    decisions.md, "Statements built once")."""
    live, room, grouped = _filters(shape)
    free = HostRow.memory_mib * bindparam("memory_ratio", type_=Float) - HostRow.used_memory_mib
    order = [free.desc() if shape.spread else free.asc(), HostRow.id]
    soft = (cpb.ServerGroup.POLICY_SOFT_AFFINITY, cpb.ServerGroup.POLICY_SOFT_ANTI_AFFINITY)
    if shape.policy in soft:
        among = case((HostRow.id.in_(bindparam("peers", expanding=True)), 1), else_=0)
        order.insert(0, among.desc() if shape.policy == soft[0] else among)
    return _hosts(*live, *room, *grouped).order_by(*order).limit(CANDIDATES)


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
    wanted = requested_host or (instance.requested_host_id if kind == INSTANCE else None)
    policy, peers = _group_hosts(session, instance)
    shape = _Shape(
        pool=bool(instance.pool_id),
        host=bool(wanted),
        excluded=bool(excluded),
        policy=policy if peers else 0,
        spread=config.scheduler.weigher == "spread",
    )
    values = {
        "zone": instance.zone_id,
        "cutoff": utcnow() - timedelta(seconds=config.topology.heartbeat_timeout_seconds),
        "pool": instance.pool_id,
        "host": wanted,
        "excluded": sorted(excluded),
        "peers": sorted(peers),
        "vcpus": sizes.vcpus,
        "memory": sizes.memory_mib,
        "disk": sizes.disk_gib,
        "vcpu_ratio": limits.vcpus,
        "memory_ratio": limits.memory,
        "disk_ratio": limits.disk,
    }
    for host_id in session.scalars(_best_hosts(shape), values).all():
        if claim(session, instance.uid, kind, host_id, sizes, limits):
            return str(host_id)
    live, room, grouped = _filters(shape)
    if session.scalar(_hosts(*live).limit(1), values) is None:
        raise NoValidHost("no enabled, live KVM host in the requested zone/pool/host")
    if session.scalar(_hosts(*live, *room).limit(1), values) is None:
        raise NoValidHost("no host has enough free vCPUs, memory and disk")
    if session.scalar(_hosts(*live, *room, *grouped).limit(1), values) is None:
        raise NoValidHost("the server group's policy leaves no host")
    raise NoValidHost("concurrent placements took the room on every fitting host")
