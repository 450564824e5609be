"""Cinder volume transfers (`/volume-transfers`, 3.55, and the older `/os-volume-transfer`)
over Kumo's: create 202 (with the auth key, once), list, detail, show, delete 202, accept.

The accepting project cannot read the offering one, so a transfer's Cinder id names it:
`<offering project>.<transfer id>` (ids hold no dots). Kumo keeps no name for a transfer:
its name is its Kumo id.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from kumo.gateway.dialect import invalid, json_body
from kumo.gateway.openstack.cinder.base import CinderBase
from kumo.gateway.openstack.common import Scope, iso, last_segment, not_found
from kumo.gateway.openstack.paging import PAGE
from kumo.storage.v1 import resources_pb2 as spb
from kumo.storage.v1 import storage_service_pb2 as sapi


def cinder_id(item: spb.VolumeTransfer) -> str:
    """`<project>.<transfer id>` of `projects/{project}/volumeTransfers/{id}`."""
    parts = item.name.split("/")
    return f"{parts[1]}.{parts[3]}"


def _name_of(cid: str) -> str:
    """The Kumo name a Cinder transfer id stands for; 404 for one no transfer can have."""
    project, _, transfer = cid.partition(".")
    if not project or not transfer or "/" in cid:
        raise not_found("Transfer", cid)
    return f"projects/{project}/volumeTransfers/{transfer}"


def _links(base: str, cid: str) -> list[dict[str, str]]:
    return [{"rel": "self", "href": f"{base}/volume/v3/volume-transfers/{cid}"}]


def _view(item: spb.VolumeTransfer, volume_uid: str | None, base: str) -> dict[str, Any]:
    cid = cinder_id(item)
    return {
        "id": cid,
        "name": last_segment(item.name),
        "volume_id": volume_uid,
        "created_at": iso(item.create_time, micro=True),
        "links": _links(base, cid),
    }


class Transfers(CinderBase):
    """The transfer routes (either prefix)."""

    async def _views(self, scope: Scope, base: str) -> list[dict[str, Any]]:
        transfers = await self._pages(
            self.storage.ListVolumeTransfers,
            sapi.ListVolumeTransfersRequest(parent=scope.parent, page_size=PAGE),
            "volume_transfers",
            scope,
        )
        volumes = {v.name: v.uid for v in await self.volumes(scope)}
        return [_view(t, volumes.get(t.volume), base) for t in transfers]

    async def list(self, request: Request) -> Response:
        """GET /volume-transfers and /volume-transfers/detail."""
        scope, version = await self.begin(request)
        items = await self._views(scope, self.base(request))
        if not request.url.path.endswith("/detail"):
            items = [{k: v for k, v in i.items() if k != "created_at"} for i in items]
        return self.listing(request, version, "transfers", items)

    async def show(self, request: Request) -> Response:
        """GET /volume-transfers/{id} (the offering project's)."""
        scope, version = await self.begin(request)
        for item in await self._views(scope, self.base(request)):
            if item["id"] == request.path_params["id"]:
                return self.reply(version, {"transfer": item})
        raise not_found("Transfer", request.path_params["id"])

    async def create(self, request: Request) -> Response:
        """POST /volume-transfers: 202 with the auth key (shown this once)."""
        scope, version = await self.begin(request)
        body = (await json_body(request)).get("transfer")
        if not isinstance(body, dict):
            raise invalid("Missing required element 'transfer' in request body.")
        volume = await self.volume(scope, str(body.get("volume_id") or ""))
        made = await self.call(
            self.storage.CreateVolumeTransfer,
            sapi.CreateVolumeTransferRequest(
                parent=scope.parent,
                volume_transfer_id=f"tr-{uuid.uuid4().hex}",
                volume_transfer=spb.VolumeTransfer(volume=volume.name),
            ),
            scope,
        )
        item = {**_view(made, volume.uid, self.base(request)), "auth_key": made.auth_key}
        return self.reply(version, {"transfer": item}, 202)

    async def delete(self, request: Request) -> Response:
        """DELETE /volume-transfers/{id}: 202."""
        scope, version = await self.begin(request)
        name = _name_of(request.path_params["id"])
        await self.call(
            self.storage.DeleteVolumeTransfer, sapi.DeleteVolumeTransferRequest(name=name), scope
        )
        return self.reply(version, status=202)

    async def accept(self, request: Request) -> Response:
        """POST /volume-transfers/{id}/accept: 202; the volume moves into the caller's
        project. A wrong key is 404, as for a transfer that does not exist."""
        scope, version = await self.begin(request)
        body = (await json_body(request)).get("accept")
        if not isinstance(body, dict) or not isinstance(body.get("auth_key"), str):
            raise invalid("Missing required element 'accept' with an 'auth_key'.")
        cid = request.path_params["id"]
        volume = await self.call(
            self.storage.AcceptVolumeTransfer,
            sapi.AcceptVolumeTransferRequest(
                name=_name_of(cid), auth_key=body["auth_key"], destination_project=scope.parent
            ),
            scope,
        )
        transfer = {
            "id": cid,
            "name": cid.partition(".")[2],
            "volume_id": volume.uid,
            "links": _links(self.base(request), cid),
        }
        return self.reply(version, {"transfer": transfer}, 202)
