"""The DrainHost operation: empties a host put in maintenance mode by migration.

EnterHostMaintenance (topology service) sets the host MAINTENANCE, which keeps the
scheduler away, and starts this operation. Each pass reads the host's instances:
those RUNNING, SUSPENDED or STOPPED without a migration get one (MigrateInstance's
own path: the scheduler picks the destination; live for running and suspended ones,
cold for stopped ones), so that at most the requested number run at once; an
instance whose migration ended with it still here counts a failure. The operation
succeeds when no such instance is left, fails when the rest failed three times
each, and stops if the host leaves
maintenance mode. Each pass starts from the database, so a restarted API resumes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import partial

from google.protobuf.message import Message
from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.compute.v1 import resources_pb2 as pb
from kumo.server.db.models import HostRow, InstanceRow
from kumo.server.errors import Aborted, FailedPrecondition, KumoError, NotFound
from kumo.server.operations.handlers import OperationContext
from kumo.server.services.compute.common import INSTANCES
from kumo.server.services.compute.instances import InstanceMethods
from kumo.server.services.compute.migration import begin_migration, checked_options
from kumo.server.services.topology import DRAIN_HOST, host_to_proto
from kumo.topology.v1 import resources_pb2 as tpb

MAX_FAILURES = 3
S = pb.Instance
_MOVABLE = (S.STATE_RUNNING, S.STATE_SUSPENDED, S.STATE_STOPPED)


@dataclass
class _Progress:
    """What the drain knows from its passes so far. A pass works on a copy (`Database.run`
    may run its transaction again) that replaces this one once the pass has committed."""

    watching: dict[str, int] = field(default_factory=dict)  # uid → its migration's serial
    failures: Counter[str] = field(default_factory=Counter)
    errors: dict[str, str] = field(default_factory=dict)  # uid → why it last did not move

    def copy(self) -> _Progress:
        """An independent copy."""
        return _Progress(dict(self.watching), Counter(self.failures), dict(self.errors))


@dataclass
class _Pass:
    """What one pass found and did."""

    left: int  # running, suspended or stopped instances still on the host
    stuck: int  # of which failed MAX_FAILURES times (and do not migrate now)
    destinations: list[str]  # hosts the migrations this pass started go to
    progress: _Progress  # the drain's progress after this pass


class HostMaintenanceMethods(InstanceMethods):
    """The DrainHost handler (a part of the compute servicer)."""

    def register_maintenance_handlers(self) -> None:
        """Registers DRAIN_HOST with the operation controller."""
        self.runtime.handlers.register(DRAIN_HOST, self._drain)

    async def _drain(self, ctx: OperationContext) -> Message:
        host_id, limit_text = ctx.payload.decode().split("/")
        progress = _Progress()
        total = 0
        step = partial(
            self._pass, host_id=host_id, limit=int(limit_text), project_id=ctx.project_id
        )
        while True:
            found = await ctx.db.run(partial(step, progress=progress))
            progress = found.progress
            if found.destinations:
                self.runtime.operation_written()
                self.notify_hosts(host_id, *found.destinations)
            if found.left == 0:
                return await ctx.db.run(partial(self._host, host_id=host_id))
            if found.stuck == found.left:
                why = "; ".join(
                    f"{uid}: {reason}" for uid, reason in sorted(progress.errors.items())
                )
                raise FailedPrecondition(
                    f"could not move every instance off host {host_id}: {why}",
                    type="DRAIN_FAILED",
                    subject=f"hosts/{host_id}",
                )
            total = max(total, found.left)
            await ctx.checkpoint(
                100 * (total - found.left) // total,
                f"{found.left} instance(s) left on host {host_id}",
            )
            await self.runtime.notifier.wait(f"host:{host_id}", 1.0)

    def _pass(
        self,
        session: Session,
        host_id: str,
        limit: int,
        progress: _Progress,
        project_id: str,
    ) -> _Pass:
        host = session.get(HostRow, host_id)
        if host is None:
            raise NotFound("topology.kumo.dev/Host", f"hosts/{host_id}")
        if host.admin_state != tpb.Host.STATE_MAINTENANCE:
            raise Aborted(f"host {host_id} left maintenance mode")
        rows = session.scalars(
            select(InstanceRow).where(InstanceRow.host_id == host_id, ~InstanceRow.deleting)
        ).all()
        movable = [row for row in rows if row.state in _MOVABLE]
        progress = progress.copy()
        watching, failures, errors = progress.watching, progress.failures, progress.errors
        for row in movable:
            serial = watching.get(row.uid)
            if serial is not None and row.migration is None and row.migration_serial == serial:
                failures[row.uid] += 1  # its migration ended and it is still here
                errors[row.uid] = "its migration failed (see its operation)"
                del watching[row.uid]
        running = sum(1 for row in movable if row.migration is not None)
        destinations: list[str] = []
        options = checked_options(pb.MigrationOptions())
        for row in movable:
            if running >= limit:
                break
            if row.migration is not None or failures[row.uid] >= MAX_FAILURES:
                continue
            name = INSTANCES.name_of_row(row)
            try:
                begin_migration(session, self.runtime.config, row, name, options, None, project_id)
            except KumoError as error:
                failures[row.uid] += 1
                errors[row.uid] = str(error)
                continue
            watching[row.uid] = row.migration_serial
            destinations.append(str(row.migration_host_id))
            running += 1
        stuck = sum(
            1 for row in movable if row.migration is None and failures[row.uid] >= MAX_FAILURES
        )
        return _Pass(len(movable), stuck, destinations, progress)

    def _host(self, session: Session, host_id: str) -> Message:
        host = session.get(HostRow, host_id)
        if host is None:
            raise NotFound("topology.kumo.dev/Host", f"hosts/{host_id}")
        return host_to_proto(host, self.runtime)
