"""DeleteProject's storage step: a project's volumes, snapshots and backups leave the
backends before their rows go (so nothing is left for the reconciler to find). Resumable:
every driver call is idempotent and each row is removed right after its objects."""

from __future__ import annotations

from functools import partial

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kumo.drivers.errors import VolumeNotFound
from kumo.drivers.storage.base import SnapshotRef, VolumeDriver
from kumo.server.db.models import BackupRow, VolumeRow
from kumo.server.operations.handlers import OperationContext
from kumo.server.services.storage.common import backup_point
from kumo.server.services.storage.volume_operations import (
    Placement,
    VolumeOperations,
    delete_volume_data,
    placement,
)


def _volumes(project_id: str, session: Session) -> list[tuple[str, Placement]]:
    rows = session.scalars(select(VolumeRow).where(VolumeRow.project_id == project_id))
    return [(row.uid, placement(session, row)) for row in rows]


def _backups(project_id: str, session: Session) -> list[tuple[str, int, SnapshotRef]]:
    rows = session.scalars(select(BackupRow).where(BackupRow.project_id == project_id))
    return [(row.uid, row.backend, backup_point(row)) for row in rows]


def _remove_backup(point: SnapshotRef, driver: VolumeDriver) -> None:
    """Deletes a backup's point in time, and the backup image once it holds none."""
    driver.delete_snapshot(point.pool, point.volume, point.snapshot)
    try:
        left = driver.volume_info(point.pool, point.volume).snapshots
    except VolumeNotFound:
        return
    if not any(s.startswith("kumo-bak-") for s in left):
        driver.delete_volume(point.pool, point.volume)


def _forget_volume(uid: str, session: Session) -> None:
    session.execute(delete(VolumeRow).where(VolumeRow.uid == uid))


def _forget_backup(uid: str, session: Session) -> None:
    session.execute(delete(BackupRow).where(BackupRow.uid == uid))


class ProjectCleanup(VolumeOperations):
    """The storage part of deleting a project (a part of the storage servicer)."""

    async def _delete_project_storage(self, ctx: OperationContext, project_id: str) -> None:
        await ctx.checkpoint(5, "deleting volumes and backups")
        for uid, where in await ctx.db.run(partial(_volumes, project_id)):
            await self._call(
                where.backend, partial(delete_volume_data, where=where, everything=True)
            )
            await ctx.db.run(partial(_forget_volume, uid))
        for uid, backend, point in await ctx.db.run(partial(_backups, project_id)):
            await self._call(backend, partial(_remove_backup, point))
            await ctx.db.run(partial(_forget_backup, uid))
