"""Backups: copies of a volume in its type's backup pool, incremental by snapshot diff.

The backup pool holds one image per volume, `kumo-bak-<volume uid>`, with one snapshot per
backup, `kumo-bak-<backup uid>` (the point in time a restore reads). The source volume keeps
a snapshot of its latest backup, `kumo-bsnap-<backup uid>`: the next backup copies only what
changed since it (RBD's snapshot diff; qcow2 copies everything) and then drops it. A backup
records the one it was made over (`parent_backup`); a backup others were made over cannot be
deleted first. Backups outlive their volume; `CreateVolume(source_backup=...)` restores one.
A backup charges the volume's size to the `gigabytes` quota until deleted.
"""

from __future__ import annotations

from typing import cast

from google.longrunning import operations_pb2
from google.protobuf import empty_pb2
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from kumo.drivers.storage.base import SnapshotRef, VolumeDriver
from kumo.server.api.convert import check_etag, common_fields
from kumo.server.api.fields import check_required
from kumo.server.api.idempotency import idempotent
from kumo.server.api.resources import apply_common
from kumo.server.auth.principal import Principal, current_principal
from kumo.server.db.models import BackupRow, OperationRow, VolumeRow
from kumo.server.errors import FailedPrecondition, InvalidArgument, NotFound
from kumo.server.interceptors.base import Context
from kumo.server.operations import store
from kumo.server.operations.handlers import OperationContext
from kumo.server.quota import charge
from kumo.server.services.storage.common import (
    BACKUPS,
    VOLUMES,
    V,
    backup_image,
    backup_point,
    busy,
    visible_volume,
    volume_type,
    zone_parent,
)
from kumo.server.services.storage.volume_operations import VolumeOperations, placement
from kumo.storage.v1 import resources_pb2 as pb
from kumo.storage.v1 import storage_service_pb2 as api

CREATE_BACKUP = "storage.CreateBackup"
DELETE_BACKUP = "storage.DeleteBackup"
B = pb.Backup


def source_snapshot(uid: str) -> str:
    """The snapshot a backup leaves on its volume, for the next backup to diff from."""
    return f"kumo-bsnap-{uid}"


def backup_to_proto(row: BackupRow) -> pb.Backup:
    """Renders a backup row."""
    parent = (
        BACKUPS.name_of(row.project_id, row.zone_id, row.parent_backup_id)
        if row.parent_backup_id
        else ""
    )
    return pb.Backup(
        **common_fields(row, BACKUPS.name_of_row(row)),
        description=row.description,
        source_volume=row.source_volume,
        parent_backup=parent,
        size_gib=row.size_gib,
        state=cast(pb.Backup.State, row.state),
        state_message=row.state_message,
    )


def visible_backup(
    session: Session, caller: Principal, name: str, field: str = "name"
) -> BackupRow:
    """The backup if the caller may see its project; NotFound otherwise."""
    caller.require_project(BACKUPS.key(name, field)[0], BACKUPS.type_name, name)
    return BACKUPS.get(session, name, field)


def _by_uid(session: Session, uid: str) -> BackupRow | None:
    return session.scalar(select(BackupRow).where(BackupRow.uid == uid))


def _latest(session: Session, row: BackupRow) -> BackupRow | None:
    """The newest AVAILABLE backup of the same volume before `row`."""
    return session.scalar(
        select(BackupRow)
        .where(
            BackupRow.volume_uid == row.volume_uid,
            BackupRow.state == B.STATE_AVAILABLE,
            BackupRow.uid != row.uid,
        )
        .order_by(BackupRow.create_time.desc(), BackupRow.id.desc())
        .limit(1)
    )


def _back_up(driver: VolumeDriver, volume: SnapshotRef, since: str | None, row: BackupRow) -> bool:
    """Takes the backup in the backend (idempotent); returns whether it was incremental."""
    taken = driver.create_snapshot(volume.pool, volume.volume, volume.snapshot)
    if since is not None and since not in driver.volume_info(volume.pool, volume.volume).snapshots:
        since = None
    driver.ensure_pool(row.pool)
    driver.copy_volume(taken, since, row.pool, backup_image(row))
    point = backup_point(row)
    driver.create_snapshot(point.pool, point.volume, point.snapshot)
    if since is not None:
        driver.delete_snapshot(volume.pool, volume.volume, since)
    return since is not None


class Backups(VolumeOperations):
    """Backup methods and their operations (a part of the storage servicer)."""

    def register_backup_handlers(self) -> None:
        """Registers the backup operation kinds."""
        self.runtime.handlers.register(CREATE_BACKUP, self._create_backup, _fail_backup)
        self.runtime.handlers.register(DELETE_BACKUP, self._delete_backup, _restore_backup)

    async def CreateBackup(
        self, request: api.CreateBackupRequest, context: Context
    ) -> operations_pb2.Operation:
        caller = current_principal()
        project_id, zone_id = zone_parent(caller, request.parent)
        check_required(request.backup, "backup.")

        def create(session: Session) -> operations_pb2.Operation:
            source = request.backup.source_volume
            key = VOLUMES.key(source, "backup.source_volume")
            if key[:2] != (project_id, zone_id):
                raise InvalidArgument.field(
                    "backup.source_volume", "must be in the parent's project and zone"
                )
            volume = visible_volume(session, caller, source, "backup.source_volume", lock=True)
            if volume.state not in (V.STATE_AVAILABLE, V.STATE_IN_USE):
                raise busy(source, volume.state, "back it up")
            kind = volume_type(session, volume.volume_type_id)
            charge(session, project_id, {"gigabytes": volume.size_gib})
            row = BackupRow(
                project_id=project_id,
                zone_id=zone_id,
                volume_uid=volume.uid,
                source_volume=source,
                backend=kind.backend,
                pool=kind.backup_pool or kind.pool,
                size_gib=volume.size_gib,
                state=B.STATE_CREATING,
            )
            fields = {f.name for f, _ in request.backup.ListFields()}
            apply_common(row, request.backup, fields, "backup")
            BACKUPS.insert(session, request.backup_id, "backup_id", row)
            session.flush()
            op = store.create(
                session,
                project_id=caller.project_id,
                kind=CREATE_BACKUP,
                target=BACKUPS.name_of_row(row),
                payload=row.uid.encode(),
            )
            return store.to_proto(op)

        operation = await idempotent(
            self.runtime.db, "CreateBackup", request, operations_pb2.Operation, create
        )
        self.runtime.operation_written()
        return operation

    async def GetBackup(self, request: api.GetBackupRequest, context: Context) -> pb.Backup:
        caller = current_principal()
        return await self.runtime.db.run(
            lambda s: backup_to_proto(visible_backup(s, caller, request.name))
        )

    async def ListBackups(
        self, request: api.ListBackupsRequest, context: Context
    ) -> api.ListBackupsResponse:
        caller = current_principal()
        project_id, zone_id = zone_parent(caller, request.parent, any_zone=True)
        where = [BackupRow.project_id == project_id]
        if zone_id != "-":
            where.append(BackupRow.zone_id == zone_id)

        def page(session: Session) -> api.ListBackupsResponse:
            result = BACKUPS.list(session, self.runtime.pager, request, where, request.parent)
            return api.ListBackupsResponse(
                backups=[backup_to_proto(r) for r in result.rows],
                next_page_token=result.next_page_token,
            )

        return await self.runtime.db.run(page)

    async def DeleteBackup(
        self, request: api.DeleteBackupRequest, context: Context
    ) -> operations_pb2.Operation:
        caller = current_principal()

        def start(session: Session) -> operations_pb2.Operation:
            row = visible_backup(session, caller, request.name)
            check_etag(request.etag, row.version, request.name)
            if row.state not in (B.STATE_AVAILABLE, B.STATE_ERROR, B.STATE_DELETING):
                raise FailedPrecondition(
                    f"{request.name} is {B.State.Name(row.state)}: cannot delete it",
                    type="BACKUP_STATE",
                    subject=request.name,
                )
            if session.scalar(
                select(
                    exists().where(
                        BackupRow.project_id == row.project_id,
                        BackupRow.zone_id == row.zone_id,
                        BackupRow.parent_backup_id == row.id,
                    )
                )
            ):
                raise FailedPrecondition(
                    f"a later backup was made over {request.name}; delete it first",
                    type="BACKUP_HAS_DEPENDENTS",
                    subject=request.name,
                )
            payload = f"{row.uid}|{row.state}".encode()
            row.state = B.STATE_DELETING
            row.version += 1
            op = store.create(
                session,
                project_id=caller.project_id,
                kind=DELETE_BACKUP,
                target=request.name,
                payload=payload,
            )
            return store.to_proto(op)

        operation = await idempotent(
            self.runtime.db, "DeleteBackup", request, operations_pb2.Operation, start
        )
        self.runtime.operation_written()
        return operation

    async def _create_backup(self, ctx: OperationContext) -> pb.Backup:
        uid = ctx.payload.decode()

        def plan(session: Session) -> tuple[BackupRow, SnapshotRef, BackupRow | None]:
            row = _by_uid(session, uid)
            if row is None:
                raise NotFound(BACKUPS.type_name, ctx.target)
            volume = session.scalar(select(VolumeRow).where(VolumeRow.uid == row.volume_uid))
            if volume is None:
                raise FailedPrecondition(
                    f"{row.source_volume} is gone", type="VOLUME_GONE", subject=row.source_volume
                )
            where = placement(session, volume)
            return (
                row,
                SnapshotRef(where.pool, where.name, source_snapshot(uid)),
                _latest(session, row),
            )

        row, volume, previous = await ctx.db.run(plan)
        if row.state != B.STATE_CREATING:
            return backup_to_proto(row)
        since = source_snapshot(previous.uid) if previous is not None else None
        await ctx.checkpoint(10, "copying the volume into the backup pool")
        try:
            incremental = await self._call(row.backend, lambda d: _back_up(d, volume, since, row))
        except Exception as error:
            message = str(getattr(error, "message", error))[:255]
            await ctx.db.run(lambda s: _settle(s, uid, B.STATE_ERROR, message, None))
            raise
        parent = previous.id if incremental and previous is not None else ""
        return await ctx.db.run(lambda s: _settle(s, uid, B.STATE_AVAILABLE, "", parent))

    async def _delete_backup(self, ctx: OperationContext) -> empty_pb2.Empty:
        uid = ctx.payload.decode().split("|")[0]

        def plan(session: Session) -> tuple[BackupRow, bool, VolumeRow | None] | None:
            row = _by_uid(session, uid)
            if row is None:
                return None
            others = session.scalar(
                select(exists().where(BackupRow.volume_uid == row.volume_uid, BackupRow.uid != uid))
            )
            volume = session.scalar(select(VolumeRow).where(VolumeRow.uid == row.volume_uid))
            return row, bool(others), volume

        found = await ctx.db.run(plan)
        if found is None:
            return empty_pb2.Empty()
        row, others, volume = found
        source = await ctx.db.run(lambda s: placement(s, volume)) if volume is not None else None
        point = backup_point(row)

        def remove(driver: VolumeDriver) -> None:
            driver.delete_snapshot(point.pool, point.volume, point.snapshot)
            if source is not None:
                driver.delete_snapshot(source.pool, source.name, source_snapshot(uid))
            if not others:
                driver.delete_volume(point.pool, point.volume)

        await ctx.checkpoint(10, "deleting the backup's data")
        await self._call(row.backend, remove)

        def forget(session: Session) -> None:
            current = _by_uid(session, uid)
            if current is not None:
                charge(session, current.project_id, {"gigabytes": -current.size_gib})
                session.delete(current)

        await ctx.db.run(forget)
        return empty_pb2.Empty()


def _settle(session: Session, uid: str, state: int, message: str, parent: str | None) -> pb.Backup:
    row = _by_uid(session, uid)
    if row is None:
        raise NotFound(BACKUPS.type_name, uid)
    row.state = state
    row.state_message = message
    if parent is not None:
        row.parent_backup_id = parent
    row.version += 1
    session.flush()
    return backup_to_proto(row)


def _fail_backup(session: Session, operation: OperationRow) -> None:
    row = _by_uid(session, operation.payload.decode())
    if row is not None and row.state == B.STATE_CREATING:
        row.state = B.STATE_ERROR
        row.state_message = "creation was cancelled"


def _restore_backup(session: Session, operation: OperationRow) -> None:
    uid, state = operation.payload.decode().split("|")
    row = _by_uid(session, uid)
    if row is not None:
        row.state = int(state)
