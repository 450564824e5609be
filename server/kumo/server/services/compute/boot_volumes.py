"""The volumes an instance is made with, from the instance's creation to its deletion.

`take_boot_volume` (in CreateInstance's transaction) attaches the existing volume the
instance boots from, or records a new one (`Instance.new_boot_volume`) made from the
instance's image or from a volume snapshot, CREATING and attached; `take_volumes_at_boot`
does the same for the others (`Instance.volumes_at_boot`). `await_new_volumes` waits until
the new ones are made: BUILD boots only then, and DELETE deletes those that go with the
instance only then. `delete_volumes` (in the transaction that forgets the instance) starts
their deletion.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from functools import partial

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session

from kumo.compute.v1 import resources_pb2 as pb
from kumo.server.auth.principal import Principal
from kumo.server.db.models import AttachmentRow, InstanceRow, OperationRow, VolumeRow
from kumo.server.errors import FailedPrecondition, InvalidArgument
from kumo.server.operations import store
from kumo.server.operations.handlers import OperationContext
from kumo.server.runtime import Runtime
from kumo.server.services.compute.common import INSTANCES
from kumo.server.services.storage.attachments import (
    attach,
    attach_boot_volume,
    check_attachable,
    check_device,
    volume_in,
)
from kumo.server.services.storage.common import VOLUMES
from kumo.server.services.storage.volume_operations import CREATE_VOLUME, DELETE_VOLUME
from kumo.server.services.storage.volume_records import begin_deletion, record_volume
from kumo.storage.v1 import resources_pb2 as spb

log = logging.getLogger(__name__)

#: How often a BUILD or a DELETE looks whether the new volumes have been made.
POLL_SECONDS = 0.25
#: The most volumes an instance is made with besides its boot volume.
MAX_VOLUMES_AT_BOOT = 16


def take_boot_volume(
    session: Session, runtime: Runtime, caller: Principal, row: InstanceRow, spec: pb.Instance
) -> None:
    """Gives the new instance (flushed) the boot volume `spec` asks for, attached read-write
    (a new volume comes with its CREATE_VOLUME operation: the caller tells the runtime).
    Raises InvalidArgument (both ways asked, `delete_boot_volume` without a boot
    volume, a bad size or type, a snapshot elsewhere), NotFound, FailedPrecondition (the
    volume, or the snapshot's, cannot be booted from; the snapshot is not AVAILABLE; the
    type's backend is not configured), ResourceExhausted (volume quotas)."""
    new = spec.HasField("new_boot_volume")
    if new and spec.boot_volume:
        raise InvalidArgument.field(
            "instance.new_boot_volume", "boot from boot_volume or from a new volume, not both"
        )
    if spec.delete_boot_volume and not (new or spec.boot_volume):
        raise InvalidArgument.field(
            "instance.delete_boot_volume", "the instance has no boot volume to delete"
        )
    row.delete_boot_volume = spec.delete_boot_volume
    if spec.boot_volume:
        row.boot_volume_id = attach_boot_volume(
            session, row.project_id, row.zone_id, row.id, spec.boot_volume,
            "instance.boot_volume", spec.delete_boot_volume,
        )  # fmt: skip
        return
    if not new:
        return
    wanted = spec.new_boot_volume
    volume = spb.Volume(
        size_gib=wanted.size_gib,
        volume_type=wanted.volume_type,
        description=f"boot volume of {INSTANCES.name_of_row(row)}",
    )
    if wanted.source_snapshot:
        volume.source_snapshot = wanted.source_snapshot
    else:
        volume.source_image = spec.image
    # (an id of the shape the EC2 dialect makes its own volumes' ids: shown as it is)
    made, _ = record_volume(
        session, runtime, caller, row.project_id, row.zone_id, volume,
        f"vol-0{secrets.token_hex(8)}", field="instance.new_boot_volume.", fit=True,
    )  # fmt: skip
    if not made.bootable:
        raise FailedPrecondition(
            f"{wanted.source_snapshot} is a snapshot of a volume that is not bootable",
            type="VOLUME_NOT_BOOTABLE",
            subject=wanted.source_snapshot,
        )
    attach(session, made, row.id, spb.ATTACH_MODE_READ_WRITE, spec.delete_boot_volume)
    row.boot_volume_id = made.id


def take_volumes_at_boot(
    session: Session, runtime: Runtime, caller: Principal, row: InstanceRow, spec: pb.Instance
) -> None:
    """Attaches to the new instance (flushed, its boot volume taken) the volumes of
    `spec.volumes_at_boot`, in order: existing ones (`volume`), and new ones it records
    (the others), each with its CREATE_VOLUME operation (the caller tells the runtime).
    Raises InvalidArgument (too many, an entry both or neither existing and new, a
    volume twice, a bad name, size or type), NotFound (volume, snapshot, type),
    FailedPrecondition (a volume that cannot be attached, a snapshot not AVAILABLE, a
    backend not configured), ResourceExhausted (volume quotas)."""
    if len(spec.volumes_at_boot) > MAX_VOLUMES_AT_BOOT:
        raise InvalidArgument.field(
            "instance.volumes_at_boot", f"at most {MAX_VOLUMES_AT_BOOT} volumes"
        )
    instance = INSTANCES.name_of_row(row)
    taken = {row.boot_volume_id}
    for index, wanted in enumerate(spec.volumes_at_boot):
        field = f"instance.volumes_at_boot[{index}]."
        check_device(f"{field}device", wanted.device)
        new = wanted.size_gib != 0 or bool(wanted.volume_type or wanted.source_snapshot)
        if new == bool(wanted.volume):
            raise InvalidArgument.field(
                field.rstrip("."),
                "name an existing volume, or give a new one's size or source snapshot",
            )
        if wanted.volume:
            volume = volume_in(
                session, row.project_id, row.zone_id, wanted.volume, f"{field}volume"
            )
            if volume.id in taken:
                raise InvalidArgument.field(f"{field}volume", "the instance has it already")
            check_attachable(session, volume, wanted.volume, instance)
            volume.version += 1  # (IN_USE, one attachment more: a new etag)
        else:
            source = spb.Volume(
                size_gib=wanted.size_gib,
                volume_type=wanted.volume_type,
                description=f"a volume of {instance}",
            )
            if wanted.source_snapshot:  # (a oneof: set only when given)
                source.source_snapshot = wanted.source_snapshot
            volume, _ = record_volume(
                session, runtime, caller, row.project_id, row.zone_id, source,
                f"vol-0{secrets.token_hex(8)}", field=field, fit=bool(wanted.source_snapshot),
            )  # fmt: skip
        taken.add(volume.id)
        attach(
            session, volume, row.id, spb.ATTACH_MODE_READ_WRITE, wanted.delete_with_instance,
            wanted.device,
        )  # fmt: skip


def _states_query(doomed_only: bool) -> Select[str, int]:
    query = (
        select(VolumeRow.id, VolumeRow.state)
        .join(
            AttachmentRow,
            (AttachmentRow.project_id == VolumeRow.project_id)
            & (AttachmentRow.zone_id == VolumeRow.zone_id)
            & (AttachmentRow.volume_id == VolumeRow.id),
        )
        .where(
            AttachmentRow.project_id == bindparam("project"),
            AttachmentRow.zone_id == bindparam("zone"),
            AttachmentRow.instance_id == bindparam("instance"),
        )
    )
    if doomed_only:
        query = query.where(AttachmentRow.delete_with_instance.is_(True))
    return query


# Built once (docs/decisions.md, "Statements built once"): every build reads them.
_STATES = {doomed: _states_query(doomed) for doomed in (False, True)}


def volume_states(session: Session, row: InstanceRow, doomed_only: bool = False) -> dict[str, int]:
    """The states of the volumes attached to the instance (with `doomed_only`, of those
    that go with it), by volume id: one query."""
    values = {"project": row.project_id, "zone": row.zone_id, "instance": row.id}
    return {volume_id: state for volume_id, state in session.execute(_STATES[doomed_only], values)}


async def await_new_volumes(
    runtime: Runtime,
    ctx: OperationContext,
    row: InstanceRow,
    states: dict[str, int],
    doomed_only: bool = False,
) -> dict[str, int]:
    """Waits while any of the volumes `states` (from `volume_states`) names is CREATING;
    returns `volume_states` then (a volume gone is missing). Their CREATE_VOLUMEs run at
    once if they have not started (`expedite`): they must not wait for a slot that waiters
    like this one hold. Raises OperationCancelled."""

    def making(session: Session) -> list[str]:
        names = [
            VOLUMES.name_of(row.project_id, row.zone_id, volume_id)
            for volume_id, state in states.items()
            if state == spb.Volume.STATE_CREATING
        ]
        return list(
            session.scalars(
                select(OperationRow.id).where(
                    OperationRow.kind == CREATE_VOLUME,
                    OperationRow.target.in_(names),
                    OperationRow.done.is_(False),
                )
            )
        )

    while spb.Volume.STATE_CREATING in states.values():
        if runtime.executor is not None:
            for operation in await ctx.db.run(making):
                await runtime.executor.expedite(operation)
        await ctx.checkpoint(5, "making the volumes")
        await asyncio.sleep(POLL_SECONDS)
        states = await ctx.db.run(partial(volume_states, row=row, doomed_only=doomed_only))
    return states


def delete_volumes(session: Session, row: InstanceRow, volumes: list[VolumeRow]) -> None:
    """Starts the deletion of the volumes that go with the instance (`release_instance`
    detached them and returned them: a DELETE_VOLUME operation each; the caller tells the
    runtime). A volume that cannot be deleted (it has snapshots, say) is kept, as Nova
    keeps it, and logged. Idempotent (a volume already DELETING gets another operation,
    which finds it gone or finishes it)."""
    for volume in volumes:
        name = VOLUMES.name_of_row(volume)
        try:
            payload = begin_deletion(session, volume, name)
        except FailedPrecondition as error:
            log.warning("the volume %s of instance %s is kept: %s", name, row.uid, error)
            continue
        volume.version += 1
        store.create(
            session, project_id=row.project_id, kind=DELETE_VOLUME, target=name, payload=payload
        )
