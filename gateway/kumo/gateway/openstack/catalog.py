"""The Keystone service catalog: every Kumo endpoint, per region.

Every service is served by this gateway, so each region's endpoints share its base URL;
the regions come from the topology service (ListRegions, cached for `ttl` seconds).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from kumo.gateway.grpc_backend import Backend
from kumo.gateway.openstack.common import last_segment
from kumo.topology.v1 import topology_service_pb2 as tapi
from kumo.topology.v1 import topology_service_pb2_grpc as trpc

# (type, name, path under the gateway); Cinder v3 without a project id in its URLs (3.67).
SERVICES: tuple[tuple[str, str, str], ...] = (
    ("identity", "keystone", "/v3"),
    ("compute", "nova", "/compute/v2.1"),
    ("image", "glance", "/image"),
    ("network", "neutron", "/network"),
    ("volumev3", "cinderv3", "/volume/v3"),
    ("block-storage", "cinder", "/volume/v3"),
)
INTERFACES = ("public", "internal", "admin")
_NAMESPACE = uuid.UUID("6f1c4a0e-8d7e-4c55-9a53-7a1c0b6f1d2e")


def _id(*parts: str) -> str:
    return uuid.uuid5(_NAMESPACE, "/".join(parts)).hex


def catalog(base: str, regions: list[str]) -> list[dict[str, Any]]:
    """The catalog for a gateway at `base` serving `regions`."""
    return [
        {
            "id": _id(kind),
            "type": kind,
            "name": name,
            "endpoints": [
                {
                    "id": _id(kind, region, interface),
                    "interface": interface,
                    "region": region,
                    "region_id": region,
                    "url": base + path,
                }
                for region in regions
                for interface in INTERFACES
            ],
        }
        for kind, name, path in SERVICES
    ]


class Regions:
    """The cloud's region ids, read with the caller's token and kept `ttl` seconds."""

    def __init__(self, backend: Backend, ttl: float = 30.0) -> None:
        self.backend = backend
        self.ttl = ttl
        self._cached: tuple[float, list[str]] | None = None

    async def ids(self, token: str) -> list[str]:
        """Region ids, sorted; `["local"]` when the cloud has none yet."""
        now = time.monotonic()
        if self._cached is not None and now - self._cached[0] < self.ttl:
            return self._cached[1]
        answer = await self.backend.call(
            self.backend.stub(trpc.TopologyServiceStub).ListRegions,
            tapi.ListRegionsRequest(page_size=1000),
            token,
        )
        regions = sorted(last_segment(r.name) for r in answer.regions) or ["local"]
        self._cached = (now, regions)
        return regions
