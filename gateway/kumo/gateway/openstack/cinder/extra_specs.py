"""A volume type's extra specs (`/types/{id}/extra_specs[/{key}]`) over what a Kumo
volume type holds.

`kumo:backend` and `kumo:pool` are its backend and pool (fixed at creation: changing or
deleting them is 400); `kumo:backup_pool` and the QoS limits `kumo:max_iops`,
`kumo:max_read_bytes_per_second`, `kumo:max_write_bytes_per_second` are its writable
fields (integers, 0 when deleted); every other key is one of the type's labels (keys and
values up to 63 characters, as Kumo labels). Writes are UpdateVolumeType (cloud
administrators) under the etag read, read and written again while another change came in
between (etag_retry).
"""

from __future__ import annotations

from typing import Any

from google.protobuf import field_mask_pb2
from starlette.requests import Request
from starlette.responses import Response

from kumo.gateway.dialect import invalid, json_body
from kumo.gateway.etag_retry import aborted, until_written
from kumo.gateway.openstack.cinder import views
from kumo.gateway.openstack.cinder.base import CinderBase
from kumo.gateway.openstack.common import Scope, not_found
from kumo.storage.v1 import resources_pb2 as spb
from kumo.storage.v1 import storage_service_pb2 as sapi

_FIXED = ("kumo:backend", "kumo:pool")
_QOS = {f"kumo:{name}": name for name in views.QOS_FIELDS}
_BACKUP_POOL = "kumo:backup_pool"


def _change(
    kind: spb.VolumeType, given: dict[str, Any], delete: bool
) -> sapi.UpdateVolumeTypeRequest:
    """The UpdateVolumeType that sets (or deletes) the `given` specs; 400 for a fixed spec
    changed or deleted, or a QoS value that is not an integer."""
    current = views.extra_specs(kind)
    change = spb.VolumeType(name=kind.name, labels=kind.labels, qos=kind.qos, etag=kind.etag)
    paths: set[str] = set()
    for key, raw in given.items():
        value = "" if raw is None else str(raw)
        if key in _FIXED:
            if delete or value != current[key]:
                raise invalid(f"{key} is fixed when the volume type is created")
        elif key in _QOS:
            try:
                setattr(change.qos, _QOS[key], 0 if delete else int(value))
            except ValueError:
                raise invalid(f"{key} must be an integer") from None
            paths.add("qos")
        elif key == _BACKUP_POOL:
            change.backup_pool = "" if delete else value
            paths.add("backup_pool")
        else:
            if delete:
                change.labels.pop(key, None)  # (gone already if deleted meanwhile)
            else:
                change.labels[key] = value
            paths.add("labels")
    return sapi.UpdateVolumeTypeRequest(
        volume_type=change, update_mask=field_mask_pb2.FieldMask(paths=sorted(paths))
    )


class ExtraSpecs(CinderBase):
    """`/types/{id}/extra_specs` and `/types/{id}/extra_specs/{key}`."""

    async def _type(self, scope: Scope, request: Request) -> spb.VolumeType:
        return await self.volume_type(scope, request.path_params["id"])

    async def _update(
        self, scope: Scope, request: Request, given: dict[str, Any], delete: bool = False
    ) -> None:
        """Reads the type and sets (or deletes) the `given` specs under its etag, again while
        another change came in between (etag_retry)."""

        async def attempt() -> None:
            change = _change(await self._type(scope, request), given, delete)
            if change.update_mask.paths:
                await self.call(self.storage.UpdateVolumeType, change, scope)

        await until_written(attempt, aborted)

    async def list(self, request: Request) -> Response:
        """GET: every extra spec."""
        scope, version = await self.begin(request)
        kind = await self._type(scope, request)
        return self.reply(version, {"extra_specs": views.extra_specs(kind)})

    async def create(self, request: Request) -> Response:
        """POST {"extra_specs": {...}}: sets those; 200 with them."""
        scope, version = await self.begin(request)
        given = (await json_body(request)).get("extra_specs")
        if not isinstance(given, dict) or not given:
            raise invalid("the body needs a non-empty 'extra_specs' object")
        specs = {str(k): str(v) for k, v in given.items()}
        await self._update(scope, request, specs)
        return self.reply(version, {"extra_specs": specs})

    async def show(self, request: Request) -> Response:
        """GET /{key}: {key: value}; 404 when the type has no such spec."""
        scope, version = await self.begin(request)
        kind = await self._type(scope, request)
        key = request.path_params["key"]
        specs = views.extra_specs(kind)
        if key not in specs:
            raise not_found("Volume Type extra spec", key)
        return self.reply(version, {key: specs[key]})

    async def update(self, request: Request) -> Response:
        """PUT /{key} {key: value}: sets that one spec (the body names exactly that key)."""
        scope, version = await self.begin(request)
        key = request.path_params["key"]
        body = await json_body(request)
        if list(body) != [key]:
            raise invalid("Request body and URI mismatch")
        await self._update(scope, request, {key: str(body[key])})
        return self.reply(version, {key: str(body[key])})

    async def delete(self, request: Request) -> Response:
        """DELETE /{key}: 202; 404 when the type has no such spec."""
        scope, version = await self.begin(request)
        kind = await self._type(scope, request)
        key = request.path_params["key"]
        if key not in views.extra_specs(kind):
            raise not_found("Volume Type extra spec", key)
        await self._update(scope, request, {key: None}, delete=True)
        return self.reply(version, status=202)
