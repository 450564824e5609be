"""NetworkService over a real channel (both database backends): every method, IPAM,
bad input (typed errors, nothing changed) and tenant isolation. OVN is not involved
here: the reconciler has its own tests (test_network_reconciler.py)."""

from __future__ import annotations

import ipaddress
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from google.longrunning import operations_pb2
from google.protobuf import duration_pb2, field_mask_pb2

from kumo.identity.v1 import identity_service_pb2 as iapi
from kumo.identity.v1 import resources_pb2 as ipb
from kumo.network.v1 import network_service_pb2 as napi
from kumo.network.v1 import resources_pb2 as npb
from tests.support.cloud import Stubs, Tenant, rpc_error, unique
from tests.support.network import make_external, make_network, make_port, net

IA = grpc.StatusCode.INVALID_ARGUMENT
NF = grpc.StatusCode.NOT_FOUND
FP = grpc.StatusCode.FAILED_PRECONDITION
PD = grpc.StatusCode.PERMISSION_DENIED
Rule = npb.SecurityGroupRule


def _ports(stubs: Stubs, project: str) -> list[npb.Port]:
    return list(net(stubs).ListPorts(napi.ListPortsRequest(parent=f"projects/{project}")).ports)


def test_network_subnet_port_lifecycle(tenant: Tenant) -> None:
    member = tenant.stubs["member"]
    stub = net(member)
    network, subnet = make_network(member, tenant.project, "10.1.0.0/24")
    assert network.type == npb.Network.TYPE_OVERLAY
    assert network.state == npb.SYNC_STATE_PROVISIONING
    assert subnet.gateway_ip == "10.1.0.1" and subnet.ip_version == 4 and subnet.dhcp_enabled
    assert [(p.start, p.end) for p in subnet.allocation_pools] == [("10.1.0.2", "10.1.0.254")]
    v6 = stub.CreateSubnet(
        napi.CreateSubnetRequest(
            parent=network.name, subnet_id="v6", subnet=npb.Subnet(cidr="fd00:1::/64")
        )
    )
    assert v6.ip_version == 6 and v6.gateway_ip == "fd00:1::1"
    port = make_port(member, tenant.project, network.name)
    assert sorted(f.ip_address for f in port.fixed_ips) == ["10.1.0.2", "fd00:1::2"]
    assert port.security_groups == [f"{tenant.name}/securityGroups/default"]
    assert port.port_security_enabled and port.mac_address.startswith("02:4b:")
    fixed = make_port(
        member,
        tenant.project,
        network.name,
        fixed_ips=[npb.FixedIp(subnet=subnet.name, ip_address="10.1.0.50")],
        mac_address="02:00:00:00:00:50",
        port_security_enabled=False,
    )
    assert [f.ip_address for f in fixed.fixed_ips] == ["10.1.0.50"]
    assert not fixed.security_groups

    assert stub.GetNetwork(napi.GetNetworkRequest(name=network.name)).name == network.name
    assert [
        n.name for n in stub.ListNetworks(napi.ListNetworksRequest(parent=tenant.name)).networks
    ] == [network.name]
    listed = stub.ListSubnets(napi.ListSubnetsRequest(parent=network.name)).subnets
    assert {s.name for s in listed} == {subnet.name, v6.name}
    assert stub.GetSubnet(napi.GetSubnetRequest(name=subnet.name)).cidr == "10.1.0.0/24"
    assert stub.GetPort(napi.GetPortRequest(name=port.name)).mac_address == port.mac_address
    assert {p.name for p in _ports(member, tenant.project)} == {port.name, fixed.name}

    renamed = stub.UpdateNetwork(
        napi.UpdateNetworkRequest(network=npb.Network(name=network.name, mtu=1400))
    )
    assert renamed.mtu == 1400 and renamed.etag != network.etag
    updated = stub.UpdateSubnet(
        napi.UpdateSubnetRequest(
            subnet=npb.Subnet(name=subnet.name, dns_servers=["10.1.0.3"], dhcp_enabled=False),
            update_mask=field_mask_pb2.FieldMask(paths=["dns_servers", "dhcp_enabled"]),
        )
    )
    assert list(updated.dns_servers) == ["10.1.0.3"] and not updated.dhcp_enabled
    moved = stub.UpdatePort(
        napi.UpdatePortRequest(
            port=npb.Port(name=port.name, device_id="i-1", device_owner="compute:instance"),
            update_mask=field_mask_pb2.FieldMask(paths=["device_id", "device_owner"]),
        )
    )
    assert moved.device_id == "i-1"

    # In use: no delete of the subnet or network while ports hold addresses.
    code, _ = rpc_error(lambda: stub.DeleteSubnet(napi.DeleteSubnetRequest(name=subnet.name)))
    assert code == FP
    code, _ = rpc_error(lambda: stub.DeleteNetwork(napi.DeleteNetworkRequest(name=network.name)))
    assert code == FP
    for p in (port, fixed):
        stub.DeletePort(napi.DeletePortRequest(name=p.name))
    stub.DeleteSubnet(napi.DeleteSubnetRequest(name=v6.name))
    stub.DeleteNetwork(napi.DeleteNetworkRequest(name=network.name))
    code, _ = rpc_error(lambda: stub.GetSubnet(napi.GetSubnetRequest(name=subnet.name)))
    assert code == NF


def test_addresses_are_reused_only_after_release(tenant: Tenant) -> None:
    member = tenant.stubs["member"]
    network, _ = make_network(member, tenant.project, "10.2.0.0/29")  # .2-.6 free
    ports = [make_port(member, tenant.project, network.name) for _ in range(5)]
    assert [p.fixed_ips[0].ip_address for p in ports] == [f"10.2.0.{i}" for i in range(2, 7)]
    code, status = rpc_error(lambda: make_port(member, tenant.project, network.name))
    assert code == FP and "no free address" in (status.message if status else "")
    assert len(_ports(member, tenant.project)) == 5  # the refused port was not stored
    net(member).DeletePort(napi.DeletePortRequest(name=ports[1].name))
    again = make_port(member, tenant.project, network.name)
    assert again.fixed_ips[0].ip_address == "10.2.0.3"


def test_concurrent_creates_never_share_an_address(tenant: Tenant) -> None:
    """Many clients at once on one subnet (SQLite and PostgreSQL): every address distinct."""
    member = tenant.stubs["member"]
    network, _ = make_network(member, tenant.project, "10.3.0.0/27")

    def create(_: int) -> str:
        return str(make_port(member, tenant.project, network.name).fixed_ips[0].ip_address)

    with ThreadPoolExecutor(8) as pool:
        addresses = list(pool.map(create, range(24)))
    assert len(set(addresses)) == 24
    assert all(ipaddress.ip_address(a) in ipaddress.ip_network("10.3.0.0/27") for a in addresses)


def test_bad_input_is_refused_and_changes_nothing(tenant: Tenant) -> None:
    member = tenant.stubs["member"]
    stub = net(member)
    network, first = make_network(member, tenant.project, "10.4.0.0/24")
    port = make_port(member, tenant.project, network.name, mac_address="02:00:00:00:04:01")
    before_subnets = list(stub.ListSubnets(napi.ListSubnetsRequest(parent=network.name)).subnets)
    before_ports = _ports(member, tenant.project)

    def subnet(**fields: Any) -> tuple[grpc.StatusCode, object]:
        return rpc_error(
            lambda: stub.CreateSubnet(
                napi.CreateSubnetRequest(
                    parent=network.name,
                    subnet_id=unique("s"),
                    subnet=npb.Subnet(**fields),
                )
            )
        )

    def port_with(**fields: Any) -> tuple[grpc.StatusCode, object]:
        return rpc_error(lambda: make_port(member, tenant.project, network.name, **fields))

    cases = [
        (subnet(cidr="10.4.0.128/25"), IA),  # overlaps 10.4.0.0/24
        (subnet(cidr="10.9.0.0/33"), IA),
        (subnet(cidr="10.9.0.1/24"), IA),  # host bits set
        (subnet(cidr="10.9.0.0/24", gateway_ip="10.8.0.1"), IA),
        (
            subnet(
                cidr="10.9.0.0/24",
                allocation_pools=[npb.AllocationPool(start="10.9.0.200", end="10.9.1.5")],
            ),
            IA,
        ),
        (
            subnet(
                cidr="10.9.0.0/24",
                allocation_pools=[npb.AllocationPool(start="10.9.0.1", end="10.9.0.9")],
            ),
            IA,
        ),  # holds gateway
        (subnet(cidr="10.9.0.0/24", dns_servers=["fd00::1"]), IA),
        (
            subnet(
                cidr="10.9.0.0/24", host_routes=[npb.Route(destination="x", next_hop="10.9.0.1")]
            ),
            IA,
        ),
        (port_with(fixed_ips=[npb.FixedIp(ip_address="10.5.0.9")]), IA),  # outside the subnet
        (
            port_with(fixed_ips=[npb.FixedIp(subnet=first.name, ip_address="10.4.0.255")]),
            IA,
        ),  # broadcast
        (
            port_with(
                fixed_ips=[npb.FixedIp(subnet=first.name, ip_address=port.fixed_ips[0].ip_address)]
            ),
            FP,
        ),
        (port_with(mac_address="02:00:00:00:04:01"), FP),  # duplicate MAC on the network
        (port_with(mac_address="03:00:00:00:00:01"), IA),  # multicast
        (port_with(mac_address="nonsense"), IA),
        (port_with(device_owner="network:router_interface"), IA),
        (
            port_with(
                port_security_enabled=False,
                security_groups=[f"{tenant.name}/securityGroups/default"],
            ),
            IA,
        ),
        (port_with(security_groups=[f"{tenant.name}/securityGroups/nope"]), NF),
    ]
    for (code, status), expected in cases:
        assert code == expected, status
    assert (
        list(stub.ListSubnets(napi.ListSubnetsRequest(parent=network.name)).subnets)
        == before_subnets
    )
    assert _ports(member, tenant.project) == before_ports

    for spec in (
        npb.Network(type=npb.Network.TYPE_VLAN, physical_network="p", vlan_id=10),
        npb.Network(external=True),
    ):
        code, _ = rpc_error(
            lambda spec=spec: stub.CreateNetwork(
                napi.CreateNetworkRequest(parent=tenant.name, network_id=unique("n"), network=spec)
            )
        )
        assert code == PD  # provider and external networks: cloud administrators only


def test_provider_network_checks(admin: Stubs) -> None:
    stub = net(admin)
    for spec in (
        npb.Network(type=npb.Network.TYPE_VLAN, physical_network="physnet1", vlan_id=5000),
        npb.Network(type=npb.Network.TYPE_VLAN, vlan_id=5),
        npb.Network(physical_network="physnet1"),
        npb.Network(mtu=100),
    ):
        code, _ = rpc_error(
            lambda spec=spec: stub.CreateNetwork(
                napi.CreateNetworkRequest(
                    parent="projects/admin", network_id=unique("n"), network=spec
                )
            )
        )
        assert code == IA
    vlan = stub.CreateNetwork(
        napi.CreateNetworkRequest(
            parent="projects/admin",
            network_id=unique("vlan"),
            network=npb.Network(
                type=npb.Network.TYPE_VLAN, physical_network="physnet1", vlan_id=42
            ),
        )
    )
    assert vlan.vlan_id == 42
    stub.DeleteNetwork(napi.DeleteNetworkRequest(name=vlan.name))


def test_router_external_gateway_and_floating_ip(admin: Stubs, tenant: Tenant) -> None:
    member = tenant.stubs["member"]
    stub = net(member)
    external, _ = make_external(admin, "172.30.0.0/24")
    network, subnet = make_network(member, tenant.project, "10.6.0.0/24")
    router = stub.CreateRouter(
        napi.CreateRouterRequest(
            parent=tenant.name,
            router_id="r1",
            router=npb.Router(external_gateway=npb.ExternalGateway(network=external.name)),
        )
    )
    assert router.external_gateway.ip_address == "172.30.0.2"
    assert router.external_gateway.snat_enabled
    vm = make_port(member, tenant.project, network.name)
    # Not yet reachable: the router has no interface on the VM's subnet.
    code, _ = rpc_error(
        lambda: stub.CreateFloatingIp(
            napi.CreateFloatingIpRequest(
                parent=tenant.name,
                floating_ip_id="f0",
                floating_ip=npb.FloatingIp(network=external.name, port=vm.name),
            )
        )
    )
    assert code == FP
    router = stub.AddRouterInterface(
        napi.AddRouterInterfaceRequest(router=router.name, subnet=subnet.name)
    )
    assert [i.subnet for i in router.interfaces] == [subnet.name]
    interface_port = stub.GetPort(napi.GetPortRequest(name=router.interfaces[0].port))
    assert interface_port.fixed_ips[0].ip_address == "10.6.0.1"
    assert interface_port.device_owner == "network:router_interface"
    code, _ = rpc_error(
        lambda: stub.AddRouterInterface(
            napi.AddRouterInterfaceRequest(router=router.name, subnet=subnet.name)
        )
    )
    assert code == FP
    code, _ = rpc_error(lambda: stub.DeletePort(napi.DeletePortRequest(name=interface_port.name)))
    assert code == FP  # router-owned

    fip = stub.CreateFloatingIp(
        napi.CreateFloatingIpRequest(
            parent=tenant.name,
            floating_ip_id="f1",
            floating_ip=npb.FloatingIp(network=external.name),
        )
    )
    assert fip.ip_address == "172.30.0.3" and not fip.port
    fip = stub.UpdateFloatingIp(
        napi.UpdateFloatingIpRequest(
            floating_ip=npb.FloatingIp(name=fip.name, port=vm.name),
            update_mask=field_mask_pb2.FieldMask(paths=["port"]),
        )
    )
    assert fip.fixed_ip == vm.fixed_ips[0].ip_address and fip.router == router.name
    assert stub.GetFloatingIp(napi.GetFloatingIpRequest(name=fip.name)).port == vm.name
    listed = stub.ListFloatingIps(napi.ListFloatingIpsRequest(parent=tenant.name)).floating_ips
    assert [f.name for f in listed] == [fip.name]
    code, _ = rpc_error(lambda: stub.DeleteRouter(napi.DeleteRouterRequest(name=router.name)))
    assert code == FP
    # Deleting the port disassociates the floating IP.
    stub.DeletePort(napi.DeletePortRequest(name=vm.name))
    assert not stub.GetFloatingIp(napi.GetFloatingIpRequest(name=fip.name)).port
    routed = stub.UpdateRouter(
        napi.UpdateRouterRequest(
            router=npb.Router(
                name=router.name,
                routes=[npb.Route(destination="10.99.0.0/16", next_hop="10.6.0.9")],
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["routes"]),
        )
    )
    assert routed.routes[0].destination == "10.99.0.0/16"
    assert [
        r.name for r in stub.ListRouters(napi.ListRoutersRequest(parent=tenant.name)).routers
    ] == [router.name]
    assert stub.GetRouter(napi.GetRouterRequest(name=router.name)).name == router.name
    stub.DeleteFloatingIp(napi.DeleteFloatingIpRequest(name=fip.name))
    stub.RemoveRouterInterface(
        napi.RemoveRouterInterfaceRequest(router=router.name, subnet=subnet.name)
    )
    stub.DeleteRouter(napi.DeleteRouterRequest(name=router.name))
    # The gateway's address is free again; the external network can go.
    net(admin).DeleteSubnet(
        napi.DeleteSubnetRequest(
            name=f"{external.name}/subnets/"
            + net(admin)
            .ListSubnets(napi.ListSubnetsRequest(parent=external.name))
            .subnets[0]
            .name.rsplit("/", 1)[1]
        )
    )
    net(admin).DeleteNetwork(napi.DeleteNetworkRequest(name=external.name))


def test_security_groups_and_rules(tenant: Tenant) -> None:
    member = tenant.stubs["member"]
    stub = net(member)
    web = stub.CreateSecurityGroup(
        napi.CreateSecurityGroupRequest(
            parent=tenant.name,
            security_group_id="web",
            security_group=npb.SecurityGroup(
                rules=[Rule(direction=Rule.DIRECTION_INGRESS, protocol="tcp", port_range_min=80)]
            ),
        )
    )
    assert web.rules[0].id and web.rules[0].port_range_max == 80
    web = stub.CreateSecurityGroupRule(
        napi.CreateSecurityGroupRuleRequest(
            security_group=web.name,
            rule=Rule(direction=Rule.DIRECTION_INGRESS, protocol="icmp", remote_group=web.name),
        )
    )
    assert len(web.rules) == 2 and web.rules[1].remote_group == web.name
    for bad in (
        Rule(protocol="tcp"),
        Rule(direction=Rule.DIRECTION_INGRESS, protocol="sctp"),
        Rule(direction=Rule.DIRECTION_INGRESS, protocol="icmp", port_range_min=1),
        Rule(
            direction=Rule.DIRECTION_INGRESS, protocol="tcp", port_range_min=90, port_range_max=80
        ),
        Rule(direction=Rule.DIRECTION_INGRESS, remote_cidr="fd00::/64"),
        Rule(direction=Rule.DIRECTION_INGRESS, remote_cidr="10.0.0.0/8", remote_group=web.name),
    ):
        code, _ = rpc_error(
            lambda bad=bad: stub.CreateSecurityGroupRule(
                napi.CreateSecurityGroupRuleRequest(security_group=web.name, rule=bad)
            )
        )
        assert code == IA, bad
    assert len(stub.GetSecurityGroup(napi.GetSecurityGroupRequest(name=web.name)).rules) == 2
    network, _ = make_network(member, tenant.project, "10.7.0.0/24")
    port = make_port(member, tenant.project, network.name, security_groups=[web.name])
    code, _ = rpc_error(
        lambda: stub.DeleteSecurityGroup(napi.DeleteSecurityGroupRequest(name=web.name))
    )
    assert code == FP
    web = stub.DeleteSecurityGroupRule(
        napi.DeleteSecurityGroupRuleRequest(security_group=web.name, rule_id=web.rules[0].id)
    )
    assert [r.protocol for r in web.rules] == ["icmp"]
    web = stub.UpdateSecurityGroup(
        napi.UpdateSecurityGroupRequest(
            security_group=npb.SecurityGroup(name=web.name, rules=[]),
            update_mask=field_mask_pb2.FieldMask(paths=["rules"]),
        )
    )
    assert not web.rules
    names = {
        g.name
        for g in stub.ListSecurityGroups(
            napi.ListSecurityGroupsRequest(parent=tenant.name)
        ).security_groups
    }
    assert web.name in names
    stub.DeletePort(napi.DeletePortRequest(name=port.name))
    stub.DeleteSecurityGroup(napi.DeleteSecurityGroupRequest(name=web.name))


def test_one_project_cannot_use_or_see_anothers_network(
    admin: Stubs, tenant: Tenant, other_tenant: Tenant
) -> None:
    mine, my_subnet = make_network(tenant.stubs["member"], tenant.project, "10.8.0.0/24")
    other = other_tenant.stubs["member"]
    stub = net(other)
    # Attach a port (in its own project) to my network: not found.
    code, _ = rpc_error(lambda: make_port(other, other_tenant.project, mine.name))
    assert code == NF
    # See it.
    for call in (
        lambda: stub.GetNetwork(napi.GetNetworkRequest(name=mine.name)),
        lambda: stub.GetSubnet(napi.GetSubnetRequest(name=my_subnet.name)),
        lambda: stub.ListSubnets(napi.ListSubnetsRequest(parent=mine.name)),
        lambda: stub.ListNetworks(napi.ListNetworksRequest(parent=tenant.name)),
    ):
        assert rpc_error(call)[0] == NF
    # Route into it: a router of the other project cannot take my subnet.
    router = stub.CreateRouter(
        napi.CreateRouterRequest(parent=other_tenant.name, router_id="r", router=npb.Router())
    )
    code, _ = rpc_error(
        lambda: stub.AddRouterInterface(
            napi.AddRouterInterfaceRequest(router=router.name, subnet=my_subnet.name)
        )
    )
    assert code == NF
    # A tenant network is not an external network: no gateway or floating IP from it.
    code, _ = rpc_error(
        lambda: stub.CreateFloatingIp(
            napi.CreateFloatingIpRequest(
                parent=other_tenant.name,
                floating_ip_id="f",
                floating_ip=npb.FloatingIp(network=mine.name),
            )
        )
    )
    assert code == NF
    assert (
        not net(tenant.stubs["member"]).ListPorts(napi.ListPortsRequest(parent=tenant.name)).ports
    )


def test_shared_networks_are_for_every_project(
    admin: Stubs, tenant: Tenant, other_tenant: Tenant
) -> None:
    """A shared network (cloud administrators make it) is readable by every project, with
    its subnets, and takes their ports; it stays its owner's to change, and can only be
    unshared while no other project has a port on it."""
    member = tenant.stubs["member"]
    code, _ = rpc_error(lambda: make_network(member, tenant.project, "10.9.0.0/24", shared=True))
    assert code == PD
    shared, subnet = make_network(admin, "admin", "10.9.0.0/24", shared=True)
    assert shared.shared
    stub = net(member)
    listed = stub.ListNetworks(napi.ListNetworksRequest(parent="projects/-")).networks
    assert shared.name in {n.name for n in listed}
    only_shared = stub.ListNetworks(
        napi.ListNetworksRequest(parent="projects/-", filter='shared = "true"')
    ).networks
    assert shared.name in {n.name for n in only_shared} and all(n.shared for n in only_shared)
    assert stub.GetNetwork(napi.GetNetworkRequest(name=shared.name)).shared
    assert stub.GetSubnet(napi.GetSubnetRequest(name=subnet.name)).cidr == "10.9.0.0/24"
    assert [
        s.name for s in stub.ListSubnets(napi.ListSubnetsRequest(parent=shared.name)).subnets
    ] == [subnet.name]
    port = make_port(member, tenant.project, shared.name)
    assert ipaddress.ip_address(port.fixed_ips[0].ip_address) in ipaddress.ip_network("10.9.0.0/24")
    assert [p.name for p in _ports(member, tenant.project)] == [port.name]
    # Still the owner's: others cannot change or delete it (nor see that they could).
    change = npb.Network(name=shared.name, display_name="mine now")
    for call in (
        lambda: stub.UpdateNetwork(napi.UpdateNetworkRequest(network=change)),
        lambda: stub.DeleteNetwork(napi.DeleteNetworkRequest(name=shared.name)),
        lambda: stub.CreateSubnet(
            napi.CreateSubnetRequest(
                parent=shared.name, subnet_id="s2", subnet=npb.Subnet(cidr="10.10.0.0/24")
            )
        ),
    ):
        assert rpc_error(call)[0] == NF
    # Unsharing waits until no other project has a port on it.
    unshare = napi.UpdateNetworkRequest(
        network=npb.Network(name=shared.name, shared=False),
        update_mask=field_mask_pb2.FieldMask(paths=["shared"]),
    )
    code, _ = rpc_error(lambda: net(admin).UpdateNetwork(unshare))
    assert code == FP
    assert net(admin).GetNetwork(napi.GetNetworkRequest(name=shared.name)).shared
    code, _ = rpc_error(lambda: stub.UpdateNetwork(unshare))
    assert code == PD
    stub.DeletePort(napi.DeletePortRequest(name=port.name))
    assert not net(admin).UpdateNetwork(unshare).shared
    for call in (
        lambda: stub.GetNetwork(napi.GetNetworkRequest(name=shared.name)),
        lambda: stub.GetSubnet(napi.GetSubnetRequest(name=subnet.name)),
        lambda: make_port(member, tenant.project, shared.name),
    ):
        assert rpc_error(call)[0] == NF
    # The other project never had anything on it, and sees it gone too.
    other = net(other_tenant.stubs["member"])
    assert shared.name not in {
        n.name for n in other.ListNetworks(napi.ListNetworksRequest(parent="projects/-")).networks
    }
    net(admin).DeleteNetwork(napi.DeleteNetworkRequest(name=shared.name))


def test_quotas_count_networking_resources(admin: Stubs, tenant: Tenant) -> None:
    member = tenant.stubs["member"]
    admin.identity.UpdateQuota(
        iapi.UpdateQuotaRequest(
            quota=ipb.Quota(
                name=f"{tenant.name}/quota",
                limits=[
                    ipb.QuotaLimit(resource="networks", limit=1),
                    ipb.QuotaLimit(resource="ports", limit=1),
                ],
            )
        )
    )
    network, _ = make_network(member, tenant.project, "10.10.0.0/24")
    code, _ = rpc_error(lambda: make_network(member, tenant.project, "10.11.0.0/24"))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    port = make_port(member, tenant.project, network.name)
    code, _ = rpc_error(lambda: make_port(member, tenant.project, network.name))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert len(_ports(member, tenant.project)) == 1  # the refused port left nothing
    net(member).DeletePort(napi.DeletePortRequest(name=port.name))
    make_port(member, tenant.project, network.name)  # the freed slot is usable


def test_deleting_a_project_deletes_its_networking(admin: Stubs, tenant: Tenant) -> None:
    member = tenant.stubs["member"]
    external, _ = make_external(admin, "172.28.0.0/24")
    network, subnet = make_network(member, tenant.project, "10.12.0.0/24")
    make_port(member, tenant.project, network.name)
    stub = net(member)
    router = stub.CreateRouter(
        napi.CreateRouterRequest(
            parent=tenant.name,
            router_id="r",
            router=npb.Router(external_gateway=npb.ExternalGateway(network=external.name)),
        )
    )
    stub.AddRouterInterface(napi.AddRouterInterfaceRequest(router=router.name, subnet=subnet.name))
    stub.CreateFloatingIp(
        napi.CreateFloatingIpRequest(
            parent=tenant.name,
            floating_ip_id="f",
            floating_ip=npb.FloatingIp(network=external.name),
        )
    )
    operation = admin.identity.DeleteProject(iapi.DeleteProjectRequest(name=tenant.name))
    done = admin.operations.WaitOperation(
        operations_pb2.WaitOperationRequest(
            name=operation.name, timeout=duration_pb2.Duration(seconds=30)
        )
    )
    assert done.done and not done.HasField("error"), done
    # Its addresses on the external network are free again: a new floating IP gets the
    # first one the router and the deleted floating IP held.
    fip = net(admin).CreateFloatingIp(
        napi.CreateFloatingIpRequest(
            parent="projects/admin",
            floating_ip_id=unique("f"),
            floating_ip=npb.FloatingIp(network=external.name),
        )
    )
    assert fip.ip_address == "172.28.0.2"
