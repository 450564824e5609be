"""Cinder's attachments API (`/v3/attachments`, microversion 3.27 and later) over
AttachVolume and DetachVolume.

A Kumo attachment is a volume attached to an instance; Kumo connects the guest itself, so
there is no reservation without a server, no connector and no connection info: create
needs `instance_uuid` and attaches at once (status `attaching` until the volume is in use,
then `attached`), `os-complete` only checks the attachment exists, and an update (a
connector) is 400. An attachment's id is derived from its volume's and server's ids.
"""

from __future__ import annotations

from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import Response

from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import compute_service_pb2_grpc as crpc
from kumo.gateway.dialect import invalid, json_body
from kumo.gateway.errors import RpcFailure
from kumo.gateway.openstack.cinder.base import CinderBase
from kumo.gateway.openstack.cinder.views import attachment_id
from kumo.gateway.openstack.common import Scope, iso, not_found
from kumo.gateway.openstack.lookup import find_instance
from kumo.gateway.openstack.microversions import Version
from kumo.storage.v1 import resources_pb2 as spb
from kumo.storage.v1 import storage_service_pb2 as sapi

FIRST = Version(3, 27)
_MODES = {"rw": spb.ATTACH_MODE_READ_WRITE, "ro": spb.ATTACH_MODE_READ_ONLY}
_MODE_NAMES = {spb.ATTACH_MODE_READ_ONLY: "ro"}


def _view(volume: spb.Volume, found: spb.Attachment, server_uid: str) -> dict[str, Any]:
    mode = _MODE_NAMES.get(found.mode, "rw")
    attached = iso(found.attach_time, micro=True)
    return {
        "id": attachment_id(volume.uid, server_uid),
        "volume_id": volume.uid,
        "instance": server_uid,
        "status": "attached" if volume.state == spb.Volume.STATE_IN_USE else "attaching",
        "attach_mode": mode,
        "attached_at": attached,
        "detached_at": None,
        "connection_info": {},
        # The names openstacksdk reads.
        "mode": mode,
        "attach_time": attached,
    }


class Attachments(CinderBase):
    """`/attachments`, `/attachments/detail`, `/attachments/{id}[/action]`."""

    async def begin_attachments(self, request: Request) -> tuple[Scope, Version]:
        """begin(), refusing microversions before 3.27 with 404 (as Cinder does)."""
        scope, version = await self.begin(request)
        if version < FIRST:
            raise RpcFailure.of(grpc.StatusCode.NOT_FOUND, "The resource could not be found.")
        return scope, version

    async def _all(self, scope: Scope) -> list[tuple[spb.Volume, spb.Attachment, str]]:
        """Every attachment of the project's volumes, with its server's id."""
        servers: dict[str, str] = {}
        found = []
        for volume in await self.volumes(scope):
            for attachment in volume.attachments:
                if attachment.instance not in servers:
                    instance = await self.call(
                        self.backend.stub(crpc.ComputeServiceStub).GetInstance,
                        capi.GetInstanceRequest(name=attachment.instance),
                        scope,
                    )
                    servers[attachment.instance] = instance.uid
                found.append((volume, attachment, servers[attachment.instance]))
        return found

    async def _one(self, scope: Scope, wanted: str) -> tuple[spb.Volume, spb.Attachment, str]:
        for volume, attachment, server_uid in await self._all(scope):
            if attachment_id(volume.uid, server_uid) == wanted:
                return volume, attachment, server_uid
        raise not_found("VolumeAttachment", wanted)

    async def _list(self, request: Request, detail: bool) -> Response:
        scope, version = await self.begin_attachments(request)
        items = [_view(*found) for found in await self._all(scope)]
        if server := request.query_params.get("instance_id"):
            items = [item for item in items if item["instance"] == server]
        if not detail:
            keys = ("id", "volume_id", "instance", "status")
            items = [{k: item[k] for k in keys} for item in items]
        return self.listing(request, version, "attachments", items)

    async def list(self, request: Request) -> Response:
        """GET /attachments[?volume_id=&instance_id=&status=]."""
        return await self._list(request, detail=False)

    async def list_detail(self, request: Request) -> Response:
        """GET /attachments/detail."""
        return await self._list(request, detail=True)

    async def show(self, request: Request) -> Response:
        """GET /attachments/{id}."""
        scope, version = await self.begin_attachments(request)
        found = await self._one(scope, request.path_params["id"])
        return self.reply(version, {"attachment": _view(*found)})

    async def create(self, request: Request) -> Response:
        """POST {"attachment": {"volume_uuid", "instance_uuid", "mode"}}: AttachVolume; 200
        with the attachment."""
        scope, version = await self.begin_attachments(request)
        body = (await json_body(request)).get("attachment")
        if not isinstance(body, dict) or not body.get("volume_uuid"):
            raise invalid("the body needs an 'attachment' with a 'volume_uuid'")
        if not body.get("instance_uuid"):
            raise invalid("Kumo attaches a volume to a server: give instance_uuid")
        mode = _MODES.get(str(body.get("mode") or "rw"))
        if mode is None:
            raise invalid("mode must be 'rw' or 'ro'")
        volume = await self.volume(scope, str(body["volume_uuid"]))
        server = await find_instance(
            self.backend,
            scope.token,
            scope.project,
            str(body["instance_uuid"]),
            anywhere=scope.cloud_admin,
        )
        await self.call(
            self.storage.AttachVolume,
            sapi.AttachVolumeRequest(name=volume.name, instance=server.name, mode=mode),
            scope,
        )
        volume = await self.call(
            self.storage.GetVolume, sapi.GetVolumeRequest(name=volume.name), scope
        )
        for attachment in volume.attachments:
            if attachment.instance == server.name:
                return self.reply(version, {"attachment": _view(volume, attachment, server.uid)})
        pending = spb.Attachment(instance=server.name, mode=mode)
        return self.reply(version, {"attachment": _view(volume, pending, server.uid)})

    async def update(self, request: Request) -> Response:
        """PUT /attachments/{id}: Kumo takes no connector; 400 (404 if there is none)."""
        scope, _ = await self.begin_attachments(request)
        await self._one(scope, request.path_params["id"])
        raise invalid("Kumo connects attached volumes itself: an attachment takes no connector")

    async def action(self, request: Request) -> Response:
        """POST /attachments/{id}/action {"os-complete": ...}: 204 (Kumo completes an
        attachment itself)."""
        scope, version = await self.begin_attachments(request)
        body = await json_body(request)
        if list(body) != ["os-complete"]:
            raise invalid("the only attachment action is os-complete")
        await self._one(scope, request.path_params["id"])
        return self.reply(version, status=204)

    async def delete(self, request: Request) -> Response:
        """DELETE /attachments/{id}: DetachVolume; 200 with the volume's other attachments."""
        scope, version = await self.begin_attachments(request)
        volume, attachment, _ = await self._one(scope, request.path_params["id"])
        await self.call(
            self.storage.DetachVolume,
            sapi.DetachVolumeRequest(name=volume.name, instance=attachment.instance),
            scope,
        )
        others = [
            {"id": attachment_id(volume.uid, uid), "volume_id": volume.uid, "instance": uid}
            for other_volume, other, uid in await self._all(scope)
            if other_volume.uid == volume.uid and other.instance != attachment.instance
        ]
        return self.reply(version, {"attachments": others})
