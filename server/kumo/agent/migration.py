"""The agent's part in migrations (see services/compute/migration.py for the API's).

Destination (ROLE_DESTINATION): `prepare` readies the host once per migration
(`prepare_incoming`: the guest's disk as an overlay of the cached image) and
reports PREPARED with the driver's target, again on every pass until the API
moves on (reports are idempotent). The record's `incoming` makes a later pass
call `cleanup_incoming` if the migration fails and the guest is no longer
assigned here.

Source (ROLE_SOURCE): `send` runs the driver's `migrate_live` (or, for a cold
migration, shuts the guest down within its stop timeout and runs `migrate_cold`)
once per migration, when the API has handed over the target and no abort came, reporting
progress about once a second and then COMPLETED or FAILED. The outcome is
recorded before it is reported (`migrated`, `left`), so a restarted agent
reports it again instead of migrating twice, and never respawns a guest that
left. `abort` asks the driver to cancel a migration in flight.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from kumo.agent.images import ImageError
from kumo.agent.state import Done, StateFile
from kumo.agent.v1 import agent_service_pb2 as api
from kumo.compute.v1 import resources_pb2 as cpb
from kumo.drivers.compute.base import (
    ComputeDriver,
    GuestSpec,
    MigrationOptions,
    MigrationProgress,
    MigrationResult,
    MigrationTarget,
)
from kumo.drivers.errors import DriverError, GuestAlreadyExists, MigrationCancelled

log = logging.getLogger(__name__)

Phase = api.ReportMigrationStatusRequest.Phase
Role = api.MigrationAssignment.Role
Assignment = Any  # kumo.agent.v1.InstanceAssignment
Runner = Callable[..., Awaitable[Any]]
PROGRESS_SECONDS = 1.0
"""Least time between two progress reports of one migration."""


def role_of(a: Assignment) -> int:
    """The host's role in the assignment's migration (ROLE_UNSPECIFIED: none)."""
    return int(a.migration.role) if a.HasField("migration") else Role.ROLE_UNSPECIFIED


def is_cold(a: Assignment) -> bool:
    """Whether the assignment's migration (if any) is a cold one."""
    return role_of(a) != Role.ROLE_UNSPECIFIED and (
        a.migration.options.mode == cpb.MigrationOptions.MODE_COLD
    )


def driver_options(options: cpb.MigrationOptions) -> MigrationOptions:
    """The API's options as the driver's."""
    block = {
        cpb.MigrationOptions.BLOCK_MIGRATION_ENABLED: True,
        cpb.MigrationOptions.BLOCK_MIGRATION_DISABLED: False,
    }.get(options.block_migration)
    return MigrationOptions(
        max_downtime_ms=options.max_downtime_ms or None,
        bandwidth_mibps=options.bandwidth_mibps or None,
        auto_converge=options.auto_converge,
        post_copy=options.post_copy,
        block_migration=block,
        timeout_seconds=float(options.timeout_seconds) if options.timeout_seconds else None,
    )


def progress_message(
    sample: MigrationProgress | None, result: MigrationResult | None = None
) -> cpb.MigrationProgress:
    """A driver sample (and result) as the API's MigrationProgress."""
    message = cpb.MigrationProgress()
    if sample is not None:
        message.elapsed_ms = sample.elapsed_ms
        message.memory_total_bytes = sample.memory_total_bytes
        message.memory_processed_bytes = sample.memory_processed_bytes
        message.memory_remaining_bytes = sample.memory_remaining_bytes
        message.dirty_rate_bytes_per_second = sample.dirty_rate_bytes_per_second
        message.disk_total_bytes = sample.disk_total_bytes
        message.disk_processed_bytes = sample.disk_processed_bytes
        message.iteration = sample.iteration
    if result is not None:
        message.downtime_ms = result.downtime_ms or 0.0
        message.total_ms = result.total_ms
        message.memory_processed_bytes = max(message.memory_processed_bytes, result.memory_bytes)
        message.disk_processed_bytes = max(message.disk_processed_bytes, result.disk_bytes)
    return message


class Migrations:
    """Prepares incoming guests and sends outgoing ones; see the module docstring."""

    def __init__(
        self,
        *,
        host: str,
        driver: ComputeDriver,
        runner: Runner,
        state: StateFile,
        spec: Callable[[Assignment], Awaitable[GuestSpec]],
        report: Callable[[api.ReportMigrationStatusRequest], Awaitable[None]],
    ) -> None:
        self.host = host
        self._driver = driver
        self._run = runner
        self._state = state
        self._spec = spec
        self._report_call = report
        self.sending: dict[str, int] = {}
        """Migrations running from here: instance uid → serial."""
        self._aborted: set[str] = set()
        """Uids of migrations running from here that the API aborts."""
        self._aborts: set[asyncio.Task[None]] = set()

    async def _report(self, uid: str, serial: int, phase: Any, **fields: Any) -> bool:
        request = api.ReportMigrationStatusRequest(
            instance_uid=uid, host=self.host, serial=serial, phase=phase, **fields
        )
        try:
            await self._report_call(request)
        except Exception as error:
            log.warning("cannot report the migration of %s: %s", uid, error)
            return False
        return True

    # -- destination ---------------------------------------------------------------------

    async def prepare(self, uid: str, a: Assignment) -> bool:
        """Readies this host for the guest and reports PREPARED; returns whether the API
        has the report. Idempotent."""
        serial = int(a.migration.serial)
        done = self._state.get(uid)
        if done is None or done.incoming != serial:
            done = Done.of(a)
            done.incoming, done.console_base = serial, -1
            self._state.put(uid, done)
        try:
            spec = await self._spec(a)
            target = await self._run(self._driver.prepare_incoming, spec)
        except GuestAlreadyExists:
            return True  # the guest is arriving or has arrived: nothing to prepare
        except (DriverError, ImageError, ValueError) as error:
            log.warning("cannot prepare for %s: %s", uid, error)
            return await self._report(uid, serial, Phase.PHASE_FAILED, message=str(error))
        log.info("ready to receive %s (migration %d)", uid, serial)
        return await self._report(
            uid, serial, Phase.PHASE_PREPARED, target=json.dumps(target.to_dict())
        )

    async def cleanup(self, uid: str) -> bool:
        """Removes what a migration that did not happen left here; True when clean. An
        arrived guest (not assigned here any more) is destroyed instead."""
        try:
            try:
                await self._run(self._driver.cleanup_incoming, uid)
            except DriverError as error:
                if error.code != "FAILED_PRECONDITION":
                    raise
                await self._run(self._driver.destroy, uid)
        except DriverError as error:
            log.warning("cannot clean up after the migration of %s: %s", uid, error)
            return False
        log.info("cleaned up after the migration of %s", uid)
        return True

    # -- source --------------------------------------------------------------------------

    async def send(self, uid: str, a: Assignment, done: Done, stop_timeout: float) -> None:
        """Migrates the guest if the API says go, once per serial (a cold migration shuts
        a running guest down first, within `stop_timeout`); reports the outcome (again,
        if already recorded). Returns at once when there is nothing to do."""
        m = a.migration
        serial = int(m.serial)
        if done.migrated >= serial:
            await self._report_outcome(uid, serial, done)
            return
        if m.abort:
            self._record(uid, done, serial, left=False)
            await self._report(uid, serial, Phase.PHASE_FAILED, message="aborted before it began")
            return
        if not m.target or uid in self.sending:
            return
        try:
            target = MigrationTarget.from_dict(json.loads(m.target))
        except ValueError as error:
            self._record(uid, done, serial, left=False)
            await self._report(uid, serial, Phase.PHASE_FAILED, message=f"bad target: {error}")
            return
        self.sending[uid] = serial
        try:
            result = await self._migrate(uid, serial, target, m.options, stop_timeout)
        except MigrationCancelled as error:
            self._record(uid, done, serial, left=False)
            await self._report(uid, serial, Phase.PHASE_FAILED, message=str(error))
            return
        except DriverError as error:
            log.warning("migration of %s failed: %s", uid, error)
            self._record(uid, done, serial, left=False)
            await self._report(uid, serial, Phase.PHASE_FAILED, message=str(error))
            return
        finally:
            self.sending.pop(uid, None)
            self._aborted.discard(uid)
        log.info(
            "migrated %s in %.0f ms (downtime %s ms)", uid, result.total_ms, result.downtime_ms
        )
        self._record(uid, done, serial, left=True)
        await self._report(
            uid, serial, Phase.PHASE_COMPLETED, progress=progress_message(None, result)
        )

    async def _migrate(
        self,
        uid: str,
        serial: int,
        target: MigrationTarget,
        options: cpb.MigrationOptions,
        stop_timeout: float,
    ) -> MigrationResult:
        loop = asyncio.get_running_loop()
        last = 0.0

        def on_progress(sample: MigrationProgress) -> None:  # in the driver's thread
            nonlocal last
            now = time.monotonic()
            if now - last < PROGRESS_SECONDS:
                return
            last = now
            asyncio.run_coroutine_threadsafe(
                self._report(uid, serial, Phase.PHASE_RUNNING, progress=progress_message(sample)),
                loop,
            )

        migrate = self._driver.migrate_live
        if options.mode == cpb.MigrationOptions.MODE_COLD:
            log.info("shutting %s down for its cold migration", uid)
            await self._run(self._driver.stop, uid, stop_timeout)
            if uid in self._aborted:
                raise MigrationCancelled(uid=uid)
            migrate = self._driver.migrate_cold
        log.info("migrating %s to %s (migration %d)", uid, target.uri, serial)
        result: MigrationResult = await self._run(
            migrate, uid, target, driver_options(options), on_progress
        )
        return result

    def _record(self, uid: str, done: Done, serial: int, *, left: bool) -> None:
        done.migrated, done.left = serial, left
        self._state.put(uid, done)

    async def _report_outcome(self, uid: str, serial: int, done: Done) -> None:
        if done.left:
            await self._report(uid, serial, Phase.PHASE_COMPLETED)
        else:
            await self._report(uid, serial, Phase.PHASE_FAILED, message="the migration failed")

    def abort(self, uid: str, a: Assignment) -> None:
        """Asks the driver to cancel the migration of `uid` if one runs here and the
        assignment says abort. Returns at once."""
        if a.migration.abort and self.sending.get(uid) == int(a.migration.serial):
            log.info("aborting the migration of %s", uid)
            self._aborted.add(uid)
            task = asyncio.ensure_future(self._abort(uid))
            self._aborts.add(task)
            task.add_done_callback(self._aborts.discard)

    async def _abort(self, uid: str) -> None:
        try:
            await self._run(self._driver.abort_migration, uid)
        except DriverError as error:
            log.warning("cannot abort the migration of %s: %s", uid, error)
