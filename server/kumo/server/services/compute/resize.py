"""ResizeInstance, ConfirmResizeInstance and RevertResizeInstance.

Resize takes a RUNNING or STOPPED instance to another flavor: the quota is
charged the difference, the host is claimed for the growth (a MOVE claim, so it
holds the larger of both sizes until the resize is settled), the old flavor is
kept in `resize_from`, and the agent shuts the guest off, gives it the new sizes
and starts it again if it ran. The instance then shows STATE_RESIZED until
ConfirmResize (the claim becomes the new size) or RevertResize (back to the old
flavor; the disk shrinks back, dropping whatever lies beyond the old size).
A disk never shrinks by resize: a flavor with a smaller disk is refused.

When the instance's host has no room for the growth (or the configuration
forbids resizing in place, `scheduler.allow_resize_to_same_host`), the resize is
a cold migration to a host the scheduler chooses (migration.py), and the new
flavor is taken on arrival. Confirm then acts on the new host; revert moves the
instance back to the host it came from (another cold migration, refused if that
host has no room for it any more) and it takes the old flavor on arrival, as Nova's
revert of a resize that changed hosts does.

Raises FailedPrecondition (busy, not resized, a resize already pending, no room
on any host), InvalidArgument (unknown or same flavor, smaller disk), and the
quota's ResourceExhausted.
"""

from __future__ import annotations

from typing import Any

from google.longrunning import operations_pb2
from sqlalchemy.orm import Session

from kumo.compute.v1 import compute_service_pb2 as api
from kumo.compute.v1 import resources_pb2 as pb
from kumo.server.controllers import claims
from kumo.server.controllers.claims import INSTANCE, MOVE, Usage
from kumo.server.controllers.scheduler import ratios
from kumo.server.db.models import InstanceRow
from kumo.server.errors import FailedPrecondition, InvalidArgument
from kumo.server.interceptors.base import Context
from kumo.server.quota import charge
from kumo.server.services.compute.common import FLAVORS, session_of
from kumo.server.services.compute.instances import InstanceMethods
from kumo.server.services.compute.migration import MIGRATE, REVERTING, place_migration

S = pb.Instance
_SETTLED = (S.STATE_RUNNING, S.STATE_STOPPED)


def _sizes(row: InstanceRow) -> Usage:
    return Usage(row.vcpus, row.memory_mib, row.disk_gib)


def _charge_difference(session: Session, row: InstanceRow, old: Usage, new: Usage) -> None:
    charge(
        session,
        row.project_id,
        {"vcpus": new.vcpus - old.vcpus, "ram_mib": new.memory_mib - old.memory_mib},
    )


def _pending(row: InstanceRow, name: str) -> dict[str, Any]:
    """The pre-resize flavor and sizes; FailedPrecondition unless a resize is done and
    waits for confirmation."""
    if row.resize_from is None or row.observed_resize_serial < row.resize_serial:
        raise FailedPrecondition(
            f"{name} has no resize waiting for confirmation",
            type="INSTANCE_NOT_RESIZED",
            subject=name,
        )
    return dict(row.resize_from)


class InstanceResizeMethods(InstanceMethods):
    """The resize methods (a part of the compute servicer)."""

    async def ResizeInstance(
        self, request: api.ResizeInstanceRequest, context: Context
    ) -> operations_pb2.Operation:
        if not request.flavor:
            raise InvalidArgument.field("flavor", "name the new flavor")
        config = self.runtime.config
        limits = ratios(config)

        def resize(row: InstanceRow) -> tuple[str, bytes] | None:
            session = session_of(row)
            if row.resize_from is not None:
                raise FailedPrecondition(
                    f"{request.name} has a resize pending: confirm or revert it first",
                    type="RESIZE_PENDING",
                    subject=request.name,
                )
            flavor = FLAVORS.get(session, request.flavor, "flavor")
            if flavor.id == row.flavor_id:
                raise InvalidArgument.field("flavor", "the instance already has this flavor")
            if flavor.disk_gib < row.disk_gib:
                raise InvalidArgument.field(
                    "flavor", f"its disk ({flavor.disk_gib} GiB) is smaller than the instance's"
                )
            old, new = _sizes(row), Usage(flavor.vcpus, flavor.memory_mib, flavor.disk_gib)
            _charge_difference(session, row, old, new)
            assert row.host_id is not None  # _action refuses unplaced instances
            in_place = config.scheduler.allow_resize_to_same_host and claims.claim_for(
                session, row, MOVE, row.host_id, old.grown_by(new), limits
            )
            if not in_place:
                moved = {"flavor_id": flavor.id, **vars(new)}
                options = pb.MigrationOptions()
                return MIGRATE, place_migration(
                    session, config, row, request.name, options, None, resize=moved
                )
            row.resize_from = {"flavor_id": row.flavor_id, **vars(old)}
            row.flavor_id = flavor.id
            row.vcpus, row.memory_mib, row.disk_gib = new.vcpus, new.memory_mib, new.disk_gib
            row.resize_serial += 1
            return None

        return await self._action(request, "ResizeInstance", resize, _SETTLED)

    async def ConfirmResizeInstance(
        self, request: api.ConfirmResizeInstanceRequest, context: Context
    ) -> operations_pb2.Operation:
        def confirm(row: InstanceRow) -> None:
            session = session_of(row)
            _pending(row, request.name)
            assert row.host_id is not None
            claims.release(session, row.uid)
            claims.claim_for(session, row, INSTANCE, row.host_id, _sizes(row))
            row.resize_from = None

        return await self._action(request, "ConfirmResizeInstance", confirm, _SETTLED)

    async def RevertResizeInstance(
        self, request: api.RevertResizeInstanceRequest, context: Context
    ) -> operations_pb2.Operation:
        config = self.runtime.config

        def revert(row: InstanceRow) -> tuple[str, bytes] | None:
            session = session_of(row)
            before = _pending(row, request.name)
            old = Usage(before["vcpus"], before["memory_mib"], before["disk_gib"])
            _charge_difference(session, row, _sizes(row), old)
            source = before.get("host_id")
            assert row.host_id is not None  # _action refuses unplaced instances
            if source and source != row.host_id:
                # Moved by the resize: back to that host, holding just the current sizes
                # here meanwhile (the migration claims the source).
                claims.release(session, row.uid)
                claims.claim_for(session, row, INSTANCE, row.host_id, _sizes(row))
                row.resize_from = None
                back = {"flavor_id": before["flavor_id"], **vars(old), REVERTING: before}
                options = pb.MigrationOptions()
                return MIGRATE, place_migration(
                    session, config, row, request.name, options, source, resize=back
                )
            claims.release(session, row.uid, MOVE)
            row.flavor_id = before["flavor_id"]
            row.vcpus, row.memory_mib, row.disk_gib = old.vcpus, old.memory_mib, old.disk_gib
            row.resize_from = None
            row.resize_serial += 1
            return None

        return await self._action(request, "RevertResizeInstance", revert, _SETTLED)
