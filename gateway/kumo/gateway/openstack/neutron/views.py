"""Kumo network messages as Neutron v2.0 resources.

`uids` maps Kumo resource names to uids (the Neutron ids of what a resource refers to);
a reference the caller cannot see renders as null.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kumo.gateway.openstack.common import iso, last_segment
from kumo.gateway.openstack.neutron.index import rule_id
from kumo.gateway.openstack.neutron.tags import tags_of
from kumo.network.v1 import resources_pb2 as pb

Uids = Mapping[str, str]

#: The device owner of an instance's ports in Kumo (their device: the instance's name).
INSTANCE_OWNER = "compute:instance"

_SYNC = {pb.SYNC_STATE_ACTIVE: "ACTIVE", pb.SYNC_STATE_ERROR: "ERROR"}
NETWORK_TYPES = {
    pb.Network.TYPE_UNSPECIFIED: "geneve",
    pb.Network.TYPE_OVERLAY: "geneve",
    pb.Network.TYPE_VLAN: "vlan",
    pb.Network.TYPE_FLAT: "flat",
}
_DIRECTIONS = {
    pb.SecurityGroupRule.DIRECTION_INGRESS: "ingress",
    pb.SecurityGroupRule.DIRECTION_EGRESS: "egress",
}


def project_of(name: str) -> str:
    """The project id of `projects/{project}/...`."""
    return name.split("/")[1] if name.startswith("projects/") else ""


def _common(item: Any, revision: int = 0) -> dict[str, Any]:
    project = project_of(item.name)
    return {
        "id": item.uid,
        "name": item.display_name,
        "description": item.description,
        "tenant_id": project,
        "project_id": project,
        "tags": tags_of(item.labels),
        "created_at": iso(item.create_time),
        "updated_at": iso(item.update_time) or iso(item.create_time),
        "revision_number": revision,
    }


def network(item: pb.Network, subnets: list[str], admin: bool) -> dict[str, Any]:
    """A network; the provider attributes for administrators only."""
    body = {
        **_common(item),
        "status": _SYNC.get(item.state, "BUILD"),
        "admin_state_up": True,
        "shared": item.shared,
        "subnets": subnets,
        "mtu": item.mtu,
        "router:external": item.external,
        "port_security_enabled": True,
        "availability_zones": [],
        "availability_zone_hints": [],
        "ipv4_address_scope": None,
        "ipv6_address_scope": None,
        "is_default": False,
    }
    if admin:
        body["provider:network_type"] = NETWORK_TYPES.get(item.type, "geneve")
        body["provider:physical_network"] = item.physical_network or None
        body["provider:segmentation_id"] = item.vlan_id or None
    return body


def _route(route: pb.Route) -> dict[str, str]:
    return {"destination": route.destination, "nexthop": route.next_hop}


def subnet(item: pb.Subnet, uids: Uids) -> dict[str, Any]:
    """A subnet."""
    network_name = item.name.split("/subnets/")[0]
    return {
        **_common(item),
        "network_id": uids.get(network_name),
        "cidr": item.cidr,
        "ip_version": item.ip_version,
        "gateway_ip": item.gateway_ip or None,
        "allocation_pools": [{"start": p.start, "end": p.end} for p in item.allocation_pools],
        "dns_nameservers": list(item.dns_servers),
        "host_routes": [_route(r) for r in item.host_routes],
        "enable_dhcp": item.dhcp_enabled if item.HasField("dhcp_enabled") else True,
        "ipv6_ra_mode": None,
        "ipv6_address_mode": None,
        "subnetpool_id": None,
        "segment_id": None,
        "service_types": [],
    }


def port(item: pb.Port, uids: Uids) -> dict[str, Any]:
    """A port."""
    return {
        **_common(item),
        "network_id": uids.get(item.network),
        "mac_address": item.mac_address,
        "fixed_ips": [
            {"subnet_id": uids.get(f.subnet), "ip_address": f.ip_address} for f in item.fixed_ips
        ],
        "security_groups": [uids[g] for g in item.security_groups if g in uids],
        "port_security_enabled": (
            item.port_security_enabled if item.HasField("port_security_enabled") else True
        ),
        "allowed_address_pairs": [
            {"ip_address": p.ip_address, "mac_address": p.mac_address or item.mac_address}
            for p in item.allowed_address_pairs
        ],
        "device_owner": _owner(item),
        # A router interface's device is the router, an instance's port's the server (by
        # name in Kumo, by id in Neutron; an instance's port carries the instance's uid).
        "device_id": item.device_uid or uids.get(item.device_id, item.device_id),
        "binding:host_id": last_segment(item.host) if item.host else "",
        "binding:vnic_type": "normal",
        "status": "ACTIVE" if item.status == pb.Port.STATUS_ACTIVE else "DOWN",
        "admin_state_up": True,
        "extra_dhcp_opts": [],
    }


def _owner(item: pb.Port) -> str:
    """Neutron's device owner: an instance's port is Nova's `compute:<availability zone>`."""
    parts = item.device_id.split("/")  # projects/{project}/zones/{zone}/instances/{id}
    if item.device_owner == INSTANCE_OWNER and len(parts) == 6:
        return f"compute:{parts[3]}"
    return item.device_owner


def router(item: pb.Router, uids: Uids, gateway_subnets: Mapping[str, str]) -> dict[str, Any]:
    """A router; `gateway_subnets` maps an external network's name to its subnet's uid."""
    gateway = None
    if item.HasField("external_gateway"):
        g = item.external_gateway
        gateway = {
            "network_id": uids.get(g.network),
            "enable_snat": g.snat_enabled if g.HasField("snat_enabled") else True,
            "external_fixed_ips": (
                [{"subnet_id": gateway_subnets.get(g.network), "ip_address": g.ip_address}]
                if g.ip_address
                else []
            ),
        }
    return {
        **_common(item),
        "status": _SYNC.get(item.state, "BUILD"),
        "admin_state_up": True,
        "external_gateway_info": gateway,
        "routes": [_route(r) for r in item.routes],
        "distributed": False,
        "ha": False,
        "availability_zones": [],
        "availability_zone_hints": [],
    }


def floating_ip(item: pb.FloatingIp, uids: Uids) -> dict[str, Any]:
    """A floating IP."""
    body = _common(item)
    body.pop("name")
    return {
        **body,
        "floating_ip_address": item.ip_address,
        "floating_network_id": uids.get(item.network),
        "router_id": uids.get(item.router) if item.router else None,
        "port_id": uids.get(item.port) if item.port else None,
        "fixed_ip_address": item.fixed_ip or None,
        "status": "ACTIVE" if item.port else "DOWN",
        "port_details": None,
        "dns_domain": "",
        "dns_name": "",
    }


def rule(group: pb.SecurityGroup, item: pb.SecurityGroupRule, uids: Uids) -> dict[str, Any]:
    """A security group rule."""
    project = project_of(group.name)
    return {
        "id": rule_id(group, item),
        "security_group_id": group.uid,
        "direction": _DIRECTIONS.get(item.direction, "ingress"),
        "ethertype": "IPv6" if item.ip_version == 6 else "IPv4",
        "protocol": item.protocol or None,
        "port_range_min": item.port_range_min or None,
        "port_range_max": item.port_range_max or None,
        "remote_ip_prefix": item.remote_cidr or None,
        "remote_group_id": uids.get(item.remote_group) if item.remote_group else None,
        "remote_address_group_id": None,
        "tenant_id": project,
        "project_id": project,
        "description": "",
        "created_at": iso(group.create_time),
        "updated_at": iso(group.create_time),
        "revision_number": 0,
    }


def group_name(group: pb.SecurityGroup) -> str:
    """A security group's name: its display name, else its Kumo id (the project's `default`
    group has no display name)."""
    return group.display_name or last_segment(group.name)


def security_group(item: pb.SecurityGroup, uids: Uids) -> dict[str, Any]:
    """A security group with its rules."""
    return {
        **_common(item),
        "name": group_name(item),
        "security_group_rules": [rule(item, r, uids) for r in item.rules],
        "stateful": True,
        "shared": False,
    }
