"""Cinder backups (create 202, list, detail, show, delete 202, restore 202) over Kumo's
backups.

Kumo decides what is incremental (a volume's first backup is full, the next ones build on
the previous), whatever `incremental` asks. As in Cinder, an in-use volume is backed up
only with `force`. A restore makes a new volume in the backup's zone, of the backed up
volume's type (the default type once that volume is gone); restoring into an
existing volume, and backing up a snapshot, are not offered (501).
"""

from __future__ import annotations

import uuid
from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import Response

from kumo.gateway.dialect import invalid, json_member
from kumo.gateway.errors import RpcFailure
from kumo.gateway.openstack.cinder import views
from kumo.gateway.openstack.cinder.base import CinderBase
from kumo.gateway.openstack.common import Scope, not_found, with_uid
from kumo.storage.v1 import resources_pb2 as spb
from kumo.storage.v1 import storage_service_pb2 as sapi


def _not_offered(what: str) -> RpcFailure:
    return RpcFailure.of(grpc.StatusCode.UNIMPLEMENTED, f"{what} is not offered by Kumo.")


class Backups(CinderBase):
    """`/backups` and `/backups/{id}/restore`."""

    async def _views(self, scope: Scope, base: str) -> list[dict[str, Any]]:
        backups = await self.backups(scope)
        volumes = {v.name: v.uid for v in await self.volumes(scope)}
        built_on = {b.parent_backup for b in backups}
        return [
            views.backup(b, base, volumes.get(b.source_volume), b.name in built_on) for b in backups
        ]

    async def list(self, request: Request) -> Response:
        """GET /backups."""
        scope, version = await self.begin(request)
        base = self.base(request)
        items = [views.backup_brief(b, base) for b in await self.backups(scope)]
        return self.listing(request, version, "backups", items)

    async def list_detail(self, request: Request) -> Response:
        """GET /backups/detail."""
        scope, version = await self.begin(request)
        items = await self._views(scope, self.base(request))
        return self.listing(request, version, "backups", items)

    async def show(self, request: Request) -> Response:
        """GET /backups/{id}."""
        scope, version = await self.begin(request)
        for item in await self._views(scope, self.base(request)):
            if item["id"] == request.path_params["id"]:
                return self.reply(version, {"backup": item})
        raise not_found("Backup", request.path_params["id"])

    async def create(self, request: Request) -> Response:
        """POST /backups: 202 with the new backup's id, name and links."""
        scope, version = await self.begin(request)
        body = await self.body_of(request, "backup")
        if body.get("snapshot_id"):
            raise _not_offered("Backing up a snapshot")
        force = body.get("force", False)
        if not isinstance(force, bool):
            raise invalid(f"Invalid input for field/attribute force. Value: {force!r}.")
        volume = await self.volume(scope, str(body.get("volume_id") or ""))
        if volume.state == spb.Volume.STATE_IN_USE and not force:
            raise invalid("Backing up an in-use volume must use the force flag.")
        metadata = body.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise invalid("Invalid input for field/attribute metadata: not an object.")
        operation = await self.call(
            self.storage.CreateBackup,
            sapi.CreateBackupRequest(
                parent=volume.name.split("/volumes/")[0],
                backup_id=f"bkp-{uuid.uuid4().hex}",
                backup=spb.Backup(
                    source_volume=volume.name,
                    display_name=str(body.get("name") or ""),
                    description=str(body.get("description") or ""),
                    labels={str(k): str(v) for k, v in metadata.items()},
                ),
            ),
            scope,
        )
        created = await self.created(
            operation, self.storage.GetBackup, sapi.GetBackupRequest, scope
        )
        return self.reply(version, {"backup": views.backup_brief(created, self.base(request))}, 202)

    async def delete(self, request: Request) -> Response:
        """DELETE /backups/{id}: 202."""
        scope, version = await self.begin(request)
        item = with_uid(await self.backups(scope), request.path_params["id"], "Backup")
        await self.call(self.storage.DeleteBackup, sapi.DeleteBackupRequest(name=item.name), scope)
        return self.reply(version, status=202)

    async def restore(self, request: Request) -> Response:
        """POST /backups/{id}/restore: 202; a new volume of the backup's size and zone,
        and of its volume's type."""
        scope, version = await self.begin(request)
        body = await json_member(request, "restore")
        if body.get("volume_id"):
            raise _not_offered("Restoring into an existing volume")
        item = with_uid(await self.backups(scope), request.path_params["id"], "Backup")
        name = str(body.get("name") or f"restore_backup_{item.uid}")
        # The backed up volume's type while that volume exists; else the default type.
        types = {v.name: v.volume_type for v in await self.volumes(scope)}
        operation = await self.call(
            self.storage.CreateVolume,
            sapi.CreateVolumeRequest(
                parent=item.name.split("/backups/")[0],
                volume_id=f"vol-{uuid.uuid4().hex}",
                volume=spb.Volume(
                    display_name=name,
                    size_gib=item.size_gib,
                    source_backup=item.name,
                    volume_type=types.get(item.source_volume, ""),
                ),
            ),
            scope,
        )
        created = await self.created(
            operation, self.storage.GetVolume, sapi.GetVolumeRequest, scope
        )
        restore = {"backup_id": item.uid, "volume_id": created.uid, "volume_name": name}
        return self.reply(version, {"restore": restore}, 202)
