"""Claims: the resources each instance holds on a host, and each host's totals.

A claim is a `ClaimRow` (instance uid, kind, host, sizes); a host's `used_*`
columns are the sums of its claims and change in the same transaction as the
claims, so reading a host's free capacity is one row, not a sum over its
instances. Kinds: INSTANCE (where the guest is) and MOVE (the extra claim while
it migrates or is resized, so that both sides are accounted until the move is
confirmed or undone). An instance whose root disk is not on its host (a boot volume,
a root disk in Ceph) claims no host disk (`on_host`).

`claim` with limits is a conditional UPDATE (`... WHERE used + asked <= limit`):
two transactions claiming the last room on a host cannot both succeed, on
SQLite (one writer) and on PostgreSQL (the row lock orders them; the loser
re-checks the condition and updates nothing). `recount` rebuilds the totals from
the claims (the janitor's safety net).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Float, Update, bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from kumo.server.db.engine import core
from kumo.server.db.models import ClaimRow, HostRow, InstanceRow

INSTANCE = "instance"
MOVE = "move"


@dataclass(frozen=True)
class Usage:
    """vCPUs, memory and disk."""

    vcpus: int = 0
    memory_mib: int = 0
    disk_gib: int = 0

    def grown_by(self, other: Usage) -> Usage:
        """What `other` needs beyond self, per resource (never negative)."""
        return Usage(
            max(other.vcpus - self.vcpus, 0),
            max(other.memory_mib - self.memory_mib, 0),
            max(other.disk_gib - self.disk_gib, 0),
        )

    def larger(self, other: Usage) -> Usage:
        """The larger of both, per resource."""
        return Usage(
            max(self.vcpus, other.vcpus),
            max(self.memory_mib, other.memory_mib),
            max(self.disk_gib, other.disk_gib),
        )


@dataclass(frozen=True)
class Ratios:
    """Overcommit ratios: a host offers its capacity times the ratio."""

    vcpus: float
    memory: float
    disk: float


def _totals_change(limited: bool) -> Update:
    statement = (
        update(HostRow)
        .where(HostRow.id == bindparam("host"))
        .values(
            used_vcpus=HostRow.used_vcpus + bindparam("more_vcpus"),
            used_memory_mib=HostRow.used_memory_mib + bindparam("more_memory"),
            used_disk_gib=HostRow.used_disk_gib + bindparam("more_disk"),
        )
    )
    if limited:  # (the ratios are floats: typed, or they would be cast to integers)
        vcpu_ratio, memory_ratio, disk_ratio = (
            bindparam(name, type_=Float) for name in ("vcpu_ratio", "memory_ratio", "disk_ratio")
        )
        statement = statement.where(
            HostRow.used_vcpus + bindparam("more_vcpus") <= HostRow.vcpus * vcpu_ratio,
            HostRow.used_memory_mib + bindparam("more_memory") <= HostRow.memory_mib * memory_ratio,
            HostRow.used_disk_gib + bindparam("more_disk") <= HostRow.disk_gib * disk_ratio,
        )
    return statement


# Built once (docs/decisions.md, "Statements built once"): placement runs them for every build.
_ADD_UNDER_LIMITS = _totals_change(limited=True)
_ADD = _totals_change(limited=False)
_INSERT = insert(ClaimRow)
_DELETE = (
    delete(ClaimRow)
    .where(ClaimRow.instance_uid == bindparam("uid"))
    .returning(ClaimRow.host_id, ClaimRow.vcpus, ClaimRow.memory_mib, ClaimRow.disk_gib)
)
_DELETE_KIND = _DELETE.where(ClaimRow.kind == bindparam("kind"))


def _change_totals(
    session: Session, host_id: str, usage: Usage, sign: int, limits: Ratios | None
) -> bool:
    values: dict[str, object] = {
        "host": host_id,
        "more_vcpus": sign * usage.vcpus,
        "more_memory": sign * usage.memory_mib,
        "more_disk": sign * usage.disk_gib,
    }
    if limits is None:
        return bool(core(session).execute(_ADD, values).rowcount)
    values.update(vcpu_ratio=limits.vcpus, memory_ratio=limits.memory, disk_ratio=limits.disk)
    return bool(core(session).execute(_ADD_UNDER_LIMITS, values).rowcount)


def claim(
    session: Session,
    instance_uid: str,
    kind: str,
    host_id: str,
    usage: Usage,
    limits: Ratios | None = None,
) -> bool:
    """Records `usage` of `instance_uid` on `host_id` as a claim of `kind`.

    With `limits`, only if the host still has room under its overcommit ratios;
    returns False (and changes nothing) if not. Replaces an existing claim of the
    same kind (releasing it first), so it is idempotent for equal arguments.
    """
    release(session, instance_uid, kind)
    if not _change_totals(session, host_id, usage, +1, limits):
        return False
    core(session).execute(
        _INSERT,
        {
            "instance_uid": instance_uid,
            "kind": kind,
            "host_id": host_id,
            "vcpus": usage.vcpus,
            "memory_mib": usage.memory_mib,
            "disk_gib": usage.disk_gib,
        },
    )
    return True


def on_host(instance: InstanceRow, usage: Usage) -> Usage:
    """What of `usage` (sizes of the instance's flavor) the instance takes on its host: no
    disk when its root disk is not on the host (a boot volume, or a root disk in Ceph),
    as Nova asks no DISK_GB of a volume-backed server."""
    if instance.boot_volume_id is None and instance.root_disk is None:
        return usage
    return Usage(usage.vcpus, usage.memory_mib, 0)


def claim_for(
    session: Session,
    instance: InstanceRow,
    kind: str,
    host_id: str,
    usage: Usage,
    limits: Ratios | None = None,
) -> bool:
    """`claim` of what of `usage` the instance takes on its host (`on_host`)."""
    return claim(session, instance.uid, kind, host_id, on_host(instance, usage), limits)


def release(session: Session, instance_uid: str, kind: str | None = None) -> None:
    """Drops the instance's claim of `kind` (every claim when None) and takes it off its
    host's totals, in one DELETE ... RETURNING. Idempotent."""
    statement = _DELETE if kind is None else _DELETE_KIND
    values = {"uid": instance_uid, "kind": kind}
    for host_id, vcpus, memory_mib, disk_gib in core(session).execute(statement, values).all():
        _change_totals(session, host_id, Usage(vcpus, memory_mib, disk_gib), -1, None)


def recount(session: Session) -> int:
    """Sets every host's totals to the sums of its claims; returns how many hosts were
    wrong. Locks the host rows first (PostgreSQL), so no claim lands in between."""
    hosts = select(HostRow).order_by(HostRow.id)
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        hosts = hosts.with_for_update()
    rows = session.scalars(hosts).all()
    sums = {
        host: Usage(int(c), int(m), int(d))
        for host, c, m, d in session.execute(
            select(
                ClaimRow.host_id,
                func.sum(ClaimRow.vcpus),
                func.sum(ClaimRow.memory_mib),
                func.sum(ClaimRow.disk_gib),
            ).group_by(ClaimRow.host_id)
        )
    }
    wrong = 0
    for host in rows:
        want = sums.get(host.id, Usage())
        if (host.used_vcpus, host.used_memory_mib, host.used_disk_gib) != (
            want.vcpus,
            want.memory_mib,
            want.disk_gib,
        ):
            wrong += 1
            host.used_vcpus, host.used_memory_mib, host.used_disk_gib = (
                want.vcpus,
                want.memory_mib,
                want.disk_gib,
            )
    return wrong
