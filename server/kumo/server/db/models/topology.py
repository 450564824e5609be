"""Tables of the topology service: regions, zones, pools, racks, hosts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    SmallInteger,
    String,
    Text,
    column,
    func,
    select,
    table,
)
from sqlalchemy.orm import Mapped, column_property, declared_attr, mapped_column, relationship

from kumo.server.db.base import Base
from kumo.server.db.models.common import ResourceColumns

# The columns of `claims` (compute.py's ClaimRow) a host's instance count reads, by name:
# the compute tables refer to these.
_CLAIMS = table("claims", column("host_id"), column("kind"))


class RegionRow(ResourceColumns, Base):
    """A region."""

    __tablename__ = "regions"

    description: Mapped[str] = mapped_column(Text, default="")


class ZoneRow(ResourceColumns, Base):
    """An availability zone in a region."""

    __tablename__ = "zones"

    region_id: Mapped[str] = mapped_column(ForeignKey("regions.id"), index=True)
    description: Mapped[str] = mapped_column(Text, default="")


class PoolRow(ResourceColumns, Base):
    """A resource pool of one hypervisor kind (proto enum value) in a zone."""

    __tablename__ = "pools"

    zone_id: Mapped[str] = mapped_column(ForeignKey("zones.id"), index=True)
    hypervisor_kind: Mapped[int] = mapped_column(SmallInteger)
    description: Mapped[str] = mapped_column(Text, default="")


class RackRow(ResourceColumns, Base):
    """A rack in a pool."""

    __tablename__ = "racks"

    pool_id: Mapped[str] = mapped_column(ForeignKey("pools.id"), index=True)
    location: Mapped[str] = mapped_column(Text, default="")
    pool: Mapped[PoolRow] = relationship(lazy="joined", innerjoin=True)


class HostRow(ResourceColumns, Base):
    """A host in a rack.

    `admin_state` is what administrators set (ENABLED, DISABLED, MAINTENANCE as
    proto enum values); the reported state is DOWN instead when the last
    heartbeat is older than the configured timeout. `used_*` are the sums of the
    claims on the host (`controllers/claims.py`).
    """

    __tablename__ = "hosts"

    rack_id: Mapped[str] = mapped_column(ForeignKey("racks.id"), index=True)
    address: Mapped[str] = mapped_column(String(255), default="")
    vcpus: Mapped[int] = mapped_column(default=0)
    memory_mib: Mapped[int] = mapped_column(BigInteger, default=0)
    disk_gib: Mapped[int] = mapped_column(BigInteger, default=0)
    admin_state: Mapped[int] = mapped_column(SmallInteger, default=1)
    disabled_reason: Mapped[str] = mapped_column(String(255), default="")
    last_heartbeat_time: Mapped[datetime | None] = mapped_column(default=None)
    # What the claims on this host add up to (kept with them in one transaction).
    used_vcpus: Mapped[int] = mapped_column(default=0)
    used_memory_mib: Mapped[int] = mapped_column(BigInteger, default=0)
    used_disk_gib: Mapped[int] = mapped_column(BigInteger, default=0)
    rack: Mapped[RackRow] = relationship(lazy="joined", innerjoin=True)

    @declared_attr
    def instance_count(cls) -> Mapped[int]:
        """How many instances are placed on the host: its claims of kind `instance`
        (claims.INSTANCE), counted in the SELECT that reads the row."""
        return column_property(
            select(func.count())
            .where(_CLAIMS.c.host_id == cls.id, _CLAIMS.c.kind == "instance")
            .correlate_except(_CLAIMS)
            .scalar_subquery()
        )
