"""Volume methods: create (empty or from an image, snapshot or volume), read, update,
delete, extend, retype, attach and detach.

Each mutation validates, checks the volume's state, charges quotas and writes the new state
and an Operation in one transaction; the handlers in volume_operations.py then drive the
backend. An attached volume without `multi_attach` cannot be attached again (two guests
writing one image corrupt it, and libvirt would let them); a volume with snapshots or
attachments cannot be deleted.
"""

from __future__ import annotations

from typing import Any

from google.longrunning import operations_pb2
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from kumo.server.api.convert import check_etag
from kumo.server.api.fields import check_required, update_paths
from kumo.server.api.idempotency import idempotent
from kumo.server.auth.principal import current_principal
from kumo.server.db.models import InstanceRow, SnapshotRow, VolumeRow
from kumo.server.errors import FailedPrecondition, InvalidArgument
from kumo.server.interceptors.base import Context
from kumo.server.operations import store
from kumo.server.quota import charge
from kumo.server.services.compute.common import INSTANCES
from kumo.server.services.compute.locks import refuse_if_locked
from kumo.server.services.storage.attachments import (
    attach,
    attachment_of,
    check_attachable,
    check_device,
)
from kumo.server.services.storage.common import (
    IDLE,
    VOLUME_TYPES,
    VOLUMES,
    V,
    attachments_of,
    busy,
    render_volume,
    visible_volume,
    volume_type,
    zone_parent,
)
from kumo.server.services.storage.volume_operations import (
    ATTACH_VOLUME,
    DELETE_VOLUME,
    DETACH_VOLUME,
    EXTEND_VOLUME,
    RETYPE_VOLUME,
    VolumeOperations,
)
from kumo.server.services.storage.volume_records import (
    EDITABLE,
    apply_editable,
    begin_deletion,
    check_size,
    record_volume,
)
from kumo.storage.v1 import resources_pb2 as pb
from kumo.storage.v1 import storage_service_pb2 as api


class Volumes(VolumeOperations):
    """Volume methods (a part of the storage servicer)."""

    async def CreateVolume(
        self, request: api.CreateVolumeRequest, context: Context
    ) -> operations_pb2.Operation:
        caller = current_principal()
        project_id, zone_id = zone_parent(caller, request.parent)
        check_required(request.volume, "volume.")
        volume = request.volume

        def create(session: Session) -> operations_pb2.Operation:
            _, op = record_volume(
                session, self.runtime, caller, project_id, zone_id, volume, request.volume_id
            )
            return store.to_proto(op)

        operation = await idempotent(
            self.runtime.db, "CreateVolume", request, operations_pb2.Operation, create
        )
        self.runtime.operation_written()
        return operation

    async def GetVolume(self, request: api.GetVolumeRequest, context: Context) -> pb.Volume:
        caller = current_principal()
        return await self.runtime.db.run(
            lambda s: render_volume(s, visible_volume(s, caller, request.name))
        )

    async def ListVolumes(
        self, request: api.ListVolumesRequest, context: Context
    ) -> api.ListVolumesResponse:
        caller = current_principal()
        project_id, zone_id = zone_parent(caller, request.parent, any_zone=True)
        where = [VolumeRow.project_id == project_id]
        if zone_id != "-":
            where.append(VolumeRow.zone_id == zone_id)

        def page(session: Session) -> api.ListVolumesResponse:
            result = VOLUMES.list(session, self.runtime.pager, request, where, request.parent)
            return api.ListVolumesResponse(
                volumes=[render_volume(session, r) for r in result.rows],
                next_page_token=result.next_page_token,
            )

        return await self.runtime.db.run(page)

    async def UpdateVolume(self, request: api.UpdateVolumeRequest, context: Context) -> pb.Volume:
        caller = current_principal()
        paths = update_paths(request.volume, request.update_mask, "volume") & EDITABLE

        def update(session: Session) -> pb.Volume:
            row = visible_volume(session, caller, request.volume.name, "volume.name", lock=True)
            check_etag(request.volume.etag, row.version, request.volume.name)
            apply_editable(row, request.volume, paths)
            row.version += 1
            session.flush()
            return render_volume(session, row)

        return await idempotent(self.runtime.db, "UpdateVolume", request, pb.Volume, update)

    async def _start(
        self,
        request: Any,
        method: str,
        kind: str,
        change: Any,
        related: str = "",
    ) -> operations_pb2.Operation:
        """Runs `change(session, row) -> payload` on the named volume, its row locked (two
        API processes must not both find it free, say, and both attach it), and queues
        `kind` (`related`: the instance it attaches the volume to or detaches it from)."""
        caller = current_principal()

        def start(session: Session) -> operations_pb2.Operation:
            row = visible_volume(session, caller, request.name, lock=True)
            if getattr(request, "etag", ""):
                check_etag(request.etag, row.version, request.name)
            payload: bytes = change(session, row)
            row.version += 1
            op = store.create(
                session,
                project_id=caller.project_id,
                kind=kind,
                target=request.name,
                related=related,
                payload=payload,
            )
            return store.to_proto(op)

        operation = await idempotent(
            self.runtime.db, method, request, operations_pb2.Operation, start
        )
        self.runtime.operation_written()
        return operation

    async def DeleteVolume(
        self, request: api.DeleteVolumeRequest, context: Context
    ) -> operations_pb2.Operation:
        def change(session: Session, row: VolumeRow) -> bytes:
            return begin_deletion(session, row, request.name)

        return await self._start(request, "DeleteVolume", DELETE_VOLUME, change)

    async def ExtendVolume(
        self, request: api.ExtendVolumeRequest, context: Context
    ) -> operations_pb2.Operation:
        check_size("size_gib", request.size_gib)

        def change(session: Session, row: VolumeRow) -> bytes:
            if row.state not in IDLE:
                raise busy(request.name, row.state, "extend it")
            if request.size_gib <= row.size_gib:
                raise InvalidArgument.field(
                    "size_gib", f"must be larger than the current {row.size_gib} GiB (no shrinking)"
                )
            charge(session, row.project_id, {"gigabytes": request.size_gib - row.size_gib})
            payload = f"{row.uid}|{row.state}|{row.size_gib}|{request.size_gib}".encode()
            row.state = V.STATE_UPDATING
            return payload

        return await self._start(request, "ExtendVolume", EXTEND_VOLUME, change)

    async def RetypeVolume(
        self, request: api.RetypeVolumeRequest, context: Context
    ) -> operations_pb2.Operation:
        type_id = VOLUME_TYPES.parse(request.volume_type, "volume_type")

        def change(session: Session, row: VolumeRow) -> bytes:
            new = VOLUME_TYPES.get(session, request.volume_type, "volume_type")
            old = volume_type(session, row.volume_type_id)
            if new.backend != old.backend:
                raise InvalidArgument.field(
                    "volume_type", "must have the same backend as the current type"
                )
            if row.state != V.STATE_AVAILABLE:
                raise busy(request.name, row.state, "retype it")
            if session.scalar(
                select(
                    exists().where(
                        SnapshotRow.project_id == row.project_id,
                        SnapshotRow.zone_id == row.zone_id,
                        SnapshotRow.volume_id == row.id,
                    )
                )
            ):
                raise FailedPrecondition(
                    f"{request.name} has snapshots; delete them first",
                    type="VOLUME_HAS_SNAPSHOTS",
                    subject=request.name,
                )
            payload = f"{row.uid}|{row.state}|{type_id}".encode()
            row.state = V.STATE_UPDATING
            return payload

        return await self._start(request, "RetypeVolume", RETYPE_VOLUME, change)

    async def AttachVolume(
        self, request: api.AttachVolumeRequest, context: Context
    ) -> operations_pb2.Operation:
        caller = current_principal()
        mode = request.mode or pb.ATTACH_MODE_READ_WRITE
        if mode not in (pb.ATTACH_MODE_READ_WRITE, pb.ATTACH_MODE_READ_ONLY):
            raise InvalidArgument.field("mode", "unknown attach mode")
        check_device("device", request.device)

        def change(session: Session, row: VolumeRow) -> bytes:
            key = INSTANCES.key(request.instance, "instance")
            caller.require_project(key[0], INSTANCES.type_name, request.instance)
            if key[:2] != (row.project_id, row.zone_id):
                raise InvalidArgument.field("instance", "must be in the volume's project and zone")
            instance = INSTANCES.get(session, request.instance, "instance")
            refuse_if_locked(instance, caller, request.instance)
            check_attachable(session, row, request.name, request.instance)
            attach(session, row, key[2], mode, request.delete_with_instance, request.device)
            return f"{row.uid}|{key[2]}".encode()

        return await self._start(
            request, "AttachVolume", ATTACH_VOLUME, change, related=request.instance
        )

    async def DetachVolume(
        self, request: api.DetachVolumeRequest, context: Context
    ) -> operations_pb2.Operation:
        caller = current_principal()

        def change(session: Session, row: VolumeRow) -> bytes:
            instance_id, attachment = attachment_of(session, row, request.name, request.instance)
            instance = session.get(InstanceRow, (row.project_id, row.zone_id, instance_id))
            if instance is not None and instance.boot_volume_id == row.id:
                raise FailedPrecondition(
                    f"{request.instance} boots from {request.name}; delete the instance instead",
                    type="VOLUME_IS_ROOT_DISK",
                    subject=request.name,
                )
            if instance is not None:
                refuse_if_locked(instance, caller, request.instance)
            session.delete(attachment)
            session.flush()
            if not attachments_of(session, row):
                row.state = V.STATE_AVAILABLE
            return f"{row.uid}|{instance_id}".encode()

        return await self._start(
            request, "DetachVolume", DETACH_VOLUME, change, related=request.instance
        )
