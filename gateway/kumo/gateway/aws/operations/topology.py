"""DescribeRegions and DescribeAvailabilityZones from Kumo's topology (regions, zones)."""

from __future__ import annotations

from typing import Any

from kumo.gateway.aws.backend import Backend, Caller, invoke
from kumo.gateway.aws.errors import Ec2Error
from kumo.gateway.aws.operations.common import Params, filters_of, matches
from kumo.topology.v1 import topology_service_pb2 as tapi

REGION_FILTERS = {
    "region-name": lambda r: [r["RegionName"]],
    "endpoint": lambda r: [r["Endpoint"]],
    "opt-in-status": lambda r: [r["OptInStatus"]],
}
ZONE_FILTERS = {
    "zone-name": lambda z: [z["ZoneName"]],
    "zone-id": lambda z: [z["ZoneId"]],
    "region-name": lambda z: [z["RegionName"]],
    "state": lambda z: [z["State"]],
    "group-name": lambda z: [z["GroupName"]],
    "zone-type": lambda z: [z["ZoneType"]],
    "opt-in-status": lambda z: [z["OptInStatus"]],
}


def _pick(
    views: list[dict[str, Any]], key: str, wanted: list[str], code: str
) -> list[dict[str, Any]]:
    if not wanted:
        return views
    found = {v[key] for v in views}
    for value in wanted:
        if value not in found:
            raise Ec2Error(code, f"The {key} '{value}' does not exist")
    return [v for v in views if v[key] in wanted]


async def describe_regions(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """DescribeRegions."""
    response = await invoke(
        backend.topology.ListRegions, tapi.ListRegionsRequest(page_size=1000), caller
    )
    views = [
        {
            "RegionName": (name := r.name.removeprefix("regions/")),
            "Endpoint": f"ec2.{name}.kumo.internal",
            "OptInStatus": "opt-in-not-required",
        }
        for r in response.regions
    ]
    views = _pick(views, "RegionName", params.get("RegionNames") or [], "InvalidParameterValue")
    filters = filters_of(params)
    return {"Regions": [v for v in views if matches(v, filters, REGION_FILTERS)]}


async def describe_availability_zones(
    backend: Backend, caller: Caller, params: Params
) -> dict[str, Any]:
    """DescribeAvailabilityZones: every zone is `available`."""
    response = await invoke(
        backend.topology.ListZones, tapi.ListZonesRequest(page_size=1000), caller
    )
    views = []
    for zone in response.zones:
        region = zone.region.removeprefix("regions/")
        views.append(
            {
                "ZoneName": zone.name.removeprefix("zones/"),
                "ZoneId": zone.uid,
                "State": "available",
                "RegionName": region,
                "GroupName": region,
                "NetworkBorderGroup": region,
                "ZoneType": "availability-zone",
                "OptInStatus": "opt-in-not-required",
                "Messages": [],
            }
        )
    views = _pick(views, "ZoneName", params.get("ZoneNames") or [], "InvalidParameterValue")
    views = _pick(views, "ZoneId", params.get("ZoneIds") or [], "InvalidParameterValue")
    filters = filters_of(params)
    return {"AvailabilityZones": [v for v in views if matches(v, filters, ZONE_FILTERS)]}
