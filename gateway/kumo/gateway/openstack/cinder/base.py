"""What every Cinder handler shares: scope and microversion, lookups by id, replies."""

from __future__ import annotations

import time
from typing import Any

from google.rpc import code_pb2
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from kumo.gateway.dialect import Dialect, json_member
from kumo.gateway.grpc_backend import Backend
from kumo.gateway.openstack.common import Scope, Scopes, base_url, last_segment, not_found, with_uid
from kumo.gateway.openstack.errors import nova_error
from kumo.gateway.openstack.filters import listing
from kumo.gateway.openstack.lookup import is_volume_type
from kumo.gateway.openstack.microversions import Microversions, Version
from kumo.gateway.openstack.paging import MAX_SCAN, PAGE
from kumo.storage.v1 import resources_pb2 as spb
from kumo.storage.v1 import storage_service_pb2 as sapi
from kumo.storage.v1 import storage_service_pb2_grpc as srpc
from kumo.topology.v1 import topology_service_pb2 as tapi
from kumo.topology.v1 import topology_service_pb2_grpc as trpc
from kumo.type.v1 import operation_metadata_pb2

# Cinder's faults have Nova's shape; a wrong state is 400 (InvalidVolume), quota 413.
DIALECT = Dialect(
    "cinder",
    nova_error,
    {code_pb2.FAILED_PRECONDITION: 400, code_pb2.RESOURCE_EXHAUSTED: 413},
)
MICROVERSIONS = Microversions("volume", Version(3, 0), Version(3, 67))


def target_of(operation: Any) -> str:
    """The resource an operation works on (its metadata's `target`)."""
    metadata = operation_metadata_pb2.OperationMetadata()
    operation.metadata.Unpack(metadata)
    return str(metadata.target)


class CinderBase:
    """Backend, scopes and the reply helpers."""

    def __init__(self, backend: Backend, scopes: Scopes, public_url: str) -> None:
        self.backend = backend
        self.scopes = scopes
        self.public_url = public_url
        self.storage = backend.stub(srpc.StorageServiceStub)
        self.topology = backend.stub(trpc.TopologyServiceStub)
        self._zones: tuple[float, list[str]] | None = None

    def base(self, request: Request) -> str:
        """This gateway's base URL."""
        return base_url(request, self.public_url)

    async def begin(self, request: Request) -> tuple[Scope, Version]:
        """The caller's scope and the negotiated microversion."""
        version = MICROVERSIONS.negotiate(request)
        return await self.scopes.of(request), version

    async def call(self, method: Any, message: Any, scope: Scope) -> Any:
        """A call with the caller's token."""
        return await self.backend.call(method, message, scope.token)

    @staticmethod
    async def body_of(request: Request, key: str) -> dict[str, Any]:
        """The `{key: {...}}` object of a request body; 400 in Cinder's words otherwise."""
        return await json_member(request, key, f"Missing required element '{key}' in request body.")

    @staticmethod
    def reply(version: Version, body: Any = None, status: int = 200) -> Response:
        """A JSON answer (or an empty one) with the microversion headers."""
        headers = MICROVERSIONS.headers(version)
        if body is None:
            return Response(status_code=status, headers=headers)
        return JSONResponse(body, status_code=status, headers=headers)

    def listing(
        self, request: Request, version: Version, plural: str, items: list[dict[str, Any]]
    ) -> Response:
        """A filtered, paged list answer."""
        return self.reply(version, listing(request, plural, items, self.public_url))

    async def _pages(self, method: Any, request: Any, plural: str, scope: Scope) -> list[Any]:
        items: list[Any] = []
        while True:
            answer = await self.call(method, request, scope)
            items.extend(getattr(answer, plural))
            request.page_token = answer.next_page_token
            if not request.page_token or len(items) >= MAX_SCAN:
                return items

    async def volumes(self, scope: Scope) -> list[spb.Volume]:
        """The project's volumes in every zone."""
        request = sapi.ListVolumesRequest(parent=f"{scope.parent}/zones/-", page_size=PAGE)
        return await self._pages(self.storage.ListVolumes, request, "volumes", scope)

    async def volume(self, scope: Scope, uid: str) -> spb.Volume:
        """The project's volume with this id; 404 otherwise."""
        return with_uid(await self.volumes(scope), uid, "Volume")

    async def backups(self, scope: Scope) -> list[spb.Backup]:
        """The project's backups in every zone."""
        request = sapi.ListBackupsRequest(parent=f"{scope.parent}/zones/-", page_size=PAGE)
        return await self._pages(self.storage.ListBackups, request, "backups", scope)

    async def created(self, operation: Any, get: Any, request_type: Any, scope: Scope) -> Any:
        """The resource a create `operation` made, read with `get(request_type(name=...))`."""
        return await self.call(get, request_type(name=target_of(operation)), scope)

    async def snapshots(self, scope: Scope) -> list[spb.Snapshot]:
        """The snapshots of the project's volumes."""
        found: list[spb.Snapshot] = []
        for volume in await self.volumes(scope):
            found.extend(
                await self._pages(
                    self.storage.ListSnapshots,
                    sapi.ListSnapshotsRequest(parent=volume.name, page_size=PAGE),
                    "snapshots",
                    scope,
                )
            )
        return found

    async def types(self, scope: Scope) -> list[spb.VolumeType]:
        """Every volume type."""
        return await self._pages(
            self.storage.ListVolumeTypes,
            sapi.ListVolumeTypesRequest(page_size=PAGE),
            "volume_types",
            scope,
        )

    async def volume_type(self, scope: Scope, wanted: str) -> spb.VolumeType:
        """The volume type with this id, Kumo id or name; 404 otherwise."""
        for item in await self.types(scope):
            if is_volume_type(item, wanted):
                return item
        raise not_found("Volume type", wanted)

    async def zones(self, scope: Scope) -> list[str]:
        """The cloud's zone ids (cached 30 s)."""
        now = time.monotonic()
        if self._zones is None or now - self._zones[0] > 30:
            answer = await self.call(
                self.topology.ListZones, tapi.ListZonesRequest(page_size=1000), scope
            )
            self._zones = (now, sorted(last_segment(z.name) for z in answer.zones))
        return self._zones[1]
