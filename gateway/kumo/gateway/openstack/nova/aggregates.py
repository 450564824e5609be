"""Nova's os-aggregates (cloud administrators), read only: each Kumo resource pool is one
host aggregate, its hosts the hosts of the pool's racks, its availability zone the pool's
zone, its metadata the pool's labels (and `availability_zone`). Aggregate ids are
positions in the pool list, `uuid` (2.41) the pool's uid. Kumo's topology is changed with
its own API (pools, racks, hosts), so creating, changing or deleting an aggregate, and
adding or removing hosts, answer 501.
"""

from __future__ import annotations

from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import Response

from kumo.gateway.errors import RpcFailure
from kumo.gateway.openstack.common import Scope, iso, last_segment
from kumo.gateway.openstack.microversions import Version
from kumo.gateway.openstack.nova.base import NovaBase, admin_only, not_offered
from kumo.gateway.openstack.paging import every
from kumo.topology.v1 import resources_pb2 as tpb
from kumo.topology.v1 import topology_service_pb2 as tapi

V2_41 = Version(2, 41)


def _view(version: Version, index: int, pool: tpb.Pool, hosts: list[str]) -> dict[str, Any]:
    zone = last_segment(pool.zone)
    body: dict[str, Any] = {
        "id": index,
        "name": pool.display_name or last_segment(pool.name),
        "availability_zone": zone,
        "hosts": hosts,
        "metadata": {**pool.labels, "availability_zone": zone},
        "created_at": iso(pool.create_time, micro=True),
        "updated_at": iso(pool.update_time, micro=True),
        "deleted": False,
        "deleted_at": None,
    }
    if version >= V2_41:
        body["uuid"] = pool.uid
    return body


class Aggregates(NovaBase):
    """GET /os-aggregates and /os-aggregates/{id}; the writes are 501."""

    async def _views(self, scope: Scope, version: Version) -> list[dict[str, Any]]:
        """Every pool as an aggregate, in the API's order (403 unless a cloud
        administrator asks)."""
        hosts = await self.hosts(scope, "os-aggregates:index")
        request = tapi.ListPoolsRequest()
        pools = [
            p
            async for p in every(
                self.backend, self.topology.ListPools, request, "pools", scope.token
            )
        ]
        return [
            _view(
                version, index, pool, [last_segment(h.name) for h in hosts if h.pool == pool.name]
            )
            for index, pool in enumerate(pools, start=1)
        ]

    async def list(self, request: Request) -> Response:
        """GET /os-aggregates."""
        scope, version = await self.begin(request)
        return self.reply(version, {"aggregates": await self._views(scope, version)})

    async def show(self, request: Request) -> Response:
        """GET /os-aggregates/{id} (its position, or from 2.41 its uuid); 404 if none."""
        scope, version = await self.begin(request)
        wanted = request.path_params["aggregate_id"]
        for view in await self._views(scope, version):
            if wanted in (str(view["id"]), view.get("uuid")):
                return self.reply(version, {"aggregate": view})
        raise RpcFailure.of(grpc.StatusCode.NOT_FOUND, f"Aggregate {wanted} could not be found.")

    async def change(self, request: Request) -> Response:
        """Creating, updating, deleting an aggregate or acting on one: 501 (see the module
        docstring)."""
        scope, _ = await self.begin(request)
        admin_only(scope, "os-aggregates:update")
        raise not_offered("Changing host aggregates (Kumo's resource pools)")
