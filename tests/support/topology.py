"""A throwaway region → zone → pool → rack for a test, with unique ids."""

from __future__ import annotations

from dataclasses import dataclass

from kumo.topology.v1 import resources_pb2 as tpb
from kumo.topology.v1 import topology_service_pb2 as tapi
from tests.support.cloud import Stubs, unique


@dataclass(frozen=True)
class Site:
    """The ids of a fresh topology branch."""

    region: str
    zone: str
    pool: str
    rack: str


def make_site(admin: Stubs) -> Site:
    """Creates a region, a zone, a KVM pool and a rack."""
    site = Site(unique("r"), unique("z"), unique("p"), unique("k"))
    topology = admin.topology
    topology.CreateRegion(tapi.CreateRegionRequest(region_id=site.region, region=tpb.Region()))
    topology.CreateZone(
        tapi.CreateZoneRequest(zone_id=site.zone, zone=tpb.Zone(region=f"regions/{site.region}"))
    )
    topology.CreatePool(
        tapi.CreatePoolRequest(
            pool_id=site.pool,
            pool=tpb.Pool(zone=f"zones/{site.zone}", hypervisor_kind=tpb.HYPERVISOR_KIND_KVM),
        )
    )
    topology.CreateRack(
        tapi.CreateRackRequest(rack_id=site.rack, rack=tpb.Rack(pool=f"pools/{site.pool}"))
    )
    return site
