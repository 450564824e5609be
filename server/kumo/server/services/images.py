"""ImageService: image records, streamed data, visibility and sharing.

An image is visible to its own project, to everyone when PUBLIC, and to the
projects it is shared with when SHARED (listed for them once they accept).
Cloud administrators see everything. Only the owning project's members change
an image; only cloud administrators make one PUBLIC. Anything not visible is
NOT_FOUND.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from functools import partial
from typing import cast

from google.longrunning import operations_pb2
from google.protobuf import empty_pb2
from sqlalchemy import ColumnElement, and_, delete, exists, or_, select, true
from sqlalchemy.orm import Session

from kumo.image.v1 import image_service_pb2 as api
from kumo.image.v1 import image_service_pb2_grpc as rpc
from kumo.image.v1 import resources_pb2 as pb
from kumo.server.api.convert import check_etag, common_fields
from kumo.server.api.fields import check_required, update_paths
from kumo.server.api.filtering import enum_value
from kumo.server.api.idempotency import idempotent
from kumo.server.api.names import parse
from kumo.server.api.paging import Order
from kumo.server.api.resources import Collection, apply_common, equals, has_element
from kumo.server.auth.principal import Principal, current_principal
from kumo.server.db.models import ImageMemberRow, ImageRow, OperationRow
from kumo.server.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from kumo.server.interceptors.base import Context
from kumo.server.operations import store
from kumo.server.operations.handlers import OperationContext
from kumo.server.runtime import Runtime
from kumo.server.services.identity.common import PROJECTS, require_active

DELETE_IMAGE = "image.DeleteImage"
MAX_UPLOAD_CHUNK = 4 << 20
IMAGES = Collection(
    "image.kumo.dev/Image",
    "projects/{project}/images/{image}",
    ImageRow,
    filters={
        "state": lambda v: ImageRow.state == enum_value(pb.Image.State, v),
        "visibility": lambda v: ImageRow.visibility == enum_value(pb.Visibility, v),
        "disk_format": lambda v: ImageRow.disk_format == enum_value(pb.DiskFormat, v),
        # Lookups by the REST gateway's Glance dialect (image UUID, image name).
        "uid": equals(ImageRow.uid),
        "display_name": equals(ImageRow.display_name),
    },
    key_columns=("project_id", "id"),
    has_filters={"tags": has_element(ImageRow.tags)},
)
MEMBER_PATTERN = "projects/{project}/images/{image}/members/{member}"
MEMBER_TYPE = "image.kumo.dev/ImageMember"
_EDITABLE = {
    *("display_name", "description", "labels", "tags"),
    *("visibility", "min_disk_gib", "min_ram_mib"),
}


def image_to_proto(row: ImageRow) -> pb.Image:
    """Renders an image row."""
    return pb.Image(
        **common_fields(row, IMAGES.name_of_row(row)),
        description=row.description,
        disk_format=cast(pb.DiskFormat, row.disk_format),
        visibility=cast(pb.Visibility, row.visibility),
        min_disk_gib=row.min_disk_gib,
        min_ram_mib=row.min_ram_mib,
        state=cast(pb.Image.State, row.state),
        state_message=row.state_message,
        size_bytes=row.size_bytes,
        virtual_size_bytes=row.virtual_size_bytes,
        checksum_sha256=row.checksum_sha256,
        source_instance=row.source_instance,
        tags=row.tags,
    )


def member_to_proto(row: ImageMemberRow) -> pb.ImageMember:
    """Renders an image member row."""
    return pb.ImageMember(
        name=f"projects/{row.project_id}/images/{row.image_id}/members/{row.member_project_id}",
        project=PROJECTS.name_of(row.member_project_id),
        state=cast(pb.ImageMember.State, row.state),
    )


def visible_to(caller: Principal, *, listed: bool = False) -> ColumnElement[bool]:
    """Which images the caller sees; `listed` hides shared images not (yet) accepted."""
    if caller.cloud_admin:
        return true()
    return visible_in(caller.project_id, listed=listed)


def visible_in(
    project_id: str | ColumnElement[str], *, listed: bool = False
) -> ColumnElement[bool]:
    """Which images a member (not a cloud administrator) of the project sees (`project_id`
    may be a bound parameter); `listed` hides shared images not (yet) accepted."""
    accepted = [pb.ImageMember.STATE_ACCEPTED] if listed else list(pb.ImageMember.State.values())
    shared = exists().where(
        ImageMemberRow.project_id == ImageRow.project_id,
        ImageMemberRow.image_id == ImageRow.id,
        ImageMemberRow.member_project_id == project_id,
        ImageMemberRow.state.in_(accepted),
    )
    return or_(
        ImageRow.project_id == project_id,
        ImageRow.visibility == pb.VISIBILITY_PUBLIC,
        and_(ImageRow.visibility == pb.VISIBILITY_SHARED, shared),
    )


def visible_image(session: Session, caller: Principal, name: str, field: str = "name") -> ImageRow:
    """The image named `name` if the caller sees it; NotFound otherwise."""
    project_id, image_id = IMAGES.key(name, field)
    row = session.scalar(
        select(ImageRow).where(
            ImageRow.project_id == project_id, ImageRow.id == image_id, visible_to(caller)
        )
    )
    if row is None:
        raise NotFound(IMAGES.type_name, name)
    return row


def owned_image(session: Session, caller: Principal, name: str, field: str = "name") -> ImageRow:
    """The image if the caller's project owns it (or the caller is a cloud admin)."""
    row = visible_image(session, caller, name, field)
    if not caller.cloud_admin and row.project_id != caller.project_id:
        raise PermissionDenied("only the owning project may change this image")
    return row


def _check_visibility(caller: Principal, visibility: int) -> None:
    if visibility == pb.VISIBILITY_PUBLIC and not caller.cloud_admin:
        raise PermissionDenied("only cloud administrators may publish images")


def _apply(row: ImageRow, image: pb.Image, paths: set[str]) -> None:
    apply_common(row, image, paths & {"display_name", "description", "labels", "tags"}, "image")
    for field_name in ("min_disk_gib", "min_ram_mib"):
        if field_name in paths:
            value = getattr(image, field_name)
            if value < 0:
                raise InvalidArgument.field(f"image.{field_name}", "must not be negative")
            setattr(row, field_name, value)
    if "visibility" in paths:
        row.visibility = image.visibility or pb.VISIBILITY_PRIVATE


class ImageService(rpc.ImageServiceServicer):
    """The image servicer."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        runtime.handlers.register(DELETE_IMAGE, self._delete_image, _undo_delete)
        runtime.project_cleanups.append(self._delete_project_images)

    async def CreateImage(self, request: api.CreateImageRequest, context: Context) -> pb.Image:
        caller = current_principal()
        check_required(request.image, "image.")
        _check_visibility(caller, request.image.visibility)
        project_id = PROJECTS.parse(request.parent, "parent")
        if not caller.cloud_admin and project_id != caller.project_id:
            raise NotFound(PROJECTS.type_name, request.parent)

        def create(session: Session) -> pb.Image:
            require_active(PROJECTS.get(session, request.parent, "parent"))
            row = ImageRow(
                project_id=project_id,
                disk_format=request.image.disk_format,
                state=pb.Image.STATE_PENDING_UPLOAD,
            )
            _apply(row, request.image, {f.name for f, _ in request.image.ListFields()} & _EDITABLE)
            IMAGES.insert(session, request.image_id, "image_id", row)
            session.flush()
            return image_to_proto(row)

        return await idempotent(self.runtime.db, "CreateImage", request, pb.Image, create)

    async def UploadImageData(
        self, request_iterator: AsyncIterator[api.UploadImageDataRequest], context: Context
    ) -> pb.Image:
        caller = current_principal()
        first = await anext(request_iterator, None)
        if first is None or not first.name:
            raise InvalidArgument.field("name", "the first message must name the image")
        row = await self.runtime.db.run(lambda s: owned_image(s, caller, first.name))
        if row.state != pb.Image.STATE_PENDING_UPLOAD:
            raise FailedPrecondition(
                f"{first.name} already has data", type="IMAGE_NOT_PENDING", subject=first.name
            )

        async def chunks() -> AsyncIterator[bytes]:
            message: api.UploadImageDataRequest | None = first
            while message is not None:
                if len(message.data) > MAX_UPLOAD_CHUNK:
                    raise InvalidArgument.field("data", "chunks must be at most 4 MiB")
                if message.name and message.name != first.name:
                    raise InvalidArgument.field("name", "every message must name the same image")
                yield message.data
                message = await anext(request_iterator, None)

        try:
            stored = await self.runtime.images.receive(
                row.uid, row.disk_format, chunks(), first.expected_sha256
            )
        except InvalidArgument as error:
            reason = error.message
            await self.runtime.db.run(lambda s: _mark_error(s, row, reason))
            raise

        def activate(session: Session) -> pb.Image:
            current = session.get(ImageRow, (row.project_id, row.id))
            if current is None or current.state != pb.Image.STATE_PENDING_UPLOAD:
                raise FailedPrecondition(
                    f"{first.name} changed during the upload",
                    type="IMAGE_NOT_PENDING",
                    subject=first.name,
                )
            current.state = pb.Image.STATE_ACTIVE
            current.size_bytes = stored.size_bytes
            current.virtual_size_bytes = stored.virtual_size_bytes
            current.checksum_sha256 = stored.sha256
            current.version += 1
            session.flush()
            return image_to_proto(current)

        return await self.runtime.db.run(activate)

    async def DownloadImageData(
        self, request: api.DownloadImageDataRequest, context: Context
    ) -> AsyncIterator[api.DownloadImageDataResponse]:
        caller = current_principal()
        row = await self.runtime.db.run(lambda s: visible_image(s, caller, request.name))
        if row.state != pb.Image.STATE_ACTIVE:
            raise FailedPrecondition(
                f"{request.name} has no data yet", type="IMAGE_NOT_ACTIVE", subject=request.name
            )
        chunks = self.runtime.images.read(row.uid)
        while chunk := await asyncio.to_thread(next, chunks, b""):
            yield api.DownloadImageDataResponse(data=chunk)

    async def GetImage(self, request: api.GetImageRequest, context: Context) -> pb.Image:
        caller = current_principal()
        return await self.runtime.db.run(
            lambda s: image_to_proto(visible_image(s, caller, request.name))
        )

    async def ListImages(
        self, request: api.ListImagesRequest, context: Context
    ) -> api.ListImagesResponse:
        caller = current_principal()
        where = [visible_to(caller, listed=not request.show_pending)]
        if request.parent != "projects/-":
            where.append(ImageRow.project_id == PROJECTS.parse(request.parent, "parent"))

        def page(session: Session) -> api.ListImagesResponse:
            result = IMAGES.list(
                session,
                self.runtime.pager,
                request,
                where,
                binding=f"{caller.project_id}|{request.parent}|{request.show_pending}",
            )
            return api.ListImagesResponse(
                images=[image_to_proto(r) for r in result.rows],
                next_page_token=result.next_page_token,
            )

        return await self.runtime.db.run(page)

    async def UpdateImage(self, request: api.UpdateImageRequest, context: Context) -> pb.Image:
        caller = current_principal()
        paths = update_paths(request.image, request.update_mask, "image")
        if "visibility" in paths:
            _check_visibility(caller, request.image.visibility)

        def update(session: Session) -> pb.Image:
            row = owned_image(session, caller, request.image.name, "image.name")
            check_etag(request.image.etag, row.version, request.image.name)
            _apply(row, request.image, paths)
            row.version += 1
            session.flush()
            return image_to_proto(row)

        return await idempotent(self.runtime.db, "UpdateImage", request, pb.Image, update)

    async def DeleteImage(
        self, request: api.DeleteImageRequest, context: Context
    ) -> operations_pb2.Operation:
        caller = current_principal()

        def start(session: Session) -> operations_pb2.Operation:
            row = owned_image(session, caller, request.name)
            check_etag(request.etag, row.version, request.name)
            if row.state == pb.Image.STATE_DELETING:
                raise FailedPrecondition(
                    f"{request.name} is being deleted", type="IMAGE_DELETING", subject=request.name
                )
            payload = f"{row.project_id}/{row.id}/{row.state}".encode()
            row.state = pb.Image.STATE_DELETING
            row.version += 1
            op = store.create(
                session,
                project_id=caller.project_id,
                kind=DELETE_IMAGE,
                target=request.name,
                payload=payload,
            )
            return store.to_proto(op)

        operation = await idempotent(
            self.runtime.db, "DeleteImage", request, operations_pb2.Operation, start
        )
        self.runtime.operation_written()
        return operation

    async def _delete_image(self, ctx: OperationContext) -> empty_pb2.Empty:
        """Deletes the data, then the record. Resumable: both steps are idempotent."""
        project_id, image_id, _ = ctx.payload.decode().split("/")
        row = await ctx.db.run(lambda s: s.get(ImageRow, (project_id, image_id)))
        if row is not None:
            await ctx.checkpoint(10, "deleting image data")
            await asyncio.to_thread(self.runtime.images.delete, row.uid)
            await ctx.db.run(
                lambda s: s.execute(
                    delete(ImageRow).where(
                        ImageRow.project_id == project_id, ImageRow.id == image_id
                    )
                )
            )
        return empty_pb2.Empty()

    async def _delete_project_images(self, ctx: OperationContext, project_id: str) -> None:
        """Project cleanup: every image of the project, data first. Resumable."""
        await ctx.checkpoint(5, "deleting images")
        uids = await ctx.db.run(
            lambda s: list(s.scalars(select(ImageRow.uid).where(ImageRow.project_id == project_id)))
        )
        for uid in uids:
            await asyncio.to_thread(self.runtime.images.delete, uid)
            await ctx.db.run(partial(_delete_image_row, uid))

    async def CreateImageMember(
        self, request: api.CreateImageMemberRequest, context: Context
    ) -> pb.ImageMember:
        caller = current_principal()
        member_id = PROJECTS.parse(request.member_project, "member_project")

        def create(session: Session) -> pb.ImageMember:
            image = owned_image(session, caller, request.parent, "parent")
            if image.visibility != pb.VISIBILITY_SHARED:
                raise FailedPrecondition(
                    "only SHARED images have members",
                    type="IMAGE_NOT_SHARED",
                    subject=request.parent,
                )
            PROJECTS.get(session, request.member_project, "member_project")
            if member_id == image.project_id:
                raise InvalidArgument.field("member_project", "the owner is not a member")
            if session.get(ImageMemberRow, (image.project_id, image.id, member_id)) is not None:
                raise AlreadyExists(MEMBER_TYPE, f"{request.parent}/members/{member_id}")
            row = ImageMemberRow(
                project_id=image.project_id,
                image_id=image.id,
                member_project_id=member_id,
                state=pb.ImageMember.STATE_PENDING,
            )
            session.add(row)
            session.flush()
            return member_to_proto(row)

        return await idempotent(
            self.runtime.db, "CreateImageMember", request, pb.ImageMember, create
        )

    async def ListImageMembers(
        self, request: api.ListImageMembersRequest, context: Context
    ) -> api.ListImageMembersResponse:
        caller = current_principal()

        def page(session: Session) -> api.ListImageMembersResponse:
            image = visible_image(session, caller, request.parent, "parent")
            query = select(ImageMemberRow).where(
                ImageMemberRow.project_id == image.project_id, ImageMemberRow.image_id == image.id
            )
            if not caller.cloud_admin and image.project_id != caller.project_id:
                query = query.where(ImageMemberRow.member_project_id == caller.project_id)
            result = self.runtime.pager.page(
                session,
                query,
                key=ImageMemberRow.member_project_id,
                id_column=ImageMemberRow.member_project_id,
                order=Order("member"),
                page_size=request.page_size,
                page_token=request.page_token,
                binding=f"image-members|{request.parent}|{caller.project_id}",
            )
            return api.ListImageMembersResponse(
                image_members=[member_to_proto(r) for r in result.rows],
                next_page_token=result.next_page_token,
            )

        return await self.runtime.db.run(page)

    async def UpdateImageMember(
        self, request: api.UpdateImageMemberRequest, context: Context
    ) -> pb.ImageMember:
        caller = current_principal()
        member = request.image_member
        project_id, image_id, member_id = _member_key(member.name, "image_member.name")
        if not caller.cloud_admin and member_id != caller.project_id:
            raise NotFound(MEMBER_TYPE, member.name)
        if member.state not in (
            pb.ImageMember.STATE_ACCEPTED,
            pb.ImageMember.STATE_REJECTED,
            pb.ImageMember.STATE_PENDING,
        ):
            raise InvalidArgument.field("image_member.state", "is required")

        def update(session: Session) -> pb.ImageMember:
            row = session.get(ImageMemberRow, (project_id, image_id, member_id))
            if row is None:
                raise NotFound(MEMBER_TYPE, member.name)
            row.state = member.state
            session.flush()
            return member_to_proto(row)

        return await self.runtime.db.run(update)

    async def DeleteImageMember(
        self, request: api.DeleteImageMemberRequest, context: Context
    ) -> empty_pb2.Empty:
        caller = current_principal()
        project_id, image_id, member_id = _member_key(request.name, "name")

        def delete(session: Session) -> empty_pb2.Empty:
            owned_image(session, caller, f"projects/{project_id}/images/{image_id}")
            row = session.get(ImageMemberRow, (project_id, image_id, member_id))
            if row is None:
                raise NotFound(MEMBER_TYPE, request.name)
            session.delete(row)
            return empty_pb2.Empty()

        return await self.runtime.db.run(delete)


def _member_key(name: str, field: str) -> tuple[str, str, str]:
    project_id, image_id, member_id = parse(field, name, MEMBER_PATTERN)
    return project_id, image_id, member_id


def _delete_image_row(uid: str, session: Session) -> None:
    session.execute(delete(ImageRow).where(ImageRow.uid == uid))


def _mark_error(session: Session, row: ImageRow, message: str) -> None:
    current = session.get(ImageRow, (row.project_id, row.id))
    if current is not None and current.state == pb.Image.STATE_PENDING_UPLOAD:
        current.state = pb.Image.STATE_ERROR
        current.state_message = message[:255]
        current.version += 1


def _undo_delete(session: Session, operation: OperationRow) -> None:
    """Cancel hook of DeleteImage: the image returns to the state it had."""
    project_id, image_id, state = operation.payload.decode().split("/")
    row = session.get(ImageRow, (project_id, image_id))
    if row is not None:
        row.state = int(state)
        row.version += 1
