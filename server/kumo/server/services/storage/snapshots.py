"""Snapshot methods: take, read, list, update and delete snapshots of a volume.

A snapshot charges the `snapshots` quota and the volume's size to `gigabytes` (a qcow2
snapshot is a full copy; an RBD one grows as the volume diverges). Deleting a snapshot that
volumes were cloned from flattens those clones first (in the handler).
"""

from __future__ import annotations

from google.longrunning import operations_pb2
from sqlalchemy.orm import Session

from kumo.server.api.convert import check_etag
from kumo.server.api.fields import check_required, update_paths
from kumo.server.api.idempotency import idempotent
from kumo.server.api.resources import apply_common
from kumo.server.auth.principal import Principal, current_principal
from kumo.server.db.models import SnapshotRow
from kumo.server.errors import FailedPrecondition
from kumo.server.interceptors.base import Context
from kumo.server.operations import store
from kumo.server.quota import charge
from kumo.server.services.storage.common import (
    SNAPSHOTS,
    StoragePart,
    V,
    busy,
    snapshot_to_proto,
    visible_volume,
)
from kumo.server.services.storage.volume_operations import CREATE_SNAPSHOT, DELETE_SNAPSHOT
from kumo.storage.v1 import resources_pb2 as pb
from kumo.storage.v1 import storage_service_pb2 as api

S = pb.Snapshot
_EDITABLE = {"display_name", "description", "labels"}


def _visible_snapshot(
    session: Session, caller: Principal, name: str, field: str = "name"
) -> SnapshotRow:
    """The snapshot if the caller may see its project; NotFound otherwise."""
    project_id = SNAPSHOTS.key(name, field)[0]
    caller.require_project(project_id, SNAPSHOTS.type_name, name)
    return SNAPSHOTS.get(session, name, field)


class Snapshots(StoragePart):
    """Snapshot methods (a part of the storage servicer)."""

    async def CreateSnapshot(
        self, request: api.CreateSnapshotRequest, context: Context
    ) -> operations_pb2.Operation:
        caller = current_principal()
        check_required(request.snapshot, "snapshot.")

        def create(session: Session) -> operations_pb2.Operation:
            volume = visible_volume(session, caller, request.parent, "parent", lock=True)
            if volume.state not in (V.STATE_AVAILABLE, V.STATE_IN_USE):
                raise busy(request.parent, volume.state, "snapshot it")
            charge(session, volume.project_id, {"snapshots": 1, "gigabytes": volume.size_gib})
            row = SnapshotRow(
                project_id=volume.project_id,
                zone_id=volume.zone_id,
                volume_id=volume.id,
                size_gib=volume.size_gib,
                state=S.STATE_CREATING,
            )
            paths = {f.name for f, _ in request.snapshot.ListFields()}
            apply_common(row, request.snapshot, paths, "snapshot")
            SNAPSHOTS.insert(session, request.snapshot_id, "snapshot_id", row)
            session.flush()
            op = store.create(
                session,
                project_id=caller.project_id,
                kind=CREATE_SNAPSHOT,
                target=SNAPSHOTS.name_of_row(row),
                payload=row.uid.encode(),
            )
            return store.to_proto(op)

        operation = await idempotent(
            self.runtime.db, "CreateSnapshot", request, operations_pb2.Operation, create
        )
        self.runtime.operation_written()
        return operation

    async def GetSnapshot(self, request: api.GetSnapshotRequest, context: Context) -> pb.Snapshot:
        caller = current_principal()
        return await self.runtime.db.run(
            lambda s: snapshot_to_proto(_visible_snapshot(s, caller, request.name))
        )

    async def ListSnapshots(
        self, request: api.ListSnapshotsRequest, context: Context
    ) -> api.ListSnapshotsResponse:
        caller = current_principal()

        def page(session: Session) -> api.ListSnapshotsResponse:
            volume = visible_volume(session, caller, request.parent, "parent")
            where = [
                SnapshotRow.project_id == volume.project_id,
                SnapshotRow.zone_id == volume.zone_id,
                SnapshotRow.volume_id == volume.id,
            ]
            result = SNAPSHOTS.list(session, self.runtime.pager, request, where, request.parent)
            return api.ListSnapshotsResponse(
                snapshots=[snapshot_to_proto(r) for r in result.rows],
                next_page_token=result.next_page_token,
            )

        return await self.runtime.db.run(page)

    async def UpdateSnapshot(
        self, request: api.UpdateSnapshotRequest, context: Context
    ) -> pb.Snapshot:
        """Changes display name, description and labels (others in the mask are ignored).
        ABORTED on a stale etag; idempotent by request_id."""
        caller = current_principal()
        paths = update_paths(request.snapshot, request.update_mask, "snapshot") & _EDITABLE

        def update(session: Session) -> pb.Snapshot:
            row = _visible_snapshot(session, caller, request.snapshot.name, "snapshot.name")
            check_etag(request.snapshot.etag, row.version, request.snapshot.name)
            apply_common(row, request.snapshot, paths, "snapshot")
            row.version += 1
            session.flush()
            return snapshot_to_proto(row)

        return await idempotent(self.runtime.db, "UpdateSnapshot", request, pb.Snapshot, update)

    async def DeleteSnapshot(
        self, request: api.DeleteSnapshotRequest, context: Context
    ) -> operations_pb2.Operation:
        caller = current_principal()

        def start(session: Session) -> operations_pb2.Operation:
            row = _visible_snapshot(session, caller, request.name)
            check_etag(request.etag, row.version, request.name)
            if row.state not in (S.STATE_AVAILABLE, S.STATE_ERROR, S.STATE_DELETING):
                raise FailedPrecondition(
                    f"{request.name} is {S.State.Name(row.state)}: cannot delete it",
                    type="SNAPSHOT_STATE",
                    subject=request.name,
                )
            payload = f"{row.uid}|{row.state}".encode()
            row.state = S.STATE_DELETING
            row.version += 1
            op = store.create(
                session,
                project_id=caller.project_id,
                kind=DELETE_SNAPSHOT,
                target=request.name,
                payload=payload,
            )
            return store.to_proto(op)

        operation = await idempotent(
            self.runtime.db, "DeleteSnapshot", request, operations_pb2.Operation, start
        )
        self.runtime.operation_written()
        return operation
