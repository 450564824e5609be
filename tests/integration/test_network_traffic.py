"""Real traffic through OVN: namespaces plugged into an OVS (userspace datapath) +
ovn-controller chassis, with networks, routers, security groups, SNAT and floating
IPs made through the API and pushed to OVN by the reconciler.

Network namespaces and daemons are made by the fixtures (tests/support/ovn.py)."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import field_mask_pb2

from kumo.drivers.network.ovn_local import OvnCentral
from kumo.network.v1 import network_service_pb2 as napi
from kumo.network.v1 import resources_pb2 as npb
from tests.support.cloud import ADMIN_PASSWORD, Stubs, Tenant, make_tenant, sign_in, unique
from tests.support.netns import Guest
from tests.support.network import make_network, make_port, net
from tests.support.ovn import Chassis, reconcile
from tests.support.server import ServerThread

Rule = npb.SecurityGroupRule
EXTERNAL_CIDR = "172.24.4.0/24"
OUTSIDE = "172.24.4.200"


@pytest.fixture(scope="module")
def admin(ovn_api: ServerThread) -> Iterator[Stubs]:
    with grpc.insecure_channel(ovn_api.address) as channel:
        yield Stubs(channel, sign_in(channel, "admin", ADMIN_PASSWORD, "admin"))


@pytest.fixture
def tenant(admin: Stubs) -> Tenant:
    return make_tenant(admin.channel, admin, "n")


@pytest.fixture(scope="module")
def external(admin: Stubs, ovn_chassis: Chassis) -> str:
    """The external FLAT network on `external` (br-ex), with the outside namespace on it."""
    stub = net(admin)
    network = stub.CreateNetwork(
        napi.CreateNetworkRequest(
            parent="projects/admin",
            network_id=unique("public"),
            network=npb.Network(
                type=npb.Network.TYPE_FLAT, physical_network="external", external=True
            ),
        )
    )
    stub.CreateSubnet(
        napi.CreateSubnetRequest(
            parent=network.name,
            subnet_id="public",
            subnet=npb.Subnet(
                cidr=EXTERNAL_CIDR,
                dhcp_enabled=False,
                allocation_pools=[npb.AllocationPool(start="172.24.4.10", end="172.24.4.99")],
            ),
        )
    )
    ovn_chassis.outside.set_address(f"{OUTSIDE}/24")
    return network.name


def apply(server: ServerThread, central: OvnCentral) -> None:
    """A reconciler pass, then waits until every chassis has the result in its flows."""
    reconcile(server)
    central.nbctl("--wait=hv", "--timeout=30", "sync")


def plug(chassis: Chassis, port: npb.Port) -> tuple[Guest, str]:
    """Binds a port to a new guest namespace and gets its DHCP lease."""
    guest = chassis.plug(port.uid, port.mac_address)
    address = guest.dhcp()
    assert address == port.fixed_ips[0].ip_address
    return guest, address


def test_dhcp_ping_and_routing_between_networks(
    ovn_api: ServerThread, ovn_central: OvnCentral, ovn_chassis: Chassis, tenant: Tenant
) -> None:
    member = tenant.stubs["member"]
    stub = net(member)
    red, red_subnet = make_network(member, tenant.project, "10.50.0.0/24")
    blue, blue_subnet = make_network(member, tenant.project, "10.51.0.0/24")
    ports = [make_port(member, tenant.project, red.name) for _ in range(2)]
    far = make_port(member, tenant.project, blue.name)
    apply(ovn_api, ovn_central)
    (g1, a1), (g2, a2), (g3, a3) = (plug(ovn_chassis, p) for p in (*ports, far))
    assert g1.ping(a2) and g2.ping(a1)
    assert g1.tcp(a2, 7000) is None  # (nothing listens)
    server = g2.serve_tcp(7000)
    try:
        assert g1.tcp(a2, 7000) == a1  # TCP too (checksums)
    finally:
        server.kill()
    # The other network is not reachable without a router ...
    assert not g3.ping(a1)
    router = stub.CreateRouter(
        napi.CreateRouterRequest(parent=tenant.name, router_id="r", router=npb.Router())
    )
    for subnet in (red_subnet, blue_subnet):
        stub.AddRouterInterface(
            napi.AddRouterInterfaceRequest(router=router.name, subnet=subnet.name)
        )
    apply(ovn_api, ovn_central)
    # ... and is through one.
    assert g3.ping(a1) and g1.ping(a3)
    assert stub.GetPort(napi.GetPortRequest(name=ports[0].name)).status == npb.Port.STATUS_ACTIVE


def test_security_groups_default_deny_rules_and_remote_groups(
    ovn_api: ServerThread, ovn_central: OvnCentral, ovn_chassis: Chassis, tenant: Tenant
) -> None:
    member = tenant.stubs["member"]
    stub = net(member)
    network, _ = make_network(member, tenant.project, "10.52.0.0/24")

    def group(group_id: str, *rules: npb.SecurityGroupRule) -> str:
        return stub.CreateSecurityGroup(
            napi.CreateSecurityGroupRequest(
                parent=tenant.name,
                security_group_id=group_id,
                security_group=npb.SecurityGroup(rules=list(rules)),
            )
        ).name

    egress = Rule(direction=Rule.DIRECTION_EGRESS)
    clients = group("clients", egress)
    servers = group(
        "servers",
        egress,
        Rule(direction=Rule.DIRECTION_INGRESS, protocol="tcp", port_range_min=8080),
    )
    srv_port = make_port(member, tenant.project, network.name, security_groups=[servers])
    cli_port = make_port(member, tenant.project, network.name, security_groups=[clients])
    apply(ovn_api, ovn_central)
    srv, srv_ip = plug(ovn_chassis, srv_port)
    cli, cli_ip = plug(ovn_chassis, cli_port)
    listeners = [srv.serve_tcp(8080), srv.serve_tcp(8081)]
    try:
        # Default deny: no ping in; the rule opens exactly tcp/8080.
        assert not cli.ping(srv_ip)
        assert cli.tcp(srv_ip, 8080) == cli_ip
        assert cli.tcp(srv_ip, 8081) is None
        # Stateful: the server may answer, the client takes nothing unasked.
        assert not srv.ping(cli_ip)
        # A remote-group rule: ICMP from members of `clients`.
        stub.CreateSecurityGroupRule(
            napi.CreateSecurityGroupRuleRequest(
                security_group=servers,
                rule=Rule(direction=Rule.DIRECTION_INGRESS, protocol="icmp", remote_group=clients),
            )
        )
        apply(ovn_api, ovn_central)
        assert cli.ping(srv_ip)
        # Membership change: the client leaves `clients`, the rule no longer covers it.
        other = group("others", egress)
        stub.UpdatePort(
            napi.UpdatePortRequest(
                port=npb.Port(name=cli_port.name, security_groups=[other]),
                update_mask=field_mask_pb2.FieldMask(paths=["security_groups"]),
            )
        )
        apply(ovn_api, ovn_central)
        assert not cli.ping(srv_ip)
        assert cli.tcp(srv_ip, 8080) == cli_ip
    finally:
        for listener in listeners:
            listener.kill()


def test_snat_out_and_floating_ip_in(
    ovn_api: ServerThread,
    ovn_central: OvnCentral,
    ovn_chassis: Chassis,
    tenant: Tenant,
    external: str,
) -> None:
    member = tenant.stubs["member"]
    stub = net(member)
    network, subnet = make_network(member, tenant.project, "10.53.0.0/24")
    port = make_port(member, tenant.project, network.name)
    open_up = stub.CreateSecurityGroupRule(
        napi.CreateSecurityGroupRuleRequest(
            security_group=f"{tenant.name}/securityGroups/default",
            rule=Rule(direction=Rule.DIRECTION_INGRESS, protocol="tcp", port_range_min=9000),
        )
    )
    assert open_up.rules
    router = stub.CreateRouter(
        napi.CreateRouterRequest(
            parent=tenant.name,
            router_id="edge",
            router=npb.Router(external_gateway=npb.ExternalGateway(network=external)),
        )
    )
    stub.AddRouterInterface(napi.AddRouterInterfaceRequest(router=router.name, subnet=subnet.name))
    apply(ovn_api, ovn_central)
    vm, vm_ip = plug(ovn_chassis, port)
    outside = ovn_chassis.outside
    listener = outside.serve_tcp(9100)
    try:
        # SNAT: the outside sees the router's gateway address.
        assert vm.ping(OUTSIDE)
        assert vm.tcp(OUTSIDE, 9100) == router.external_gateway.ip_address
        # Not reachable from outside without a floating IP.
        fip = stub.CreateFloatingIp(
            napi.CreateFloatingIpRequest(
                parent=tenant.name,
                floating_ip_id="web",
                floating_ip=npb.FloatingIp(network=external, port=port.name),
            )
        )
        apply(ovn_api, ovn_central)
        server = vm.serve_tcp(9000)
        try:
            assert outside.tcp(fip.ip_address, 9000) == OUTSIDE
            # Outbound now leaves with the floating IP.
            assert vm.tcp(OUTSIDE, 9100) == fip.ip_address
            stub.UpdateFloatingIp(
                napi.UpdateFloatingIpRequest(
                    floating_ip=npb.FloatingIp(name=fip.name),
                    update_mask=field_mask_pb2.FieldMask(paths=["port"]),
                )
            )
            apply(ovn_api, ovn_central)
            assert outside.tcp(fip.ip_address, 9000) is None
        finally:
            server.kill()
    finally:
        listener.kill()
    assert vm_ip


def test_dual_stack_ipv6_between_ports(
    ovn_api: ServerThread, ovn_central: OvnCentral, ovn_chassis: Chassis, tenant: Tenant
) -> None:
    member = tenant.stubs["member"]
    network, _ = make_network(member, tenant.project, "10.54.0.0/24")
    net(member).CreateSubnet(
        napi.CreateSubnetRequest(
            parent=network.name, subnet_id="v6", subnet=npb.Subnet(cidr="fd00:54::/64")
        )
    )
    ports = [make_port(member, tenant.project, network.name) for _ in range(2)]
    apply(ovn_api, ovn_central)
    # OVN serves stateful DHCPv6 for the subnet (no DHCPv6 client here to take a lease).
    assert ovn_central.nbctl("get", "Logical_Switch_Port", ports[0].uid, "dhcpv6_options")
    guests = []
    for port in ports:
        guest, _ = plug(ovn_chassis, port)
        v6 = next(f.ip_address for f in port.fixed_ips if ":" in f.ip_address)
        guest.run("ip", "-6", "addr", "add", f"{v6}/64", "dev", "eth0", "nodad")
        guests.append((guest, v6))
    (first, first_v6), (_, second_v6) = guests
    ok = any(
        first.run("busybox", "ping6", "-c", "1", "-W", "1", second_v6, check=False).returncode == 0
        for _ in range(5)
    )
    assert ok, "no IPv6 ping between the two ports"
    # Port security: from its own address the ping passes, from one it does not own not.
    own = first.run(
        "busybox", "ping6", "-c", "1", "-W", "2", "-I", first_v6, second_v6, check=False
    )
    assert own.returncode == 0, own.stdout + own.stderr
    first.run("ip", "-6", "addr", "add", "fd00:54::99/64", "dev", "eth0", "nodad")
    spoofed = first.run(
        "busybox", "ping6", "-c", "1", "-W", "1", "-I", "fd00:54::99", second_v6, check=False
    )
    assert spoofed.returncode != 0
