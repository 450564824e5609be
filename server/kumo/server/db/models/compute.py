"""Tables of the compute service: flavors, key pairs, server groups, instances, consoles."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    LargeBinary,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from kumo.server.db.base import Base, utcnow
from kumo.server.db.models.common import ResourceColumns, new_uid


class FlavorRow(ResourceColumns, Base):
    """A flavor (global)."""

    __tablename__ = "flavors"

    description: Mapped[str] = mapped_column(Text, default="")
    vcpus: Mapped[int] = mapped_column()
    memory_mib: Mapped[int] = mapped_column(BigInteger)
    disk_gib: Mapped[int] = mapped_column(BigInteger)


class KeyPairRow(Base):
    """An SSH public key of a project."""

    __tablename__ = "key_pairs"

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    uid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uid)
    public_key: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(128))
    create_time: Mapped[datetime] = mapped_column(default=utcnow)
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    version: Mapped[int] = mapped_column(default=1)
    display_name: Mapped[str] = mapped_column(String(255), default="")


class ServerGroupRow(Base):
    """A server group of a project; `policy` holds the proto enum value."""

    __tablename__ = "server_groups"

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    uid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uid)
    policy: Mapped[int] = mapped_column(SmallInteger)
    create_time: Mapped[datetime] = mapped_column(default=utcnow)


class InstanceRow(ResourceColumns, Base):
    """An instance: spec (user-written), placement and observed status.

    `generation` grows with every spec change the host must act on; the agent
    reports `observed_generation`. `reboot_serial`/`rebuild_serial` grow per
    requested reboot/rebuild; the agent reports the ones it has carried out.
    Enum columns hold proto enum values.
    """

    __tablename__ = "instances"
    __table_args__ = (Index("ix_instances_host", "host_id"),)

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    zone_id: Mapped[str] = mapped_column(ForeignKey("zones.id"), primary_key=True)
    # spec
    flavor_id: Mapped[str] = mapped_column(String(63))
    image_project_id: Mapped[str] = mapped_column(String(63))
    image_id: Mapped[str] = mapped_column(String(63))
    hostname: Mapped[str] = mapped_column(String(63))
    key_pairs: Mapped[list[str]] = mapped_column(JSON, default=list)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    ssh_authorized_keys: Mapped[list[str]] = mapped_column(JSON, default=list)
    server_group_id: Mapped[str | None] = mapped_column(String(63), default=None)
    pool_id: Mapped[str | None] = mapped_column(String(63), default=None)
    requested_host_id: Mapped[str | None] = mapped_column(String(63), default=None)
    # boot from volume: the id of the root volume (same project and zone), attached to it
    boot_volume_id: Mapped[str | None] = mapped_column(String(63), default=None)
    # Instance.delete_boot_volume: the boot volume goes with the instance
    delete_boot_volume: Mapped[bool] = mapped_column(default=False)
    # a root disk in Ceph (storage.root_disks = "rbd"): `pool/kumo-disk-<uid>[-<hex>]`, recorded
    # before the clone is made (storage/root_disks.py); None: a local overlay on the host
    root_disk: Mapped[str | None] = mapped_column(String(255), default=None)
    user_data: Mapped[bytes] = mapped_column(LargeBinary, default=b"")
    power_intent: Mapped[int] = mapped_column(SmallInteger, default=1)
    # the last SuspendInstance asked for `pause` (Instance.paused)
    paused: Mapped[bool] = mapped_column(default=False)
    # Instance.locked; locked_by_admin: a cloud administrator set the lock
    locked: Mapped[bool] = mapped_column(default=False)
    locked_reason: Mapped[str] = mapped_column(String(255), default="")
    locked_by_admin: Mapped[bool] = mapped_column(default=False)
    generation: Mapped[int] = mapped_column(BigInteger, default=1)
    reboot_serial: Mapped[int] = mapped_column(BigInteger, default=0)
    reboot_hard: Mapped[bool] = mapped_column(default=False)
    rebuild_serial: Mapped[int] = mapped_column(BigInteger, default=0)
    # As given to the last StopInstance; 0 leaves it to the agent.
    stop_timeout_seconds: Mapped[int] = mapped_column(default=0)
    snapshot_serial: Mapped[int] = mapped_column(BigInteger, default=0)
    snapshot_image: Mapped[str] = mapped_column(String(255), default="")
    # Increases with every resize and revert; the agent then resizes the guest to
    # the sizes above. `resize_from` holds the flavor and sizes before the resize
    # (keys flavor_id, vcpus, memory_mib, disk_gib) until it is confirmed or reverted.
    resize_serial: Mapped[int] = mapped_column(BigInteger, default=0)
    resize_from: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    deleting: Mapped[bool] = mapped_column(default=False)
    # placement: where the guest is (its resources are held by ClaimRows) and its sizes
    host_id: Mapped[str | None] = mapped_column(ForeignKey("hosts.id"), default=None)
    vcpus: Mapped[int] = mapped_column(default=0)
    memory_mib: Mapped[int] = mapped_column(BigInteger, default=0)
    disk_gib: Mapped[int] = mapped_column(BigInteger, default=0)
    # observed
    state: Mapped[int] = mapped_column(SmallInteger, default=1)
    status_message: Mapped[str] = mapped_column(String(1024), default="")
    observed_generation: Mapped[int] = mapped_column(BigInteger, default=0)
    observed_reboot_serial: Mapped[int] = mapped_column(BigInteger, default=0)
    observed_rebuild_serial: Mapped[int] = mapped_column(BigInteger, default=0)
    observed_snapshot_serial: Mapped[int] = mapped_column(BigInteger, default=0)
    observed_resize_serial: Mapped[int] = mapped_column(BigInteger, default=0)
    # live migration: the destination while one runs, the count of migrations so far,
    # and the current one's record (options, target, phase, progress, abort; see
    # services/compute/migration.py), None when none runs
    migration_host_id: Mapped[str | None] = mapped_column(
        ForeignKey("hosts.id"), default=None, index=True
    )
    migration_serial: Mapped[int] = mapped_column(BigInteger, default=0)
    migration: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)


class ClaimRow(Base):
    """Resources an instance holds on a host.

    `kind` INSTANCE is where the instance is; MOVE is the extra claim while it
    moves or is resized (on the destination, or the growth on the same host), so
    that both sides are accounted for until the move is confirmed or undone.
    Each host's `used_*` columns are the sums of its claims.
    """

    __tablename__ = "claims"
    __table_args__ = (Index("ix_claims_host", "host_id"),)

    instance_uid: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    host_id: Mapped[str] = mapped_column(ForeignKey("hosts.id"))
    vcpus: Mapped[int] = mapped_column(default=0)
    memory_mib: Mapped[int] = mapped_column(BigInteger, default=0)
    disk_gib: Mapped[int] = mapped_column(BigInteger, default=0)


class SerialOutputRow(Base):
    """The retained tail of an instance's serial console: `data` starts at `start`."""

    __tablename__ = "serial_output"

    instance_uid: Mapped[str] = mapped_column(String(36), primary_key=True)
    start: Mapped[int] = mapped_column(BigInteger, default=0)
    data: Mapped[bytes] = mapped_column(LargeBinary, default=b"")


class InstanceTombstoneRow(Base):
    """A deleted instance as it was last shown (`instance`, a serialized Instance in
    STATE_DELETED), kept for a while after the deletion, with the instance columns that
    ListInstances sorts and filters on (services/compute/tombstones.py)."""

    __tablename__ = "instance_tombstones"
    __table_args__ = (
        Index("ix_instance_tombstones_name", "project_id", "zone_id", "id"),
        Index("ix_instance_tombstones_deleted_at", "deleted_at"),
    )

    uid: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    zone_id: Mapped[str] = mapped_column(String(63))
    id: Mapped[str] = mapped_column(String(63))
    display_name: Mapped[str] = mapped_column(String(63))
    labels: Mapped[dict[str, str]] = mapped_column(JSON)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    flavor_id: Mapped[str] = mapped_column(String(63))
    pool_id: Mapped[str | None] = mapped_column(String(63))
    image_project_id: Mapped[str] = mapped_column(String(63), default="")
    image_id: Mapped[str] = mapped_column(String(63), default="")
    hostname: Mapped[str] = mapped_column(String(63), default="")
    key_pairs: Mapped[list[str]] = mapped_column(JSON, default=list)
    create_time: Mapped[datetime] = mapped_column()
    deleted_at: Mapped[datetime] = mapped_column(default=utcnow)
    instance: Mapped[bytes] = mapped_column(LargeBinary)
