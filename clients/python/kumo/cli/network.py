"""`kumo network`, `subnet`, `port`, `router`, `floating-ip` and `security-group`.

Everything lives in a project: `kumo network show red` means
`projects/<signed-in project>/networks/red`. Subnets are named within their
network: `red/sub1` (or the full `projects/p/networks/red/subnets/sub1`).
"""

from __future__ import annotations

from typing import Any

import click
from google.protobuf import field_mask_pb2

from kumo.cli.context import (
    Group,
    ProjectName,
    State,
    _StrParamType,
    label_options,
    list_all,
    list_options,
    pass_state,
    patch,
)
from kumo.cli.output import Column, enum_label
from kumo.client import short_id
from kumo.network.v1 import network_service_pb2 as pb
from kumo.network.v1 import resources_pb2 as res

NETWORK = ProjectName("networks")
PORT = ProjectName("ports")
ROUTER = ProjectName("routers")
FLOATING_IP = ProjectName("floatingIps")
SECURITY_GROUP = ProjectName("securityGroups")
TYPES = {
    "overlay": res.Network.TYPE_OVERLAY,
    "vlan": res.Network.TYPE_VLAN,
    "flat": res.Network.TYPE_FLAT,
}
DIRECTIONS = {
    "ingress": res.SecurityGroupRule.DIRECTION_INGRESS,
    "egress": res.SecurityGroupRule.DIRECTION_EGRESS,
}


class SubnetName(_StrParamType):
    """`NETWORK/SUBNET` in the signed-in project, or a full subnet name."""

    name = "subnet"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip()
        if text.startswith("projects/"):
            return text
        network, sep, subnet = text.partition("/")
        if not sep or not network or not subnet or "/" in subnet:
            self.fail(f"{text!r} is not NETWORK/SUBNET or a full subnet name", param, ctx)
        state = ctx.find_object(State) if ctx is not None else None
        return f"{(state or State()).project()}/networks/{network}/subnets/{subnet}"


SUBNET = SubnetName()


def _state(item: Any) -> str:
    return enum_label(res.SyncState.DESCRIPTOR, item.state).lower()


NETWORK_COLUMNS = (
    Column("NAME", "name", short=True),
    Column("TYPE", get=lambda n: enum_label(res.Network.Type.DESCRIPTOR, n.type).lower()),
    Column("EXTERNAL", "external"),
    Column("STATE", get=_state),
)
SUBNET_COLUMNS = (
    Column("NAME", "name", short=True),
    Column("CIDR", "cidr"),
    Column("GATEWAY", "gateway_ip"),
    Column("DHCP", "dhcp_enabled"),
    Column("STATE", get=_state),
)
PORT_COLUMNS = (
    Column("NAME", "name", short=True),
    Column("NETWORK", "network", short=True),
    Column("MAC", "mac_address"),
    Column("ADDRESSES", get=lambda p: ", ".join(f.ip_address for f in p.fixed_ips)),
    Column("STATUS", get=lambda p: enum_label(res.Port.Status.DESCRIPTOR, p.status).lower()),
)
ROUTER_COLUMNS = (
    Column("NAME", "name", short=True),
    Column("GATEWAY", get=lambda r: r.external_gateway.ip_address),
    Column("INTERFACES", get=lambda r: ", ".join(short_id(i.subnet) for i in r.interfaces)),
    Column("STATE", get=_state),
)
FLOATING_IP_COLUMNS = (
    Column("NAME", "name", short=True),
    Column("ADDRESS", "ip_address"),
    Column("PORT", "port", short=True),
    Column("FIXED IP", "fixed_ip"),
    Column("STATE", get=_state),
)
GROUP_COLUMNS = (
    Column("NAME", "name", short=True),
    Column("RULES", get=lambda g: str(len(g.rules))),
    Column("STATE", get=_state),
)


def _route(text: str) -> res.Route:
    destination, sep, hop = text.partition("=")
    if not sep:
        raise click.BadParameter(f"{text!r} is not DESTINATION=NEXT_HOP", param_hint="'--route'")
    return res.Route(destination=destination, next_hop=hop)


def _pool(text: str) -> res.AllocationPool:
    start, sep, end = text.partition("-")
    if not sep:
        raise click.BadParameter(f"{text!r} is not START-END", param_hint="'--pool'")
    return res.AllocationPool(start=start, end=end)


def _fixed_ip(text: str, state: State) -> res.FixedIp:
    if "=" in text:
        subnet, _, address = text.partition("=")
        return res.FixedIp(
            subnet=SUBNET.convert(subnet, None, None)
            if "/" in subnet
            else f"{state.project()}/networks/{subnet}",
            ip_address=address,
        )
    return res.FixedIp(ip_address=text)


def _parent_and_id(name: str, collection: str) -> tuple[str, str]:
    parent, _, resource_id = name.rpartition(f"/{collection}/")
    return parent, resource_id


def _crud(
    group: click.Group,
    kind: str,
    plural: str,
    param: _StrParamType,
    columns: tuple[Column, ...],
    parent_of: Any = None,
) -> None:
    """`list`, `show` and `delete` for one resource kind (create and update differ)."""
    field = "".join("_" + c.lower() if c.isupper() else c for c in plural).lstrip("_")
    label = field.replace("_", " ").removesuffix("s")

    @group.command("show", help=f"Show a {label}.")
    @click.argument("name", type=param)
    @pass_state
    def show(state: State, name: str) -> None:
        state.printer.item(
            getattr(state.client().network, f"Get{kind}")(
                getattr(pb, f"Get{kind}Request")(name=name)
            )
        )

    @group.command("delete", help=f"Delete a {label}.")
    @click.argument("name", type=param)
    @click.option("--etag", help="Fail unless it still has this etag.")
    @pass_state
    def delete(state: State, name: str, etag: str | None) -> None:
        getattr(state.client().network, f"Delete{kind}")(
            getattr(pb, f"Delete{kind}Request")(name=name, etag=etag or "")
        )
        state.printer.done(f"deleted {name}")

    if parent_of is None:

        @group.command("list", help=f"List your project's {label}s.")
        @list_options()
        @pass_state
        def list_(state: State, filter_: str, order_by: str, limit: int) -> None:
            request = getattr(pb, f"List{kind}sRequest")(
                parent=state.project(), filter=filter_, order_by=order_by
            )
            method = getattr(state.client().network, f"List{kind}s")
            state.printer.items(list_all(method, request, field, limit), columns)


def _update(
    state: State,
    kind: str,
    name: str,
    changes: dict[str, Any],
    labels: dict[str, str],
    remove_labels: tuple[str, ...],
    etag: str | None,
) -> None:
    network = state.client().network
    current = getattr(network, f"Get{kind}")(getattr(pb, f"Get{kind}Request")(name=name))
    resource, mask = patch(current, changes, labels, remove_labels, etag)
    field = "".join("_" + c.lower() if c.isupper() else c for c in kind).lstrip("_")
    state.printer.item(
        getattr(network, f"Update{kind}")(
            getattr(pb, f"Update{kind}Request")(**{field: resource}, update_mask=mask)
        )
    )


# --- networks -------------------------------------------------------------------------------


@click.group("network", cls=Group)
def network() -> None:
    """Networks: layer-2 segments of your project (overlay), or provider networks."""


_crud(network, "Network", "networks", NETWORK, NETWORK_COLUMNS)


@network.command("create")
@click.argument("name", type=NETWORK)
@click.option(
    "--type",
    "type_",
    type=click.Choice(list(TYPES)),
    default="overlay",
    show_default=True,
    help="vlan and flat: cloud administrators.",
)
@click.option("--physical-network", default="", help="vlan/flat: the physical network.")
@click.option("--vlan-id", type=int, default=0, help="vlan: the tag.")
@click.option("--external", is_flag=True, help="Carries router gateways and floating IPs.")
@click.option("--mtu", type=int, default=0, help="MTU (0: the type's default).")
@click.option("--display-name", default="", help="Human-readable name.")
@label_options()
@pass_state
def create_network(
    state: State,
    name: str,
    type_: str,
    physical_network: str,
    vlan_id: int,
    external: bool,
    mtu: int,
    display_name: str,
    labels: dict[str, str],
) -> None:
    """Create a network."""
    parent, network_id = _parent_and_id(name, "networks")
    spec = res.Network(
        type=TYPES[type_],
        physical_network=physical_network,
        vlan_id=vlan_id,
        external=external,
        mtu=mtu,
        display_name=display_name,
        labels=labels,
    )
    state.printer.item(
        state.client().network.CreateNetwork(
            pb.CreateNetworkRequest(parent=parent, network_id=network_id, network=spec)
        )
    )


@network.command("update")
@click.argument("name", type=NETWORK)
@click.option("--mtu", type=int, help="New MTU.")
@click.option("--display-name", help="New human-readable name.")
@label_options(update=True)
@click.option("--etag", help="Fail unless it still has this etag.")
@pass_state
def update_network(
    state: State,
    name: str,
    mtu: int | None,
    display_name: str | None,
    labels: dict[str, str],
    remove_labels: tuple[str, ...],
    etag: str | None,
) -> None:
    """Change a network's MTU, display name or labels."""
    _update(
        state,
        "Network",
        name,
        {"mtu": mtu, "display_name": display_name},
        labels,
        remove_labels,
        etag,
    )


# --- subnets --------------------------------------------------------------------------------


@click.group("subnet", cls=Group)
def subnet() -> None:
    """Subnets: address ranges of a network (SUBNET is NETWORK/SUBNET)."""


_crud(subnet, "Subnet", "subnets", SUBNET, SUBNET_COLUMNS, parent_of=True)


@subnet.command("list")
@click.argument("network_name", type=NETWORK, metavar="NETWORK")
@list_options()
@pass_state
def list_subnets(state: State, network_name: str, filter_: str, order_by: str, limit: int) -> None:
    """List a network's subnets."""
    request = pb.ListSubnetsRequest(parent=network_name, filter=filter_, order_by=order_by)
    state.printer.items(
        list_all(state.client().network.ListSubnets, request, "subnets", limit), SUBNET_COLUMNS
    )


@subnet.command("create")
@click.argument("name", type=SUBNET)
@click.option("--cidr", required=True, help="The range, e.g. 10.0.0.0/24 or fd00::/64.")
@click.option("--gateway", default="", help="Gateway address (default: the first host).")
@click.option("--pool", "pools", multiple=True, help="START-END allocation pool (repeatable).")
@click.option("--dns", "dns", multiple=True, help="DNS server (repeatable).")
@click.option("--route", "routes", multiple=True, help="DEST=NEXT_HOP host route (repeatable).")
@click.option("--dhcp/--no-dhcp", default=True, show_default=True, help="Serve DHCP.")
@pass_state
def create_subnet(
    state: State,
    name: str,
    cidr: str,
    gateway: str,
    pools: tuple[str, ...],
    dns: tuple[str, ...],
    routes: tuple[str, ...],
    dhcp: bool,
) -> None:
    """Create a subnet."""
    parent, subnet_id = _parent_and_id(name, "subnets")
    spec = res.Subnet(
        cidr=cidr,
        gateway_ip=gateway,
        allocation_pools=[_pool(p) for p in pools],
        dns_servers=list(dns),
        host_routes=[_route(r) for r in routes],
        dhcp_enabled=dhcp,
    )
    state.printer.item(
        state.client().network.CreateSubnet(
            pb.CreateSubnetRequest(parent=parent, subnet_id=subnet_id, subnet=spec)
        )
    )


@subnet.command("update")
@click.argument("name", type=SUBNET)
@click.option("--dns", "dns", multiple=True, help="Replace the DNS servers (repeatable).")
@click.option("--dhcp/--no-dhcp", default=None, help="Serve DHCP or not.")
@click.option("--display-name", help="New human-readable name.")
@label_options(update=True)
@click.option("--etag", help="Fail unless it still has this etag.")
@pass_state
def update_subnet(
    state: State,
    name: str,
    dns: tuple[str, ...],
    dhcp: bool | None,
    display_name: str | None,
    labels: dict[str, str],
    remove_labels: tuple[str, ...],
    etag: str | None,
) -> None:
    """Change a subnet's DNS servers, DHCP, display name or labels."""
    changes: dict[str, Any] = {"dhcp_enabled": dhcp, "display_name": display_name}
    if dns:
        changes["dns_servers"] = list(dns)
    _update(state, "Subnet", name, changes, labels, remove_labels, etag)


# --- ports ----------------------------------------------------------------------------------


@click.group("port", cls=Group)
def port() -> None:
    """Ports: attachment points on networks, with addresses from Kumo's IPAM."""


_crud(port, "Port", "ports", PORT, PORT_COLUMNS)


@port.command("create")
@click.argument("name", type=PORT)
@click.option("--network", "network_name", type=NETWORK, required=True, help="The network.")
@click.option("--mac", default="", help="MAC address (default: generated).")
@click.option(
    "--ip",
    "ips",
    multiple=True,
    help="ADDRESS or NETWORK/SUBNET=ADDRESS (repeatable; default: one per subnet).",
)
@click.option(
    "--security-group",
    "groups",
    multiple=True,
    type=SECURITY_GROUP,
    help="Security group (repeatable; default: `default`).",
)
@click.option("--port-security/--no-port-security", default=True, show_default=True)
@click.option("--allowed-address", "pairs", multiple=True, help="IP[=MAC] (repeatable).")
@click.option("--device-owner", default="", help="What uses the port.")
@click.option("--device-id", default="", help="The using resource's name.")
@pass_state
def create_port(
    state: State,
    name: str,
    network_name: str,
    mac: str,
    ips: tuple[str, ...],
    groups: tuple[str, ...],
    port_security: bool,
    pairs: tuple[str, ...],
    device_owner: str,
    device_id: str,
) -> None:
    """Create a port."""
    parent, port_id = _parent_and_id(name, "ports")
    spec = res.Port(
        network=network_name,
        mac_address=mac,
        fixed_ips=[_fixed_ip(i, state) for i in ips],
        security_groups=list(groups),
        port_security_enabled=port_security,
        allowed_address_pairs=[
            res.AllowedAddressPair(ip_address=p.partition("=")[0], mac_address=p.partition("=")[2])
            for p in pairs
        ],
        device_owner=device_owner,
        device_id=device_id,
    )
    state.printer.item(
        state.client().network.CreatePort(
            pb.CreatePortRequest(parent=parent, port_id=port_id, port=spec)
        )
    )


@port.command("update")
@click.argument("name", type=PORT)
@click.option(
    "--security-group",
    "groups",
    multiple=True,
    type=SECURITY_GROUP,
    help="Replace the security groups (repeatable).",
)
@click.option("--port-security/--no-port-security", default=None)
@click.option("--device-owner", help="What uses the port.")
@click.option("--device-id", help="The using resource's name.")
@click.option("--display-name", help="New human-readable name.")
@label_options(update=True)
@click.option("--etag", help="Fail unless it still has this etag.")
@pass_state
def update_port(
    state: State,
    name: str,
    groups: tuple[str, ...],
    port_security: bool | None,
    device_owner: str | None,
    device_id: str | None,
    display_name: str | None,
    labels: dict[str, str],
    remove_labels: tuple[str, ...],
    etag: str | None,
) -> None:
    """Change a port's security groups, port security, device or labels."""
    changes: dict[str, Any] = {
        "port_security_enabled": port_security,
        "device_owner": device_owner,
        "device_id": device_id,
        "display_name": display_name,
    }
    if groups:
        changes["security_groups"] = list(groups)
    _update(state, "Port", name, changes, labels, remove_labels, etag)


# --- routers --------------------------------------------------------------------------------


@click.group("router", cls=Group)
def router() -> None:
    """Routers between your subnets and to an external network (with SNAT)."""


_crud(router, "Router", "routers", ROUTER, ROUTER_COLUMNS)


@router.command("create")
@click.argument("name", type=ROUTER)
@click.option("--external-network", default="", help="Full name of an external network.")
@click.option("--snat/--no-snat", default=True, show_default=True)
@click.option("--route", "routes", multiple=True, help="DEST=NEXT_HOP (repeatable).")
@pass_state
def create_router(
    state: State, name: str, external_network: str, snat: bool, routes: tuple[str, ...]
) -> None:
    """Create a router."""
    parent, router_id = _parent_and_id(name, "routers")
    spec = res.Router(routes=[_route(r) for r in routes])
    if external_network:
        spec.external_gateway.CopyFrom(
            res.ExternalGateway(network=external_network, snat_enabled=snat)
        )
    state.printer.item(
        state.client().network.CreateRouter(
            pb.CreateRouterRequest(parent=parent, router_id=router_id, router=spec)
        )
    )


@router.command("update")
@click.argument("name", type=ROUTER)
@click.option("--external-network", help="Full name of an external network ('' removes it).")
@click.option("--snat/--no-snat", default=True, show_default=True)
@click.option("--route", "routes", multiple=True, help="Replace the routes (repeatable).")
@pass_state
def update_router(
    state: State, name: str, external_network: str | None, snat: bool, routes: tuple[str, ...]
) -> None:
    """Change a router's external gateway or routes."""
    paths = []
    spec = res.Router(name=name)
    if external_network is not None:
        paths.append("external_gateway")
        if external_network:
            spec.external_gateway.CopyFrom(
                res.ExternalGateway(network=external_network, snat_enabled=snat)
            )
    if routes:
        paths.append("routes")
        spec.routes.extend(_route(r) for r in routes)
    if not paths:
        raise click.UsageError("nothing to change")
    state.printer.item(
        state.client().network.UpdateRouter(
            pb.UpdateRouterRequest(router=spec, update_mask=field_mask_pb2.FieldMask(paths=paths))
        )
    )


@router.command("add-interface")
@click.argument("name", type=ROUTER)
@click.argument("subnet_name", type=SUBNET, metavar="SUBNET")
@pass_state
def add_interface(state: State, name: str, subnet_name: str) -> None:
    """Connect the router to a subnet (it takes the subnet's gateway address)."""
    state.printer.item(
        state.client().network.AddRouterInterface(
            pb.AddRouterInterfaceRequest(router=name, subnet=subnet_name)
        )
    )


@router.command("remove-interface")
@click.argument("name", type=ROUTER)
@click.argument("subnet_name", type=SUBNET, metavar="SUBNET")
@pass_state
def remove_interface(state: State, name: str, subnet_name: str) -> None:
    """Disconnect the router from a subnet."""
    state.printer.item(
        state.client().network.RemoveRouterInterface(
            pb.RemoveRouterInterfaceRequest(router=name, subnet=subnet_name)
        )
    )


# --- floating IPs ---------------------------------------------------------------------------


@click.group("floating-ip", cls=Group)
def floating_ip() -> None:
    """Floating IPs: external addresses mapped onto ports."""


_crud(floating_ip, "FloatingIp", "floatingIps", FLOATING_IP, FLOATING_IP_COLUMNS)


@floating_ip.command("create")
@click.argument("name", type=FLOATING_IP)
@click.option("--network", "network_name", required=True, help="External network (full name).")
@click.option("--port", "port_name", type=PORT, default=None, help="Associate with this port.")
@pass_state
def create_floating_ip(state: State, name: str, network_name: str, port_name: str | None) -> None:
    """Allocate a floating IP."""
    parent, fip_id = _parent_and_id(name, "floatingIps")
    spec = res.FloatingIp(network=network_name, port=port_name or "")
    state.printer.item(
        state.client().network.CreateFloatingIp(
            pb.CreateFloatingIpRequest(parent=parent, floating_ip_id=fip_id, floating_ip=spec)
        )
    )


def _associate(state: State, name: str, port_name: str, fixed_ip: str) -> None:
    spec = res.FloatingIp(name=name, port=port_name, fixed_ip=fixed_ip)
    mask = field_mask_pb2.FieldMask(paths=["port", "fixed_ip"])
    state.printer.item(
        state.client().network.UpdateFloatingIp(
            pb.UpdateFloatingIpRequest(floating_ip=spec, update_mask=mask)
        )
    )


@floating_ip.command("associate")
@click.argument("name", type=FLOATING_IP)
@click.argument("port_name", type=PORT, metavar="PORT")
@click.option("--fixed-ip", default="", help="Which of the port's addresses.")
@pass_state
def associate(state: State, name: str, port_name: str, fixed_ip: str) -> None:
    """Point the floating IP at a port."""
    _associate(state, name, port_name, fixed_ip)


@floating_ip.command("disassociate")
@click.argument("name", type=FLOATING_IP)
@pass_state
def disassociate(state: State, name: str) -> None:
    """Unmap the floating IP (it stays allocated)."""
    _associate(state, name, "", "")


# --- security groups ------------------------------------------------------------------------


@click.group("security-group", cls=Group)
def security_group() -> None:
    """Security groups: stateful allow-lists on ports (default deny ingress)."""


_crud(security_group, "SecurityGroup", "securityGroups", SECURITY_GROUP, GROUP_COLUMNS)


@security_group.command("create")
@click.argument("name", type=SECURITY_GROUP)
@click.option("--description", default="", help="Free text.")
@pass_state
def create_security_group(state: State, name: str, description: str) -> None:
    """Create a security group (no rules: add them with rule-add)."""
    parent, group_id = _parent_and_id(name, "securityGroups")
    state.printer.item(
        state.client().network.CreateSecurityGroup(
            pb.CreateSecurityGroupRequest(
                parent=parent,
                security_group_id=group_id,
                security_group=res.SecurityGroup(description=description),
            )
        )
    )


@security_group.command("update")
@click.argument("name", type=SECURITY_GROUP)
@click.option("--description", help="New description.")
@click.option("--display-name", help="New human-readable name.")
@label_options(update=True)
@click.option("--etag", help="Fail unless it still has this etag.")
@pass_state
def update_security_group(
    state: State,
    name: str,
    description: str | None,
    display_name: str | None,
    labels: dict[str, str],
    remove_labels: tuple[str, ...],
    etag: str | None,
) -> None:
    """Change a group's description, display name or labels."""
    _update(
        state,
        "SecurityGroup",
        name,
        {"description": description, "display_name": display_name},
        labels,
        remove_labels,
        etag,
    )


@security_group.command("rule-add")
@click.argument("name", type=SECURITY_GROUP)
@click.option(
    "--direction", type=click.Choice(list(DIRECTIONS)), default="ingress", show_default=True
)
@click.option(
    "--protocol", type=click.Choice(["any", "tcp", "udp", "icmp"]), default="any", show_default=True
)
@click.option("--port", "ports", default="", help="PORT or MIN-MAX (tcp/udp).")
@click.option("--ip-version", type=click.Choice(["4", "6"]), default="4", show_default=True)
@click.option("--remote-cidr", default="", help="The other end's CIDR.")
@click.option(
    "--remote-group",
    type=SECURITY_GROUP,
    default=None,
    help="The other end: members of this group.",
)
@pass_state
def add_rule(
    state: State,
    name: str,
    direction: str,
    protocol: str,
    ports: str,
    ip_version: str,
    remote_cidr: str,
    remote_group: str | None,
) -> None:
    """Add an allow rule."""
    low, _, high = ports.partition("-")
    rule = res.SecurityGroupRule(
        direction=DIRECTIONS[direction],
        protocol="" if protocol == "any" else protocol,
        port_range_min=int(low or 0),
        port_range_max=int(high or low or 0),
        ip_version=int(ip_version),
        remote_cidr=remote_cidr,
        remote_group=remote_group or "",
    )
    state.printer.item(
        state.client().network.CreateSecurityGroupRule(
            pb.CreateSecurityGroupRuleRequest(security_group=name, rule=rule)
        )
    )


@security_group.command("rule-delete")
@click.argument("name", type=SECURITY_GROUP)
@click.argument("rule_id")
@pass_state
def delete_rule(state: State, name: str, rule_id: str) -> None:
    """Remove a rule by its id."""
    state.printer.item(
        state.client().network.DeleteSecurityGroupRule(
            pb.DeleteSecurityGroupRuleRequest(security_group=name, rule_id=rule_id)
        )
    )


def register(cli: click.Group) -> None:
    """Adds the networking command groups to the root group."""
    for group in (network, subnet, port, router, floating_ip, security_group):
        cli.add_command(group)
