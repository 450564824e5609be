"""Volume transfers: a project offers an AVAILABLE volume (no snapshots, not attached) to
whoever presents the auth key; accepting moves the volume, and its quota usage, into the
accepting project in one transaction. Only the key's SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import hmac

from google.protobuf import empty_pb2
from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from kumo.server.api.convert import timestamp
from kumo.server.api.fields import check_required
from kumo.server.api.idempotency import idempotent
from kumo.server.api.paging import Order
from kumo.server.api.resources import Collection
from kumo.server.auth.generated import typeable_secret
from kumo.server.auth.principal import current_principal
from kumo.server.db.models import (
    AttachmentRow,
    SnapshotRow,
    VolumeRow,
    VolumeTransferRow,
)
from kumo.server.db.models.common import new_uid
from kumo.server.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from kumo.server.interceptors.base import Context
from kumo.server.quota import charge
from kumo.server.services.identity.common import PROJECTS, require_active
from kumo.server.services.storage.common import (
    VOLUMES,
    StoragePart,
    V,
    busy,
    render_volume,
    visible_volume,
)
from kumo.storage.v1 import resources_pb2 as pb
from kumo.storage.v1 import storage_service_pb2 as api

TRANSFERS = Collection(
    "storage.kumo.dev/VolumeTransfer",
    "projects/{project}/volumeTransfers/{volume_transfer}",
    VolumeTransferRow,
    key_columns=("project_id", "id"),
)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _to_proto(row: VolumeTransferRow, auth_key: str = "") -> pb.VolumeTransfer:
    return pb.VolumeTransfer(
        name=TRANSFERS.name_of_row(row),
        uid=row.uid,
        volume=VOLUMES.name_of(row.project_id, row.zone_id, row.volume_id),
        auth_key=auth_key,
        create_time=timestamp(row.create_time),
    )


def _movable(session: Session, volume: VolumeRow, name: str) -> None:
    """FailedPrecondition unless the volume can change project."""
    if volume.state != V.STATE_AVAILABLE:
        raise busy(name, volume.state, "transfer it")
    for table, what in ((SnapshotRow, "snapshots"), (AttachmentRow, "attachments")):
        if session.scalar(
            select(
                exists().where(
                    table.project_id == volume.project_id,
                    table.zone_id == volume.zone_id,
                    table.volume_id == volume.id,
                )
            )
        ):
            raise FailedPrecondition(f"{name} has {what}", type="VOLUME_NOT_MOVABLE", subject=name)


class Transfers(StoragePart):
    """Volume transfer methods (a part of the storage servicer)."""

    async def CreateVolumeTransfer(
        self, request: api.CreateVolumeTransferRequest, context: Context
    ) -> pb.VolumeTransfer:
        caller = current_principal()
        project_id = PROJECTS.parse(request.parent, "parent")
        caller.require_project(project_id, PROJECTS.type_name, request.parent)
        check_required(request.volume_transfer, "volume_transfer.")
        volume_name = request.volume_transfer.volume
        key = typeable_secret(32)

        def create(session: Session) -> pb.VolumeTransfer:
            volume = visible_volume(
                session, caller, volume_name, "volume_transfer.volume", lock=True
            )
            if volume.project_id != project_id:
                raise InvalidArgument.field(
                    "volume_transfer.volume", "must belong to the parent project"
                )
            _movable(session, volume, volume_name)
            if session.scalar(
                select(
                    exists().where(
                        VolumeTransferRow.project_id == project_id,
                        VolumeTransferRow.zone_id == volume.zone_id,
                        VolumeTransferRow.volume_id == volume.id,
                    )
                )
            ):
                raise FailedPrecondition(
                    f"{volume_name} already has a transfer",
                    type="VOLUME_TRANSFER_EXISTS",
                    subject=volume_name,
                )
            row = VolumeTransferRow(
                project_id=project_id,
                uid=new_uid(),
                zone_id=volume.zone_id,
                volume_id=volume.id,
                auth_key_sha256=_digest(key),
            )
            TRANSFERS.insert(session, request.volume_transfer_id, "volume_transfer_id", row)
            session.flush()
            return _to_proto(row, key)

        return await idempotent(
            self.runtime.db, "CreateVolumeTransfer", request, pb.VolumeTransfer, create
        )

    async def GetVolumeTransfer(
        self, request: api.GetVolumeTransferRequest, context: Context
    ) -> pb.VolumeTransfer:
        caller = current_principal()
        caller.require_project(TRANSFERS.key(request.name)[0], TRANSFERS.type_name, request.name)
        return await self.runtime.db.run(lambda s: _to_proto(TRANSFERS.get(s, request.name)))

    async def ListVolumeTransfers(
        self, request: api.ListVolumeTransfersRequest, context: Context
    ) -> api.ListVolumeTransfersResponse:
        caller = current_principal()
        project_id = PROJECTS.parse(request.parent, "parent")
        caller.require_project(project_id, PROJECTS.type_name, request.parent)

        def page(session: Session) -> api.ListVolumeTransfersResponse:
            result = self.runtime.pager.page(
                session,
                select(VolumeTransferRow).where(VolumeTransferRow.project_id == project_id),
                key=VolumeTransferRow.id,
                id_column=VolumeTransferRow.id,
                order=Order("name"),
                page_size=request.page_size,
                page_token=request.page_token,
                binding=f"volume-transfers|{request.parent}",
            )
            return api.ListVolumeTransfersResponse(
                volume_transfers=[_to_proto(r) for r in result.rows],
                next_page_token=result.next_page_token,
            )

        return await self.runtime.db.run(page)

    async def DeleteVolumeTransfer(
        self, request: api.DeleteVolumeTransferRequest, context: Context
    ) -> empty_pb2.Empty:
        caller = current_principal()
        caller.require_project(TRANSFERS.key(request.name)[0], TRANSFERS.type_name, request.name)

        def delete(session: Session) -> empty_pb2.Empty:
            session.delete(TRANSFERS.get(session, request.name))
            return empty_pb2.Empty()

        return await idempotent(
            self.runtime.db, "DeleteVolumeTransfer", request, empty_pb2.Empty, delete
        )

    async def AcceptVolumeTransfer(
        self, request: api.AcceptVolumeTransferRequest, context: Context
    ) -> pb.Volume:
        caller = current_principal()
        destination = PROJECTS.parse(request.destination_project, "destination_project")
        # Members accept into their own project; the offering project is not theirs to read.
        caller.require_project(destination, PROJECTS.type_name, request.destination_project)
        if not request.auth_key:
            raise InvalidArgument.field("auth_key", "is required")
        TRANSFERS.key(request.name)

        def accept(session: Session) -> pb.Volume:
            require_active(
                PROJECTS.get(session, request.destination_project, "destination_project")
            )
            row = session.get(VolumeTransferRow, TRANSFERS.key(request.name))
            if row is None or not hmac.compare_digest(
                row.auth_key_sha256, _digest(request.auth_key)
            ):
                # A wrong key looks like no transfer: keys cannot be probed name by name.
                raise NotFound(TRANSFERS.type_name, request.name)
            volume = VOLUMES.get(
                session, VOLUMES.name_of(row.project_id, row.zone_id, row.volume_id)
            )
            name = VOLUMES.name_of_row(volume)
            _movable(session, volume, name)
            if destination == volume.project_id:
                raise InvalidArgument.field(
                    "destination_project", "the volume already belongs to it"
                )
            moved = VOLUMES.name_of(destination, volume.zone_id, volume.id)
            if session.get(VolumeRow, (destination, volume.zone_id, volume.id)) is not None:
                raise AlreadyExists(VOLUMES.type_name, moved)
            charge(session, destination, {"volumes": 1, "gigabytes": volume.size_gib})
            charge(session, volume.project_id, {"volumes": -1, "gigabytes": -volume.size_gib})
            session.delete(row)
            session.flush()
            session.execute(
                update(VolumeRow)
                .where(VolumeRow.uid == volume.uid)
                .values(project_id=destination, version=VolumeRow.version + 1)
            )
            session.expire_all()
            return render_volume(session, VOLUMES.get(session, moved))

        return await idempotent(self.runtime.db, "AcceptVolumeTransfer", request, pb.Volume, accept)
