"""Collections, conversions and lookups shared by the storage servicer's parts."""

from __future__ import annotations

from typing import cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.drivers.errors import DriverError
from kumo.drivers.storage.base import SnapshotRef
from kumo.server.api.convert import common_fields, timestamp
from kumo.server.api.filtering import enum_value
from kumo.server.api.names import parse
from kumo.server.api.resources import Collection
from kumo.server.auth.principal import Principal
from kumo.server.db.models import AttachmentRow, BackupRow, SnapshotRow, VolumeRow, VolumeTypeRow
from kumo.server.errors import FailedPrecondition, InvalidArgument, KumoError, NotFound, Unavailable
from kumo.server.runtime import Runtime
from kumo.server.services.identity.common import PROJECTS
from kumo.storage.v1 import resources_pb2 as pb

#: Largest volume, in GiB (16 TiB, the drivers' maximum).
MAX_SIZE_GIB = 16384
V = pb.Volume
#: The states of a volume that nothing is being done to.
IDLE = (V.STATE_AVAILABLE, V.STATE_IN_USE)

VOLUME_TYPES = Collection(
    "storage.kumo.dev/VolumeType",
    "volumeTypes/{volume_type}",
    VolumeTypeRow,
    filters={"backend": lambda v: VolumeTypeRow.backend == enum_value(pb.Backend, v)},
)
VOLUMES = Collection(
    "storage.kumo.dev/Volume",
    "projects/{project}/zones/{zone}/volumes/{volume}",
    VolumeRow,
    filters={
        "state": lambda v: VolumeRow.state == enum_value(pb.Volume.State, v),
        "volume_type": lambda v: VolumeRow.volume_type_id == v.removeprefix("volumeTypes/"),
    },
    key_columns=("project_id", "zone_id", "id"),
)
SNAPSHOTS = Collection(
    "storage.kumo.dev/Snapshot",
    "projects/{project}/zones/{zone}/volumes/{volume}/snapshots/{snapshot}",
    SnapshotRow,
    filters={"state": lambda v: SnapshotRow.state == enum_value(pb.Snapshot.State, v)},
    key_columns=("project_id", "zone_id", "volume_id", "id"),
)
BACKUPS = Collection(
    "storage.kumo.dev/Backup",
    "projects/{project}/zones/{zone}/backups/{backup}",
    BackupRow,
    filters={"state": lambda v: BackupRow.state == enum_value(pb.Backup.State, v)},
    key_columns=("project_id", "zone_id", "id"),
)
ZONE_PARENT = "projects/{project}/zones/{zone}"


def backup_image(row: BackupRow) -> str:
    """The backup pool's image of the backed-up volume."""
    return f"kumo-bak-{row.volume_uid}"


def backup_point(row: BackupRow) -> SnapshotRef:
    """The snapshot in the backup pool that is this backup."""
    return SnapshotRef(row.pool, backup_image(row), f"kumo-bak-{row.uid}")


def volume_object(row: VolumeRow) -> str:
    """The backend object name of a volume."""
    return f"kumo-vol-{row.uid}"


def snapshot_object(row: SnapshotRow) -> str:
    """The backend snapshot name of a snapshot."""
    return f"kumo-snap-{row.uid}"


def serial_of(row: VolumeRow) -> str:
    """The disk serial guests see (virtio-blk keeps 20 characters)."""
    return row.uid.replace("-", "")[:20]


class StoragePart:
    """Base of each part of the storage servicer: holds the runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime


def zone_parent(caller: Principal, parent: str, *, any_zone: bool = False) -> tuple[str, str]:
    """(project, zone) of a `projects/{p}/zones/{z}` parent the caller may use (`-` only
    when `any_zone`); NotFound hides other projects."""
    project_id, zone_id = parse(
        "parent", parent, ZONE_PARENT, zone=r"-|[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?"
    )
    caller.require_project(project_id, PROJECTS.type_name, f"projects/{project_id}")
    if zone_id == "-" and not any_zone:
        raise InvalidArgument.field("parent", "name one zone")
    return project_id, zone_id


def volume_type_to_proto(row: VolumeTypeRow) -> pb.VolumeType:
    """Renders a volume type row."""
    return pb.VolumeType(
        **common_fields(row, VOLUME_TYPES.name_of(row.id)),
        description=row.description,
        backend=cast(pb.Backend, row.backend),
        pool=row.pool,
        backup_pool=row.backup_pool,
        qos=pb.QosLimits(
            max_iops=row.max_iops,
            max_read_bytes_per_second=row.max_read_bytes_per_second,
            max_write_bytes_per_second=row.max_write_bytes_per_second,
        ),
    )


def volume_to_proto(row: VolumeRow, attachments: list[AttachmentRow]) -> pb.Volume:
    """Renders a volume row with its attachments."""
    message = pb.Volume(
        **common_fields(row, VOLUMES.name_of_row(row)),
        description=row.description,
        volume_type=VOLUME_TYPES.name_of(row.volume_type_id),
        size_gib=row.size_gib,
        bootable=row.bootable,
        multi_attach=row.multi_attach,
        state=cast(pb.Volume.State, row.state),
        state_message=row.state_message,
        attachments=[
            pb.Attachment(
                instance=f"projects/{a.project_id}/zones/{a.zone_id}/instances/{a.instance_id}",
                mode=cast(pb.AttachMode, a.mode),
                serial=a.serial,
                attach_time=timestamp(a.attach_time),
                delete_with_instance=a.delete_with_instance,
                device=a.device,
            )
            for a in attachments
        ],
    )
    for source in ("source_image", "source_snapshot", "source_volume", "source_backup"):
        if value := getattr(row, source):
            setattr(message, source, value)
    return message


def attachments_of(session: Session, row: VolumeRow) -> list[AttachmentRow]:
    """A volume's attachments, oldest first."""
    return list(
        session.scalars(
            select(AttachmentRow)
            .where(
                AttachmentRow.project_id == row.project_id,
                AttachmentRow.zone_id == row.zone_id,
                AttachmentRow.volume_id == row.id,
            )
            .order_by(AttachmentRow.attach_time, AttachmentRow.instance_id)
        )
    )


def render_volume(session: Session, row: VolumeRow) -> pb.Volume:
    """A volume message with its attachments read in `session`."""
    return volume_to_proto(row, attachments_of(session, row))


def snapshot_to_proto(row: SnapshotRow) -> pb.Snapshot:
    """Renders a snapshot row."""
    return pb.Snapshot(
        **common_fields(row, SNAPSHOTS.name_of_row(row)),
        description=row.description,
        size_gib=row.size_gib,
        state=cast(pb.Snapshot.State, row.state),
        state_message=row.state_message,
    )


def visible_volume(
    session: Session, caller: Principal, name: str, field: str = "name", lock: bool = False
) -> VolumeRow:
    """The volume if the caller may see its project (with `lock`, its row locked for the
    rest of the transaction); NotFound otherwise."""
    project_id = VOLUMES.key(name, field)[0]
    caller.require_project(project_id, VOLUMES.type_name, name)
    return VOLUMES.get(session, name, field, lock)


def volume_type(session: Session, type_id: str) -> VolumeTypeRow:
    """A volume type row by id (it exists: volumes reference it)."""
    row = session.get(VolumeTypeRow, type_id)
    if row is None:
        raise NotFound(VOLUME_TYPES.type_name, VOLUME_TYPES.name_of(type_id))
    return row


def busy(name: str, state: int, action: str) -> FailedPrecondition:
    """The error for an action the volume's state forbids."""
    label = pb.Volume.State.Name(state).removeprefix("STATE_")
    return FailedPrecondition(
        f"{name} is {label}: cannot {action}", type="VOLUME_STATE", subject=name
    )


def backend_error(error: DriverError) -> KumoError:
    """A driver error as the API's error (the operation fails with it)."""
    if error.retryable:
        return Unavailable(error.message)
    return FailedPrecondition(error.message, type=f"STORAGE_{error.code}", subject="")
