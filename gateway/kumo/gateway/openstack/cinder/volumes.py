"""Cinder volumes (create 202, list, detail, show, update, `os-extend`, delete 202) and
snapshots over Kumo's volumes and snapshots."""

from __future__ import annotations

import uuid
from typing import Any

from google.protobuf import field_mask_pb2
from starlette.requests import Request
from starlette.responses import Response

from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import compute_service_pb2_grpc as crpc
from kumo.gateway.dialect import invalid, json_body, object_at
from kumo.gateway.errors import RpcFailure
from kumo.gateway.openstack.cinder import views
from kumo.gateway.openstack.cinder.base import CinderBase
from kumo.gateway.openstack.common import Scope, not_found
from kumo.gateway.openstack.lookup import find_image
from kumo.image.v1 import image_service_pb2 as gapi
from kumo.image.v1 import image_service_pb2_grpc as grpc_images
from kumo.storage.v1 import resources_pb2 as spb
from kumo.storage.v1 import storage_service_pb2 as sapi


def _size(value: Any, field: str) -> int:
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise invalid(f"{field} must be an integer") from None
    if size < 1:
        raise invalid(f"{field} must be at least 1")
    return size


class Volumes(CinderBase):
    """`/volumes`, `/volumes/{id}/action` and `/snapshots`."""

    async def _rendered(self, scope: Scope, base: str, items: list[spb.Volume]) -> list[Any]:
        types = {t.name: t for t in await self.types(scope)}
        uids = {v.name: v.uid for v in await self.volumes(scope)}
        if any(v.source_snapshot for v in items):
            uids.update({s.name: s.uid for s in await self.snapshots(scope)})
        for instance in {a.instance for v in items for a in v.attachments}:
            found = await self.call(
                self.backend.stub(crpc.ComputeServiceStub).GetInstance,
                capi.GetInstanceRequest(name=instance),
                scope,
            )
            uids[instance] = found.uid
        for image in {v.source_image for v in items if v.source_image}:
            try:
                found = await self.call(
                    self.backend.stub(grpc_images.ImageServiceStub).GetImage,
                    gapi.GetImageRequest(name=image),
                    scope,
                )
                uids[image] = found.uid
            except RpcFailure:  # gone or no longer visible: no image metadata then
                pass
        return [views.volume(v, base, types, uids, scope.cloud_admin) for v in items]

    async def list_volumes(self, request: Request) -> Response:
        """GET /volumes."""
        scope, version = await self.begin(request)
        base = self.base(request)
        items = [views.volume_brief(v, base) for v in await self.volumes(scope)]
        return self.listing(request, version, "volumes", items)

    async def list_detail(self, request: Request) -> Response:
        """GET /volumes/detail."""
        scope, version = await self.begin(request)
        items = await self._rendered(scope, self.base(request), await self.volumes(scope))
        return self.listing(request, version, "volumes", items)

    async def show(self, request: Request) -> Response:
        """GET /volumes/{id}."""
        scope, version = await self.begin(request)
        found = await self.volume(scope, request.path_params["id"])
        (item,) = await self._rendered(scope, self.base(request), [found])
        return self.reply(version, {"volume": item})

    async def create(self, request: Request) -> Response:
        """POST /volumes: 202 with the new volume (status `creating`)."""
        scope, version = await self.begin(request)
        body = await self.body_of(request, "volume")
        volume = spb.Volume(
            display_name=str(body.get("name") or ""),
            description=str(body.get("description") or ""),
            size_gib=_size(body.get("size"), "size"),
            multi_attach=bool(body.get("multiattach", False)),
            labels={str(k): str(v) for k, v in object_at(body, "metadata").items()},
        )
        if kind := body.get("volume_type"):
            volume.volume_type = (await self.volume_type(scope, str(kind))).name
        if snapshot_id := str(body.get("snapshot_id") or ""):
            snapshots = {s.uid: s.name for s in await self.snapshots(scope)}
            if snapshot_id not in snapshots:
                raise not_found("Snapshot", snapshot_id)
            volume.source_snapshot = snapshots[snapshot_id]
        elif source := body.get("source_volid"):
            volume.source_volume = (await self.volume(scope, str(source))).name
        elif image_ref := body.get("imageRef"):
            # An ACTIVE image the caller sees; the volume starts with its contents, bootable.
            volume.source_image = (await find_image(self.backend, scope.token, str(image_ref))).name
        zone = str(body.get("availability_zone") or "")
        if not zone:
            zones = await self.zones(scope)
            if not zones:
                raise invalid("the cloud has no availability zone yet")
            zone = zones[0]
        operation = await self.call(
            self.storage.CreateVolume,
            sapi.CreateVolumeRequest(
                parent=f"{scope.parent}/zones/{zone}",
                volume_id=f"vol-{uuid.uuid4().hex}",
                volume=volume,
            ),
            scope,
        )
        created = await self.created(
            operation, self.storage.GetVolume, sapi.GetVolumeRequest, scope
        )
        (item,) = await self._rendered(scope, self.base(request), [created])
        return self.reply(version, {"volume": item}, 202)

    async def update(self, request: Request) -> Response:
        """PUT /volumes/{id}: name, description, metadata."""
        scope, version = await self.begin(request)
        body = await self.body_of(request, "volume")
        found = await self.volume(scope, request.path_params["id"])
        change = spb.Volume(name=found.name)
        paths = []
        for key, path in (("name", "display_name"), ("description", "description")):
            if key in body:
                setattr(change, path, str(body[key] or ""))
                paths.append(path)
        if "metadata" in body:
            change.labels.update({str(k): str(v) for k, v in object_at(body, "metadata").items()})
            paths.append("labels")
        if paths:
            found = await self.call(
                self.storage.UpdateVolume,
                sapi.UpdateVolumeRequest(
                    volume=change, update_mask=field_mask_pb2.FieldMask(paths=paths)
                ),
                scope,
            )
        (item,) = await self._rendered(scope, self.base(request), [found])
        return self.reply(version, {"volume": item})

    async def delete(self, request: Request) -> Response:
        """DELETE /volumes/{id}: 202."""
        scope, version = await self.begin(request)
        found = await self.volume(scope, request.path_params["id"])
        await self.call(self.storage.DeleteVolume, sapi.DeleteVolumeRequest(name=found.name), scope)
        return self.reply(version, status=202)

    async def action(self, request: Request) -> Response:
        """POST /volumes/{id}/action: `os-extend` (202)."""
        scope, version = await self.begin(request)
        body = await json_body(request)
        if len(body) != 1:
            raise invalid("the body names exactly one action")
        (name,) = body
        if name != "os-extend":
            raise invalid(f"There is no such action: {name}")
        found = await self.volume(scope, request.path_params["id"])
        size = _size(object_at(body, name).get("new_size"), "new_size")
        await self.call(
            self.storage.ExtendVolume,
            sapi.ExtendVolumeRequest(name=found.name, size_gib=size),
            scope,
        )
        return self.reply(version, status=202)

    # --- snapshots -----------------------------------------------------------------

    async def _snapshot_views(self, scope: Scope) -> list[dict[str, Any]]:
        volumes = {v.name: v.uid for v in await self.volumes(scope)}
        return [
            views.snapshot(s, volumes.get(s.name.split("/snapshots/")[0], ""), scope.cloud_admin)
            for s in await self.snapshots(scope)
        ]

    async def list_snapshots(self, request: Request) -> Response:
        """GET /snapshots and /snapshots/detail."""
        scope, version = await self.begin(request)
        return self.listing(request, version, "snapshots", await self._snapshot_views(scope))

    async def show_snapshot(self, request: Request) -> Response:
        """GET /snapshots/{id}."""
        scope, version = await self.begin(request)
        for item in await self._snapshot_views(scope):
            if item["id"] == request.path_params["id"]:
                return self.reply(version, {"snapshot": item})
        raise not_found("Snapshot", request.path_params["id"])

    async def create_snapshot(self, request: Request) -> Response:
        """POST /snapshots: 202."""
        scope, version = await self.begin(request)
        body = await self.body_of(request, "snapshot")
        volume = await self.volume(scope, str(body.get("volume_id") or ""))
        operation = await self.call(
            self.storage.CreateSnapshot,
            sapi.CreateSnapshotRequest(
                parent=volume.name,
                snapshot_id=f"snap-{uuid.uuid4().hex}",
                snapshot=spb.Snapshot(
                    display_name=str(body.get("name") or ""),
                    description=str(body.get("description") or ""),
                    labels={str(k): str(v) for k, v in object_at(body, "metadata").items()},
                ),
            ),
            scope,
        )
        created = await self.created(
            operation, self.storage.GetSnapshot, sapi.GetSnapshotRequest, scope
        )
        item = views.snapshot(created, volume.uid, scope.cloud_admin)
        return self.reply(version, {"snapshot": item}, 202)

    async def delete_snapshot(self, request: Request) -> Response:
        """DELETE /snapshots/{id}: 202."""
        scope, version = await self.begin(request)
        for item in await self.snapshots(scope):
            if item.uid == request.path_params["id"]:
                await self.call(
                    self.storage.DeleteSnapshot, sapi.DeleteSnapshotRequest(name=item.name), scope
                )
                return self.reply(version, status=202)
        raise not_found("Snapshot", request.path_params["id"])

    # --- volume types --------------------------------------------------------------

    async def list_types(self, request: Request) -> Response:
        """GET /types."""
        scope, version = await self.begin(request)
        items = [views.volume_type(t) for t in await self.types(scope)]
        return self.listing(request, version, "volume_types", items)

    async def show_type(self, request: Request) -> Response:
        """GET /types/{id} (also by name, as clients look types up)."""
        scope, version = await self.begin(request)
        found = await self.volume_type(scope, request.path_params["id"])
        return self.reply(version, {"volume_type": views.volume_type(found)})

    async def create_type(self, request: Request) -> Response:
        """POST /types (administrators): extra specs `kumo:backend` (qcow2, rbd) and
        `kumo:pool` choose where its volumes live; those not starting with `kumo:` are
        labels."""
        scope, version = await self.begin(request)
        body = await self.body_of(request, "volume_type")
        specs = object_at(body, "extra_specs")
        backend = views.BACKENDS.get(str(specs.get("kumo:backend") or "qcow2"))
        if backend is None:
            raise invalid("extra_specs kumo:backend must be qcow2 or rbd")
        name = str(body.get("name") or "")
        created = await self.call(
            self.storage.CreateVolumeType,
            sapi.CreateVolumeTypeRequest(
                volume_type_id=f"vt-{uuid.uuid4().hex[:12]}",
                volume_type=spb.VolumeType(
                    display_name=name,
                    description=str(body.get("description") or ""),
                    backend=backend,
                    pool=str(specs.get("kumo:pool") or "volumes"),
                    labels={
                        str(k): str(v) for k, v in specs.items() if not str(k).startswith("kumo:")
                    },
                ),
            ),
            scope,
        )
        return self.reply(version, {"volume_type": views.volume_type(created)})

    async def delete_type(self, request: Request) -> Response:
        """DELETE /types/{id} (administrators): 202."""
        scope, version = await self.begin(request)
        found = await self.volume_type(scope, request.path_params["id"])
        await self.call(
            self.storage.DeleteVolumeType, sapi.DeleteVolumeTypeRequest(name=found.name), scope
        )
        return self.reply(version, status=202)
