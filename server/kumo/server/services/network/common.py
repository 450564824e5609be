"""Collections, lookups with tenancy checks and row → message conversions shared
by the network servicer's parts."""

from __future__ import annotations

from typing import Any, TypeVar, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.network.v1 import resources_pb2 as pb
from kumo.server.api.convert import common_fields
from kumo.server.api.filtering import enum_value
from kumo.server.api.resources import Collection, equals
from kumo.server.auth.principal import Principal
from kumo.server.db.models import (
    FloatingIpRow,
    NetworkRow,
    PortRow,
    RouterRow,
    SecurityGroupRow,
    SubnetRow,
)
from kumo.server.errors import NotFound
from kumo.server.network import ipam
from kumo.server.runtime import Runtime
from kumo.server.services.identity.common import PROJECTS

R = TypeVar("R")

ROUTER_INTERFACE = "network:router_interface"
DEFAULT_GROUP = "default"

NETWORKS = Collection(
    "network.kumo.dev/Network",
    "projects/{project}/networks/{network}",
    NetworkRow,
    filters={
        "type": lambda v: NetworkRow.type == enum_value(pb.Network.Type, v),
        "external": lambda v: NetworkRow.external.is_(v.lower() == "true"),
        "shared": lambda v: NetworkRow.shared.is_(v.lower() == "true"),
    },
    key_columns=("project_id", "id"),
)
SUBNETS = Collection(
    "network.kumo.dev/Subnet",
    "projects/{project}/networks/{network}/subnets/{subnet}",
    SubnetRow,
    key_columns=("project_id", "network_id", "id"),
)
PORTS = Collection(
    "network.kumo.dev/Port",
    "projects/{project}/ports/{port}",
    PortRow,
    filters={
        "network": lambda v: PortRow.network_id == v.rsplit("/", 1)[-1],
        "device_id": equals(PortRow.device_id),
        "device_owner": equals(PortRow.device_owner),
        "status": lambda v: PortRow.status == enum_value(pb.Port.Status, v),
    },
    key_columns=("project_id", "id"),
)
ROUTERS = Collection(
    "network.kumo.dev/Router",
    "projects/{project}/routers/{router}",
    RouterRow,
    key_columns=("project_id", "id"),
)
FLOATING_IPS = Collection(
    "network.kumo.dev/FloatingIp",
    "projects/{project}/floatingIps/{floating_ip}",
    FloatingIpRow,
    filters={"port": lambda v: FloatingIpRow.port_id == v.rsplit("/", 1)[-1]},
    key_columns=("project_id", "id"),
)
SECURITY_GROUPS = Collection(
    "network.kumo.dev/SecurityGroup",
    "projects/{project}/securityGroups/{security_group}",
    SecurityGroupRow,
    key_columns=("project_id", "id"),
)


class NetworkPart:
    """Base of each part of the network servicer: holds the runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def changed(self) -> None:
        """Tells the network reconciler (if running here) that desired state changed."""
        self.runtime.network_changed()


def own_project(caller: Principal, parent: str) -> str:
    """The project id of `parent` if the caller works there; NotFound otherwise."""
    project_id = PROJECTS.parse(parent, "parent")
    caller.require_project(project_id, PROJECTS.type_name, parent)
    return project_id


def owned(
    session: Session, caller: Principal, collection: Collection[R], name: str, field: str = "name"
) -> R:
    """A row of a project the caller may see; NotFound otherwise (existence is hidden)."""
    project_id = collection.key(name, field)[0]
    caller.require_project(project_id, collection.type_name, name)
    return collection.get(session, name, field)


def usable_network(
    session: Session, caller: Principal, name: str, field: str, project_id: str
) -> NetworkRow:
    """A network a port of `project_id` may be on: the project's own, or a shared one
    (another project's external network only for a cloud administrator). NotFound
    otherwise."""
    row = session.get(NetworkRow, NETWORKS.key(name, field))
    if row is not None and row.shared:
        return row
    row = owned(session, caller, NETWORKS, name, field)
    if row.project_id != project_id:
        raise NotFound(NETWORKS.type_name, name)
    return row


def readable_network(
    session: Session, caller: Principal, name: str, field: str = "name"
) -> NetworkRow:
    """A network of a project the caller may see, or an external or shared one (readable
    by everyone); NotFound otherwise."""
    row = session.get(NetworkRow, NETWORKS.key(name, field))
    if row is None or not (row.external or row.shared or caller.can_see_project(row.project_id)):
        raise NotFound(NETWORKS.type_name, name)
    return row


def external_network(session: Session, name: str, field: str) -> NetworkRow:
    """An external network, whoever owns it; NotFound unless it exists and is external."""
    row = session.get(NetworkRow, NETWORKS.key(name, field))
    if row is None or not row.external:
        raise NotFound(NETWORKS.type_name, name)
    return row


def subnets_of(session: Session, network: NetworkRow) -> list[SubnetRow]:
    """A network's subnets, oldest first."""
    return list(
        session.scalars(
            select(SubnetRow)
            .where(SubnetRow.project_id == network.project_id, SubnetRow.network_id == network.id)
            .order_by(SubnetRow.create_time, SubnetRow.id)
        )
    )


def first_ipv4_subnet(session: Session, network: NetworkRow, field: str) -> SubnetRow:
    """The network's first IPv4 subnet; FailedPrecondition if it has none."""
    from kumo.server.errors import FailedPrecondition

    for subnet in subnets_of(session, network):
        if subnet.ip_version == 4:
            return subnet
    name = NETWORKS.name_of_row(network)
    raise FailedPrecondition(
        f"{name} has no IPv4 subnet ({field})", type="NO_IPV4_SUBNET", subject=name
    )


def bump(row: Any) -> None:
    """Marks a row changed: new version, back to PROVISIONING until the reconciler syncs it."""
    row.version += 1
    row.state = pb.SYNC_STATE_PROVISIONING


def network_to_proto(row: NetworkRow) -> pb.Network:
    """Renders a network row."""
    return pb.Network(
        **common_fields(row, NETWORKS.name_of_row(row)),
        description=row.description,
        type=cast(pb.Network.Type, row.type),
        physical_network=row.physical_network,
        vlan_id=row.vlan_id,
        external=row.external,
        shared=row.shared,
        mtu=row.mtu,
        state=cast(pb.SyncState, row.state),
        state_message=row.state_message,
    )


def subnet_to_proto(row: SubnetRow) -> pb.Subnet:
    """Renders a subnet row."""
    return pb.Subnet(
        **common_fields(row, SUBNETS.name_of_row(row)),
        description=row.description,
        cidr=row.cidr,
        ip_version=row.ip_version,
        gateway_ip=row.gateway_ip,
        allocation_pools=[pb.AllocationPool(**p) for p in row.allocation_pools],
        dns_servers=row.dns_servers,
        dhcp_enabled=row.dhcp_enabled,
        host_routes=[pb.Route(**r) for r in row.host_routes],
        state=cast(pb.SyncState, row.state),
    )


def subnet_names(session: Session, uids: set[str]) -> dict[str, str]:
    """Subnet resource names by uid."""
    if not uids:
        return {}
    rows = session.scalars(select(SubnetRow).where(SubnetRow.uid.in_(uids)))
    return {r.uid: SUBNETS.name_of_row(r) for r in rows}


def port_to_proto(session: Session, row: PortRow) -> pb.Port:
    """Renders a port row with its addresses."""
    held = ipam.held_by(session, row.uid)
    names = subnet_names(session, {s for s, _ in held})
    return pb.Port(
        **common_fields(row, PORTS.name_of_row(row)),
        description=row.description,
        network=NETWORKS.name_of(row.network_project_id, row.network_id),
        mac_address=row.mac_address,
        fixed_ips=[pb.FixedIp(subnet=names.get(s, ""), ip_address=a) for s, a in held],
        security_groups=[SECURITY_GROUPS.name_of(row.project_id, g) for g in row.security_groups],
        port_security_enabled=row.port_security_enabled,
        allowed_address_pairs=[pb.AllowedAddressPair(**p) for p in row.allowed_address_pairs],
        device_owner=row.device_owner,
        device_id=row.device_id,
        device_uid=row.instance_uid or "",
        host=f"hosts/{row.host_id}" if row.host_id else "",
        status=cast(pb.Port.Status, row.status),
        state=cast(pb.SyncState, row.state),
    )


def router_interfaces(session: Session, row: RouterRow) -> list[PortRow]:
    """The ports that are a router's interfaces."""
    return list(
        session.scalars(
            select(PortRow)
            .where(
                PortRow.device_owner == ROUTER_INTERFACE,
                PortRow.device_id == ROUTERS.name_of_row(row),
            )
            .order_by(PortRow.create_time, PortRow.id)
        )
    )


def router_to_proto(session: Session, row: RouterRow) -> pb.Router:
    """Renders a router row with its interfaces."""
    interfaces: list[pb.RouterInterface] = []
    for port in router_interfaces(session, row):
        held = ipam.held_by(session, port.uid)
        names = subnet_names(session, {s for s, _ in held})
        interfaces.extend(
            pb.RouterInterface(subnet=names.get(s, ""), port=PORTS.name_of_row(port))
            for s, _ in held
        )
    gateway = None
    if row.gateway_network_id is not None:
        gateway = pb.ExternalGateway(
            network=NETWORKS.name_of(
                cast(str, row.gateway_network_project_id), row.gateway_network_id
            ),
            snat_enabled=row.snat_enabled,
            ip_address=row.gateway_ip,
        )
    return pb.Router(
        **common_fields(row, ROUTERS.name_of_row(row)),
        description=row.description,
        external_gateway=gateway,
        routes=[pb.Route(**r) for r in row.routes],
        interfaces=interfaces,
        state=cast(pb.SyncState, row.state),
    )


def floating_ip_to_proto(row: FloatingIpRow) -> pb.FloatingIp:
    """Renders a floating IP row."""
    return pb.FloatingIp(
        **common_fields(row, FLOATING_IPS.name_of_row(row)),
        description=row.description,
        network=NETWORKS.name_of(row.network_project_id, row.network_id),
        ip_address=row.ip_address,
        port=PORTS.name_of(row.project_id, row.port_id) if row.port_id else "",
        fixed_ip=row.fixed_ip,
        router=ROUTERS.name_of(row.project_id, row.router_id) if row.router_id else "",
        state=cast(pb.SyncState, row.state),
    )


def security_group_to_proto(row: SecurityGroupRow) -> pb.SecurityGroup:
    """Renders a security group row."""
    rules = []
    for rule in row.rules:
        fields: dict[str, Any] = {k: v for k, v in rule.items() if k != "remote_group"}
        message = pb.SecurityGroupRule(**fields)
        if rule.get("remote_group"):
            message.remote_group = SECURITY_GROUPS.name_of(
                row.project_id, str(rule["remote_group"])
            )
        rules.append(message)
    return pb.SecurityGroup(
        **common_fields(row, SECURITY_GROUPS.name_of_row(row)),
        description=row.description,
        rules=rules,
        state=cast(pb.SyncState, row.state),
    )
