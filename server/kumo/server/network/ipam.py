"""IP address management in Kumo's database, transactional.

An address is held by one row of `ip_allocations` keyed by (subnet uid,
address): the primary key makes it impossible for two owners to hold the same
address, whatever the concurrency. Allocation picks the lowest free address
of the subnet's pools and inserts it inside a savepoint; if a concurrent
transaction took it first (IntegrityError), it tries the next one. All writes
join the caller's transaction: a failed create leaves nothing behind.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kumo.server.db.models import IpAllocationRow, SubnetRow
from kumo.server.errors import FailedPrecondition, FieldViolation, InvalidArgument

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Addresses tried per allocation before giving up on a subnet under heavy contention.
_MAX_TRIES = 64


@dataclass(frozen=True)
class Pool:
    """A range of addresses of one IP version, both ends included (as integers)."""

    start: int
    end: int
    version: int

    @classmethod
    def of(cls, start: IpAddress, end: IpAddress) -> Pool:
        """A pool between two addresses; InvalidArgument if their versions differ."""
        if start.version != end.version:
            raise InvalidArgument.field("subnet.allocation_pools", f"{start}-{end}: mixed versions")
        return cls(int(start), int(end), start.version)

    def text(self, value: int) -> str:
        """An address of this pool's version as text."""
        return text(value, self.version)

    def __str__(self) -> str:
        return f"{self.text(self.start)}-{self.text(self.end)}"


def text(value: int, version: int) -> str:
    """An address given as an integer, as text."""
    return str(ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value))


def parse_cidr(field: str, text: str) -> IpNetwork:
    """A network from `text` in strict CIDR form; InvalidArgument naming `field`."""
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise InvalidArgument.field(field, f"not a network in CIDR form: {exc}") from exc


def parse_address(field: str, text: str) -> IpAddress:
    """An address from `text`; InvalidArgument naming `field`."""
    try:
        return ipaddress.ip_address(text)
    except ValueError as exc:
        raise InvalidArgument.field(field, "not an IP address") from exc


def host_range(network: IpNetwork) -> tuple[int, int]:
    """First and last usable host address (IPv4 skips network and broadcast)."""
    first, last = int(network.network_address), int(network.broadcast_address)
    if network.version == 4 and network.prefixlen < 31:
        return first + 1, last - 1
    if network.version == 6:
        return first + 1, last
    return first, last


def default_pools(network: IpNetwork, gateway: IpAddress | None) -> list[Pool]:
    """The host range less the gateway."""
    first, last = host_range(network)
    version = network.version
    gw = int(gateway) if gateway is not None else None
    if gw is None or not first <= gw <= last:
        return [Pool(first, last, version)]
    pools = []
    if gw > first:
        pools.append(Pool(first, gw - 1, version))
    if gw < last:
        pools.append(Pool(gw + 1, last, version))
    return pools


def check_pools(network: IpNetwork, gateway: IpAddress | None, pools: Sequence[Pool]) -> None:
    """InvalidArgument unless every pool lies in the network's host range, pools do not
    overlap, and none holds the gateway."""
    violations: list[FieldViolation] = []
    first, last = host_range(network)
    gw = int(gateway) if gateway is not None else None
    ordered = sorted(pools, key=lambda p: p.start)
    field = "subnet.allocation_pools"
    for i, pool in enumerate(ordered):
        if pool.version != network.version:
            violations.append(FieldViolation(field, f"{pool}: wrong IP version"))
            continue
        if not first <= pool.start <= pool.end <= last:
            violations.append(FieldViolation(field, f"{pool} is not inside {network}"))
        if gw is not None and pool.start <= gw <= pool.end:
            violations.append(FieldViolation(field, f"{pool} holds the gateway"))
        if i and ordered[i - 1].end >= pool.start:
            violations.append(FieldViolation(field, f"{pool} overlaps another"))
    if violations:
        raise InvalidArgument(violations)


def pools_of(row: SubnetRow) -> list[Pool]:
    """The stored pools of a subnet."""
    return [
        Pool.of(ipaddress.ip_address(p["start"]), ipaddress.ip_address(p["end"]))
        for p in row.allocation_pools
    ]


def _candidates(pools: Iterable[Pool], taken: set[int]) -> Iterator[str]:
    for pool in pools:
        for address in range(pool.start, pool.end + 1):
            if address not in taken:
                yield pool.text(address)


def _claim(session: Session, subnet_uid: str, address: str, owner_uid: str) -> bool:
    try:
        with session.begin_nested():
            session.add(
                IpAllocationRow(subnet_uid=subnet_uid, ip_address=address, owner_uid=owner_uid)
            )
    except IntegrityError:
        return False
    return True


def allocate(session: Session, subnet: SubnetRow, owner_uid: str, field: str) -> str:
    """Gives `owner_uid` the lowest free address of the subnet's pools and returns it;
    FailedPrecondition if the subnet is full."""
    taken = {
        int(ipaddress.ip_address(a))
        for a in session.scalars(
            select(IpAllocationRow.ip_address).where(IpAllocationRow.subnet_uid == subnet.uid)
        )
    }
    for tries, candidate in enumerate(_candidates(pools_of(subnet), taken), 1):
        if _claim(session, subnet.uid, candidate, owner_uid):
            return candidate
        if tries >= _MAX_TRIES:
            break
    raise FailedPrecondition(
        f"no free address left in subnet {subnet.cidr} ({field})",
        type="SUBNET_FULL",
        subject=subnet.cidr,
    )


def claim(session: Session, subnet: SubnetRow, address: str, owner_uid: str, field: str) -> str:
    """Gives `owner_uid` exactly `address` (normalised and returned): InvalidArgument if it
    is not a host address of the subnet, FailedPrecondition if someone holds it."""
    parsed = parse_address(field, address)
    network = ipaddress.ip_network(subnet.cidr)
    first, last = host_range(network)
    if parsed.version != network.version or not first <= int(parsed) <= last:
        raise InvalidArgument.field(field, f"{address} is not a host address of {subnet.cidr}")
    if not _claim(session, subnet.uid, str(parsed), owner_uid):
        raise FailedPrecondition(
            f"{parsed} is already in use in {subnet.cidr}", type="IP_IN_USE", subject=str(parsed)
        )
    return str(parsed)


def release(session: Session, owner_uid: str) -> None:
    """Frees every address `owner_uid` holds. Idempotent."""
    session.execute(delete(IpAllocationRow).where(IpAllocationRow.owner_uid == owner_uid))


def held_by(session: Session, owner_uid: str) -> list[tuple[str, str]]:
    """(subnet uid, address) pairs `owner_uid` holds: IPv4 first, each in address order."""
    rows = session.execute(
        select(IpAllocationRow.subnet_uid, IpAllocationRow.ip_address).where(
            IpAllocationRow.owner_uid == owner_uid
        )
    ).all()
    return sorted(
        ((r.subnet_uid, r.ip_address) for r in rows),
        key=lambda r: (ipaddress.ip_address(r[1]).version, int(ipaddress.ip_address(r[1]))),
    )


def overlapping(network: IpNetwork, others: Iterable[str]) -> str | None:
    """The first of `others` (CIDRs) overlapping `network`, or None."""
    for other in others:
        if ipaddress.ip_network(other).overlaps(network):  # type: ignore[arg-type,unused-ignore]
            return other
    return None
