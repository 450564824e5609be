"""Instance root disks in Ceph: copy-on-write clones of the image's base, as Ceph deployments
of OpenStack have them (Nova's RBD image backend).

With `storage.root_disks = "rbd"`, CreateInstance records the root disk's name in the
instance's row (`InstanceRow.root_disk`, `<pool>/kumo-disk-<instance uid>`) in its creating
transaction, before anything exists in Ceph. The BUILD operation then makes it (`make`, before
it places the instance): the image's base `kumo-img-<image uid>@base` once per image and pool,
then a clone of it grown to the flavor's disk, without copying data. The assignment hands it
to the host's agent as the guest's `root_volume` (serial `ROOT_DISK_SERIAL`, like every root
disk), which the host opens with its own cephx configuration as it opens a boot volume.
DeleteInstance removes it once the host has let the guest go, before the row goes.
RebuildInstance clones the new image under a new name (`...-<random>`), switches
the row to it, and removes the old clone once the guest runs from the new one.

Quota: a root disk is the instance's disk (its flavor's), not a volume: it charges no
`volumes` or `gigabytes`, as Nova's RBD image backend does not charge Cinder's.

`reconcile` (one step of the storage reconciler) removes, with a warning, every
`kumo-disk-*` object of the root disk pools that no row records: objects of instances that
no longer exist (a row removed by a project cleanup or by hand), and old clones of an
instance with no operation in flight (a rebuild interrupted between its switch and its
removal). Objects are listed before rows are read, so a clone made between the two reads is
never taken for an orphan. A clone still open by a guest is busy: it is tried again at the
next pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.drivers.errors import DriverError, VolumeNotFound
from kumo.drivers.storage.base import VolumeDriver
from kumo.image.v1 import resources_pb2 as ipb
from kumo.server.db.models import ImageRow, InstanceRow, OperationRow
from kumo.server.errors import FailedPrecondition
from kumo.server.operations.store import OperationState
from kumo.server.runtime import Runtime
from kumo.server.services.compute.common import INSTANCES
from kumo.storage.v1 import resources_pb2 as spb

log = logging.getLogger(__name__)

PREFIX = "kumo-disk-"
GiB = 1 << 30
#: Length of an instance uid (UUID text) in a root disk's name.
_UID_LENGTH = 36


def first_name(pool: str, instance_uid: str) -> str:
    """The root disk a new instance gets: `pool/kumo-disk-<uid>`."""
    return f"{pool}/{PREFIX}{instance_uid}"


def next_name(current: str, instance_uid: str) -> str:
    """A root disk for a rebuild to make beside `current` (same pool), its own even when
    rebuilds overlap (the last to switch wins; the reconciler removes the others' clones)."""
    pool = current.partition("/")[0]
    return f"{pool}/{PREFIX}{instance_uid}-{uuid.uuid4().hex[:8]}"


def _split(path: str) -> tuple[str, str]:
    pool, _, name = path.partition("/")
    return pool, name


def _driver(runtime: Runtime) -> VolumeDriver:
    return runtime.storage.driver(spb.BACKEND_RBD)


@dataclass(frozen=True)
class _Plan:
    path: str
    image_uid: str
    image_format: str
    size_bytes: int


def _plan(session: Session, instance_uid: str, path: str) -> _Plan | None:
    """What the root disk `path` of the instance is made of; None if the instance is gone.
    Raises FailedPrecondition (its image is gone)."""
    row = session.scalar(select(InstanceRow).where(InstanceRow.uid == instance_uid))
    if row is None:
        return None
    image = session.get(ImageRow, (row.image_project_id, row.image_id))
    if image is None or image.state != ipb.Image.STATE_ACTIVE:
        name = f"projects/{row.image_project_id}/images/{row.image_id}"
        raise FailedPrecondition(
            f"{name} is not ACTIVE: no root disk can be cloned from it",
            type="IMAGE_NOT_ACTIVE",
            subject=name,
        )
    fmt = "qcow2" if image.disk_format == ipb.DISK_FORMAT_QCOW2 else "raw"
    return _Plan(path, image.uid, fmt, row.disk_gib * GiB)


def _clone(driver: VolumeDriver, image_path: Path, plan: _Plan) -> None:
    pool, name = _split(plan.path)
    driver.ensure_pool(pool)
    base = driver.ensure_image_base(pool, plan.image_uid, image_path, plan.image_format)
    try:
        driver.volume_info(pool, name)
        return  # made before (a resumed build, or an evacuation: the disk stays)
    except VolumeNotFound:
        pass
    driver.clone_volume(base, pool, name, plan.size_bytes)


async def make(runtime: Runtime, instance_uid: str, path: str) -> None:
    """Makes the root disk `path` of the instance from its image, if missing (the image's
    base first, once per pool). Idempotent; an existing disk is kept as it is. Raises
    FailedPrecondition (image gone), StorageUnavailable, DriverError."""
    plan = await runtime.db.run(lambda s: _plan(s, instance_uid, path))
    if plan is None:
        return
    image_path = runtime.images.path(plan.image_uid)
    await asyncio.to_thread(_clone, _driver(runtime), image_path, plan)


async def remove(runtime: Runtime, path: str) -> None:
    """Deletes the root disk `path`. Idempotent (a missing disk is success). Raises VolumeBusy
    (a guest still has it open after the driver's wait), StorageUnavailable, DriverError."""
    pool, name = _split(path)
    await asyncio.to_thread(_driver(runtime).delete_volume, pool, name)


def _pools(session: Session, runtime: Runtime) -> set[str]:
    pools = {
        _split(path)[0]
        for path in session.scalars(
            select(InstanceRow.root_disk).where(InstanceRow.root_disk.is_not(None))
        )
        if path
    }
    if (configured := runtime.config.storage.rbd_root_pool) is not None:
        pools.add(configured)
    return pools


def _recorded(session: Session, uids: list[str]) -> dict[str, str | None]:
    """The root disk each of these instances records, or None while an operation on it runs
    (a build or rebuild between its steps: any of its clones may be wanted)."""
    active = set(
        session.scalars(
            select(OperationRow.target).where(
                OperationRow.state.in_([OperationState.PENDING, OperationState.RUNNING])
            )
        )
    )
    result: dict[str, str | None] = {}
    for row in session.scalars(select(InstanceRow).where(InstanceRow.uid.in_(uids))):
        result[row.uid] = None if INSTANCES.name_of_row(row) in active else (row.root_disk or "")
    return result


async def reconcile(runtime: Runtime) -> list[str]:
    """One pass over the root disk pools; returns the `pool/name`s it removed."""
    if not runtime.storage.configured(spb.BACKEND_RBD):
        return []
    driver = _driver(runtime)
    removed = []
    for pool in sorted(await runtime.db.run(lambda s: _pools(s, runtime))):
        objects = [
            name
            for name in await asyncio.to_thread(driver.list_volumes, pool)
            if name.startswith(PREFIX)
        ]
        if not objects:
            continue
        uids = sorted({name.removeprefix(PREFIX)[:_UID_LENGTH] for name in objects})
        recorded = await runtime.db.run(lambda s, uids=uids: _recorded(s, uids))  # type: ignore[misc]
        for name in objects:
            uid = name.removeprefix(PREFIX)[:_UID_LENGTH]
            path = f"{pool}/{name}"
            if uid in recorded and recorded[uid] in (None, path):
                continue
            why = "its instance is gone" if uid not in recorded else "an older root disk"
            try:
                with contextlib.suppress(VolumeNotFound):
                    await asyncio.to_thread(driver.delete_volume, pool, name)
            except DriverError as error:
                log.warning("storage reconciler cannot remove root disk %s yet: %s", path, error)
                continue
            log.warning("storage reconciler removed orphaned root disk %s (%s)", path, why)
            removed.append(path)
    return removed
