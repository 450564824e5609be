"""Glance v2 (`/image/v2`) over the image service.

An image's id is the Kumo image's uid; the gateway picks the Kumo image id (`img-` and 32
hex digits) in the caller's project. Glance's free-form image properties are kept as the
image's labels. Image data streams through (`PUT`/`GET /v2/images/{id}/file`) in chunks,
never held whole in memory; uploads are bounded by the image service, not the gateway's
body limit.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf import field_mask_pb2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from kumo.gateway.dialect import Dialect, integer, invalid, json_body, json_value
from kumo.gateway.errors import RpcFailure
from kumo.gateway.etag_retry import aborted, until_written
from kumo.gateway.grpc_backend import Backend
from kumo.gateway.openstack import paging
from kumo.gateway.openstack.common import (
    Scope,
    Scopes,
    base_url,
    iso,
    last_segment,
    quoted,
)
from kumo.gateway.openstack.errors import CONFLICT_OVERRIDES, glance_error
from kumo.gateway.openstack.lookup import ImageIndex, find_image
from kumo.image.v1 import image_service_pb2 as gapi
from kumo.image.v1 import image_service_pb2_grpc as grpc_images
from kumo.image.v1 import resources_pb2 as gpb

DIALECT = Dialect("glance", glance_error, CONFLICT_OVERRIDES)
CHUNK = 1 << 20
_STATUS = {
    gpb.Image.STATE_PENDING_UPLOAD: "queued",
    gpb.Image.STATE_ACTIVE: "active",
    gpb.Image.STATE_ERROR: "killed",
    gpb.Image.STATE_DELETING: "pending_delete",
}
_STATUS_FILTER = {
    "queued": "STATE_PENDING_UPLOAD",
    "active": "STATE_ACTIVE",
    "killed": "STATE_ERROR",
}
_FORMATS = {"qcow2": gpb.DISK_FORMAT_QCOW2, "raw": gpb.DISK_FORMAT_RAW}
_FORMAT_NAMES = {value: name for name, value in _FORMATS.items()}
_VISIBILITY = {
    "private": gpb.VISIBILITY_PRIVATE,
    "shared": gpb.VISIBILITY_SHARED,
    "public": gpb.VISIBILITY_PUBLIC,
}
_VISIBILITY_NAMES = {value: name for name, value in _VISIBILITY.items()}
_MEMBER_STATUS = {
    gpb.ImageMember.STATE_PENDING: "pending",
    gpb.ImageMember.STATE_ACCEPTED: "accepted",
    gpb.ImageMember.STATE_REJECTED: "rejected",
}
_MEMBER_STATES = {name: value for value, name in _MEMBER_STATUS.items()}
# Glance's own attributes: everything else is a free-form property (a label).
_CORE = {
    "id", "name", "status", "visibility", "protected", "os_hidden", "checksum", "owner",
    "size", "virtual_size", "min_ram", "min_disk", "disk_format", "container_format",
    "created_at", "updated_at", "tags", "self", "file", "schema", "os_hash_algo",
    "os_hash_value", "direct_url", "locations",
}  # fmt: skip


def image_json(image: gpb.Image) -> dict[str, Any]:
    """A Kumo image as a Glance image."""
    uid = image.uid
    body: dict[str, Any] = {str(k): str(v) for k, v in image.labels.items()}
    body.update(
        {
            "id": uid,
            "name": image.display_name or last_segment(image.name),
            "status": _STATUS.get(image.state, "queued"),
            "visibility": _VISIBILITY_NAMES.get(image.visibility, "private"),
            "protected": False,
            "os_hidden": False,
            "checksum": None,
            "os_hash_algo": "sha256" if image.checksum_sha256 else None,
            "os_hash_value": image.checksum_sha256 or None,
            "owner": image.name.split("/")[1],
            "size": image.size_bytes or None,
            "virtual_size": image.virtual_size_bytes or None,
            "min_ram": image.min_ram_mib,
            "min_disk": image.min_disk_gib,
            "disk_format": _FORMAT_NAMES.get(image.disk_format),
            "container_format": "bare",
            "created_at": iso(image.create_time),
            "updated_at": iso(image.update_time),
            "tags": list(image.tags),
            "self": f"/v2/images/{uid}",
            "file": f"/v2/images/{uid}/file",
            "schema": "/v2/schemas/image",
        }
    )
    return body


def member_json(member: gpb.ImageMember, image_uid: str) -> dict[str, Any]:
    """A Kumo image member as a Glance member."""
    return {
        "image_id": image_uid,
        "member_id": last_segment(member.project) or last_segment(member.name),
        "status": _MEMBER_STATUS.get(member.state, "pending"),
        "created_at": iso(member.create_time),
        "updated_at": iso(member.update_time),
        "schema": "/v2/schemas/member",
    }


def _tags(value: Any) -> list[str]:
    """A list of tags from a request (repeats dropped); 400 unless a list of strings."""
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise invalid("tags must be a list of strings")
    return list(dict.fromkeys(value))


def _patched(image: gpb.Image, patch: list[Any]) -> tuple[gpb.Image, set[str]]:
    """The change a Glance JSON patch makes to `image` (under its etag) and the fields it
    changes; 400 for an operation Glance refuses."""
    changed = gpb.Image(name=image.name, labels=dict(image.labels), etag=image.etag)
    paths: set[str] = set()
    simple = {"name": "display_name", "min_ram": "min_ram_mib", "min_disk": "min_disk_gib"}
    for op in patch:
        if not isinstance(op, dict) or op.get("op") not in ("add", "replace", "remove"):
            raise invalid("each operation must be add, replace or remove")
        key = str(op.get("path", "")).lstrip("/")
        value = op.get("value")
        if key == "visibility":
            if not isinstance(value, str) or value not in _VISIBILITY:
                raise invalid(f"visibility must be one of {sorted(_VISIBILITY)}")
            changed.visibility = _VISIBILITY[value]
            paths.add("visibility")
        elif key == "tags":
            changed.tags[:] = [] if op["op"] == "remove" else _tags(value)
            paths.add("tags")
        elif key in simple:
            field = simple[key]
            setattr(changed, field, str(value or "") if key == "name" else integer(value, key))
            paths.add(field)
        elif key in _CORE:
            raise invalid(f"Attribute '{key}' is read-only.")
        elif op["op"] == "remove":
            changed.labels.pop(key, None)
            paths.add("labels")
        else:
            changed.labels[key] = str(value)
            paths.add("labels")
    return changed, paths


def _labels(props: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in props.items() if k not in _CORE and v is not None}


class Glance:
    """The Glance v2 routes."""

    def __init__(self, backend: Backend, scopes: Scopes, images: ImageIndex, public_url: str):
        self.backend = backend
        self.scopes = scopes
        self.index = images
        self.public_url = public_url
        self.service = backend.stub(grpc_images.ImageServiceStub)

    async def call(self, method: Any, message: Any, scope: Scope) -> Any:
        """A call with the caller's token."""
        return await self.backend.call(method, message, scope.token)

    async def _image(self, request: Request) -> tuple[Scope, gpb.Image]:
        scope = await self.scopes.of(request)
        image = await find_image(self.backend, scope.token, request.path_params["image_id"])
        self.index.remember(image)
        return scope, image

    async def versions(self, request: Request) -> Response:
        """GET /image: the versions (300, as Glance answers)."""
        base = base_url(request, self.public_url)
        entries = [
            {"id": v, "status": "CURRENT" if v == "v2.9" else "SUPPORTED",
             "links": [{"rel": "self", "href": f"{base}/image/v2/"}]}
            for v in ("v2.9", "v2.0")
        ]  # fmt: skip
        return JSONResponse({"versions": entries}, status_code=300)

    async def list_images(self, request: Request) -> Response:
        """GET /v2/images[?name=&visibility=&status=&member_status=&tag=&limit=]: every
        image the caller sees (shared ones it has not accepted with member_status other than
        `accepted`); with `tag` (repeatable), those with every one of them."""
        scope = await self.scopes.of(request)
        query = request.query_params
        terms = []
        if name := query.get("name"):
            terms.append(f"display_name = {quoted(name)}")
        if visibility := query.get("visibility"):
            if visibility not in _VISIBILITY:
                raise invalid(f"Invalid visibility value: {visibility}")
            terms.append(f"visibility = VISIBILITY_{visibility.upper()}")
        if status := query.get("status"):
            if status not in _STATUS_FILTER:
                raise invalid(f"Invalid status value: {status}")
            terms.append(f"state = {_STATUS_FILTER[status]}")
        terms += [f"tags:{quoted(tag)}" for tag in query.getlist("tag")]
        member_status = query.get("member_status", "accepted")
        if member_status not in ("accepted", "pending", "rejected", "all"):
            raise invalid(f"Invalid member_status value: {member_status}")

        async def fetch(token: str, size: int) -> tuple[list[gpb.Image], str]:
            answer = await self.call(
                self.service.ListImages,
                gapi.ListImagesRequest(
                    parent="projects/-",
                    filter=" AND ".join(terms),
                    page_size=size,
                    page_token=token,
                    show_pending=member_status != "accepted",
                ),
                scope,
            )
            return list(answer.images), str(answer.next_page_token)

        result = await paging.page(request, fetch, lambda i: i.uid)
        for image in result.items:
            self.index.remember(image)
        body: dict[str, Any] = {
            "images": [image_json(i) for i in result.items],
            "first": "/v2/images",
            "schema": "/v2/schemas/images",
        }
        if result.next_marker:
            body["next"] = result.next_href(request, "/v2/images")
        return JSONResponse(body)

    async def create(self, request: Request) -> Response:
        """POST /v2/images: 201, queued until its data is uploaded."""
        scope = await self.scopes.of(request)
        body = await json_body(request)
        if body.get("container_format") not in (None, "bare"):
            raise invalid("Kumo images are 'bare' (no container)")
        disk_format = body.get("disk_format")
        if not isinstance(disk_format, str) or disk_format not in _FORMATS:
            raise invalid(f"disk_format must be one of {sorted(_FORMATS)}")
        visibility = body.get("visibility") or "private"
        if not isinstance(visibility, str) or visibility not in _VISIBILITY:
            raise invalid(f"visibility must be one of {sorted(_VISIBILITY)}")
        if body.get("id"):
            raise invalid("Kumo chooses image ids")
        created = await self.call(
            self.service.CreateImage,
            gapi.CreateImageRequest(
                parent=scope.parent,
                image_id=f"img-{uuid.uuid4().hex}",
                image=gpb.Image(
                    display_name=str(body.get("name") or ""),
                    disk_format=_FORMATS[disk_format],
                    visibility=_VISIBILITY[visibility],
                    min_ram_mib=integer(body.get("min_ram"), "min_ram"),
                    min_disk_gib=integer(body.get("min_disk"), "min_disk"),
                    labels=_labels(body),
                    tags=_tags(body.get("tags") or []),
                ),
            ),
            scope,
        )
        self.index.remember(created)
        return JSONResponse(
            image_json(created), status_code=201, headers={"Location": f"/v2/images/{created.uid}"}
        )

    async def show(self, request: Request) -> Response:
        """GET /v2/images/{id}."""
        _, image = await self._image(request)
        return JSONResponse(image_json(image))

    async def update(self, request: Request) -> Response:
        """PATCH /v2/images/{id}: a JSON patch of name, visibility, min_ram, min_disk and
        free-form properties, applied under the etag read (again to the image read anew
        while another change came in between: etag_retry)."""
        scope, image = await self._image(request)
        patch = await json_value(request)
        if not isinstance(patch, list):
            raise invalid("the body must be a JSON patch (a list of operations)")
        reads = iter([image])

        async def attempt() -> gpb.Image:
            current = next(reads, None) or await self.call(
                self.service.GetImage, gapi.GetImageRequest(name=image.name), scope
            )
            changed, paths = _patched(current, patch)
            updated: gpb.Image = await self.call(
                self.service.UpdateImage,
                gapi.UpdateImageRequest(
                    image=changed, update_mask=field_mask_pb2.FieldMask(paths=sorted(paths))
                ),
                scope,
            )
            return updated

        return JSONResponse(image_json(await until_written(attempt, aborted)))

    async def _retag(self, request: Request, change: Callable[[list[str]], list[str]]) -> None:
        """Reads the path's image, applies `change` to its tags and writes them under its
        etag, again while the image changed meanwhile. Raises what `change` raises, 404
        without the image."""

        async def attempt() -> None:
            scope, image = await self._image(request)
            changed = gpb.Image(name=image.name, tags=change(list(image.tags)), etag=image.etag)
            mask = field_mask_pb2.FieldMask(paths=["tags"])
            request_ = gapi.UpdateImageRequest(image=changed, update_mask=mask)
            self.index.remember(await self.call(self.service.UpdateImage, request_, scope))

        await until_written(attempt, aborted)

    async def add_tag(self, request: Request) -> Response:
        """PUT /v2/images/{id}/tags/{tag}: 204, whether or not the image had it."""
        tag = request.path_params["tag"]
        await self._retag(request, lambda tags: tags if tag in tags else [*tags, tag])
        return Response(status_code=204)

    async def remove_tag(self, request: Request) -> Response:
        """DELETE /v2/images/{id}/tags/{tag}: 204; 404 if the image does not have it."""
        tag = request.path_params["tag"]

        def removed(tags: list[str]) -> list[str]:
            if tag not in tags:
                raise RpcFailure.of(grpc.StatusCode.NOT_FOUND, f"Tag {tag} not found")
            return [t for t in tags if t != tag]

        await self._retag(request, removed)
        return Response(status_code=204)

    async def delete(self, request: Request) -> Response:
        """DELETE /v2/images/{id}: 204."""
        scope, image = await self._image(request)
        await self.call(self.service.DeleteImage, gapi.DeleteImageRequest(name=image.name), scope)
        return Response(status_code=204)

    async def upload(self, request: Request) -> Response:
        """PUT /v2/images/{id}/file: streams the body into the image (204)."""
        scope, image = await self._image(request)

        async def chunks() -> AsyncIterator[gapi.UploadImageDataRequest]:
            yield gapi.UploadImageDataRequest(name=image.name)
            pending = b""
            async for piece in request.stream():
                pending += piece
                while len(pending) >= CHUNK:
                    yield gapi.UploadImageDataRequest(data=pending[:CHUNK])
                    pending = pending[CHUNK:]
            if pending:
                yield gapi.UploadImageDataRequest(data=pending)

        await self.backend.stream_to(self.service.UploadImageData, chunks(), scope.token)
        return Response(status_code=204)

    async def download(self, request: Request) -> Response:
        """GET /v2/images/{id}/file: the data (204 when there is none yet)."""
        scope, image = await self._image(request)
        if image.state != gpb.Image.STATE_ACTIVE:
            return Response(status_code=204)
        stream = self.backend.stream_from(
            self.service.DownloadImageData,
            gapi.DownloadImageDataRequest(name=image.name),
            scope.token,
        )
        first = await anext(stream, None)  # fail before the 200 is sent

        async def data() -> AsyncIterator[bytes]:
            if first is not None:
                yield first.data
            async for chunk in stream:
                yield chunk.data

        headers = {"Content-Length": str(image.size_bytes)} if image.size_bytes else {}
        return StreamingResponse(data(), media_type="application/octet-stream", headers=headers)

    # --- members ----------------------------------------------------------------------

    async def _members(self, scope: Scope, image: gpb.Image) -> list[gpb.ImageMember]:
        answer = await self.call(
            self.service.ListImageMembers,
            gapi.ListImageMembersRequest(parent=image.name, page_size=1000),
            scope,
        )
        return list(answer.image_members)

    async def list_members(self, request: Request) -> Response:
        """GET /v2/images/{id}/members."""
        scope, image = await self._image(request)
        members = [member_json(m, image.uid) for m in await self._members(scope, image)]
        return JSONResponse({"members": members, "schema": "/v2/schemas/members"})

    async def add_member(self, request: Request) -> Response:
        """POST /v2/images/{id}/members {"member": project}."""
        scope, image = await self._image(request)
        member = (await json_body(request)).get("member")
        if not member:
            raise invalid("member (a project id) is required")
        created = await self.call(
            self.service.CreateImageMember,
            gapi.CreateImageMemberRequest(parent=image.name, member_project=f"projects/{member}"),
            scope,
        )
        return JSONResponse(member_json(created, image.uid))

    async def show_member(self, request: Request) -> Response:
        """GET /v2/images/{id}/members/{member}."""
        scope, image = await self._image(request)
        wanted = request.path_params["member_id"]
        for member in await self._members(scope, image):
            if member_json(member, image.uid)["member_id"] == wanted:
                return JSONResponse(member_json(member, image.uid))
        raise RpcFailure.of(grpc.StatusCode.NOT_FOUND, f"{wanted} is not a member of the image")

    async def update_member(self, request: Request) -> Response:
        """PUT /v2/images/{id}/members/{member} {"status": "accepted"}."""
        scope, image = await self._image(request)
        status = (await json_body(request)).get("status")
        if not isinstance(status, str) or status not in _MEMBER_STATES:
            raise invalid(f"status must be one of {sorted(_MEMBER_STATES)}")
        updated = await self.call(
            self.service.UpdateImageMember,
            gapi.UpdateImageMemberRequest(
                image_member=gpb.ImageMember(
                    name=f"{image.name}/members/{request.path_params['member_id']}",
                    state=_MEMBER_STATES[status],
                ),
                update_mask=field_mask_pb2.FieldMask(paths=["state"]),
            ),
            scope,
        )
        return JSONResponse(member_json(updated, image.uid))

    async def delete_member(self, request: Request) -> Response:
        """DELETE /v2/images/{id}/members/{member}: 204."""
        scope, image = await self._image(request)
        await self.call(
            self.service.DeleteImageMember,
            gapi.DeleteImageMemberRequest(
                name=f"{image.name}/members/{request.path_params['member_id']}"
            ),
            scope,
        )
        return Response(status_code=204)

    def app(self) -> Starlette:
        """The ASGI app to mount at `/image`."""
        r = DIALECT.route
        image = "/v2/images/{image_id}"
        return DIALECT.app(
            [
                r("/", self.versions, ["GET"]),
                r("/v2/images", self.list_images, ["GET"]),
                r("/v2/images", self.create, ["POST"]),
                r(image, self.show, ["GET"]),
                r(image, self.update, ["PATCH"]),
                r(image, self.delete, ["DELETE"]),
                r(image + "/tags/{tag}", self.add_tag, ["PUT"]),
                r(image + "/tags/{tag}", self.remove_tag, ["DELETE"]),
                r(image + "/file", self.upload, ["PUT"]),
                r(image + "/file", self.download, ["GET"]),
                r(image + "/members", self.list_members, ["GET"]),
                r(image + "/members", self.add_member, ["POST"]),
                r(image + "/members/{member_id}", self.show_member, ["GET"]),
                r(image + "/members/{member_id}", self.update_member, ["PUT"]),
                r(image + "/members/{member_id}", self.delete_member, ["DELETE"]),
            ]
        )
