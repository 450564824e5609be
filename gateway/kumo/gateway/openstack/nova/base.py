"""What every Nova handler shares."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import grpc
from google.protobuf import field_mask_pb2
from starlette.requests import Request
from starlette.responses import Response

from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import compute_service_pb2_grpc as crpc
from kumo.compute.v1 import resources_pb2 as cpb
from kumo.gateway.dialect import Dialect
from kumo.gateway.errors import RpcFailure
from kumo.gateway.grpc_backend import Backend
from kumo.gateway.key_pair_names import KeyPairNames
from kumo.gateway.openstack.common import FastJSONResponse, Scope, Scopes, base_url, last_segment
from kumo.gateway.openstack.errors import NOVA_OVERRIDES, nova_error
from kumo.gateway.openstack.lookup import ImageIndex, find_instance
from kumo.gateway.openstack.microversions import Microversions, Version
from kumo.gateway.openstack.paging import every
from kumo.topology.v1 import resources_pb2 as tpb
from kumo.topology.v1 import topology_service_pb2 as tapi
from kumo.topology.v1 import topology_service_pb2_grpc as trpc

DIALECT = Dialect("nova", nova_error, NOVA_OVERRIDES)
# Metadata of a server or an image is its Kumo labels: the API holds at most 64.
MAX_METADATA_ITEMS = 64
MICROVERSIONS = Microversions(
    "compute", Version(2, 1), Version(2, 92), legacy_header="x-openstack-nova-api-version"
)


def not_offered(what: str) -> RpcFailure:
    """501 for a Nova feature no Kumo RPC offers yet."""
    return RpcFailure.of(
        grpc.StatusCode.UNIMPLEMENTED, f"{what} is not offered by Kumo's compute service yet."
    )


def admin_only(scope: Scope, rule: str) -> None:
    """403 unless the caller is a cloud administrator: Nova's default policy for `rule`
    (hosts are readable by everyone over Kumo's own API, but not through Nova)."""
    if not scope.cloud_admin:
        raise RpcFailure.of(
            grpc.StatusCode.PERMISSION_DENIED,
            f"Policy doesn't allow os_compute_api:{rule} to be performed.",
        )


class NovaBase:
    """Backend, scopes, images index and the response helpers."""

    def __init__(self, backend: Backend, scopes: Scopes, images: ImageIndex, public_url: str):
        self.backend = backend
        self.scopes = scopes
        self.images = images
        self.public_url = public_url
        self.compute = backend.stub(crpc.ComputeServiceStub)
        self.topology = backend.stub(trpc.TopologyServiceStub)
        self.key_names = KeyPairNames()
        self._zones: tuple[float, list[str]] | None = None
        self._flavor_cache: tuple[float, dict[str, cpb.Flavor]] = (0.0, {})

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

    async def server_of(self, scope: Scope, request: Request) -> cpb.Instance:
        """The server of the path's `server_id` (any project's for a cloud administrator);
        404 if there is none."""
        return await find_instance(  # type: ignore[no-any-return]
            self.backend,
            scope.token,
            scope.project,
            request.path_params["server_id"],
            anywhere=scope.cloud_admin,
        )

    @staticmethod
    def reply(version: Version, body: Any = None, status: int = 200, **headers: str) -> Response:
        """A JSON answer (or an empty one) with the microversion headers."""
        all_headers = {**MICROVERSIONS.headers(version), **headers}
        if body is None:
            return Response(status_code=status, headers=all_headers)
        return FastJSONResponse(body, status_code=status, headers=all_headers)

    async def update_instance(
        self, scope: Scope, instance: cpb.Instance, *paths: str
    ) -> cpb.Instance:
        """UpdateInstance of the `paths` fields of `instance` (under its etag if it has
        one: ABORTED if the instance changed since); the instance after."""
        request = capi.UpdateInstanceRequest(
            instance=instance, update_mask=field_mask_pb2.FieldMask(paths=paths)
        )
        return await self.call(self.compute.UpdateInstance, request, scope)  # type: ignore[no-any-return]

    async def key_pair_names(self, scope: Scope, refs: Iterable[str]) -> dict[str, str]:
        """The Nova names of key pairs by resource name (key_pair_names.py)."""

        async def fetch(ref: str) -> cpb.KeyPair | None:
            try:
                key: cpb.KeyPair = await self.call(
                    self.compute.GetKeyPair, capi.GetKeyPairRequest(name=ref), scope
                )
            except RpcFailure:
                return None
            return key

        return await self.key_names.names(refs, fetch)

    async def zones(self, scope: Scope) -> list[str]:
        """The cloud's zone ids (cached 30 s)."""
        now = time.monotonic()
        if self._zones is None or now - self._zones[0] > 30:
            answer = await self.call(
                self.topology.ListZones, tapi.ListZonesRequest(page_size=1000), scope
            )
            self._zones = (now, sorted(last_segment(z.name) for z in answer.zones))
        return self._zones[1]

    async def flavors(self, scope: Scope, wanted: Iterable[str] = ()) -> dict[str, cpb.Flavor]:
        """Every flavor by name (`flavors/{id}`), cached 30 s; read again after a second
        when one of the `wanted` names is missing (a flavor made since)."""
        now = time.monotonic()
        read, known = self._flavor_cache
        if now - read > 30 or (now - read > 1 and any(n not in known for n in wanted)):
            answer = await self.call(
                self.compute.ListFlavors, capi.ListFlavorsRequest(page_size=1000), scope
            )
            self._flavor_cache = (now, {f.name: f for f in answer.flavors})
        return self._flavor_cache[1]

    async def hosts(self, scope: Scope, rule: str) -> list[tpb.Host]:
        """Every host, in the API's order; 403 unless a cloud administrator asks (`rule`
        names Nova's policy)."""
        admin_only(scope, rule)
        request = tapi.ListHostsRequest()
        listed = every(self.backend, self.topology.ListHosts, request, "hosts", scope.token)
        return [host async for host in listed]
