"""Nova's `/servers/{id}/os-volume_attachments` over the storage service's AttachVolume
and DetachVolume: an attachment's id is the volume's id (one attachment per volume and
server, as in Nova); Kumo picks the guest device, so `device` is the device name the
attachment was given (POST's `device`, a block device mapping's `device_name`), else null.
A multiattach volume is attached (here or at boot) from microversion 2.60, 400 before."""

from __future__ import annotations

from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import Response

from kumo.compute.v1 import resources_pb2 as cpb
from kumo.gateway.dialect import invalid, json_body
from kumo.gateway.errors import RpcFailure
from kumo.gateway.openstack.common import Scope
from kumo.gateway.openstack.microversions import Version
from kumo.gateway.openstack.nova.base import NovaBase
from kumo.gateway.openstack.nova.block_devices import volumes_under
from kumo.storage.v1 import resources_pb2 as spb
from kumo.storage.v1 import storage_service_pb2 as sapi
from kumo.storage.v1 import storage_service_pb2_grpc as srpc

V2_60, V2_70 = Version(2, 60), Version(2, 70)


def _missing(kind: str, uid: str) -> RpcFailure:
    return RpcFailure.of(grpc.StatusCode.NOT_FOUND, f"{kind} {uid} could not be found.")


def _view(volume: cpb.AttachedVolume, server: cpb.Instance, version: Version) -> dict[str, Any]:
    uid = volume.uid
    view = {"id": uid, "volumeId": uid, "serverId": server.uid, "device": volume.device or None}
    if version >= V2_70:  # (device tags are not kept: none to show)
        view["tag"] = None
    return view


class VolumeAttachments(NovaBase):
    """`/servers/{id}/os-volume_attachments[/{volume_id}]`."""

    async def _volume_name(self, scope: Scope, server: cpb.Instance, uid: str) -> str:
        """The name of the volume with this uid in the server's project and zone (read from
        the server when attached to it, else from the project's volumes: `_project_volume`)."""
        for attached in server.attached_volumes:
            if attached.uid == uid:
                return str(attached.volume)
        return str((await self._project_volume(scope, server, uid)).name)

    async def _project_volume(self, scope: Scope, server: cpb.Instance, uid: str) -> spb.Volume:
        """The project's volume with this uid; 404 if none, 400 if it is in another zone
        than the server (Kumo attaches in the server's zone only, as Nova with
        `cross_az_attach` off)."""
        zone = server.name.rsplit("/instances/", 1)[0]
        async for volume in volumes_under(self.backend, scope.token, f"{scope.parent}/zones/-"):
            if volume.uid != uid:
                continue
            if not volume.name.startswith(f"{zone}/"):
                raise invalid(
                    f"Volume {uid} is in availability zone {volume.name.split('/')[3]} and "
                    f"the server in {zone.split('/')[3]}: they must be in the same zone."
                )
            return volume
        raise _missing("Volume", uid)

    async def list_attached(self, request: Request) -> Response:
        """GET: the volumes attached to the server."""
        scope, version = await self.begin(request)
        server = await self.server_of(scope, request)
        attached = [_view(v, server, version) for v in server.attached_volumes]
        return self.reply(version, {"volumeAttachments": attached})

    async def show(self, request: Request) -> Response:
        """GET /{volume_id}: 404 unless that volume is attached to the server."""
        scope, version = await self.begin(request)
        server = await self.server_of(scope, request)
        uid = request.path_params["volume_id"]
        found = next((v for v in server.attached_volumes if v.uid == uid), None)
        if found is None:
            raise _missing("Volume attachment", uid)
        return self.reply(version, {"volumeAttachment": _view(found, server, version)})

    async def create(self, request: Request) -> Response:
        """POST {"volumeAttachment": {"volumeId", "device"}}: AttachVolume; 200 with the
        attachment."""
        scope, version = await self.begin(request)
        body = (await json_body(request)).get("volumeAttachment")
        if not isinstance(body, dict) or not body.get("volumeId"):
            raise invalid("the body needs a 'volumeAttachment' with a 'volumeId'")
        server = await self.server_of(scope, request)
        uid = str(body["volumeId"])
        device = body.get("device") or ""
        if not isinstance(device, str):
            raise invalid("device must be a string")
        volume = await self._project_volume(scope, server, uid)
        check_attachable(volume, version)
        name = volume.name
        await self.call(
            self.backend.stub(srpc.StorageServiceStub).AttachVolume,
            sapi.AttachVolumeRequest(name=name, instance=server.name, device=device),
            scope,
        )
        attached = cpb.AttachedVolume(volume=name, uid=uid, device=device)
        return self.reply(version, {"volumeAttachment": _view(attached, server, version)})

    async def delete(self, request: Request) -> Response:
        """DELETE /{volume_id}: DetachVolume; 202."""
        scope, version = await self.begin(request)
        server = await self.server_of(scope, request)
        name = await self._volume_name(scope, server, request.path_params["volume_id"])
        await self.call(
            self.backend.stub(srpc.StorageServiceStub).DetachVolume,
            sapi.DetachVolumeRequest(name=name, instance=server.name),
            scope,
        )
        return self.reply(version, status=202)


def check_attachable(volume: spb.Volume, version: Version) -> None:
    """400 for a multiattach volume before microversion 2.60, as Nova refuses it."""
    if volume.multi_attach and version < V2_60:
        raise invalid(
            "Multiattach volumes are only supported starting with compute API version 2.60."
        )
