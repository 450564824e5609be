"""Volume types: a backend, a pool and QoS limits, managed by cloud administrators."""

from __future__ import annotations

from google.protobuf import empty_pb2
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from kumo.drivers.storage.base import NAME_PATTERN
from kumo.server.api.convert import check_etag
from kumo.server.api.fields import check_required, update_paths
from kumo.server.api.idempotency import idempotent
from kumo.server.api.resources import apply_common
from kumo.server.db.models import VolumeRow, VolumeTypeRow
from kumo.server.errors import FailedPrecondition, FieldViolation, InvalidArgument
from kumo.server.interceptors.base import Context
from kumo.server.services.storage.common import VOLUME_TYPES, StoragePart, volume_type_to_proto
from kumo.storage.v1 import resources_pb2 as pb
from kumo.storage.v1 import storage_service_pb2 as api

_EDITABLE = {"display_name", "description", "labels", "qos", "backup_pool"}
_QOS = ("max_iops", "max_read_bytes_per_second", "max_write_bytes_per_second")


def _apply(row: VolumeTypeRow, message: pb.VolumeType, paths: set[str]) -> None:
    apply_common(row, message, paths & {"display_name", "description", "labels"}, "volume_type")
    violations: list[FieldViolation] = []
    if "qos" in paths:
        for name in _QOS:
            value = getattr(message.qos, name)
            if value < 0:
                violations.append(FieldViolation(f"volume_type.qos.{name}", "must not be negative"))
            setattr(row, name, value)
    if "backup_pool" in paths:
        if message.backup_pool and not NAME_PATTERN.fullmatch(message.backup_pool):
            violations.append(FieldViolation("volume_type.backup_pool", "not a valid pool name"))
        row.backup_pool = message.backup_pool
    if violations:
        raise InvalidArgument(violations)


class VolumeTypes(StoragePart):
    """Volume type methods (a part of the storage servicer)."""

    async def CreateVolumeType(
        self, request: api.CreateVolumeTypeRequest, context: Context
    ) -> pb.VolumeType:
        check_required(request.volume_type, "volume_type.")
        message = request.volume_type
        violations: list[FieldViolation] = []
        if message.backend not in (pb.BACKEND_QCOW2, pb.BACKEND_RBD, pb.BACKEND_FAKE):
            violations.append(FieldViolation("volume_type.backend", "unknown backend"))
        elif not self.runtime.storage.configured(message.backend):
            violations.append(FieldViolation("volume_type.backend", "not configured on this cloud"))
        if not NAME_PATTERN.fullmatch(message.pool):
            violations.append(
                FieldViolation("volume_type.pool", "letters, digits, '_.-', at most 96")
            )
        if violations:
            raise InvalidArgument(violations)

        def create(session: Session) -> pb.VolumeType:
            row = VolumeTypeRow(backend=message.backend, pool=message.pool)
            _apply(row, message, {f.name for f, _ in message.ListFields()} & _EDITABLE)
            VOLUME_TYPES.insert(session, request.volume_type_id, "volume_type_id", row)
            session.flush()
            return volume_type_to_proto(row)

        return await idempotent(self.runtime.db, "CreateVolumeType", request, pb.VolumeType, create)

    async def GetVolumeType(
        self, request: api.GetVolumeTypeRequest, context: Context
    ) -> pb.VolumeType:
        return await self.runtime.db.run(
            lambda s: volume_type_to_proto(VOLUME_TYPES.get(s, request.name))
        )

    async def ListVolumeTypes(
        self, request: api.ListVolumeTypesRequest, context: Context
    ) -> api.ListVolumeTypesResponse:
        def page(session: Session) -> api.ListVolumeTypesResponse:
            result = VOLUME_TYPES.list(session, self.runtime.pager, request)
            return api.ListVolumeTypesResponse(
                volume_types=[volume_type_to_proto(r) for r in result.rows],
                next_page_token=result.next_page_token,
            )

        return await self.runtime.db.run(page)

    async def UpdateVolumeType(
        self, request: api.UpdateVolumeTypeRequest, context: Context
    ) -> pb.VolumeType:
        paths = update_paths(request.volume_type, request.update_mask, "volume_type") & _EDITABLE

        def update(session: Session) -> pb.VolumeType:
            row = VOLUME_TYPES.get(session, request.volume_type.name, "volume_type.name")
            check_etag(request.volume_type.etag, row.version, request.volume_type.name)
            _apply(row, request.volume_type, paths)
            row.version += 1
            session.flush()
            return volume_type_to_proto(row)

        return await idempotent(self.runtime.db, "UpdateVolumeType", request, pb.VolumeType, update)

    async def DeleteVolumeType(
        self, request: api.DeleteVolumeTypeRequest, context: Context
    ) -> empty_pb2.Empty:
        def delete(session: Session) -> empty_pb2.Empty:
            row = VOLUME_TYPES.get(session, request.name)
            check_etag(request.etag, row.version, request.name)
            if session.scalar(select(exists().where(VolumeRow.volume_type_id == row.id))):
                raise FailedPrecondition(
                    f"{request.name} is used by volumes",
                    type="VOLUME_TYPE_IN_USE",
                    subject=request.name,
                )
            session.delete(row)
            return empty_pb2.Empty()

        return await idempotent(
            self.runtime.db, "DeleteVolumeType", request, empty_pb2.Empty, delete
        )
