"""The writes that begin and end a volume's life, in the caller's transaction: the storage
API's (CreateVolume, DeleteVolume), or compute's for a boot volume made with an instance
and deleted with it.

`record_volume` validates the volume (size, type, source), charges the project's volume
quotas and writes the volume, CREATING, and its CREATE_VOLUME operation. `begin_deletion`
checks that a volume may be deleted and marks it DELETING. volume_operations.py then does
the work in the backend.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kumo.image.v1 import resources_pb2 as ipb
from kumo.server.api.resources import Collection, R, apply_common
from kumo.server.auth.principal import Principal
from kumo.server.db.models import OperationRow, SnapshotRow, VolumeRow, ZoneRow
from kumo.server.errors import FailedPrecondition, InvalidArgument, NotFound
from kumo.server.operations import store
from kumo.server.quota import charge
from kumo.server.runtime import Runtime
from kumo.server.services.identity.common import PROJECTS, require_active
from kumo.server.services.images import visible_image
from kumo.server.services.storage.common import (
    BACKUPS,
    IDLE,
    MAX_SIZE_GIB,
    SNAPSHOTS,
    VOLUME_TYPES,
    VOLUMES,
    V,
    attachments_of,
    busy,
    volume_type,
)
from kumo.server.services.storage.volume_operations import CREATE_VOLUME
from kumo.storage.v1 import resources_pb2 as pb

#: What a create sets and an update changes besides the size and the type.
EDITABLE = {"display_name", "description", "labels", "bootable"}


def check_size(field: str, size_gib: int) -> None:
    """InvalidArgument unless 1 <= size_gib <= MAX_SIZE_GIB."""
    if not 1 <= size_gib <= MAX_SIZE_GIB:
        raise InvalidArgument.field(field, f"between 1 and {MAX_SIZE_GIB} GiB")


def apply_editable(row: VolumeRow, volume: pb.Volume, paths: set[str]) -> None:
    """Copies the `paths` (of EDITABLE) of `volume` onto the row."""
    apply_common(row, volume, paths & {"display_name", "description", "labels"}, "volume")
    if "bootable" in paths:
        row.bootable = volume.bootable


def record_volume(
    session: Session,
    runtime: Runtime,
    caller: Principal,
    project_id: str,
    zone_id: str,
    volume: pb.Volume,
    volume_id: str,
    field: str = "volume.",
    fit: bool = False,
) -> tuple[VolumeRow, OperationRow]:
    """Writes the new volume, CREATING, and its CREATE_VOLUME operation, and returns both
    (the caller tells the runtime the operation was written). `field` prefixes the fields of
    errors; with `fit`, a size of 0 is the smallest that holds the source. Raises
    InvalidArgument (size, type, source), NotFound (zone, source), FailedPrecondition
    (inactive project, unconfigured backend, source not ready), ResourceExhausted (quota),
    AlreadyExists (`volume_id` taken)."""
    if not (fit and volume.size_gib == 0):
        check_size(f"{field}size_gib", volume.size_gib)
    if volume.volume_type:
        VOLUME_TYPES.parse(volume.volume_type, f"{field}volume_type")
    require_active(PROJECTS.get(session, f"projects/{project_id}", "parent"))
    if session.get(ZoneRow, zone_id) is None:
        raise NotFound("topology.kumo.dev/Zone", f"zones/{zone_id}")
    values = _source(session, caller, volume, project_id, zone_id, field)
    smallest = values.pop("_min")
    source_type = values.pop("_type", None)
    source_backend = values.pop("_backend", None)
    # No type given: a copy of a volume or a snapshot has its volume's (as in Cinder).
    type_name = volume.volume_type or VOLUME_TYPES.name_of(
        source_type or runtime.config.storage.default_type
    )
    type_id = VOLUME_TYPES.parse(type_name, f"{field}volume_type")
    kind = VOLUME_TYPES.get(session, type_name, f"{field}volume_type")
    if not runtime.storage.configured(kind.backend):
        raise FailedPrecondition(
            f"{type_name}'s backend is not configured on this cloud",
            type="BACKEND_NOT_CONFIGURED",
            subject=type_name,
        )
    if source_type is not None:
        source_backend = volume_type(session, source_type).backend
    if source_backend is not None and source_backend != kind.backend:
        raise InvalidArgument.field(
            f"{field}volume_type", "must have the same backend as the source"
        )
    size = volume.size_gib or smallest
    if size < smallest:
        raise InvalidArgument.field(
            f"{field}size_gib", f"at least {smallest} GiB (the size of the source)"
        )
    charge(session, project_id, {"volumes": 1, "gigabytes": size})
    row = VolumeRow(
        project_id=project_id,
        zone_id=zone_id,
        volume_type_id=type_id,
        size_gib=size,
        multi_attach=volume.multi_attach,
        state=V.STATE_CREATING,
        **values,
    )
    apply_editable(row, volume, {f.name for f, _ in volume.ListFields()} & EDITABLE)
    VOLUMES.insert(session, volume_id, "volume_id", row)
    session.flush()
    op = store.create(
        session,
        project_id=caller.project_id,
        kind=CREATE_VOLUME,
        target=VOLUMES.name_of_row(row),
        payload=row.uid.encode(),
    )
    return row, op


def begin_deletion(session: Session, row: VolumeRow, name: str) -> bytes:
    """Marks the volume DELETING and returns its DELETE_VOLUME operation's payload.
    FailedPrecondition if it is attached, has snapshots, or is being changed (DELETING again
    is a retry of a delete that failed: the operation is idempotent)."""
    if attachments_of(session, row):
        raise FailedPrecondition(
            f"{name} is attached; detach it first", type="VOLUME_ATTACHED", subject=name
        )
    if row.state not in (V.STATE_AVAILABLE, V.STATE_ERROR, V.STATE_DELETING):
        raise busy(name, row.state, "delete it")
    snapshots = session.scalar(
        select(func.count()).where(
            SnapshotRow.project_id == row.project_id,
            SnapshotRow.zone_id == row.zone_id,
            SnapshotRow.volume_id == row.id,
        )
    )
    if snapshots:
        raise FailedPrecondition(
            f"{name} has {snapshots} snapshot(s); delete them first",
            type="VOLUME_HAS_SNAPSHOTS",
            subject=name,
        )
    payload = f"{row.uid}|{row.state}".encode()
    row.state = V.STATE_DELETING
    return payload


def _nearby(
    session: Session, collection: Collection[R], name: str, field: str, where: tuple[str, str]
) -> R:
    """The source `name` of `collection`, which must be in the volume's project and zone
    (`where`). Raises InvalidArgument (elsewhere, malformed), NotFound."""
    if collection.key(name, field)[:2] != where:
        raise InvalidArgument.field(field, "must be in the volume's project and zone")
    return collection.get(session, name, field)


def _copy_of(parent: VolumeRow, column: str, source: str, smallest: int) -> dict[str, Any]:
    """What `_source` returns for a copy of `parent`'s data (its snapshot's, or its own)."""
    return {
        column: source,
        "bootable": parent.bootable,
        "_min": smallest,
        "_type": parent.volume_type_id,
    }


def _source(
    session: Session,
    caller: Principal,
    volume: pb.Volume,
    project_id: str,
    zone_id: str,
    field: str,
) -> dict[str, Any]:
    """Checks the volume's source; returns the columns to store and the smallest size."""
    source = volume.WhichOneof("source")
    where = (project_id, zone_id)
    if source == "source_image":
        image = visible_image(session, caller, volume.source_image, f"{field}source_image")
        if image.state != ipb.Image.STATE_ACTIVE:
            raise FailedPrecondition(
                f"{volume.source_image} has no data yet",
                type="IMAGE_NOT_ACTIVE",
                subject=volume.source_image,
            )
        gib = -(-max(image.virtual_size_bytes, image.size_bytes) // (1 << 30))
        name = f"projects/{image.project_id}/images/{image.id}"
        return {"source_image": name, "bootable": True, "_min": max(gib, image.min_disk_gib)}
    if source == "source_snapshot":
        snap = _nearby(session, SNAPSHOTS, volume.source_snapshot, f"{field}source_snapshot", where)
        if snap.state != pb.Snapshot.STATE_AVAILABLE:
            raise FailedPrecondition(
                f"{volume.source_snapshot} is not AVAILABLE",
                type="SNAPSHOT_STATE",
                subject=volume.source_snapshot,
            )
        parent = VOLUMES.get(session, "/".join(volume.source_snapshot.split("/")[:6]))
        return _copy_of(parent, "source_snapshot", volume.source_snapshot, snap.size_gib)
    if source == "source_volume":
        parent = _nearby(session, VOLUMES, volume.source_volume, f"{field}source_volume", where)
        if parent.state not in IDLE:
            raise busy(volume.source_volume, parent.state, "clone it")
        return _copy_of(parent, "source_volume", volume.source_volume, parent.size_gib)
    if source == "source_backup":
        backup = _nearby(session, BACKUPS, volume.source_backup, f"{field}source_backup", where)
        if backup.state != pb.Backup.STATE_AVAILABLE:
            raise FailedPrecondition(
                f"{volume.source_backup} is not AVAILABLE",
                type="BACKUP_STATE",
                subject=volume.source_backup,
            )
        return {
            "source_backup": volume.source_backup,
            "_min": backup.size_gib,
            "_backend": backup.backend,
        }
    return {"_min": 1}
