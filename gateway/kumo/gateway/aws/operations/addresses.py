"""Allocate/Associate/Disassociate/Release/DescribeAddresses: Elastic IPs are Kumo
floating IPs of the caller's project, allocated on the cloud's external network (the
first one by name the caller can see).

An address is associated with a network interface (a Kumo port, `eni-` + port id) by
NetworkInterfaceId, or with an instance's first interface by InstanceId. The port's
network must reach the external network through a router (else Gateway.NotAttached);
an address associated elsewhere moves only with AllowReassociation (else
Resource.AlreadyAssociated). AssociationId is derived from the floating IP and its port
(`ids.association_id`). Releasing an associated address is InvalidIPAddress.InUse.
"""

from __future__ import annotations

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
from kumo.gateway.aws.operations.instance_views import find_instance
from kumo.network.v1 import network_service_pb2 as napi
from kumo.network.v1 import resources_pb2 as npb

FILTER_FIELDS = {
    "allocation-id": lambda a: [a["AllocationId"]],
    "association-id": lambda a: [a.get("AssociationId", "")],
    "public-ip": lambda a: [a["PublicIp"]],
    "domain": lambda a: [a["Domain"]],
    "network-interface-id": lambda a: [a.get("NetworkInterfaceId", "")],
    "private-ip-address": lambda a: [a.get("PrivateIpAddress", "")],
}


def association_of(address: npb.FloatingIp) -> str:
    """The AssociationId of an associated floating IP ("" when not associated)."""
    return ids.association_id(address.uid, address.port) if address.port else ""


def address_view(address: npb.FloatingIp, project: str) -> dict[str, Any]:
    """The EC2 `Address` of a Kumo floating IP."""
    view: dict[str, Any] = {
        "AllocationId": ids.ec2_id("eipalloc", address.name.rsplit("/", 1)[-1]),
        "PublicIp": address.ip_address,
        "Domain": "vpc",
        "Tags": tags_of(address.labels),
    }
    if address.port:
        view["AssociationId"] = association_of(address)
        view["NetworkInterfaceId"] = ids.ec2_id("eni", address.port.rsplit("/", 1)[-1])
        view["NetworkInterfaceOwnerId"] = project
        view["PrivateIpAddress"] = address.fixed_ip
    return view


async def addresses(backend: Backend, caller: Caller) -> list[npb.FloatingIp]:
    """The caller's floating IPs."""
    request = napi.ListFloatingIpsRequest(parent=caller.project_name, page_size=1000)
    return await list_all(backend.network.ListFloatingIps, request, "floating_ips", caller)


async def find_address(backend: Backend, caller: Caller, params: Params) -> npb.FloatingIp:
    """The floating IP named by AllocationId or else PublicIp. Raises
    InvalidAllocationID.NotFound / .Malformed, InvalidAddress.NotFound, MissingParameter."""
    if params.get("AllocationId"):
        kumo_id = kumo_id_of("eipalloc", params["AllocationId"], "InvalidAllocationID.Malformed")
        found: npb.FloatingIp = await invoke(
            backend.network.GetFloatingIp,
            napi.GetFloatingIpRequest(name=f"{caller.project_name}/floatingIps/{kumo_id}"),
            caller,
        )
        return found
    public_ip = params.get("PublicIp")
    if not public_ip:
        raise Ec2Error("MissingParameter", "The request must contain AllocationId or PublicIp")
    for address in await addresses(backend, caller):
        if address.ip_address == public_ip:
            return address
    raise Ec2Error("InvalidAddress.NotFound", f"Address '{public_ip}' not found.")


async def _external_network(backend: Backend, caller: Caller) -> str:
    request = napi.ListNetworksRequest(parent="projects/-", page_size=1000)
    visible = await list_all(backend.network.ListNetworks, request, "networks", caller)
    external: list[str] = sorted(n.name for n in visible if n.external)
    if not external:
        raise Ec2Error("InsufficientAddressCapacity", "This cloud has no external network.")
    return external[0]


async def allocate_address(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """AllocateAddress: a floating IP on the external network (Kumo picks the address)."""
    if params.get("Domain", "vpc") not in ("vpc", "standard"):
        raise invalid("Domain", params["Domain"], "vpc or standard.")
    for fixed in ("Address", "PublicIpv4Pool", "CustomerOwnedIpv4Pool", "IpamPoolId"):
        if params.get(fixed):
            raise invalid(fixed, params[fixed], "Kumo picks the address itself.")
    address = await invoke(
        backend.network.CreateFloatingIp,
        napi.CreateFloatingIpRequest(
            parent=caller.project_name,
            floating_ip_id=ids.made_id("eipalloc"),
            floating_ip=npb.FloatingIp(
                network=await _external_network(backend, caller),
                labels=spec_tags(params, "elastic-ip"),
            ),
        ),
        caller,
    )
    view = address_view(address, caller.project)
    return {"AllocationId": view["AllocationId"], "PublicIp": view["PublicIp"], "Domain": "vpc"}


async def _set_port(
    backend: Backend, caller: Caller, address: npb.FloatingIp, port: str, fixed_ip: str
) -> npb.FloatingIp:
    update = napi.UpdateFloatingIpRequest(
        floating_ip=npb.FloatingIp(
            name=address.name, port=port, fixed_ip=fixed_ip, etag=address.etag
        )
    )
    update.update_mask.paths.extend(["port", "fixed_ip"])
    result: npb.FloatingIp = await invoke(
        backend.network.UpdateFloatingIp, update, caller, precondition="Gateway.NotAttached"
    )
    return result


async def associate_address(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """AssociateAddress with a NetworkInterfaceId or an InstanceId (its first port).

    An optional PrivateIpAddress picks the port's address."""
    interface = params.get("NetworkInterfaceId")
    if interface:
        port_id = kumo_id_of("eni", interface, "InvalidNetworkInterfaceID.Malformed")
        port = f"{caller.project_name}/ports/{port_id}"
    elif params.get("InstanceId"):
        instance = await find_instance(backend, caller, params["InstanceId"])
        if not instance.network_interfaces or not instance.network_interfaces[0].port:
            raise Ec2Error(
                "InvalidInstanceID",
                f"The instance '{params['InstanceId']}' has no network interface.",
            )
        port = instance.network_interfaces[0].port
    else:
        raise Ec2Error("MissingParameter", "The request must contain NetworkInterfaceId")
    address = await find_address(backend, caller, params)
    if address.port and address.port != port and not params.get("AllowReassociation"):
        raise Ec2Error("Resource.AlreadyAssociated", f"{address.ip_address} is associated.")
    updated = await _set_port(backend, caller, address, port, params.get("PrivateIpAddress", ""))
    return {"AssociationId": association_of(updated)}


async def disassociate_address(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """DisassociateAddress by AssociationId or PublicIp."""
    association = params.get("AssociationId")
    if association:
        for address in await addresses(backend, caller):
            if association_of(address) == association:
                await _set_port(backend, caller, address, "", "")
                return {}
        raise Ec2Error(
            "InvalidAssociationID.NotFound", f"The association '{association}' does not exist"
        )
    address = await find_address(backend, caller, params)
    if address.port:
        await _set_port(backend, caller, address, "", "")
    return {}


async def release_address(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """ReleaseAddress: InvalidIPAddress.InUse while associated."""
    address = await find_address(backend, caller, params)
    if address.port:
        raise Ec2Error("InvalidIPAddress.InUse", f"Address {address.ip_address} is in use.")
    await invoke(
        backend.network.DeleteFloatingIp,
        napi.DeleteFloatingIpRequest(name=address.name),
        caller,
    )
    return {}


async def describe_addresses(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """DescribeAddresses (AllocationIds, PublicIps, Filters)."""
    views = [address_view(a, caller.project) for a in await addresses(backend, caller)]
    views = described(
        views,
        params,
        "AllocationIds",
        "AllocationId",
        "InvalidAllocationID.NotFound",
        FILTER_FIELDS,
    )
    views = described(
        views, params, "PublicIps", "PublicIp", "InvalidAddress.NotFound", FILTER_FIELDS
    )
    return {"Addresses": views}
