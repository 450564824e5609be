"""The operations behind instance methods, run by the operation controller.

BUILD places the instance (scheduler), tells its host's agent, and waits for
the agent to report it in its power intent's state (RUNNING for a new one) at
the new generation; on an ERROR report or a timeout it releases the claim,
excludes that host and tries another, up to `max_build_attempts`, then leaves
the instance in ERROR with the reason. EvacuateInstance reuses it.

DELETE waits for the host's agent to report the guest removed (or goes ahead
when the host is down: the agent destroys the orphan when it comes back, as
its next full resync no longer lists it), then deletes the record and releases
the quota.

ACTION waits for the agent to converge to the new generation (power intent,
reboot or rebuild serials).

All three are resumable: each step reads the current row and continues from
what it finds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from functools import partial
from typing import Any

from google.protobuf import empty_pb2
from google.protobuf.message import Message
from sqlalchemy import delete, select
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from kumo.compute.v1 import resources_pb2 as pb
from kumo.drivers.errors import DriverError
from kumo.image.v1 import resources_pb2 as ipb
from kumo.server.controllers import claims
from kumo.server.controllers.claims import Usage
from kumo.server.controllers.scheduler import NoValidHost, place
from kumo.server.db.models import HostRow, ImageRow, InstanceRow, OperationRow, SerialOutputRow
from kumo.server.errors import Aborted, FailedPrecondition, NotFound
from kumo.server.operations.handlers import OperationContext
from kumo.server.quota import charge
from kumo.server.services.compute import interfaces, tombstones
from kumo.server.services.compute.boot_volumes import (
    await_new_volumes,
    delete_volumes,
    volume_states,
)
from kumo.server.services.compute.common import (
    INSTANCES,
    ComputePart,
    instance_by_uid,
    instance_to_proto,
    instance_values_by_uid,
)
from kumo.server.services.images import image_to_proto
from kumo.server.services.storage.attachments import release_instance
from kumo.server.services.storage.common import VOLUMES
from kumo.server.services.topology import host_state
from kumo.server.storage import root_disks
from kumo.storage.v1 import resources_pb2 as spb
from kumo.topology.v1 import resources_pb2 as tpb

log = logging.getLogger(__name__)

BUILD = "compute.BuildInstance"
DELETE = "compute.DeleteInstance"
ACTION = "compute.InstanceAction"
SNAPSHOT = "compute.SnapshotInstance"
REBUILD = "compute.RebuildInstance"
POLL_SECONDS = 1.0
S = pb.Instance
_STATE_FOR_INTENT: dict[int, int] = {
    S.POWER_INTENT_RUNNING: S.STATE_RUNNING,
    S.POWER_INTENT_STOPPED: S.STATE_STOPPED,
    S.POWER_INTENT_SUSPENDED: S.STATE_SUSPENDED,
}


def _volume_problem(row: InstanceRow, states: dict[str, int]) -> str | None:
    """Why the instance cannot be built with its volumes (`states`: by id, from
    `volume_states`): one in ERROR (it could not be made), or its boot volume gone."""
    boot = row.boot_volume_id
    failed = sorted(v for v, state in states.items() if state == spb.Volume.STATE_ERROR)
    if failed:
        name = VOLUMES.name_of(row.project_id, row.zone_id, failed[0])
        return f"the {'boot ' if failed[0] == boot else ''}volume {name} is in ERROR"
    if boot is not None and boot not in states:
        return f"the boot volume {VOLUMES.name_of(row.project_id, row.zone_id, boot)} is gone"
    return None


class InstanceOperations(ComputePart):
    """Handlers of the instance operations (a part of the compute servicer)."""

    def register_instance_handlers(self) -> None:
        """Registers BUILD, DELETE and ACTION with the operation controller."""
        self.runtime.handlers.register(BUILD, self._build)
        self.runtime.handlers.register(DELETE, self._delete)
        self.runtime.handlers.register(ACTION, self._converge)
        self.runtime.handlers.register(REBUILD, self._rebuild)
        self.runtime.handlers.register(SNAPSHOT, self._snapshot, _forget_snapshot_image)
        self.runtime.project_cleanups.append(self._delete_project_instances)

    async def _delete_project_instances(self, ctx: OperationContext, project_id: str) -> None:
        """Project cleanup: drops the project's instances with their claims and consoles
        at once; their hosts' agents, woken here, destroy the guests as no longer assigned
        (as after any full resync). Idempotent."""
        await ctx.checkpoint(3, "deleting instances")

        def drop(session: Session) -> set[str]:
            rows = session.scalars(
                select(InstanceRow).where(InstanceRow.project_id == project_id)
            ).all()
            for row in rows:
                self._forget(session, row.uid, charge_quota=False)
            return {row.host_id for row in rows if row.host_id}

        for host in await ctx.db.run(drop):
            self.runtime.notifier.notify(f"host:{host}")

    async def notify_host_of(self, name: str) -> None:
        """Wakes the assignment streams of the host the named instance is on and of the host
        it migrates to, if any, with just that instance's assignment to send."""
        key = INSTANCES.key(name)
        found = await self.runtime.db.run(
            lambda s: s.execute(
                select(InstanceRow.uid, InstanceRow.host_id, InstanceRow.migration_host_id).where(
                    InstanceRow.project_id == key[0],
                    InstanceRow.zone_id == key[1],
                    InstanceRow.id == key[2],
                )
            ).first()
        )
        if found is not None:
            self.notify_hosts(found.host_id, found.migration_host_id, about=found.uid)

    def notify_hosts(self, *hosts: str | None, about: str | None = None) -> None:
        """Wakes the assignment streams of these hosts (None: skipped), to send the
        instance `about` names, or (None) their complete sets."""
        for host in hosts:
            if host:
                self.runtime.notifier.notify(f"host:{host}", about)

    async def _row(self, ctx: OperationContext, uid: str | None = None) -> InstanceRow:
        """The row of the operation's instance (`uid`, by default the payload)."""
        row = await ctx.db.run(lambda s: instance_by_uid(s, uid or ctx.payload.decode()))
        if row is None:
            raise NotFound(INSTANCES.type_name, ctx.target)
        return row

    def _reports(self, uid: str) -> contextlib.AbstractContextManager[asyncio.Event]:
        """The wake-ups of the instance's reports, from now on: enter it before reading the
        row, so that a report landing during the read still wakes the next wait."""
        return self.runtime.notifier.listening(f"instance:{uid}")

    @staticmethod
    async def _next_report(changed: asyncio.Event, deadline: float) -> bool:
        """Waits for the next report (or the poll interval, the safety net for reports
        received by another replica); False once `deadline` has passed."""
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), min(left, POLL_SECONDS))
        changed.clear()
        return True

    async def _wait_for_report(
        self, ctx: OperationContext, uid: str, deadline: float, changed: asyncio.Event
    ) -> Row[Any] | None:
        """The instance's columns after its next report (`changed`: from `_reports`), or
        None once `deadline` has passed (or the instance is gone)."""
        if not await self._next_report(changed, deadline):
            return None
        return await ctx.db.read(partial(instance_values_by_uid, uid=uid))

    async def _build(self, ctx: OperationContext) -> Message:
        settings = self.runtime.config.scheduler
        uid = ctx.payload.decode()
        tried: set[str] = set()

        def place_on_host(
            session: Session, attempt: int, row: InstanceRow | None = None
        ) -> InstanceRow:
            """Places the instance (`row`: read if not given); raises NotFound, NoValidHost."""
            if row is None:
                row = instance_by_uid(session, uid)
            if row is None:
                raise NotFound(INSTANCES.type_name, ctx.target)
            self._place(session, row, tried)
            ctx.progress(session, 20 * attempt, f"building on host {row.host_id}")
            return row

        def start(session: Session) -> tuple[InstanceRow, dict[str, int], bool]:
            """The row, its volumes' states, and whether it is placed: at once, in this
            transaction, when no root disk or volume is to be made or waited for first."""
            row = instance_by_uid(session, uid)
            if row is None:
                raise NotFound(INSTANCES.type_name, ctx.target)
            volumes = volume_states(session, row)
            making = spb.Volume.STATE_CREATING in volumes.values()
            if row.root_disk is None and not making and _volume_problem(row, volumes) is None:
                return place_on_host(session, 1, row), volumes, True
            if row.root_disk is None:
                ctx.progress(session, 10, "scheduling")
            else:
                ctx.progress(session, 5, "cloning the root disk from the image")
            return row, volumes, False

        reason = ""
        # Listening from before the placement: a report landing before the wait still wakes it.
        with self._reports(uid) as changed:
            try:
                row, volumes, placed = await ctx.db.run(start)
                if not placed:
                    if row.root_disk is not None:
                        await self._make_root_disk(ctx, uid, row.root_disk)
                    await self._check_volumes(ctx, row, volumes)
                for attempt in range(1, settings.max_build_attempts + 1):
                    if not placed:
                        row = await ctx.db.run(partial(place_on_host, attempt=attempt))
                    placed = False
                    assert row.host_id is not None
                    host = row.host_id
                    self.runtime.notifier.notify(f"host:{host}", about=uid)
                    outcome = await self._built(ctx, uid, row, host, changed)
                    if not isinstance(outcome, str):
                        return outcome
                    reason = outcome
                    tried.add(host)
                    await ctx.db.run(partial(self._unplace, uid=uid, reason=reason))
                    self.runtime.notifier.notify(f"host:{host}", about=uid)
            except NoValidHost as error:
                reason = f"no valid host: {error}"
        await ctx.db.run(partial(self._fail, uid=uid, reason=reason))
        raise FailedPrecondition(
            f"could not build the instance: {reason}", type="BUILD_FAILED", subject=ctx.target
        )

    async def _built(
        self, ctx: OperationContext, uid: str, row: InstanceRow, host: str, changed: asyncio.Event
    ) -> Message | str:
        """Waits for the host's reports until the placed instance (`row`) runs in its power
        intent's state at its new generation: returns it then, or why it did not (an ERROR
        report, the build timeout). Raises Aborted when it is deleted meanwhile."""
        settings = self.runtime.config.scheduler
        deadline = time.monotonic() + settings.build_timeout_seconds
        current: InstanceRow | Row[Any] | None = row
        while current is not None:
            if current.deleting:
                raise Aborted("the instance was deleted while it was being built")
            settled = current.state == _STATE_FOR_INTENT.get(current.power_intent)
            if current.observed_generation >= current.generation and settled:
                return instance_to_proto(current)
            if current.observed_generation >= current.generation and current.state == S.STATE_ERROR:
                return f"host {host}: {current.status_message}"
            current = await self._wait_for_report(ctx, uid, deadline, changed)
        return f"host {host} did not build it within {settings.build_timeout_seconds:.0f} s"

    async def _make_root_disk(self, ctx: OperationContext, uid: str, root_disk: str) -> None:
        """Clones the instance's root disk in Ceph if it is missing (storage/root_disks.py).
        A failure fails the build and leaves the instance ERROR."""
        try:
            await root_disks.make(self.runtime, uid, root_disk)
        except (FailedPrecondition, DriverError) as error:
            reason = f"cannot make the root disk {root_disk}: {error}"
            await ctx.db.run(partial(self._fail, uid=uid, reason=reason))
            raise FailedPrecondition(
                f"could not build the instance: {reason}", type="BUILD_FAILED", subject=ctx.target
            ) from error

    async def _check_volumes(
        self, ctx: OperationContext, row: InstanceRow, states: dict[str, int]
    ) -> None:
        """Waits for the volumes being made with the instance (`states`: its volumes' by id);
        one in ERROR (it could not be made), or a boot volume gone, fails the build and
        leaves the instance ERROR."""
        states = await await_new_volumes(self.runtime, ctx, row, states)
        reason = _volume_problem(row, states)
        if reason is None:
            return
        await ctx.db.run(partial(self._fail, uid=row.uid, reason=reason))
        raise FailedPrecondition(
            f"could not build the instance: {reason}", type="BUILD_FAILED", subject=ctx.target
        )

    def _place(self, session: Session, row: InstanceRow, tried: set[str]) -> None:
        """Places the instance (its row, in `session`) on a host (claim, ports, new
        generation) unless it already is (a resumed build keeps its claim). Raises
        NoValidHost."""
        if row.host_id is not None:  # resumed after a crash: keep the claim
            return
        host = place(
            session, self.runtime.config, row, Usage(row.vcpus, row.memory_mib, row.disk_gib), tried
        )
        row.host_id = host
        row.generation += 1
        row.state = S.STATE_PROVISIONING
        row.status_message = f"building on {host}"
        interfaces.place_ports(session, row, host)  # (after the row's changes: one UPDATE)

    @staticmethod
    def _unplace(session: Session, uid: str, reason: str) -> None:
        row = instance_by_uid(session, uid)
        if row is not None:
            claims.release(session, uid)
            row.host_id = None
            row.generation += 1
            row.status_message = reason[:1024]

    @staticmethod
    def _fail(session: Session, uid: str, reason: str) -> None:
        row = instance_by_uid(session, uid)
        if row is not None:
            row.state = S.STATE_ERROR
            row.status_message = reason[:1024]
            row.version += 1

    async def _delete(self, ctx: OperationContext) -> Message:
        uid = ctx.payload.decode()

        def doomed_volumes(session: Session) -> tuple[InstanceRow | None, dict[str, int]]:
            row = instance_by_uid(session, uid)
            return row, {} if row is None else volume_states(session, row, doomed_only=True)

        # Volumes to delete with the instance that are still being made go once made.
        row, doomed = await ctx.db.run(doomed_volumes)
        if row is not None and doomed:
            await await_new_volumes(self.runtime, ctx, row, doomed, doomed_only=True)
        deadline = time.monotonic() + self.runtime.config.scheduler.action_timeout_seconds
        step = partial(self._delete_step, ctx=ctx, uid=uid)
        with self._reports(uid) as changed:
            host, root_disk = await ctx.db.run(step)
            while host is not None:
                self.runtime.notifier.notify(f"host:{host}", about=uid)
                if not await self._next_report(changed, deadline):
                    raise Aborted("the host did not remove the instance in time; retry the delete")
                host, root_disk = await ctx.db.run(step)
        if root_disk is not None:
            await ctx.checkpoint(60, "removing the root disk")
            await self._remove_root_disk(root_disk)
            await ctx.db.run(lambda s: self._forget(s, uid))
        self.runtime.network_changed()
        if doomed:
            self.runtime.operation_written()  # the volumes' DELETE_VOLUMEs
        return empty_pb2.Empty()

    def _delete_step(
        self, session: Session, ctx: OperationContext, uid: str
    ) -> tuple[str | None, str | None]:
        """One look of DELETE: (the host, None) while a live host still has the instance;
        (None, its root disk) when only that is left to remove before the record goes;
        (None, None) once the record is gone (forgotten here if it was not already)."""
        row = instance_by_uid(session, uid)
        if row is None:
            return None, None
        if row.host_id is not None and not self._host_down(session, row.host_id):
            ctx.progress(session, 30, f"removing from host {row.host_id}")
            return row.host_id, None
        if row.root_disk is not None:
            return None, row.root_disk
        self._forget(session, uid)
        return None, None

    async def _remove_root_disk(self, path: str) -> None:
        """Removes a root disk in Ceph; one still open (a guest on a host that went down) is
        left to the storage reconciler, which removes it once it is free."""
        try:
            await root_disks.remove(self.runtime, path)
        except DriverError as error:
            log.warning("root disk %s left to the storage reconciler: %s", path, error)

    def _host_down(self, session: Session, host_id: str) -> bool:
        host = session.get(HostRow, host_id)
        return host is None or host_state(host, self.runtime) == tpb.Host.STATE_DOWN

    def _forget(self, session: Session, uid: str, charge_quota: bool = True) -> None:
        """Deletes the instance's record, claims and console, and unless the whole project
        goes (`charge_quota` False), gives back its quota, leaves its tombstone and starts
        deleting the volumes that go with it. Idempotent."""
        row = instance_by_uid(session, uid)
        if row is None:
            return
        if charge_quota:
            charge(
                session,
                row.project_id,
                {"instances": -1, "vcpus": -row.vcpus, "ram_mib": -row.memory_mib},
            )
            retention = self.runtime.config.compute.deleted_instance_retention_seconds
            tombstones.bury(session, row, retention)
        claims.release(session, uid)
        session.execute(delete(SerialOutputRow).where(SerialOutputRow.instance_uid == uid))
        doomed = release_instance(session, row.project_id, row.zone_id, row.id)
        if charge_quota:  # (a whole project's deletion deletes its volumes itself)
            delete_volumes(session, row, doomed)
        interfaces.delete_ports(session, row, charge_quota)
        session.delete(row)

    async def _rebuild(self, ctx: OperationContext) -> Message:
        """ACTION for a rebuild; with a root disk in Ceph (payload `uid|new|old`) the new
        image is cloned first, the instance switched to it (its rebuild serial raised then),
        and the old clone removed once the host runs the guest from the new one."""
        uid, _, disks = ctx.payload.decode().partition("|")
        if not disks:
            return await self.settle(ctx, uid)
        new, _, old = disks.partition("|")
        row = await self._row(ctx, uid)
        if row.root_disk != new:  # not switched yet
            await ctx.checkpoint(10, "cloning the new root disk from the image")
            try:
                await root_disks.make(self.runtime, uid, new)
            except (FailedPrecondition, DriverError) as error:
                raise FailedPrecondition(
                    f"cannot make the root disk {new}: {error}",
                    type="ACTION_FAILED",
                    subject=ctx.target,
                ) from error
            await ctx.db.run(partial(_switch_root_disk, uid=uid, new=new))
            self.notify_hosts(row.host_id)
        result = await self.settle(ctx, uid)
        await ctx.checkpoint(90, "removing the old root disk")
        await self._remove_root_disk(old)
        return result

    async def _converge(self, ctx: OperationContext) -> Message:
        return await self.settle(ctx, ctx.payload.decode())

    async def settle(self, ctx: OperationContext, uid: str) -> Message:
        """Waits (up to the action timeout) until the host has seen the instance's latest
        change and reports it in the state its power intent asks for, with every serial
        carried out; returns the instance. Raises FailedPrecondition (the host reported an
        error), Aborted (deleted meanwhile, or the timeout), NotFound."""
        deadline = time.monotonic() + self.runtime.config.scheduler.action_timeout_seconds
        with self._reports(uid) as changed:
            row: InstanceRow | Row[Any] | None
            row = await ctx.db.run(lambda s: instance_by_uid(s, uid))
            target = row.generation if row else 0
            while row is not None:
                if row.deleting:
                    raise Aborted("the instance is being deleted")
                if row.observed_generation >= target:
                    if row.state == S.STATE_ERROR:
                        raise FailedPrecondition(
                            f"the host reported: {row.status_message}",
                            type="ACTION_FAILED",
                            subject=ctx.target,
                        )
                    if (
                        row.state == _STATE_FOR_INTENT.get(row.power_intent)
                        and row.observed_reboot_serial >= row.reboot_serial
                        and row.observed_rebuild_serial >= row.rebuild_serial
                        and row.observed_resize_serial >= row.resize_serial
                    ):
                        return instance_to_proto(row)
                row = await self._wait_for_report(ctx, uid, deadline, changed)
                if row is None:
                    raise Aborted("the host did not carry out the action in time")
        raise NotFound(INSTANCES.type_name, ctx.target)

    async def _snapshot(self, ctx: OperationContext) -> Message:
        """Waits for the host to upload the snapshot: the image turns ACTIVE (or the host
        reports the serial done without it, a failure: the image becomes ERROR)."""
        uid, project_id, image_id = ctx.payload.decode().split("/")
        deadline = time.monotonic() + self.runtime.config.scheduler.action_timeout_seconds
        with self._reports(uid) as changed:
            target = await ctx.db.run(lambda s: instance_by_uid(s, uid))
            serial = target.snapshot_serial if target else 0
            row: InstanceRow | Row[Any] | None = target
            while row is not None:
                image = await ctx.db.run(lambda s: s.get(ImageRow, (project_id, image_id)))
                if image is None:
                    raise Aborted("the snapshot's image was deleted")
                if image.state == ipb.Image.STATE_ACTIVE:
                    return image_to_proto(image)
                if image.state == ipb.Image.STATE_ERROR or row.observed_snapshot_serial >= serial:
                    reason = row.status_message
                    await ctx.db.run(partial(_image_failed, project_id, image_id, reason))
                    raise FailedPrecondition(
                        f"the host could not save the snapshot: {reason}",
                        type="SNAPSHOT_FAILED",
                        subject=ctx.target,
                    )
                row = await self._wait_for_report(ctx, uid, deadline, changed)
        await ctx.db.run(partial(_image_failed, project_id, image_id, "no snapshot in time"))
        raise Aborted("the host did not save the snapshot in time")


def _switch_root_disk(session: Session, uid: str, new: str) -> None:
    """Points the instance at its new root disk and asks its host to rebuild onto it."""
    row = instance_by_uid(session, uid)
    if row is not None and row.root_disk != new:
        row.root_disk = new
        row.rebuild_serial += 1
        row.generation += 1
        row.version += 1


def _image_failed(project_id: str, image_id: str, reason: str, session: Session) -> None:
    image = session.get(ImageRow, (project_id, image_id))
    if image is not None and image.state == ipb.Image.STATE_PENDING_UPLOAD:
        image.state = ipb.Image.STATE_ERROR
        image.state_message = (reason or "the snapshot failed")[:255]
        image.version += 1


def _forget_snapshot_image(session: Session, operation: OperationRow) -> None:
    """Cancel hook of SnapshotInstance: the image that would have received it is ERROR."""
    _, project_id, image_id = operation.payload.decode().split("/")
    _image_failed(project_id, image_id, "the snapshot was cancelled", session)
