"""CreateVpc, DescribeVpcs, DeleteVpc: a VPC is a Kumo network of the caller's project.

Kumo networks have no address range of their own (their subnets do), so the VPC's
CidrBlock is kept in the network's reserved label `kumo:cidr-block` (never shown as a
tag). CreateSubnet checks subnets against it. A network made natively is a VPC without
a CidrBlock. DeleteVpc refuses while the VPC has subnets (DependencyViolation), as EC2
does; Kumo itself would delete them along.
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
from kumo.network.v1 import network_service_pb2 as napi
from kumo.network.v1 import resources_pb2 as npb

CIDR_LABEL = "kumo:cidr-block"
FILTER_FIELDS = {
    "vpc-id": lambda v: [v["VpcId"]],
    "cidr": lambda v: [v.get("CidrBlock", "")],
    "cidr-block-association.cidr-block": lambda v: [v.get("CidrBlock", "")],
    "state": lambda v: [v["State"]],
    "owner-id": lambda v: [v["OwnerId"]],
    "is-default": lambda v: ["false"],
}


def state_of(sync: int) -> str:
    """EC2's pending/available of a network resource's SyncState."""
    return "available" if sync == npb.SYNC_STATE_ACTIVE else "pending"


def vpc_view(network: npb.Network, project: str) -> dict[str, Any]:
    """The EC2 `Vpc` of a Kumo network."""
    vpc_id = ids.ec2_id("vpc", network.name.rsplit("/", 1)[-1])
    view: dict[str, Any] = {
        "VpcId": vpc_id,
        "State": state_of(network.state),
        "DhcpOptionsId": "default",
        "InstanceTenancy": "default",
        "IsDefault": False,
        "OwnerId": project,
        "Tags": tags_of(network.labels),
    }
    cidr = network.labels.get(CIDR_LABEL)
    if cidr:
        view["CidrBlock"] = cidr
        view["CidrBlockAssociationSet"] = [
            {
                "AssociationId": f"vpc-cidr-assoc-{vpc_id.removeprefix('vpc-')}",
                "CidrBlock": cidr,
                "CidrBlockState": {"State": "associated"},
            }
        ]
    return view


def network_name(caller: Caller, vpc_id: str) -> str:
    """The Kumo network named by a VpcId. Raises InvalidVpcID.Malformed."""
    return f"{caller.project_name}/networks/{kumo_id_of('vpc', vpc_id, 'InvalidVpcID.Malformed')}"


async def get_network(backend: Backend, caller: Caller, vpc_id: str) -> npb.Network:
    """The caller's network named by a VpcId. Raises InvalidVpcID.Malformed / .NotFound."""
    network: npb.Network = await invoke(
        backend.network.GetNetwork,
        napi.GetNetworkRequest(name=network_name(caller, vpc_id)),
        caller,
    )
    return network


async def networks(backend: Backend, caller: Caller) -> list[npb.Network]:
    """The caller's own networks."""
    request = napi.ListNetworksRequest(parent=caller.project_name, page_size=1000)
    return await list_all(backend.network.ListNetworks, request, "networks", caller)


async def create_vpc(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """CreateVpc with an IPv4 CidrBlock from /16 to /28."""
    cidr = params.get("CidrBlock")
    if not cidr:
        raise Ec2Error("MissingParameter", "The request must contain the parameter CidrBlock")
    try:
        block = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        raise invalid("CidrBlock", cidr, "Not an IPv4 CIDR block.") from None
    if block.version != 4 or not 16 <= block.prefixlen <= 28:
        raise Ec2Error("InvalidVpc.Range", f"The CIDR '{cidr}' is invalid.")
    labels = spec_tags(params, "vpc")
    labels[CIDR_LABEL] = str(block)
    network = await invoke(
        backend.network.CreateNetwork,
        napi.CreateNetworkRequest(
            parent=caller.project_name,
            network_id=ids.made_id("vpc"),
            network=npb.Network(labels=labels),
        ),
        caller,
    )
    return {"Vpc": vpc_view(network, caller.project)}


async def describe_vpcs(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """DescribeVpcs (VpcIds, Filters) over the caller's networks."""
    views = [vpc_view(n, caller.project) for n in await networks(backend, caller)]
    return {
        "Vpcs": described(views, params, "VpcIds", "VpcId", "InvalidVpcID.NotFound", FILTER_FIELDS)
    }


async def delete_vpc(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """DeleteVpc: DependencyViolation while it has subnets (or ports)."""
    network = await get_network(backend, caller, params["VpcId"])
    subnets = await invoke(
        backend.network.ListSubnets,
        napi.ListSubnetsRequest(parent=network.name, page_size=1),
        caller,
    )
    if subnets.subnets:
        raise Ec2Error(
            "DependencyViolation",
            f"The vpc '{params['VpcId']}' has dependencies and cannot be deleted.",
        )
    await invoke(
        backend.network.DeleteNetwork,
        napi.DeleteNetworkRequest(name=network.name),
        caller,
        precondition="DependencyViolation",
    )
    return {}
