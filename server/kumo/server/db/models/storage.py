"""Tables of the storage service: volume types, volumes, snapshots, attachments, transfers.

A volume's data lives in its type's backend under `kumo-vol-<uid>` (snapshots under
`kumo-snap-<uid>`), so a backend object always maps back to one row by uid; the storage
reconciler compares the two. Enum columns hold proto enum values.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from kumo.server.db.base import Base, utcnow
from kumo.server.db.models.common import ResourceColumns


class VolumeTypeRow(ResourceColumns, Base):
    """A volume type (global, cloud administrators): backend, pool and QoS limits."""

    __tablename__ = "volume_types"

    description: Mapped[str] = mapped_column(Text, default="")
    backend: Mapped[int] = mapped_column(SmallInteger)
    pool: Mapped[str] = mapped_column(String(96))
    backup_pool: Mapped[str] = mapped_column(String(96), default="")
    max_iops: Mapped[int] = mapped_column(BigInteger, default=0)
    max_read_bytes_per_second: Mapped[int] = mapped_column(BigInteger, default=0)
    max_write_bytes_per_second: Mapped[int] = mapped_column(BigInteger, default=0)


class VolumeRow(ResourceColumns, Base):
    """A volume of a project in a zone. The source columns name what it was made from
    (resource names, fixed at creation)."""

    __tablename__ = "volumes"
    __table_args__ = (Index("ix_volumes_type", "volume_type_id"),)

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    zone_id: Mapped[str] = mapped_column(ForeignKey("zones.id"), primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    volume_type_id: Mapped[str] = mapped_column(ForeignKey("volume_types.id"))
    size_gib: Mapped[int] = mapped_column()
    source_image: Mapped[str] = mapped_column(String(255), default="")
    source_snapshot: Mapped[str] = mapped_column(String(255), default="")
    source_volume: Mapped[str] = mapped_column(String(255), default="")
    source_backup: Mapped[str] = mapped_column(String(255), default="")
    bootable: Mapped[bool] = mapped_column(default=False)
    multi_attach: Mapped[bool] = mapped_column(default=False)
    state: Mapped[int] = mapped_column(SmallInteger, default=1)
    state_message: Mapped[str] = mapped_column(String(255), default="")


class SnapshotRow(ResourceColumns, Base):
    """A snapshot of a volume."""

    __tablename__ = "volume_snapshots"
    __table_args__ = (
        ForeignKeyConstraint(
            ["project_id", "zone_id", "volume_id"],
            ["volumes.project_id", "volumes.zone_id", "volumes.id"],
            ondelete="CASCADE",
        ),
    )

    project_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    zone_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    volume_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    size_gib: Mapped[int] = mapped_column()
    state: Mapped[int] = mapped_column(SmallInteger, default=1)
    state_message: Mapped[str] = mapped_column(String(255), default="")


class BackupRow(ResourceColumns, Base):
    """A backup of a volume in its type's backup pool. The backup pool holds one image per
    volume (`kumo-bak-<volume uid>`) with one snapshot per backup (`kumo-bak-<uid>`); the
    source volume keeps the snapshot of its latest backup (`kumo-bsnap-<uid>`) to diff from.
    Backups outlive their volume (`volume_uid` and `source_volume` stay as they were)."""

    __tablename__ = "volume_backups"
    __table_args__ = (Index("ix_volume_backups_volume", "volume_uid"),)

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    zone_id: Mapped[str] = mapped_column(ForeignKey("zones.id"), primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    volume_uid: Mapped[str] = mapped_column(String(36))
    source_volume: Mapped[str] = mapped_column(String(255))
    parent_backup_id: Mapped[str] = mapped_column(String(63), default="")
    backend: Mapped[int] = mapped_column(SmallInteger)
    pool: Mapped[str] = mapped_column(String(96))
    size_gib: Mapped[int] = mapped_column()
    state: Mapped[int] = mapped_column(SmallInteger, default=1)
    state_message: Mapped[str] = mapped_column(String(255), default="")


class AttachmentRow(Base):
    """A volume attached to an instance (same project and zone)."""

    __tablename__ = "volume_attachments"
    __table_args__ = (
        ForeignKeyConstraint(
            ["project_id", "zone_id", "volume_id"],
            ["volumes.project_id", "volumes.zone_id", "volumes.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["project_id", "zone_id", "instance_id"],
            ["instances.project_id", "instances.zone_id", "instances.id"],
            ondelete="CASCADE",
        ),
        Index("ix_volume_attachments_instance", "project_id", "zone_id", "instance_id"),
    )

    project_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    zone_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    volume_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    instance_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    mode: Mapped[int] = mapped_column(SmallInteger, default=1)
    serial: Mapped[str] = mapped_column(String(20))
    attach_time: Mapped[datetime] = mapped_column(default=utcnow)
    #: The volume goes with the instance (AttachedVolume.delete_with_instance).
    delete_with_instance: Mapped[bool] = mapped_column(default=False)
    #: The device name the attachment was given (Attachment.device); "" for none.
    device: Mapped[str] = mapped_column(String(32), default="")


class VolumeTransferRow(Base):
    """An offer of a volume to another project; only the auth key's SHA-256 is stored."""

    __tablename__ = "volume_transfers"
    __table_args__ = (
        ForeignKeyConstraint(
            ["project_id", "zone_id", "volume_id"],
            ["volumes.project_id", "volumes.zone_id", "volumes.id"],
            ondelete="CASCADE",
        ),
    )

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    uid: Mapped[str] = mapped_column(String(36), unique=True)
    zone_id: Mapped[str] = mapped_column(String(63))
    volume_id: Mapped[str] = mapped_column(String(63), unique=False)
    auth_key_sha256: Mapped[str] = mapped_column(String(64))
    create_time: Mapped[datetime] = mapped_column(default=utcnow)
