"""The volumes an instance has attached, as its host's agent receives them.

`volume_attachments(session, volumes_dir, instances)` lists them for the instances'
assignments (one query for a host's whole list): RBD volumes by `pool/image` (the host
opens them with its own Ceph configuration and cephx key), qcow2 volumes by file path
(under the API's `volumes_dir`: local qcow2 volumes are for single-machine clouds).
`root_volume` picks out the one an instance boots from. `attach` records an attachment
(AttachVolume and boot from volume); `attach_boot_volume` checks and attaches the volume
CreateInstance boots from.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.agent.v1 import agent_service_pb2 as agent
from kumo.server.db.models import AttachmentRow, VolumeRow, VolumeTypeRow
from kumo.server.errors import FailedPrecondition, NotFound
from kumo.server.services.storage.common import VOLUMES, busy, serial_of, volume_object
from kumo.storage.v1 import resources_pb2 as pb

InstanceKey = tuple[str, str, str]  # project, zone, instance id


def volume_attachments(
    session: Session, volumes_dir: Path, instances: Sequence[InstanceKey]
) -> dict[InstanceKey, list[agent.VolumeAttachment]]:
    """Each instance's attached volumes, oldest attachment first (one query for all)."""
    result: dict[InstanceKey, list[agent.VolumeAttachment]] = {key: [] for key in instances}
    if not instances:
        return result
    rows = session.execute(
        select(AttachmentRow, VolumeRow, VolumeTypeRow)
        .join(
            VolumeRow,
            (VolumeRow.project_id == AttachmentRow.project_id)
            & (VolumeRow.zone_id == AttachmentRow.zone_id)
            & (VolumeRow.id == AttachmentRow.volume_id),
        )
        .join(VolumeTypeRow, VolumeTypeRow.id == VolumeRow.volume_type_id)
        .where(
            AttachmentRow.project_id.in_({key[0] for key in instances}),
            AttachmentRow.instance_id.in_({key[2] for key in instances}),
        )
        .order_by(AttachmentRow.attach_time, AttachmentRow.volume_id)
    ).all()
    for attachment, volume, kind in rows:
        key = (attachment.project_id, attachment.zone_id, attachment.instance_id)
        name = volume_object(volume)
        if key not in result:
            continue  # a same-named instance of another zone
        if kind.backend == pb.BACKEND_RBD:
            where = ("rbd", f"{kind.pool}/{name}")
        elif kind.backend == pb.BACKEND_QCOW2:
            where = ("file", str(volumes_dir / kind.pool / f"{name}.qcow2"))
        else:
            continue  # the fake backend has nothing a hypervisor can open
        result[key].append(
            agent.VolumeAttachment(
                serial=attachment.serial,
                kind=where[0],
                path=where[1],
                read_only=attachment.mode == pb.ATTACH_MODE_READ_ONLY,
                max_iops=kind.max_iops,
                max_read_bytes_per_second=kind.max_read_bytes_per_second,
                max_write_bytes_per_second=kind.max_write_bytes_per_second,
                size_bytes=volume.size_gib << 30,
            )
        )
    return result


def release_instance(session: Session, project_id: str, zone_id: str, instance_id: str) -> None:
    """Detaches every volume from an instance being deleted (in its deleting transaction):
    the attachments go, and volumes left without any become AVAILABLE."""
    attached = list(
        session.scalars(
            select(AttachmentRow).where(
                AttachmentRow.project_id == project_id,
                AttachmentRow.zone_id == zone_id,
                AttachmentRow.instance_id == instance_id,
            )
        )
    )
    for attachment in attached:
        session.delete(attachment)
    session.flush()
    for attachment in attached:
        volume = session.get(
            VolumeRow, (attachment.project_id, attachment.zone_id, attachment.volume_id)
        )
        if volume is None or volume.state != pb.Volume.STATE_IN_USE:
            continue
        others = session.scalar(
            select(AttachmentRow.instance_id).where(
                AttachmentRow.project_id == volume.project_id,
                AttachmentRow.zone_id == volume.zone_id,
                AttachmentRow.volume_id == volume.id,
            )
        )
        if others is None:
            volume.state = pb.Volume.STATE_AVAILABLE
            volume.version += 1


def root_volume(
    session: Session,
    project_id: str,
    zone_id: str,
    volume_id: str | None,
    volumes: list[agent.VolumeAttachment],
) -> agent.VolumeAttachment | None:
    """The entry of `volumes` (an instance's attachments) that is its boot volume, if any."""
    if volume_id is None:
        return None
    volume = session.get(VolumeRow, (project_id, zone_id, volume_id))
    serial = serial_of(volume) if volume is not None else None
    return next((v for v in volumes if v.serial == serial), None)


def attach(session: Session, volume: VolumeRow, instance_id: str, mode: int) -> None:
    """Records `volume`'s attachment to the instance (same project and zone) and makes it
    IN_USE (a boot volume still being made stays CREATING until it is, then IN_USE). The
    caller has checked that the volume may be attached."""
    session.add(
        AttachmentRow(
            project_id=volume.project_id,
            zone_id=volume.zone_id,
            volume_id=volume.id,
            instance_id=instance_id,
            mode=mode,
            serial=serial_of(volume),
        )
    )
    if volume.state != pb.Volume.STATE_CREATING:
        volume.state = pb.Volume.STATE_IN_USE


def attach_boot_volume(
    session: Session, project_id: str, zone_id: str, instance_id: str, name: str, field: str
) -> str:
    """Attaches the volume `name` read-write to the instance being created, as its root
    disk; returns the volume's id. Raises InvalidArgument (malformed name), NotFound (no such
    volume in the instance's project and zone), FailedPrecondition (not bootable, not
    AVAILABLE)."""
    key = VOLUMES.key(name, field)
    volume = session.get(VolumeRow, key) if key[:2] == (project_id, zone_id) else None
    if volume is None:
        raise NotFound(VOLUMES.type_name, name)
    if not volume.bootable:
        raise FailedPrecondition(
            f"{name} is not bootable", type="VOLUME_NOT_BOOTABLE", subject=name
        )
    if volume.state != pb.Volume.STATE_AVAILABLE:
        raise busy(name, volume.state, "boot from it")
    attach(session, volume, instance_id, pb.ATTACH_MODE_READ_WRITE)
    return volume.id
