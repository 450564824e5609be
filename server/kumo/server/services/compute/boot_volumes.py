"""An instance's boot volume, from the instance's creation to its deletion.

`take_boot_volume` (in CreateInstance's transaction) attaches the existing volume the
instance boots from, or records a new one (`Instance.new_boot_volume`) made from the
instance's image or from a volume snapshot, CREATING and attached. `await_boot_volume`
waits until such a volume is made: BUILD boots from it only then, and DELETE (of an
instance made with `delete_boot_volume`) deletes it only then. `delete_boot_volume` (in
the transaction that forgets the instance) starts the deletion of the boot volume of an
instance made with `delete_boot_volume`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.compute.v1 import resources_pb2 as pb
from kumo.server.auth.principal import Principal
from kumo.server.db.models import InstanceRow, OperationRow, VolumeRow
from kumo.server.errors import FailedPrecondition, InvalidArgument
from kumo.server.operations import store
from kumo.server.operations.handlers import OperationContext
from kumo.server.runtime import Runtime
from kumo.server.services.compute.common import INSTANCES
from kumo.server.services.storage.attachments import attach, attach_boot_volume
from kumo.server.services.storage.common import VOLUMES
from kumo.server.services.storage.volume_operations import CREATE_VOLUME, DELETE_VOLUME
from kumo.server.services.storage.volume_records import begin_deletion, record_volume
from kumo.storage.v1 import resources_pb2 as spb

log = logging.getLogger(__name__)

#: How often a BUILD or a DELETE looks whether the boot volume has been made.
POLL_SECONDS = 0.25


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
            session, row.project_id, row.zone_id, row.id, spec.boot_volume, "instance.boot_volume"
        )
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
    attach(session, made, row.id, spb.ATTACH_MODE_READ_WRITE)
    row.boot_volume_id = made.id


async def await_boot_volume(
    runtime: Runtime, ctx: OperationContext, row: InstanceRow
) -> int | None:
    """Waits while the instance's boot volume is CREATING; returns its state then (None:
    no boot volume, or it is gone). The volume's CREATE_VOLUME runs at once if it has not
    started (`expedite`): it must not wait for a slot that waiters like this one hold.
    Raises OperationCancelled."""
    if row.boot_volume_id is None:
        return None
    key = (row.project_id, row.zone_id, row.boot_volume_id)
    name = VOLUMES.name_of(*key)

    def look(session: Session) -> tuple[int | None, str | None]:
        volume = session.get(VolumeRow, key)
        if volume is None or volume.state != spb.Volume.STATE_CREATING:
            return (None if volume is None else volume.state), None
        making = session.scalar(
            select(OperationRow.id).where(
                OperationRow.kind == CREATE_VOLUME,
                OperationRow.target == name,
                OperationRow.done.is_(False),
            )
        )
        return volume.state, making

    current, making = await ctx.db.run(look)
    while current == spb.Volume.STATE_CREATING:
        if making is not None and runtime.executor is not None:
            await runtime.executor.expedite(making)
        await ctx.checkpoint(5, "making the boot volume")
        await asyncio.sleep(POLL_SECONDS)
        current, making = await ctx.db.run(look)
    return current


def delete_boot_volume(session: Session, row: InstanceRow) -> None:
    """If the instance was made with `delete_boot_volume`, starts its boot volume's deletion
    (it must be detached already: a DELETE_VOLUME operation; the caller tells the runtime).
    A volume that cannot be deleted (it has snapshots, say) is kept, as Nova keeps it, and
    logged. Idempotent (a volume already DELETING gets another operation, which finds it
    gone or finishes it)."""
    if not row.delete_boot_volume or row.boot_volume_id is None:
        return
    volume = session.get(VolumeRow, (row.project_id, row.zone_id, row.boot_volume_id))
    if volume is None:
        return
    name = VOLUMES.name_of_row(volume)
    try:
        payload = begin_deletion(session, volume, name)
    except FailedPrecondition as error:
        log.warning("the boot volume %s of instance %s is kept: %s", name, row.uid, error)
        return
    volume.version += 1
    store.create(
        session, project_id=row.project_id, kind=DELETE_VOLUME, target=name, payload=payload
    )
