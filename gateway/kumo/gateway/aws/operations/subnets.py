"""CreateSubnet, DescribeSubnets, DeleteSubnet: an EC2 subnet is a Kumo subnet of the
VPC's network.

A subnet must lie inside its VPC's CidrBlock (InvalidSubnet.Range) and not overlap
another subnet of the VPC (InvalidSubnet.Conflict). Kumo networks span every zone, so
the AvailabilityZone (checked to exist; the first zone when absent) is recorded in the
subnet's reserved label `kumo:availability-zone` and only shown back. SubnetIds do not
name their VPC: the subnet is found among the subnets of the caller's networks.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from kumo.gateway.aws import ids
from kumo.gateway.aws.backend import Backend, Caller, invoke
from kumo.gateway.aws.errors import Ec2Error, invalid
from kumo.gateway.aws.operations.common import (
    Params,
    described,
    kumo_id_of,
    list_all,
    spec_tags,
    tags_of,
)
from kumo.gateway.aws.operations.instance_views import zone_ids
from kumo.gateway.aws.operations.vpcs import CIDR_LABEL, get_network, networks, state_of
from kumo.network.v1 import network_service_pb2 as napi
from kumo.network.v1 import resources_pb2 as npb

ZONE_LABEL = "kumo:availability-zone"
FILTER_FIELDS = {
    "subnet-id": lambda s: [s["SubnetId"]],
    "vpc-id": lambda s: [s["VpcId"]],
    "cidr-block": lambda s: [s["CidrBlock"]],
    "availability-zone": lambda s: [s["AvailabilityZone"]],
    "state": lambda s: [s["State"]],
    "owner-id": lambda s: [s["OwnerId"]],
}


def _network_of(subnet_name: str) -> str:
    return subnet_name.rsplit("/subnets/", 1)[0]


def subnet_view(subnet: npb.Subnet, project: str) -> dict[str, Any]:
    """The EC2 `Subnet` of a Kumo subnet."""
    block = ipaddress.ip_network(subnet.cidr)
    free = sum(
        int(ipaddress.ip_address(p.end)) - int(ipaddress.ip_address(p.start)) + 1
        for p in subnet.allocation_pools
    )
    return {
        "SubnetId": ids.ec2_id("subnet", subnet.name.rsplit("/", 1)[-1]),
        "VpcId": ids.ec2_id("vpc", _network_of(subnet.name).rsplit("/", 1)[-1]),
        "CidrBlock": str(block) if block.version == 4 else "",
        "AvailabilityZone": subnet.labels.get(ZONE_LABEL, ""),
        "AvailableIpAddressCount": free,
        "State": state_of(subnet.state),
        "DefaultForAz": False,
        "MapPublicIpOnLaunch": False,
        "OwnerId": project,
        "Tags": tags_of(subnet.labels),
    }


async def subnets(backend: Backend, caller: Caller) -> list[npb.Subnet]:
    """Every subnet of the caller's networks."""
    found: list[npb.Subnet] = []
    for network in await networks(backend, caller):
        request = napi.ListSubnetsRequest(parent=network.name, page_size=1000)
        found += await list_all(backend.network.ListSubnets, request, "subnets", caller)
    return found


async def find_subnet(backend: Backend, caller: Caller, subnet_id: str) -> npb.Subnet:
    """The caller's subnet with this SubnetId. Raises InvalidSubnetID.Malformed / .NotFound."""
    wanted = kumo_id_of("subnet", subnet_id, "InvalidSubnetID.Malformed")
    for subnet in await subnets(backend, caller):
        if subnet.name.rsplit("/", 1)[-1] == wanted:
            return subnet
    raise Ec2Error("InvalidSubnetID.NotFound", f"The subnet ID '{subnet_id}' does not exist")


async def create_subnet(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """CreateSubnet (VpcId, CidrBlock, AvailabilityZone, TagSpecifications)."""
    cidr = params.get("CidrBlock")
    if not cidr:
        raise Ec2Error("MissingParameter", "The request must contain the parameter CidrBlock")
    try:
        block = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        raise invalid("CidrBlock", cidr, "Not a CIDR block.") from None
    network = await get_network(backend, caller, params["VpcId"])
    vpc_cidr = network.labels.get(CIDR_LABEL)
    if block.version != 4 or not vpc_cidr or not block.subnet_of(ipaddress.IPv4Network(vpc_cidr)):
        raise Ec2Error("InvalidSubnet.Range", f"The CIDR '{cidr}' is invalid.")
    if block.prefixlen > 28:
        raise Ec2Error("InvalidSubnet.Range", f"The CIDR '{cidr}' is invalid (at most /28).")
    request = napi.ListSubnetsRequest(parent=network.name, page_size=1000)
    for other in await list_all(backend.network.ListSubnets, request, "subnets", caller):
        if block.overlaps(ipaddress.ip_network(other.cidr)):
            raise Ec2Error(
                "InvalidSubnet.Conflict", f"The CIDR '{cidr}' conflicts with another subnet"
            )
    zones = await zone_ids(backend, caller)
    zone = params.get("AvailabilityZone") or (zones[0] if zones else "")
    if zone not in zones:
        raise invalid("AvailabilityZone", zone, "No such availability zone.")
    labels = spec_tags(params, "subnet")
    labels[ZONE_LABEL] = zone
    subnet = await invoke(
        backend.network.CreateSubnet,
        napi.CreateSubnetRequest(
            parent=network.name,
            subnet_id=ids.made_id("subnet"),
            subnet=npb.Subnet(cidr=str(block), labels=labels),
        ),
        caller,
    )
    return {"Subnet": subnet_view(subnet, caller.project)}


async def describe_subnets(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """DescribeSubnets (SubnetIds, Filters)."""
    views = [subnet_view(s, caller.project) for s in await subnets(backend, caller)]
    return {
        "Subnets": described(
            views, params, "SubnetIds", "SubnetId", "InvalidSubnetID.NotFound", FILTER_FIELDS
        )
    }


async def delete_subnet(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """DeleteSubnet: DependencyViolation while ports use it."""
    subnet = await find_subnet(backend, caller, params["SubnetId"])
    await invoke(
        backend.network.DeleteSubnet,
        napi.DeleteSubnetRequest(name=subnet.name),
        caller,
        precondition="DependencyViolation",
    )
    return {}
