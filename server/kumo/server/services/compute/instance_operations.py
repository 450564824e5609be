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

import time
from functools import partial

from google.protobuf import empty_pb2
from google.protobuf.message import Message
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kumo.compute.v1 import resources_pb2 as pb
from kumo.image.v1 import resources_pb2 as ipb
from kumo.server.controllers import claims
from kumo.server.controllers.claims import Usage
from kumo.server.controllers.scheduler import NoValidHost, place
from kumo.server.db.models import HostRow, ImageRow, InstanceRow, OperationRow, SerialOutputRow
from kumo.server.errors import Aborted, FailedPrecondition, NotFound
from kumo.server.operations.handlers import OperationContext
from kumo.server.quota import charge
from kumo.server.services.compute import interfaces
from kumo.server.services.compute.common import INSTANCES, ComputePart, instance_to_proto
from kumo.server.services.images import image_to_proto
from kumo.server.services.storage.attachments import release_instance
from kumo.server.services.topology import host_state
from kumo.topology.v1 import resources_pb2 as tpb

BUILD = "compute.BuildInstance"
DELETE = "compute.DeleteInstance"
ACTION = "compute.InstanceAction"
SNAPSHOT = "compute.SnapshotInstance"
POLL_SECONDS = 1.0
S = pb.Instance
_STATE_FOR_INTENT: dict[int, int] = {
    S.POWER_INTENT_RUNNING: S.STATE_RUNNING,
    S.POWER_INTENT_STOPPED: S.STATE_STOPPED,
    S.POWER_INTENT_SUSPENDED: S.STATE_SUSPENDED,
}


def _by_uid(session: Session, uid: str) -> InstanceRow | None:
    return session.scalar(select(InstanceRow).where(InstanceRow.uid == uid))


class InstanceOperations(ComputePart):
    """Handlers of the instance operations (a part of the compute servicer)."""

    def register_instance_handlers(self) -> None:
        """Registers BUILD, DELETE and ACTION with the operation controller."""
        self.runtime.handlers.register(BUILD, self._build)
        self.runtime.handlers.register(DELETE, self._delete)
        self.runtime.handlers.register(ACTION, self._converge)
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
        it migrates to, if any."""
        key = INSTANCES.key(name)
        hosts = await self.runtime.db.run(
            lambda s: s.execute(
                select(InstanceRow.host_id, InstanceRow.migration_host_id).where(
                    InstanceRow.project_id == key[0],
                    InstanceRow.zone_id == key[1],
                    InstanceRow.id == key[2],
                )
            ).first()
        )
        self.notify_hosts(*(hosts or ()))

    def notify_hosts(self, *hosts: str | None) -> None:
        """Wakes the assignment streams of these hosts (None: skipped)."""
        for host in hosts:
            if host:
                self.runtime.notifier.notify(f"host:{host}")

    async def _row(self, ctx: OperationContext) -> InstanceRow:
        row = await ctx.db.run(lambda s: _by_uid(s, ctx.payload.decode()))
        if row is None:
            raise NotFound(INSTANCES.type_name, ctx.target)
        return row

    async def _wait_for_report(
        self, ctx: OperationContext, uid: str, deadline: float
    ) -> InstanceRow | None:
        """Waits for the next change of the instance's row, until `deadline`; None on timeout."""
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        await self.runtime.notifier.wait(f"instance:{uid}", min(left, POLL_SECONDS))
        return await ctx.db.run(lambda s: _by_uid(s, uid))

    async def _build(self, ctx: OperationContext) -> Message:
        settings = self.runtime.config.scheduler
        uid = ctx.payload.decode()
        tried: set[str] = set()
        reason = ""
        for attempt in range(1, settings.max_build_attempts + 1):
            await ctx.checkpoint(10 + 20 * (attempt - 1), f"scheduling (attempt {attempt})")
            try:
                host = await ctx.db.run(lambda s: self._place(s, uid, tried))
            except NoValidHost as error:
                reason = f"no valid host: {error}"
                break
            self.runtime.notifier.notify(f"host:{host}")
            await ctx.checkpoint(20 + 20 * (attempt - 1), f"building on host {host}")
            deadline = time.monotonic() + settings.build_timeout_seconds
            row: InstanceRow | None = await self._row(ctx)
            while row is not None:
                if row.deleting:
                    raise Aborted("the instance was deleted while it was being built")
                settled = row.state == _STATE_FOR_INTENT.get(row.power_intent)
                if row.observed_generation >= row.generation and settled:
                    return instance_to_proto(row)
                if row.observed_generation >= row.generation and row.state == S.STATE_ERROR:
                    reason = f"host {host}: {row.status_message}"
                    break
                row = await self._wait_for_report(ctx, uid, deadline)
            else:
                reason = (
                    f"host {host} did not build it within {settings.build_timeout_seconds:.0f} s"
                )
            tried.add(host)
            await ctx.db.run(partial(self._unplace, uid=uid, reason=reason))
            self.runtime.notifier.notify(f"host:{host}")
        await ctx.db.run(partial(self._fail, uid=uid, reason=reason))
        raise FailedPrecondition(
            f"could not build the instance: {reason}", type="BUILD_FAILED", subject=ctx.target
        )

    def _place(self, session: Session, uid: str, tried: set[str]) -> str:
        row = _by_uid(session, uid)
        if row is None:
            raise NotFound(INSTANCES.type_name, uid)
        if row.host_id is not None:  # resumed after a crash: keep the claim
            return row.host_id
        host = place(
            session, self.runtime.config, row, Usage(row.vcpus, row.memory_mib, row.disk_gib), tried
        )
        row.host_id = host
        interfaces.place_ports(session, row, host)
        row.generation += 1
        row.state = S.STATE_PROVISIONING
        row.status_message = f"building on {host}"
        return host

    @staticmethod
    def _unplace(session: Session, uid: str, reason: str) -> None:
        row = _by_uid(session, uid)
        if row is not None:
            claims.release(session, uid)
            row.host_id = None
            row.generation += 1
            row.status_message = reason[:1024]

    @staticmethod
    def _fail(session: Session, uid: str, reason: str) -> None:
        row = _by_uid(session, uid)
        if row is not None:
            row.state = S.STATE_ERROR
            row.status_message = reason[:1024]
            row.version += 1

    async def _delete(self, ctx: OperationContext) -> Message:
        uid = ctx.payload.decode()
        deadline = time.monotonic() + self.runtime.config.scheduler.action_timeout_seconds
        row = await ctx.db.run(lambda s: _by_uid(s, uid))
        while row is not None and row.host_id is not None:
            await ctx.checkpoint(30, f"removing from host {row.host_id}")
            if await ctx.db.run(partial(self._host_down, host_id=row.host_id)):
                break
            self.runtime.notifier.notify(f"host:{row.host_id}")
            if (row := await self._wait_for_report(ctx, uid, deadline)) is None:
                raise Aborted("the host did not remove the instance in time; retry the delete")
        await ctx.db.run(lambda s: self._forget(s, uid))
        self.runtime.network_changed()
        return empty_pb2.Empty()

    def _host_down(self, session: Session, host_id: str) -> bool:
        host = session.get(HostRow, host_id)
        return host is None or host_state(host, self.runtime) == tpb.Host.STATE_DOWN

    @staticmethod
    def _forget(session: Session, uid: str, charge_quota: bool = True) -> None:
        """Deletes the instance's record, claims and console (and gives back its quota
        unless the whole project goes). Idempotent."""
        row = _by_uid(session, uid)
        if row is None:
            return
        if charge_quota:
            charge(
                session,
                row.project_id,
                {"instances": -1, "vcpus": -row.vcpus, "ram_mib": -row.memory_mib},
            )
        claims.release(session, uid)
        session.execute(delete(SerialOutputRow).where(SerialOutputRow.instance_uid == uid))
        release_instance(session, row.project_id, row.zone_id, row.id)
        interfaces.delete_ports(session, row, charge_quota)
        session.delete(row)

    async def _converge(self, ctx: OperationContext) -> Message:
        return await self.settle(ctx, ctx.payload.decode())

    async def settle(self, ctx: OperationContext, uid: str) -> Message:
        """Waits (up to the action timeout) until the host has seen the instance's latest
        change and reports it in the state its power intent asks for, with every serial
        carried out; returns the instance. Raises FailedPrecondition (the host reported an
        error), Aborted (deleted meanwhile, or the timeout), NotFound."""
        deadline = time.monotonic() + self.runtime.config.scheduler.action_timeout_seconds
        row: InstanceRow | None = await ctx.db.run(lambda s: _by_uid(s, uid))
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
            row = await self._wait_for_report(ctx, uid, deadline)
            if row is None:
                raise Aborted("the host did not carry out the action in time")
        raise NotFound(INSTANCES.type_name, ctx.target)

    async def _snapshot(self, ctx: OperationContext) -> Message:
        """Waits for the host to upload the snapshot: the image turns ACTIVE (or the host
        reports the serial done without it, a failure: the image becomes ERROR)."""
        uid, project_id, image_id = ctx.payload.decode().split("/")
        deadline = time.monotonic() + self.runtime.config.scheduler.action_timeout_seconds
        target = await ctx.db.run(lambda s: _by_uid(s, uid))
        serial = target.snapshot_serial if target else 0
        row: InstanceRow | None = target
        while row is not None:
            image = await ctx.db.run(lambda s: s.get(ImageRow, (project_id, image_id)))
            if image is None:
                raise Aborted("the snapshot's image was deleted")
            if image.state == ipb.Image.STATE_ACTIVE:
                return image_to_proto(image)
            if image.state == ipb.Image.STATE_ERROR or row.observed_snapshot_serial >= serial:
                await ctx.db.run(partial(_image_failed, project_id, image_id, row.status_message))
                raise FailedPrecondition(
                    f"the host could not save the snapshot: {row.status_message}",
                    type="SNAPSHOT_FAILED",
                    subject=ctx.target,
                )
            row = await self._wait_for_report(ctx, uid, deadline)
        await ctx.db.run(partial(_image_failed, project_id, image_id, "no snapshot in time"))
        raise Aborted("the host did not save the snapshot in time")


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
