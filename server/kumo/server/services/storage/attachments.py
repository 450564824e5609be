"""The volumes an instance has attached, as its host's agent receives them.

`volume_attachments(session, volumes_dir, instances)` lists them for the instances'
assignments (one query for a host's whole list): RBD volumes by `pool/image` (the host
opens them with its own Ceph configuration and cephx key), qcow2 volumes by file path
(under the API's `volumes_dir`: local qcow2 volumes are for single-machine clouds).
`root_volume` picks out the one an instance boots from. `check_attachable` and `attach`
check and record an attachment (AttachVolume, and the volumes an instance is made with);
`attach_boot_volume` checks and attaches the volume CreateInstance boots from.
`release_instance` detaches everything from an instance being deleted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.agent.v1 import agent_service_pb2 as agent
from kumo.server.db.models import AttachmentRow, VolumeRow, VolumeTypeRow
from kumo.server.errors import FailedPrecondition, InvalidArgument, NotFound
from kumo.server.services.compute.common import INSTANCES
from kumo.server.services.storage.common import (
    IDLE,
    VOLUMES,
    attachments_of,
    busy,
    serial_of,
    volume_object,
)
from kumo.storage.v1 import resources_pb2 as pb

InstanceKey = tuple[str, str, str]  # project, zone, instance id
_DEVICE = re.compile(r"[A-Za-z0-9/_-]{0,32}")


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


def release_instance(
    session: Session, project_id: str, zone_id: str, instance_id: str
) -> list[VolumeRow]:
    """Detaches every volume from an instance being deleted (in its deleting transaction):
    the attachments go, and volumes left without any become AVAILABLE. Returns the
    volumes that were to be deleted with the instance (`delete_with_instance`)."""
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
    doomed = []
    for attachment in attached:
        volume = session.get(
            VolumeRow, (attachment.project_id, attachment.zone_id, attachment.volume_id)
        )
        if volume is not None and attachment.delete_with_instance:
            doomed.append(volume)
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
    return doomed


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


def check_attachable(session: Session, volume: VolumeRow, name: str, instance: str) -> None:
    """Raises FailedPrecondition unless `volume` (named `name`) may be attached to
    `instance` (the name of an instance of its project and zone): AVAILABLE, or IN_USE
    elsewhere and multi-attach, and not attached to that instance already."""
    if volume.state not in IDLE:
        raise busy(name, volume.state, "attach it")
    current = attachments_of(session, volume)
    if any(a.instance_id == instance.rsplit("/", 1)[-1] for a in current):
        raise FailedPrecondition(
            f"{name} is already attached to {instance}", type="VOLUME_ATTACHED", subject=name
        )
    if current and not volume.multi_attach:
        raise FailedPrecondition(
            f"{name} is attached and not multi-attach", type="VOLUME_ATTACHED", subject=name
        )


def check_device(field: str, device: str) -> None:
    """InvalidArgument unless `device` (the value of `field`) is a device name an
    attachment may be given: up to 32 letters, digits, `/`, `_` and `-` (or empty)."""
    if not _DEVICE.fullmatch(device):
        raise InvalidArgument.field(field, "up to 32 letters, digits, '/', '_' and '-'")


def attachment_of(
    session: Session, volume: VolumeRow, name: str, instance: str
) -> tuple[str, AttachmentRow]:
    """(instance id, attachment) of volume `name` (its row `volume`) to `instance`;
    InvalidArgument (a malformed instance name), FailedPrecondition VOLUME_NOT_ATTACHED
    when there is none."""
    key = INSTANCES.key(instance, "instance")
    attachment = session.get(AttachmentRow, (volume.project_id, volume.zone_id, volume.id, key[2]))
    if key[:2] != (volume.project_id, volume.zone_id) or attachment is None:
        raise FailedPrecondition(
            f"{name} is not attached to {instance}", type="VOLUME_NOT_ATTACHED", subject=name
        )
    return key[2], attachment


def attach(
    session: Session,
    volume: VolumeRow,
    instance_id: str,
    mode: int,
    delete_with_instance: bool = False,
    device: str = "",
) -> None:
    """Records `volume`'s attachment to the instance (same project and zone), with the
    device name it was given (checked by the caller with `check_device`), and makes it
    IN_USE (a volume still being made with the instance stays CREATING until it is, then
    IN_USE). The caller has checked that the volume may be attached."""
    session.add(
        AttachmentRow(
            project_id=volume.project_id,
            zone_id=volume.zone_id,
            volume_id=volume.id,
            instance_id=instance_id,
            mode=mode,
            serial=serial_of(volume),
            delete_with_instance=delete_with_instance,
            device=device,
        )
    )
    if volume.state != pb.Volume.STATE_CREATING:
        volume.state = pb.Volume.STATE_IN_USE


def volume_in(session: Session, project_id: str, zone_id: str, name: str, field: str) -> VolumeRow:
    """The volume `name` (the value of `field`) if it is in that project and zone, its row
    locked for the rest of the transaction (it is about to be attached). Raises
    InvalidArgument (malformed name), NotFound."""
    key = VOLUMES.key(name, field)
    volume = (
        session.get(VolumeRow, key, with_for_update=True)
        if key[:2] == (project_id, zone_id)
        else None
    )
    if volume is None:
        raise NotFound(VOLUMES.type_name, name)
    return volume


def attach_boot_volume(
    session: Session,
    project_id: str,
    zone_id: str,
    instance_id: str,
    name: str,
    field: str,
    delete_with_instance: bool,
) -> str:
    """Attaches the volume `name` read-write to the instance being created, as its root
    disk; returns the volume's id. Raises InvalidArgument (malformed name), NotFound (no such
    volume in the instance's project and zone), FailedPrecondition (not bootable, not
    AVAILABLE)."""
    volume = volume_in(session, project_id, zone_id, name, field)
    if not volume.bootable:
        raise FailedPrecondition(
            f"{name} is not bootable", type="VOLUME_NOT_BOOTABLE", subject=name
        )
    if volume.state != pb.Volume.STATE_AVAILABLE:
        raise busy(name, volume.state, "boot from it")
    attach(session, volume, instance_id, pb.ATTACH_MODE_READ_WRITE, delete_with_instance)
    return volume.id
