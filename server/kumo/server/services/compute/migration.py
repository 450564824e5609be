"""MigrateInstance: live migration (vMotion) of a running instance to another host,
and cold migration of a stopped one (or of a running one shut down for it).

Accepting it (one transaction) claims the destination through the scheduler (a
MOVE claim, so both hosts hold the instance while it moves), writes the
migration record (`migration_record.py`) and starts a MIGRATE operation. The
destination's agent then sees the instance with ROLE_DESTINATION, prepares its
disks and reports PREPARED with its target; the operation hands the target to
the source (phase `go`); the source's agent migrates, reporting progress (shown
in the operation's metadata `detail`) and then COMPLETED or FAILED.

The operation ends it in one transaction either way: on success the instance's
host becomes the destination and its claims move there; on failure the MOVE
claim goes and the destination's agent, no longer assigned the guest, removes
what it prepared. It aborts the migration (and waits for the source to confirm)
when the destination or source host goes DOWN, the options' timeout passes, or
the operation is cancelled. Every step reads the record, so a restarted API
resumes where it was.

A cold migration runs the same way: the source's agent shuts a running guest
down and moves it powered off (the driver's `migrate_cold`); it arrives paused
before its first instruction and the destination's agent starts it or powers it
off as the instance's power intent says. Its operation ends when the destination
reports the instance settled. ResizeInstance onto another host is a cold
migration whose record carries the new flavor (`resize`): quota and the MOVE
claim cover the larger sizes from the start, and the flavor changes when the
guest has arrived (the destination's agent then resizes it, as in place); a
failure refunds the quota. RevertResizeInstance of such a resize is the same move
back to the source host (`resize` holds the old flavor, marked REVERTING).

Raises (on the call) FailedPrecondition (live: not RUNNING or SUSPENDED; cold:
not RUNNING or STOPPED; busy, a resize or migration pending, no valid host),
InvalidArgument (options out of range, the instance's own host as destination),
NotFound.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from google.longrunning import operations_pb2
from google.protobuf.message import Message
from sqlalchemy.orm import Session

from kumo.compute.v1 import compute_service_pb2 as api
from kumo.compute.v1 import resources_pb2 as pb
from kumo.server.api.idempotency import idempotent
from kumo.server.api.names import parse_one
from kumo.server.auth.principal import current_principal
from kumo.server.config import Config
from kumo.server.controllers import claims
from kumo.server.controllers.claims import INSTANCE, MOVE, Usage
from kumo.server.controllers.scheduler import NoValidHost, place
from kumo.server.db.models import InstanceRow, OperationRow
from kumo.server.errors import Aborted, FailedPrecondition, FieldViolation, InvalidArgument
from kumo.server.interceptors.base import Context
from kumo.server.operations import store
from kumo.server.operations.handlers import OperationCancelled, OperationContext
from kumo.server.quota import charge
from kumo.server.services.compute import interfaces
from kumo.server.services.compute import migration_record as record
from kumo.server.services.compute.common import instance_by_uid, instance_to_proto
from kumo.server.services.compute.instances import InstanceMethods, visible_instance

MIGRATE = "compute.MigrateInstance"
DEFAULT_MAX_DOWNTIME_MS = 50
DEFAULT_TIMEOUT_SECONDS = 600
MAX_TIMEOUT_SECONDS = 86_400
# Time the destination has to prepare, on top of the migration's own timeout.
SETUP_SECONDS = 120.0
# Time the source has to confirm an abort before the API gives up waiting.
ABORT_GRACE_SECONDS = 60.0
# In a migration record's `resize`: the move back of RevertResizeInstance, holding the
# `resize_from` it reverts (pending again if the move fails).
REVERTING = "reverting"
S = pb.Instance
MODE = pb.MigrationOptions.Mode
_MOVABLE = {
    MODE.MODE_LIVE: (S.STATE_RUNNING, S.STATE_SUSPENDED),
    MODE.MODE_COLD: (S.STATE_RUNNING, S.STATE_STOPPED),
}


def checked_options(given: pb.MigrationOptions) -> pb.MigrationOptions:
    """The options with defaults filled in (the mode stays as given: `place_migration`
    resolves it by the instance's state); InvalidArgument for values out of range."""
    violations = []
    if given.mode not in MODE.values():
        violations.append(FieldViolation("options.mode", "MODE_LIVE or MODE_COLD"))
    if not 0 <= given.max_downtime_ms <= 10_000:
        violations.append(FieldViolation("options.max_downtime_ms", "0 to 10,000 ms"))
    if given.bandwidth_mibps < 0:
        violations.append(FieldViolation("options.bandwidth_mibps", "must not be negative"))
    if not 0 <= given.timeout_seconds <= MAX_TIMEOUT_SECONDS:
        violations.append(FieldViolation("options.timeout_seconds", "0 to 86,400 s"))
    if violations:
        raise InvalidArgument(violations)
    options = pb.MigrationOptions()
    options.CopyFrom(given)
    options.max_downtime_ms = options.max_downtime_ms or DEFAULT_MAX_DOWNTIME_MS
    options.timeout_seconds = options.timeout_seconds or DEFAULT_TIMEOUT_SECONDS
    return options


def _sizes(row: InstanceRow) -> Usage:
    return Usage(row.vcpus, row.memory_mib, row.disk_gib)


def _resize_sizes(resize: dict[str, Any]) -> Usage:
    return Usage(resize["vcpus"], resize["memory_mib"], resize["disk_gib"])


def is_cold(row: InstanceRow) -> bool:
    """Whether the row's migration (there must be one) is a cold one."""
    assert row.migration is not None
    return bool(row.migration["options"].get("mode") == MODE.Name(MODE.MODE_COLD))


def _release_move(session: Session, row: InstanceRow) -> None:
    """The migration did not happen: its MOVE claim goes, a resize's quota is refunded,
    and a reverting resize is pending again."""
    assert row.migration is not None
    resize = row.migration.get("resize")
    if resize is not None:
        old, new = _sizes(row), _resize_sizes(resize)
        charge(
            session,
            row.project_id,
            {"vcpus": old.vcpus - new.vcpus, "ram_mib": old.memory_mib - new.memory_mib},
        )
        if REVERTING in resize:
            row.resize_from = resize[REVERTING]
    claims.release(session, row.uid, MOVE)
    row.migration_host_id = None
    row.migration = None
    row.generation += 1
    row.version += 1


def _succeed(session: Session, row: InstanceRow) -> None:
    """The guest is on the destination: the instance and its claim move there. A resize
    takes its new flavor now, and the destination holds the larger of both sizes until
    it is confirmed or reverted (as a resize in place does; the source host is kept in
    `resize_from` for a revert to move back to). A revert's move takes the old flavor
    back, and nothing is pending any more."""
    assert row.migration is not None
    destination = row.migration["destination"]
    resize = row.migration.get("resize")
    old = _sizes(row)
    claims.release(session, row.uid)
    if resize is None:
        claims.claim_for(session, row, INSTANCE, destination, old)
    else:
        new = _resize_sizes(resize)
        if REVERTING in resize:
            claims.claim_for(session, row, INSTANCE, destination, new)
        else:
            claims.claim_for(session, row, INSTANCE, destination, old)
            claims.claim_for(session, row, MOVE, destination, old.grown_by(new))
            row.resize_from = {"flavor_id": row.flavor_id, **vars(old), "host_id": row.host_id}
        row.flavor_id = resize["flavor_id"]
        row.vcpus, row.memory_mib, row.disk_gib = new.vcpus, new.memory_mib, new.disk_gib
        row.resize_serial += 1
    row.host_id = destination
    interfaces.place_ports(session, row, destination)
    row.migration_host_id = None
    row.migration = None
    row.generation += 1
    row.version += 1


def _forget_migration(session: Session, operation: OperationRow) -> None:
    """Cancel hook: a MIGRATE cancelled before its handler ran (or after it ended the
    migration) drops the record and the destination's claim, unless the source may be
    migrating already (then the handler, which aborts first, is the one to end it)."""
    uid, serial, _ = operation.payload.decode().split("/")
    row = instance_by_uid(session, uid)
    if row is None or row.migration is None or row.migration_serial != int(serial):
        return
    if row.migration["phase"] in (record.PLACED, record.PREPARED, record.FAILED):
        _release_move(session, row)


def _resolved(options: pb.MigrationOptions, row: InstanceRow, cold: bool) -> pb.MigrationOptions:
    """The options with the mode resolved: cold when asked (`cold`, or by the options),
    else live unless the instance is stopped."""
    resolved = pb.MigrationOptions()
    resolved.CopyFrom(options)
    if cold:
        resolved.mode = MODE.MODE_COLD
    elif resolved.mode == MODE.MODE_UNSPECIFIED:
        stopped = row.state == S.STATE_STOPPED
        resolved.mode = MODE.MODE_COLD if stopped else MODE.MODE_LIVE
    return resolved


def place_migration(
    session: Session,
    config: Config,
    row: InstanceRow,
    name: str,
    options: pb.MigrationOptions,
    wanted: str | None,
    resize: dict[str, Any] | None = None,
) -> bytes:
    """Claims a destination for the instance and writes its migration record (see the
    module docstring); returns the MIGRATE operation's payload. `options` as
    `checked_options` returns them; `resize` the new flavor's id and sizes for a resize
    onto another host (always cold). Raises FailedPrecondition (state, pending work, no
    valid host) and InvalidArgument."""
    options = _resolved(options, row, cold=resize is not None)
    mode = options.mode
    movable = _MOVABLE[mode]
    if row.deleting or row.host_id is None or row.state not in movable:
        raise FailedPrecondition(
            f"{name} is {S.State.Name(row.state)}: a {MODE.Name(mode)[5:].lower()} migration"
            f" needs it {' or '.join(S.State.Name(state)[6:] for state in movable)}",
            type="INSTANCE_STATE",
            subject=name,
        )
    if row.migration is not None or row.resize_from is not None:
        raise FailedPrecondition(
            f"{name} has a migration or resize pending", type="INSTANCE_BUSY", subject=name
        )
    if wanted == row.host_id:
        raise InvalidArgument.field("host", "the instance already runs there")
    sizes = _sizes(row)
    if resize is not None and REVERTING in resize:
        # Back to the host it was resized away from, often for want of room there: only
        # the old sizes are claimed there, which its agent gives the guest as soon as it
        # has arrived (shut off, resized, started again if it ran).
        sizes = _resize_sizes(resize)
    elif resize is not None:
        sizes = sizes.larger(_resize_sizes(resize))
    try:
        destination = place(session, config, row, sizes, {row.host_id}, MOVE, requested_host=wanted)
    except NoValidHost as error:
        raise FailedPrecondition(
            f"no valid host: {error}", type="NO_VALID_HOST", subject=name
        ) from error
    row.migration_serial += 1
    row.migration_host_id = destination
    row.migration = record.new_record(row.host_id, destination, options, resize)
    row.generation += 1
    row.version += 1
    return f"{row.uid}/{row.migration_serial}/{destination}".encode()


def begin_migration(
    session: Session,
    config: Config,
    row: InstanceRow,
    name: str,
    options: pb.MigrationOptions,
    wanted: str | None,
    project_id: str,
) -> OperationRow:
    """`place_migration`, and the MIGRATE operation that carries it out."""
    payload = place_migration(session, config, row, name, options, wanted)
    return store.create(
        session,
        project_id=project_id,
        kind=MIGRATE,
        target=name,
        payload=payload,
        status_message="MigrateInstance",
    )


class InstanceMigrationMethods(InstanceMethods):
    """MigrateInstance and its operation (a part of the compute servicer)."""

    def register_migration_handlers(self) -> None:
        """Registers MIGRATE with the operation controller."""
        self.runtime.handlers.register(MIGRATE, self._migrate, _forget_migration)

    async def MigrateInstance(
        self, request: api.MigrateInstanceRequest, context: Context
    ) -> operations_pb2.Operation:
        caller = current_principal()
        options = checked_options(request.options)
        wanted = parse_one("host", request.host, "hosts/{host}") if request.host else None
        config = self.runtime.config

        def start(session: Session) -> operations_pb2.Operation:
            row = visible_instance(session, caller, request.name)
            operation = begin_migration(
                session, config, row, request.name, options, wanted, caller.project_id
            )
            return store.to_proto(operation)

        operation = await idempotent(
            self.runtime.db, "MigrateInstance", request, operations_pb2.Operation, start
        )
        self.runtime.operation_written()
        await self.notify_host_of(request.name)
        return operation

    async def _migrate(self, ctx: OperationContext) -> Message:
        uid, serial_text, destination = ctx.payload.decode().split("/")
        serial = int(serial_text)
        row = await ctx.db.run(lambda s: instance_by_uid(s, uid))
        if row is None or row.migration is None or row.migration_serial != serial:
            return self._outcome(row, destination)  # ended before a restart
        cold = is_cold(row)
        timeout = float(row.migration["options"].get("timeoutSeconds", DEFAULT_TIMEOUT_SECONDS))
        deadline = time.monotonic() + SETUP_SECONDS + timeout
        abort_deadline: float | None = None
        await ctx.checkpoint(5, f"preparing host {destination}")
        while True:
            current = await ctx.db.run(partial(self._step, uid=uid, serial=serial))
            if current is None:
                return self._outcome(
                    await ctx.db.run(lambda s: instance_by_uid(s, uid)), destination
                )
            phase, reason, source = current
            if phase == record.COMPLETED:
                final = await ctx.db.run(partial(self._progress, uid=uid))
                if final is not None:
                    await ctx.report_detail(final)
                done = await ctx.db.run(partial(self._end, uid=uid, succeeded=True))
                self.notify_hosts(source, destination)
                if cold:
                    await ctx.checkpoint(90, f"settling on host {destination}")
                    return await self.settle(ctx, uid)
                return instance_to_proto(done)
            if phase == record.FAILED:
                await ctx.db.run(partial(self._end, uid=uid, succeeded=False))
                self.notify_hosts(source, destination)
                if ctx.cancel_requested:
                    raise OperationCancelled()
                raise Aborted(f"the migration failed: {reason}")
            if abort_deadline is None:
                why = await self._reason_to_abort(ctx, source, destination, deadline)
                if why:
                    abort_deadline = time.monotonic() + ABORT_GRACE_SECONDS
                    await ctx.db.run(partial(self._abort, uid=uid, reason=why))
                    self.notify_hosts(source)
                    continue
            elif time.monotonic() > abort_deadline or await ctx.db.run(
                partial(self._host_down, host_id=source)
            ):
                # The source does not answer: end the record; its agent converges later.
                await ctx.db.run(partial(self._force_fail, uid=uid))
                continue
            if phase == record.PREPARED:
                await ctx.db.run(partial(self._go, uid=uid))
                self.notify_hosts(source)
                await ctx.checkpoint(20, f"migrating to host {destination}")
            elif phase == record.RUNNING:
                progress = await ctx.db.run(partial(self._progress, uid=uid))
                if progress is not None:
                    await ctx.report_detail(progress)
            await self.runtime.notifier.wait(f"instance:{uid}", 1.0)

    async def _reason_to_abort(
        self, ctx: OperationContext, source: str, destination: str, deadline: float
    ) -> str:
        if ctx.cancel_requested or await ctx.db.run(partial(_cancel_requested, ctx.op_id)):
            ctx.cancel_requested = True
            return "the operation was cancelled"
        if await ctx.db.run(partial(self._host_down, host_id=destination)):
            return f"the destination host {destination} went down"
        if await ctx.db.run(partial(self._host_down, host_id=source)):
            return f"the source host {source} went down"
        if time.monotonic() > deadline:
            return "the migration timed out"
        return ""

    @staticmethod
    def _outcome(row: InstanceRow | None, destination: str) -> Message:
        if row is not None and row.host_id == destination:
            return instance_to_proto(row)
        raise Aborted("the migration did not complete")

    @staticmethod
    def _step(session: Session, uid: str, serial: int) -> tuple[str, str, str] | None:
        row = instance_by_uid(session, uid)
        if row is None or row.migration is None or row.migration_serial != serial:
            return None
        m = row.migration
        return str(m["phase"]), str(m["message"]), str(m["source"])

    @staticmethod
    def _go(session: Session, uid: str) -> None:
        row = instance_by_uid(session, uid)
        if row is not None and row.migration and row.migration["phase"] == record.PREPARED:
            record.update(row, phase=record.GO)
            row.generation += 1

    @staticmethod
    def _abort(session: Session, uid: str, reason: str) -> None:
        row = instance_by_uid(session, uid)
        if row is None or row.migration is None or row.migration["phase"] in record.FINAL:
            return
        if row.migration["phase"] in (record.PLACED, record.PREPARED):
            record.update(row, phase=record.FAILED, message=reason)  # the source never began
        else:
            record.update(row, abort=True, message=reason)
        row.generation += 1

    @staticmethod
    def _force_fail(session: Session, uid: str) -> None:
        row = instance_by_uid(session, uid)
        if row is not None and row.migration and row.migration["phase"] not in record.FINAL:
            reason = row.migration["message"] or "aborted"
            record.update(
                row, phase=record.FAILED, message=f"{reason} (the source never confirmed)"
            )

    @staticmethod
    def _progress(session: Session, uid: str) -> pb.MigrationProgress | None:
        row = instance_by_uid(session, uid)
        return record.progress_of(row.migration) if row and row.migration else None

    @staticmethod
    def _end(session: Session, uid: str, succeeded: bool) -> InstanceRow:
        row = instance_by_uid(session, uid)
        assert row is not None and row.migration is not None
        if succeeded:
            _succeed(session, row)
        else:
            _release_move(session, row)
        session.flush()
        return row


def _cancel_requested(op_id: str, session: Session) -> bool:
    operation = session.get(OperationRow, op_id)
    return bool(operation is not None and operation.cancel_requested)
