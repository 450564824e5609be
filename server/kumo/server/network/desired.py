"""Kumo's desired networking state, read from the database as driver specs.

One `read_desired(session)` call reads every networking row in one transaction
and turns it into the frozen specs the NetworkDriver takes, each with the row's
key and version so the reconciler can record what it synced.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.drivers.network.base import (
    AddressPair,
    FloatingIpSpec,
    Gateway,
    Kind,
    NetworkSpec,
    PortSpec,
    Route,
    RouterInterface,
    RouterSpec,
    RuleSpec,
    SecurityGroupSpec,
    SubnetSpec,
)
from kumo.network.v1 import resources_pb2 as pb
from kumo.server.db.models import (
    FloatingIpRow,
    IpAllocationRow,
    NetworkRow,
    PortRow,
    RouterRow,
    SecurityGroupRow,
    SubnetRow,
)

ROUTER_INTERFACE = "network:router_interface"
OVERLAY_MTU = 1442
ORDER = (
    Kind.NETWORK,
    Kind.SUBNET,
    Kind.SECURITY_GROUP,
    Kind.PORT,
    Kind.ROUTER,
    Kind.FLOATING_IP,
)


@dataclass(frozen=True)
class Desired:
    """One object: its spec, the row it comes from (class and key) and that row's version.
    `spec` None means the row cannot be made into an object (`problem` says why)."""

    spec: Any
    row: type[Any]
    key: tuple[str, ...]
    version: int
    synced_version: int
    problem: str = ""


@dataclass
class DesiredState:
    """Every object Kumo wants, by kind and uid."""

    objects: dict[Kind, dict[str, Desired]] = field(default_factory=lambda: {k: {} for k in Kind})


def gateway_mac(router_uid: str) -> str:
    """A stable MAC for a router's external leg, derived from its uid."""
    raw = router_uid.replace("-", "")[:8]
    return "02:4b:" + ":".join(raw[i : i + 2] for i in range(0, 8, 2))


def _routes(items: list[dict[str, str]]) -> tuple[Route, ...]:
    return tuple(Route(r["destination"], r["next_hop"]) for r in items)


def read_desired(session: Session) -> DesiredState:
    """Reads every networking row into specs."""
    state = DesiredState()
    networks = {(n.project_id, n.id): n for n in session.scalars(select(NetworkRow))}
    subnets = list(session.scalars(select(SubnetRow)))
    subnet_by_uid = {s.uid: s for s in subnets}
    held: dict[str, list[tuple[str, str]]] = {}
    for alloc in session.scalars(select(IpAllocationRow)):
        held.setdefault(alloc.owner_uid, []).append((alloc.subnet_uid, alloc.ip_address))
    groups = {(g.project_id, g.id): g for g in session.scalars(select(SecurityGroupRow))}
    ports = list(session.scalars(select(PortRow)))

    def add(
        kind: Kind, uid: str, spec: Any, row: Any, key: tuple[str, ...], problem: str = ""
    ) -> None:
        state.objects[kind][uid] = Desired(
            spec, type(row), key, row.version, row.synced_version, problem
        )

    for network in networks.values():
        spec: Any = NetworkSpec(
            uid=network.uid,
            name=f"projects/{network.project_id}/networks/{network.id}",
            mtu=network.mtu,
            physical_network=network.physical_network,
            vlan_id=network.vlan_id,
        )
        add(Kind.NETWORK, network.uid, spec, network, (network.project_id, network.id))
    for subnet in subnets:
        parent = networks[(subnet.project_id, subnet.network_id)]
        mtu = parent.mtu or (OVERLAY_MTU if parent.type == pb.Network.TYPE_OVERLAY else 0)
        spec = SubnetSpec(
            uid=subnet.uid,
            network_uid=parent.uid,
            cidr=subnet.cidr,
            gateway_ip=subnet.gateway_ip,
            dhcp_enabled=subnet.dhcp_enabled,
            dns_servers=tuple(subnet.dns_servers),
            host_routes=_routes(subnet.host_routes),
            mtu=mtu,
        )
        add(
            Kind.SUBNET, subnet.uid, spec, subnet, (subnet.project_id, subnet.network_id, subnet.id)
        )
    for group in groups.values():
        rules = []
        for rule in group.rules:
            remote = groups.get((group.project_id, str(rule.get("remote_group", ""))))
            if rule.get("remote_group") and remote is None:
                continue  # the named group is gone: the rule matches nobody
            rules.append(
                RuleSpec(
                    direction="ingress"
                    if rule["direction"] == pb.SecurityGroupRule.DIRECTION_INGRESS
                    else "egress",
                    ip_version=int(rule.get("ip_version", 4)),
                    protocol=str(rule.get("protocol", "")),
                    port_min=int(rule.get("port_range_min", 0)),
                    port_max=int(rule.get("port_range_max", 0)),
                    remote_cidr=str(rule.get("remote_cidr", "")),
                    remote_group_uid=remote.uid if remote is not None else "",
                )
            )
        spec = SecurityGroupSpec(
            uid=group.uid,
            name=f"projects/{group.project_id}/securityGroups/{group.id}",
            rules=tuple(rules),
        )
        add(Kind.SECURITY_GROUP, group.uid, spec, group, (group.project_id, group.id))
    interfaces: dict[str, list[RouterInterface]] = {}
    interface_cidrs: dict[str, list[str]] = {}
    for port in ports:
        network = networks[(port.network_project_id, port.network_id)]
        addresses = sorted(held.get(port.uid, []), key=lambda x: x[1])
        dhcp = next(
            (
                s
                for s, _ in addresses
                if s in subnet_by_uid
                and subnet_by_uid[s].dhcp_enabled
                and subnet_by_uid[s].ip_version == 4
            ),
            "",
        )
        dhcpv6 = next(
            (
                s
                for s, _ in addresses
                if s in subnet_by_uid
                and subnet_by_uid[s].dhcp_enabled
                and subnet_by_uid[s].ip_version == 6
            ),
            "",
        )
        router_leg = port.device_owner == ROUTER_INTERFACE
        spec = PortSpec(
            uid=port.uid,
            network_uid=network.uid,
            mac_address=port.mac_address,
            ip_addresses=tuple(a for _, a in addresses),
            port_security=port.port_security_enabled,
            security_group_uids=tuple(
                groups[(port.project_id, g)].uid
                for g in port.security_groups
                if (port.project_id, g) in groups
            ),
            allowed_address_pairs=tuple(
                AddressPair(p["ip_address"], p.get("mac_address", ""))
                for p in port.allowed_address_pairs
            ),
            dhcp_subnet_uid=dhcp,
            dhcpv6_subnet_uid=dhcpv6,
            router_interface=router_leg,
            name=f"projects/{port.project_id}/ports/{port.id}",
        )
        add(Kind.PORT, port.uid, spec, port, (port.project_id, port.id))
        if router_leg:
            for subnet_uid, address in addresses:
                subnet = subnet_by_uid[subnet_uid]
                prefix = ipaddress.ip_network(subnet.cidr).prefixlen
                interfaces.setdefault(port.device_id, []).append(
                    RouterInterface(port.uid, port.mac_address, f"{address}/{prefix}")
                )
                if subnet.ip_version == 4:
                    interface_cidrs.setdefault(port.device_id, []).append(subnet.cidr)
    routers = {(r.project_id, r.id): r for r in session.scalars(select(RouterRow))}
    for router in routers.values():
        name = f"projects/{router.project_id}/routers/{router.id}"
        gateway = None
        problem = ""
        if router.gateway_network_id is not None:
            external = networks.get(
                (str(router.gateway_network_project_id), router.gateway_network_id)
            )
            ext_subnet = next(
                (
                    s
                    for s in subnets
                    if external is not None
                    and (s.project_id, s.network_id) == (external.project_id, external.id)
                    and s.ip_version == 4
                    and router.gateway_ip
                    and ipaddress.ip_address(router.gateway_ip) in ipaddress.ip_network(s.cidr)
                ),
                None,
            )
            if external is None or ext_subnet is None:
                problem = "the external network or its subnet is gone"
            else:
                prefix = ipaddress.ip_network(ext_subnet.cidr).prefixlen
                gateway = Gateway(
                    network_uid=external.uid,
                    mac_address=gateway_mac(router.uid),
                    address_cidr=f"{router.gateway_ip}/{prefix}",
                    next_hop=ext_subnet.gateway_ip,
                    snat_cidrs=tuple(interface_cidrs.get(name, ())) if router.snat_enabled else (),
                )
        spec = RouterSpec(
            uid=router.uid,
            name=name,
            interfaces=tuple(interfaces.get(name, ())),
            gateway=gateway,
            routes=_routes(router.routes),
        )
        add(
            Kind.ROUTER,
            router.uid,
            None if problem else spec,
            router,
            (router.project_id, router.id),
            problem,
        )
    for fip in session.scalars(select(FloatingIpRow)):
        if fip.router_id is None:
            continue  # not associated: nothing in the backend
        owner = routers.get((fip.project_id, fip.router_id))
        if owner is None:
            continue
        spec = FloatingIpSpec(
            uid=fip.uid, router_uid=owner.uid, external_ip=fip.ip_address, fixed_ip=fip.fixed_ip
        )
        add(Kind.FLOATING_IP, fip.uid, spec, fip, (fip.project_id, fip.id))
    return state


def unassociated_floating_ips(session: Session) -> list[tuple[str, str]]:
    """Keys of floating IPs with nothing to put in the backend (they are ACTIVE as stored)."""
    return [
        (f.project_id, f.id)
        for f in session.scalars(select(FloatingIpRow).where(FloatingIpRow.router_id.is_(None)))
    ]
