"""Nova's `/servers/{id}/os-volume_attachments` over the storage service's AttachVolume
and DetachVolume: an attachment's id is the volume's id (one attachment per volume and
server, as in Nova); Kumo picks the guest device, so `device` is the device name the
attachment was given (POST's `device`, a block device mapping's `device_name`), else null.
A multiattach volume is attached (here or at boot) from microversion 2.60, 400 before. From
2.79 an attachment may be made `delete_on_termination` (the volume goes with the server:
AttachVolume's `delete_with_instance`), and shows it; from 2.85 PUT changes that
(UpdateAttachment). A PUT naming another volume is Nova's swap (administrators), which
Kumo does not offer (501). From 2.89 a GET shows `attachment_id` (the attachment's id in
the Cinder dialect) and `bdm_uuid` instead of `id`."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import Response

from kumo.compute.v1 import resources_pb2 as cpb
from kumo.gateway.dialect import invalid, json_body
from kumo.gateway.errors import RpcFailure
from kumo.gateway.openstack.cinder.views import attachment_id
from kumo.gateway.openstack.common import Scope
from kumo.gateway.openstack.microversions import Version
from kumo.gateway.openstack.nova.base import NovaBase, admin_only, not_offered
from kumo.gateway.openstack.nova.block_devices import volumes_under
from kumo.storage.v1 import resources_pb2 as spb
from kumo.storage.v1 import storage_service_pb2 as sapi
from kumo.storage.v1 import storage_service_pb2_grpc as srpc

V2_60, V2_70, V2_79, V2_85, V2_89 = (Version(2, n) for n in (60, 70, 79, 85, 89))
_BDM_IDS = uuid.UUID("c04eeb0b-9bba-4c65-ba32-ed9735b4605a")
# Fields a PUT may name from 2.85 with the attachment's own values (only
# delete_on_termination changes).
_UNCHANGEABLE = ("id", "serverId", "device", "tag")


def _missing(kind: str, uid: str) -> RpcFailure:
    return RpcFailure.of(grpc.StatusCode.NOT_FOUND, f"{kind} {uid} could not be found.")


def bdm_uuid(volume_uid: str, server_uid: str) -> str:
    """The block device mapping id of a volume's attachment to a server (2.89): derived
    from both ids, as the attachment's Cinder id is (cinder/views.py)."""
    return str(uuid.uuid5(_BDM_IDS, f"{volume_uid}/{server_uid}"))


def _own(volume: cpb.AttachedVolume, server: cpb.Instance) -> dict[str, Any]:
    """What an attachment shows in every version."""
    uid = volume.uid
    return {"id": uid, "volumeId": uid, "serverId": server.uid, "device": volume.device or None}


def _view(
    volume: cpb.AttachedVolume, server: cpb.Instance, version: Version, read: bool = True
) -> dict[str, Any]:
    """An attachment (`read`: in a GET, which from 2.89 shows its attachment and block
    device mapping ids instead of `id`; a POST's answer keeps `id`)."""
    view = _own(volume, server)
    if version >= V2_70:  # (device tags are not kept: none to show)
        view["tag"] = None
    if version >= V2_79:
        view["delete_on_termination"] = volume.delete_with_instance
    if read and version >= V2_89:
        del view["id"]
        view["attachment_id"] = attachment_id(volume.uid, server.uid)
        view["bdm_uuid"] = bdm_uuid(volume.uid, server.uid)
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
        """POST {"volumeAttachment": {"volumeId", "device", "delete_on_termination"
        (2.79)}}: AttachVolume; 200 with the attachment."""
        scope, version = await self.begin(request)
        body = (await json_body(request)).get("volumeAttachment")
        if not isinstance(body, dict) or not body.get("volumeId"):
            raise invalid("the body needs a 'volumeAttachment' with a 'volumeId'")
        server = await self.server_of(scope, request)
        uid = str(body["volumeId"])
        device = body.get("device") or ""
        if not isinstance(device, str):
            raise invalid("device must be a string")
        doomed = _delete_on_termination(body, version)
        volume = await self._project_volume(scope, server, uid)
        check_attachable(volume, version)
        name = volume.name
        await self.call(
            self.backend.stub(srpc.StorageServiceStub).AttachVolume,
            sapi.AttachVolumeRequest(
                name=name, instance=server.name, device=device, delete_with_instance=doomed
            ),
            scope,
        )
        attached = cpb.AttachedVolume(
            volume=name, uid=uid, device=device, delete_with_instance=doomed
        )
        answer = _view(attached, server, version, read=False)
        return self.reply(version, {"volumeAttachment": answer})

    async def update(self, request: Request) -> Response:
        """PUT /{volume_id} {"volumeAttachment": {"volumeId", "delete_on_termination"}}
        (2.85): UpdateAttachment; 202. Another `volumeId` is a swap: 403 for members, 501
        for administrators (not offered); before 2.85 a PUT is a swap only (the same
        volume: 400)."""
        scope, version = await self.begin(request)
        body = (await json_body(request)).get("volumeAttachment")
        if not isinstance(body, dict) or not body.get("volumeId"):
            raise invalid("the body needs a 'volumeAttachment' with a 'volumeId'")
        server = await self.server_of(scope, request)
        uid = request.path_params["volume_id"]
        found = next((v for v in server.attached_volumes if v.uid == uid), None)
        if found is None:
            raise _missing("Volume attachment", uid)
        if body["volumeId"] != uid:
            admin_only(scope, "os-volumes-attachments:swap")
            raise not_offered("Swapping a server's volume")
        if version < V2_85:
            raise invalid(f"Volume {uid} is already attached: there is nothing to swap.")
        current = {**_own(found, server), "tag": None}
        for key in _UNCHANGEABLE:
            if key in body and body[key] != current[key]:
                raise invalid(f"Only delete_on_termination may be changed, not {key}.")
        if "delete_on_termination" in body:  # (else nothing changes)
            await self.call(
                self.backend.stub(srpc.StorageServiceStub).UpdateAttachment,
                sapi.UpdateAttachmentRequest(
                    name=found.volume,
                    instance=server.name,
                    delete_with_instance=_delete_on_termination(body, version),
                ),
                scope,
            )
        return self.reply(version, status=202)

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


def _delete_on_termination(body: dict[str, Any], version: Version) -> bool:
    """An attachment's `delete_on_termination`: a JSON boolean from 2.79 (default false);
    400 for anything else, or for the key before 2.79 (Nova's schema had no such key)."""
    if "delete_on_termination" not in body:
        return False
    value = body["delete_on_termination"]
    if version < V2_79 or not isinstance(value, bool):
        raise invalid(f"Invalid input for field/attribute delete_on_termination. Value: {value}")
    return value


def check_attachable(volume: spb.Volume, version: Version) -> None:
    """400 for a multiattach volume before microversion 2.60, as Nova refuses it."""
    if volume.multi_attach and version < V2_60:
        raise invalid(
            "Multiattach volumes are only supported starting with compute API version 2.60."
        )
