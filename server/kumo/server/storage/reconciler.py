"""The storage reconciler: every backend object Kumo names is accounted by a row.

A volume's row is written (with its quota) before its backend object exists and removed only
after the object is gone, so objects without rows appear only when something outside that
order happened: a database restored from an older backup, a row removed by hand, a foreign
control plane sharing the pool. Rows without a finished object appear when the API process
died mid-create and its operation was then failed (lease expiry) instead of resumed. Each
pass, level-based:

- `kumo-vol-<uid>` objects with no volume row: their snapshots and the object are removed
  (logged as a warning). Objects are listed *before* rows are read, so a create that lands
  between the two reads is never taken for an orphan.
- `kumo-snap-<uid>` snapshots of known volumes with no snapshot row: removed (logged).
- volumes in CREATING with no unfinished operation: adopted (AVAILABLE, logged) when their
  object exists at the recorded size, else ERROR ("creation was interrupted").

Instance root disks (`kumo-disk-*`) are accounted by instance rows: see
`root_disks.reconcile`. Image bases (`kumo-img-*`) are a cache and are left alone. Every
step is idempotent, so several API replicas may run passes at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.drivers.errors import DriverError, VolumeNotFound
from kumo.drivers.storage.base import VolumeDriver
from kumo.server.db.models import OperationRow, SnapshotRow, VolumeRow, VolumeTypeRow
from kumo.server.operations.store import OperationState
from kumo.server.runtime import Runtime
from kumo.server.services.storage.common import VOLUMES, V
from kumo.server.storage import root_disks

log = logging.getLogger(__name__)

VOLUME_PREFIX = "kumo-vol-"
SNAPSHOT_PREFIX = "kumo-snap-"
GiB = 1 << 30


@dataclass
class Report:
    """What one pass did."""

    removed_volumes: list[str] = field(default_factory=list)  # pool/object
    removed_snapshots: list[str] = field(default_factory=list)  # pool/object@snapshot
    adopted: list[str] = field(default_factory=list)  # volume uids
    failed: list[str] = field(default_factory=list)  # volume uids marked ERROR
    removed_root_disks: list[str] = field(default_factory=list)  # pool/object


def _pools(session: Session) -> dict[int, set[str]]:
    pools: dict[int, set[str]] = {}
    for backend, pool in session.execute(select(VolumeTypeRow.backend, VolumeTypeRow.pool)):
        pools.setdefault(backend, set()).add(pool)
    return pools


def _stuck_creates(session: Session) -> list[tuple[str, int, int, str]]:
    """(uid, backend, size_gib, pool) of CREATING volumes whose create is not in flight."""
    active = set(
        session.scalars(
            select(OperationRow.target).where(
                OperationRow.state.in_([OperationState.PENDING, OperationState.RUNNING])
            )
        )
    )
    rows = session.execute(
        select(VolumeRow, VolumeTypeRow.backend, VolumeTypeRow.pool)
        .join(VolumeTypeRow, VolumeTypeRow.id == VolumeRow.volume_type_id)
        .where(VolumeRow.state == V.STATE_CREATING)
    ).all()
    return [
        (row.uid, backend, row.size_gib, pool)
        for row, backend, pool in rows
        if VOLUMES.name_of_row(row) not in active
    ]


def _settle(session: Session, uid: str, adopted: bool) -> None:
    row = session.scalar(select(VolumeRow).where(VolumeRow.uid == uid))
    if row is None or row.state != V.STATE_CREATING:
        return
    row.state = V.STATE_AVAILABLE if adopted else V.STATE_ERROR
    row.state_message = "" if adopted else "creation was interrupted"
    row.version += 1


def _remove_volume(driver: VolumeDriver, pool: str, name: str) -> None:
    with contextlib.suppress(VolumeNotFound):
        for snapshot in driver.volume_info(pool, name).snapshots:
            driver.delete_snapshot(pool, name, snapshot)
    driver.delete_volume(pool, name)


async def reconcile(runtime: Runtime) -> Report:
    """One pass over every configured backend's pools; returns what it changed."""
    report = Report()
    pools = await runtime.db.run(_pools)
    for backend, names in sorted(pools.items()):
        if not runtime.storage.configured(backend):
            continue
        driver = runtime.storage.driver(backend)
        for pool in sorted(names):
            await _reconcile_pool(runtime, driver, pool, report)
    for uid, backend, size_gib, pool in await runtime.db.run(_stuck_creates):
        if not runtime.storage.configured(backend):
            continue
        driver = runtime.storage.driver(backend)
        try:
            info = await asyncio.to_thread(driver.volume_info, pool, f"{VOLUME_PREFIX}{uid}")
            adopted = info.size_bytes >= size_gib * GiB
        except VolumeNotFound:
            adopted = False
        await runtime.db.run(lambda s, uid=uid, adopted=adopted: _settle(s, uid, adopted))  # type: ignore[misc]
        if adopted:
            log.warning("storage reconciler adopted volume %s (its create was interrupted)", uid)
            report.adopted.append(uid)
        else:
            log.warning("storage reconciler marked volume %s ERROR (create interrupted)", uid)
            report.failed.append(uid)
    report.removed_root_disks = await root_disks.reconcile(runtime)
    return report


async def _reconcile_pool(
    runtime: Runtime, driver: VolumeDriver, pool: str, report: Report
) -> None:
    objects = [
        name
        for name in await asyncio.to_thread(driver.list_volumes, pool)
        if name.startswith(VOLUME_PREFIX)
    ]
    if not objects:
        return
    uids = [name.removeprefix(VOLUME_PREFIX) for name in objects]
    known = set(
        await runtime.db.run(
            lambda s: list(s.scalars(select(VolumeRow.uid).where(VolumeRow.uid.in_(uids))))
        )
    )
    snapshots = set(
        await runtime.db.run(
            lambda s: list(
                s.scalars(
                    select(SnapshotRow.uid)
                    .join(
                        VolumeRow,
                        (VolumeRow.project_id == SnapshotRow.project_id)
                        & (VolumeRow.zone_id == SnapshotRow.zone_id)
                        & (VolumeRow.id == SnapshotRow.volume_id),
                    )
                    .where(VolumeRow.uid.in_(uids))
                )
            )
        )
    )
    for name, uid in zip(objects, uids, strict=True):
        try:
            if uid not in known:
                await asyncio.to_thread(_remove_volume, driver, pool, name)
                log.warning("storage reconciler removed orphaned volume %s/%s", pool, name)
                report.removed_volumes.append(f"{pool}/{name}")
                continue
            info = await asyncio.to_thread(driver.volume_info, pool, name)
            for snapshot in info.snapshots:
                if snapshot.startswith(SNAPSHOT_PREFIX) and (
                    snapshot.removeprefix(SNAPSHOT_PREFIX) not in snapshots
                ):
                    await asyncio.to_thread(driver.delete_snapshot, pool, name, snapshot)
                    log.warning(
                        "storage reconciler removed orphaned snapshot %s/%s@%s",
                        pool,
                        name,
                        snapshot,
                    )
                    report.removed_snapshots.append(f"{pool}/{name}@{snapshot}")
        except DriverError:
            log.exception("storage reconciler could not reconcile %s/%s", pool, name)


class StorageReconciler:
    """The periodic pass as an asyncio task (every `storage.reconcile_seconds`; 0 = off)."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Starts the passes. Idempotent; does nothing when disabled."""
        if self._task is None and self._runtime.config.storage.reconcile_seconds > 0:
            self._task = asyncio.create_task(self._loop(), name="kumo-storage-reconciler")

    async def stop(self) -> None:
        """Stops the passes. Idempotent."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._runtime.config.storage.reconcile_seconds)
            try:
                await reconcile(self._runtime)
            except Exception:
                log.exception("storage reconciler pass failed; retrying later")
