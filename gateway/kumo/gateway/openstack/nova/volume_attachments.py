"""Nova's `/servers/{id}/os-volume_attachments` over the storage service's AttachVolume
and DetachVolume: an attachment's id is the volume's id (one attachment per volume and
server, as in Nova); Kumo picks the guest device, so `device` is null."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import Response

from kumo.compute.v1 import resources_pb2 as cpb
from kumo.gateway.dialect import invalid, json_body
from kumo.gateway.errors import RpcFailure
from kumo.gateway.grpc_backend import Backend
from kumo.gateway.openstack.common import Scope
from kumo.gateway.openstack.lookup import find_instance
from kumo.gateway.openstack.nova.base import NovaBase
from kumo.gateway.openstack.paging import PAGE
from kumo.storage.v1 import resources_pb2 as spb
from kumo.storage.v1 import storage_service_pb2 as sapi
from kumo.storage.v1 import storage_service_pb2_grpc as srpc


def _missing(kind: str, uid: str) -> RpcFailure:
    return RpcFailure.of(grpc.StatusCode.NOT_FOUND, f"{kind} {uid} could not be found.")


def _view(volume: spb.Volume, server: cpb.Instance) -> dict[str, Any]:
    return {"id": volume.uid, "volumeId": volume.uid, "serverId": server.uid, "device": None}


async def _volumes_under(backend: Backend, token: str, parent: str) -> list[spb.Volume]:
    """Every volume of `parent` (`projects/p/zones/z`, or `zones/-` for all the project's)."""
    found: list[spb.Volume] = []
    page_token = ""
    while True:
        answer = await backend.call(
            backend.stub(srpc.StorageServiceStub).ListVolumes,
            sapi.ListVolumesRequest(parent=parent, page_size=PAGE, page_token=page_token),
            token,
        )
        found.extend(answer.volumes)
        page_token = answer.next_page_token
        if not page_token:
            return found


def _zone(name: str, kind: str) -> str:
    """`projects/p/zones/z` of a zone's resource (`kind`: `instances`, `volumes`)."""
    return name.rsplit(f"/{kind}/", 1)[0]


async def zone_volumes(backend: Backend, token: str, server: cpb.Instance) -> list[spb.Volume]:
    """The volumes of the server's project in the server's zone."""
    return await _volumes_under(backend, token, _zone(server.name, "instances"))


# zone (`projects/p/zones/z`) -> instance name -> the (uid, name) of the volumes of that
# zone attached to it, in the volumes' order
Attached = dict[str, dict[str, list[tuple[str, str]]]]


def _attached(volumes: Iterable[spb.Volume]) -> Attached:
    found: Attached = {}
    for volume in volumes:
        zone = _zone(volume.name, "volumes")
        by_instance = found.setdefault(zone, {})
        for instance in {a.instance for a in volume.attachments}:
            if _zone(instance, "instances") == zone:
                by_instance.setdefault(instance, []).append((volume.uid, volume.name))
    return found


class AttachedVolumes:
    """The volumes attached to servers (Nova's `volumes_attached`, the boot
    volume included), from the volumes of the server's zone read once per request; for a
    list, those of all the project's zones, read while the servers are (`read_project`).
    A caller who cannot list the volumes sees none attached."""

    def __init__(self, backend: Backend, token: str) -> None:
        self.backend = backend
        self.token = token
        self._attached: Attached = {}
        self._project: tuple[str, asyncio.Task[Attached]] | None = None

    async def _read(self, parent: str) -> Attached:
        try:
            return _attached(await _volumes_under(self.backend, self.token, parent))
        except RpcFailure:
            return {}

    def read_project(self, project: str) -> None:
        """Starts reading the volumes of every zone of `project` (`projects/p`) in the
        background: `of` waits for them. `cancel` when they are not wanted after all."""
        self._project = (project, asyncio.ensure_future(self._read(f"{project}/zones/-")))

    def cancel(self) -> None:
        """Stops the background read, if any. Idempotent."""
        if self._project is not None:
            self._project[1].cancel()

    async def of(self, server: cpb.Instance) -> list[tuple[str, str]]:
        """The (uid, name) of each volume attached to `server`."""
        zone = _zone(server.name, "instances")
        if zone not in self._attached:
            if self._project is not None and zone.startswith(f"{self._project[0]}/zones/"):
                for other, by_instance in (await self._project[1]).items():
                    self._attached.setdefault(other, by_instance)
                self._attached.setdefault(zone, {})
            else:
                self._attached.update(await self._read(zone))
                self._attached.setdefault(zone, {})
        return self._attached[zone].get(server.name, [])


class VolumeAttachments(NovaBase):
    """`/servers/{id}/os-volume_attachments[/{volume_id}]`."""

    async def _server(self, scope: Scope, request: Request) -> cpb.Instance:
        return await find_instance(  # type: ignore[no-any-return]
            self.backend,
            scope.token,
            scope.project,
            request.path_params["server_id"],
            anywhere=scope.cloud_admin,
        )

    async def _volumes(self, scope: Scope, server: cpb.Instance) -> list[spb.Volume]:
        """The volumes of the server's project (the server's zone)."""
        return await zone_volumes(self.backend, scope.token, server)

    async def _volume(self, scope: Scope, server: cpb.Instance, uid: str) -> spb.Volume:
        for volume in await self._volumes(scope, server):
            if volume.uid == uid:
                return volume
        raise _missing("Volume", uid)

    async def list_attached(self, request: Request) -> Response:
        """GET: the volumes attached to the server."""
        scope, version = await self.begin(request)
        server = await self._server(scope, request)
        attached = [
            _view(v, server)
            for v in await self._volumes(scope, server)
            if any(a.instance == server.name for a in v.attachments)
        ]
        return self.reply(version, {"volumeAttachments": attached})

    async def show(self, request: Request) -> Response:
        """GET /{volume_id}: 404 unless that volume is attached to the server."""
        scope, version = await self.begin(request)
        server = await self._server(scope, request)
        volume = await self._volume(scope, server, request.path_params["volume_id"])
        if not any(a.instance == server.name for a in volume.attachments):
            raise _missing("Volume attachment", volume.uid)
        return self.reply(version, {"volumeAttachment": _view(volume, server)})

    async def create(self, request: Request) -> Response:
        """POST {"volumeAttachment": {"volumeId"}}: AttachVolume; 200 with the attachment."""
        scope, version = await self.begin(request)
        body = (await json_body(request)).get("volumeAttachment")
        if not isinstance(body, dict) or not body.get("volumeId"):
            raise invalid("the body needs a 'volumeAttachment' with a 'volumeId'")
        server = await self._server(scope, request)
        volume = await self._volume(scope, server, str(body["volumeId"]))
        await self.call(
            self.backend.stub(srpc.StorageServiceStub).AttachVolume,
            sapi.AttachVolumeRequest(name=volume.name, instance=server.name),
            scope,
        )
        return self.reply(version, {"volumeAttachment": _view(volume, server)})

    async def delete(self, request: Request) -> Response:
        """DELETE /{volume_id}: DetachVolume; 202."""
        scope, version = await self.begin(request)
        server = await self._server(scope, request)
        volume = await self._volume(scope, server, request.path_params["volume_id"])
        await self.call(
            self.backend.stub(srpc.StorageServiceStub).DetachVolume,
            sapi.DetachVolumeRequest(name=volume.name, instance=server.name),
            scope,
        )
        return self.reply(version, status=202)
