"""The operations behind volume and snapshot methods, run by the operation controller.

The API drives storage centrally: each handler reads the row, calls the volume type's
driver (in a worker thread) and writes the outcome. Every handler is resumable (a restarted
process runs it again from the start): the driver calls are idempotent and each step reads
the current row first. A row is always written before its backend object exists and removed
only after the object is gone, so a crash at any point leaves either a row the handler (or
the storage reconciler) finishes, never an object nobody accounts for.

Capacity is charged to quotas when a method is accepted (in its transaction) and released
in the transaction that removes the row.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from google.protobuf import empty_pb2
from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.drivers.errors import DriverError, VolumeNotFound
from kumo.drivers.storage.base import SnapshotRef, VolumeDriver
from kumo.image.v1 import resources_pb2 as ipb
from kumo.server.db.models import ImageRow, InstanceRow, OperationRow, SnapshotRow, VolumeRow
from kumo.server.errors import NotFound
from kumo.server.operations.handlers import OperationContext
from kumo.server.quota import charge
from kumo.server.services.storage.common import (
    BACKUPS,
    SNAPSHOTS,
    VOLUMES,
    StoragePart,
    attachments_of,
    backend_error,
    backup_point,
    render_volume,
    snapshot_object,
    snapshot_to_proto,
    volume_object,
    volume_type,
)
from kumo.storage.v1 import resources_pb2 as pb

log = logging.getLogger(__name__)

CREATE_VOLUME = "storage.CreateVolume"
DELETE_VOLUME = "storage.DeleteVolume"
EXTEND_VOLUME = "storage.ExtendVolume"
RETYPE_VOLUME = "storage.RetypeVolume"
ATTACH_VOLUME = "storage.AttachVolume"
DETACH_VOLUME = "storage.DetachVolume"
CREATE_SNAPSHOT = "storage.CreateSnapshot"
DELETE_SNAPSHOT = "storage.DeleteSnapshot"
GiB = 1 << 30
V = pb.Volume
T = TypeVar("T")


@dataclass(frozen=True)
class Placement:
    """Where a volume's data lives."""

    backend: int
    pool: str
    name: str


def placement(session: Session, row: VolumeRow) -> Placement:
    """The backend, pool and object name of a volume."""
    kind = volume_type(session, row.volume_type_id)
    return Placement(kind.backend, kind.pool, volume_object(row))


def _by_uid(session: Session, uid: str) -> VolumeRow | None:
    return session.scalar(select(VolumeRow).where(VolumeRow.uid == uid))


@dataclass(frozen=True)
class _CreatePlan:
    target: Placement
    size_bytes: int
    image: tuple[str, str] | None = None  # (image uid, format)
    snapshot: SnapshotRef | None = None
    volume: Placement | None = None
    backup: SnapshotRef | None = None


def _plan(session: Session, row: VolumeRow) -> _CreatePlan:
    target = placement(session, row)
    size = row.size_gib * GiB
    if row.source_image:
        project_id, image_id = row.source_image.split("/")[1::2]
        image = session.get(ImageRow, (project_id, image_id))
        if image is None:
            raise NotFound("image.kumo.dev/Image", row.source_image)
        fmt = "qcow2" if image.disk_format == ipb.DISK_FORMAT_QCOW2 else "raw"
        return _CreatePlan(target, size, image=(image.uid, fmt))
    if row.source_snapshot:
        snap = SNAPSHOTS.get(session, row.source_snapshot)
        parent = VOLUMES.get(session, "/".join(row.source_snapshot.split("/")[:6]))
        where = placement(session, parent)
        return _CreatePlan(
            target, size, snapshot=SnapshotRef(where.pool, where.name, snapshot_object(snap))
        )
    if row.source_backup:
        return _CreatePlan(
            target, size, backup=backup_point(BACKUPS.get(session, row.source_backup))
        )
    if row.source_volume:
        return _CreatePlan(
            target, size, volume=placement(session, VOLUMES.get(session, row.source_volume))
        )
    return _CreatePlan(target, size)


class VolumeOperations(StoragePart):
    """Handlers of the storage operations (a part of the storage servicer)."""

    def register_handlers(self) -> None:
        """Registers every storage operation kind with the runtime's registry."""
        handlers = self.runtime.handlers
        handlers.register(CREATE_VOLUME, self._create_volume, _fail_create)
        handlers.register(DELETE_VOLUME, self._delete_volume, _restore_state)
        handlers.register(EXTEND_VOLUME, self._extend_volume, _undo_extend)
        handlers.register(RETYPE_VOLUME, self._retype_volume, _restore_state)
        handlers.register(ATTACH_VOLUME, self._render_volume)
        handlers.register(DETACH_VOLUME, self._render_volume)
        handlers.register(CREATE_SNAPSHOT, self._create_snapshot, _fail_snapshot)
        handlers.register(DELETE_SNAPSHOT, self._delete_snapshot, _restore_snapshot)

    async def _call(self, backend: int, work: Callable[[VolumeDriver], T]) -> T:
        """Runs `work` with the backend's driver in a worker thread; driver errors become
        API errors."""
        driver = self.runtime.storage.driver(backend)
        try:
            return await asyncio.to_thread(work, driver)
        except DriverError as error:
            raise backend_error(error) from error

    async def _volume_row(self, ctx: OperationContext) -> VolumeRow:
        uid = ctx.payload.decode().split("|")[0]
        row = await ctx.db.run(lambda s: _by_uid(s, uid))
        if row is None:
            raise NotFound(VOLUMES.type_name, ctx.target)
        return row

    async def _finish(self, uid: str, change: Callable[[VolumeRow], None]) -> pb.Volume:
        def write(session: Session) -> pb.Volume:
            row = _by_uid(session, uid)
            if row is None:
                raise NotFound(VOLUMES.type_name, uid)
            change(row)
            row.version += 1
            session.flush()
            return render_volume(session, row)

        return await self.runtime.db.run(write)

    async def _tell_hosts(self, row: VolumeRow, instance_ids: list[str]) -> None:
        """Wakes the watch streams of the hosts running these instances of the volume's
        project and zone (their agents then converge the guests' volumes)."""
        hosts = await self.runtime.db.run(
            lambda s: set(
                s.scalars(
                    select(InstanceRow.host_id).where(
                        InstanceRow.project_id == row.project_id,
                        InstanceRow.zone_id == row.zone_id,
                        InstanceRow.id.in_(instance_ids),
                    )
                )
            )
        )
        for host in hosts:
            if host:
                self.runtime.notifier.notify(f"host:{host}")

    async def _render_volume(self, ctx: OperationContext) -> pb.Volume:
        """Attach and detach are recorded when accepted; this tells the instance's host, whose
        agent hot-plugs (or unplugs) the volume into the running guest."""
        row = await self._volume_row(ctx)
        await self._tell_hosts(row, [ctx.payload.decode().split("|")[1]])
        return await self.runtime.db.run(lambda s: render_volume(s, row))

    async def _create_volume(self, ctx: OperationContext) -> pb.Volume:
        row = await self._volume_row(ctx)
        if row.state != V.STATE_CREATING:
            return await self.runtime.db.run(lambda s: render_volume(s, row))
        plan = await ctx.db.run(lambda s: _plan(s, row))
        await ctx.checkpoint(10, "creating the volume in its backend")
        try:
            await self._call(plan.target.backend, lambda d: _make(self, d, plan, row.uid))
        except Exception as error:
            message = str(getattr(error, "message", error))[:255]
            await self._finish(row.uid, lambda r: _set_error(r, message))
            raise
        return await self._finish(row.uid, _set_created)

    async def _delete_volume(self, ctx: OperationContext) -> empty_pb2.Empty:
        uid = ctx.payload.decode().split("|")[0]
        row = await ctx.db.run(lambda s: _by_uid(s, uid))
        if row is None:
            return empty_pb2.Empty()
        where = await ctx.db.run(lambda s: placement(s, row))
        await ctx.checkpoint(10, "deleting the volume's data")
        await self._call(where.backend, lambda d: delete_volume_data(d, where))

        def remove(session: Session) -> None:
            current = _by_uid(session, uid)
            if current is not None:
                charge(session, current.project_id, {"volumes": -1, "gigabytes": -current.size_gib})
                session.delete(current)

        await ctx.db.run(remove)
        return empty_pb2.Empty()

    async def _extend_volume(self, ctx: OperationContext) -> pb.Volume:
        row = await self._volume_row(ctx)
        _, state, _, new_size = ctx.payload.decode().split("|")
        where = await ctx.db.run(lambda s: placement(s, row))
        await ctx.checkpoint(10, "growing the volume")
        await self._call(
            where.backend, lambda d: d.resize_volume(where.pool, where.name, int(new_size) * GiB)
        )

        def done(current: VolumeRow) -> None:
            current.size_gib = int(new_size)
            current.state = int(state)

        grown = await self._finish(row.uid, done)
        # Attached: the hosts' agents tell the guests (blockResize).
        await self._tell_hosts(row, [a.instance.rsplit("/", 1)[1] for a in grown.attachments])
        return grown

    async def _retype_volume(self, ctx: OperationContext) -> pb.Volume:
        row = await self._volume_row(ctx)
        _, state, new_type = ctx.payload.decode().split("|")

        def plan(session: Session) -> tuple[Placement, Placement]:
            kind = volume_type(session, new_type)
            return placement(session, row), Placement(kind.backend, kind.pool, volume_object(row))

        old, new = await ctx.db.run(plan)
        if old.pool != new.pool:
            await ctx.checkpoint(10, f"copying the volume to pool {new.pool}")
            await self._call(new.backend, lambda d: _move(d, old, new, row.size_gib * GiB))

        def done(current: VolumeRow) -> None:
            current.volume_type_id = new_type
            current.state = int(state)

        return await self._finish(row.uid, done)

    async def _create_snapshot(self, ctx: OperationContext) -> pb.Snapshot:
        uid = ctx.payload.decode()
        snap = await ctx.db.run(lambda s: _snapshot_by_uid(s, uid))
        if snap is None:
            raise NotFound(SNAPSHOTS.type_name, ctx.target)

        def where(session: Session) -> Placement:
            volume = VOLUMES.get(session, "/".join(ctx.target.split("/")[:6]))
            return placement(session, volume)

        volume = await ctx.db.run(where)
        await ctx.checkpoint(10, "taking the snapshot")
        try:
            await self._call(
                volume.backend,
                lambda d: d.create_snapshot(volume.pool, volume.name, snapshot_object(snap)),
            )
        except Exception as error:
            message = str(getattr(error, "message", error))[:255]
            await ctx.db.run(lambda s: _set_snapshot(s, uid, pb.Snapshot.STATE_ERROR, message))
            raise
        return await ctx.db.run(lambda s: _set_snapshot(s, uid, pb.Snapshot.STATE_AVAILABLE, ""))

    async def _delete_snapshot(self, ctx: OperationContext) -> empty_pb2.Empty:
        uid = ctx.payload.decode().split("|")[0]
        snap = await ctx.db.run(lambda s: _snapshot_by_uid(s, uid))
        if snap is None:
            return empty_pb2.Empty()

        def where(session: Session) -> Placement:
            volume = VOLUMES.get(session, "/".join(ctx.target.split("/")[:6]))
            return placement(session, volume)

        volume = await ctx.db.run(where)
        await ctx.checkpoint(10, "deleting the snapshot (flattening its clones)")
        await self._call(
            volume.backend,
            lambda d: d.delete_snapshot(volume.pool, volume.name, snapshot_object(snap)),
        )

        def remove(session: Session) -> None:
            current = _snapshot_by_uid(session, uid)
            if current is not None:
                charge(
                    session, current.project_id, {"snapshots": -1, "gigabytes": -current.size_gib}
                )
                session.delete(current)

        await ctx.db.run(remove)
        return empty_pb2.Empty()


def _make(ops: VolumeOperations, driver: VolumeDriver, plan: _CreatePlan, uid: str) -> None:
    """Makes the backend object of a volume from its plan (idempotent, in a worker thread)."""
    target = plan.target
    driver.ensure_pool(target.pool)
    if plan.image is not None:
        image_uid, fmt = plan.image
        base = driver.ensure_image_base(
            target.pool, image_uid, ops.runtime.images.path(image_uid), fmt
        )
        driver.clone_volume(base, target.pool, target.name, plan.size_bytes)
    elif plan.snapshot is not None:
        driver.clone_volume(plan.snapshot, target.pool, target.name, plan.size_bytes)
    elif plan.backup is not None:
        driver.copy_volume(plan.backup, None, target.pool, target.name)
        driver.resize_volume(target.pool, target.name, plan.size_bytes)
    elif plan.volume is not None:
        source = plan.volume
        temporary = driver.create_snapshot(source.pool, source.name, f"kumo-clone-{uid}")
        driver.clone_volume(temporary, target.pool, target.name, plan.size_bytes)
        driver.flatten_volume(target.pool, target.name)
        driver.delete_snapshot(source.pool, source.name, temporary.snapshot)
    else:
        driver.create_volume(target.pool, target.name, plan.size_bytes)


def delete_volume_data(driver: VolumeDriver, where: Placement, *, everything: bool = False) -> None:
    """Deletes a volume with the snapshot its latest backup left on it (or, `everything`,
    with all its snapshots, flattening their clones). Idempotent."""
    try:
        snapshots = driver.volume_info(where.pool, where.name).snapshots
    except VolumeNotFound:
        snapshots = ()  # gone, or half-removed by a crash: delete_volume finishes it
    for snapshot in snapshots:
        if everything or snapshot.startswith("kumo-bsnap-"):
            driver.delete_snapshot(where.pool, where.name, snapshot)
    driver.delete_volume(where.pool, where.name)


def _move(driver: VolumeDriver, old: Placement, new: Placement, size_bytes: int) -> None:
    """Copies a volume into another pool of the same backend, then removes the old one (the
    next backup is then a full one)."""
    driver.ensure_pool(new.pool)
    with_data = driver.create_snapshot(old.pool, old.name, "kumo-retype")
    driver.clone_volume(with_data, new.pool, new.name, size_bytes)
    driver.flatten_volume(new.pool, new.name)
    driver.delete_snapshot(old.pool, old.name, with_data.snapshot)
    delete_volume_data(driver, old)


def _set_created(row: VolumeRow) -> None:
    """A new volume is AVAILABLE, or IN_USE when the instance made with it (its boot volume)
    holds it."""
    session = Session.object_session(row)
    attached = session is not None and bool(attachments_of(session, row))
    row.state = V.STATE_IN_USE if attached else V.STATE_AVAILABLE
    row.state_message = ""


def _set_error(row: VolumeRow, message: str) -> None:
    row.state = V.STATE_ERROR
    row.state_message = message


def _snapshot_by_uid(session: Session, uid: str) -> SnapshotRow | None:
    return session.scalar(select(SnapshotRow).where(SnapshotRow.uid == uid))


def _set_snapshot(session: Session, uid: str, state: int, message: str) -> pb.Snapshot:
    row = _snapshot_by_uid(session, uid)
    if row is None:
        raise NotFound(SNAPSHOTS.type_name, uid)
    row.state = state
    row.state_message = message
    row.version += 1
    session.flush()
    return snapshot_to_proto(row)


# ---- cancel hooks (run in the transaction that marks the operation CANCELLED) ---------------


def _fail_create(session: Session, operation: OperationRow) -> None:
    row = _by_uid(session, operation.payload.decode())
    if row is not None and row.state == V.STATE_CREATING:
        _set_error(row, "creation was cancelled")


def _restore_state(session: Session, operation: OperationRow) -> None:
    uid, state = operation.payload.decode().split("|")[:2]
    row = _by_uid(session, uid)
    if row is not None:
        row.state = int(state)
        row.version += 1


def _undo_extend(session: Session, operation: OperationRow) -> None:
    uid, state, old_size, new_size = operation.payload.decode().split("|")
    row = _by_uid(session, uid)
    if row is not None:
        charge(session, row.project_id, {"gigabytes": int(old_size) - int(new_size)})
        row.state = int(state)
        row.version += 1


def _fail_snapshot(session: Session, operation: OperationRow) -> None:
    row = _snapshot_by_uid(session, operation.payload.decode())
    if row is not None and row.state == pb.Snapshot.STATE_CREATING:
        row.state = pb.Snapshot.STATE_ERROR
        row.state_message = "creation was cancelled"


def _restore_snapshot(session: Session, operation: OperationRow) -> None:
    uid, state = operation.payload.decode().split("|")
    row = _snapshot_by_uid(session, uid)
    if row is not None:
        row.state = int(state)
