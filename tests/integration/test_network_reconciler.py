"""The network reconciler against a real OVN central: the API's desired state reaches
the northbound database, and drift either way (objects deleted or added behind
Kumo's back) is undone on the next pass, strays with a log line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import grpc
import pytest

from kumo.drivers.network.base import Kind
from kumo.drivers.network.ovn_local import OvnCentral
from kumo.network.v1 import network_service_pb2 as napi
from kumo.network.v1 import resources_pb2 as npb
from tests.support.cloud import ADMIN_PASSWORD, Stubs, make_tenant, sign_in
from tests.support.network import make_external, make_network, make_port, net
from tests.support.ovn import reconcile
from tests.support.server import ServerThread


@pytest.fixture(scope="module")
def admin_stubs(ovn_api: ServerThread) -> Iterator[Stubs]:
    with grpc.insecure_channel(ovn_api.address) as channel:
        yield Stubs(channel, sign_in(channel, "admin", ADMIN_PASSWORD, "admin"))


def nb_names(central: OvnCentral, table: str) -> set[str]:
    out = central.nbctl("--format=json", "--columns=name", "list", table)
    return {row[0] for row in json.loads(out)["data"]}


def test_desired_state_reaches_ovn_and_drift_is_undone(
    ovn_api: ServerThread,
    admin_stubs: Stubs,
    ovn_central: OvnCentral,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stub = net(admin_stubs)
    external, _ = make_external(admin_stubs, "172.31.0.0/24")
    network, subnet = make_network(admin_stubs, "admin", "10.20.0.0/24")
    port = make_port(admin_stubs, "admin", network.name)
    router = stub.CreateRouter(
        napi.CreateRouterRequest(
            parent="projects/admin",
            router_id="rec-r",
            router=npb.Router(external_gateway=npb.ExternalGateway(network=external.name)),
        )
    )
    stub.AddRouterInterface(napi.AddRouterInterfaceRequest(router=router.name, subnet=subnet.name))
    fip = stub.CreateFloatingIp(
        napi.CreateFloatingIpRequest(
            parent="projects/admin",
            floating_ip_id="rec-f",
            floating_ip=npb.FloatingIp(network=external.name, port=port.name),
        )
    )
    reconcile(ovn_api)
    assert f"kumo-{network.uid}" in nb_names(ovn_central, "Logical_Switch")
    assert f"kumo-{external.uid}" in nb_names(ovn_central, "Logical_Switch")
    assert f"ln-{external.uid}" in nb_names(ovn_central, "Logical_Switch_Port")
    assert port.uid in nb_names(ovn_central, "Logical_Switch_Port")
    assert f"kumo-{router.uid}" in nb_names(ovn_central, "Logical_Router")
    nat = ovn_central.nbctl("lr-nat-list", f"kumo-{router.uid}")
    assert fip.ip_address in nat and "dnat_and_snat" in nat and "10.20.0.0/24" in nat
    assert "10.20.0.0/24" in ovn_central.nbctl("list", "DHCP_Options")
    got = stub.GetPort(napi.GetPortRequest(name=port.name))
    assert got.state == npb.SYNC_STATE_ACTIVE and got.status == npb.Port.STATUS_DOWN
    assert stub.GetNetwork(napi.GetNetworkRequest(name=network.name)).state == npb.SYNC_STATE_ACTIVE

    # Behind Kumo's back: the switch (with its ports) and the router disappear ...
    ovn_central.nbctl("ls-del", f"kumo-{network.uid}")
    ovn_central.nbctl("lr-del", f"kumo-{router.uid}")
    # ... and strays appear, one per kind Kumo marks as its own.
    ovn_central.nbctl(
        "ls-add",
        "kumo-stray",
        "--",
        "set",
        "Logical_Switch",
        "kumo-stray",
        "external_ids:kumo\\:kind=network",
        "external_ids:kumo\\:uid=stray-net",
    )
    ovn_central.nbctl(
        "pg-add",
        "pg_stray",
        "--",
        "set",
        "Port_Group",
        "pg_stray",
        "external_ids:kumo\\:kind=security_group",
        "external_ids:kumo\\:uid=stray-sg",
    )
    with caplog.at_level(logging.WARNING, logger="kumo.server.network.reconciler"):
        result = reconcile(ovn_api)
    assert result.removed[Kind.NETWORK] == 1 and result.removed[Kind.SECURITY_GROUP] == 1
    assert "removing stray network stray-net" in caplog.text
    assert result.made[Kind.NETWORK] >= 1 and result.made[Kind.ROUTER] >= 1
    assert "kumo-stray" not in nb_names(ovn_central, "Logical_Switch")
    assert "pg_stray" not in nb_names(ovn_central, "Port_Group")
    assert f"kumo-{network.uid}" in nb_names(ovn_central, "Logical_Switch")
    assert port.uid in nb_names(ovn_central, "Logical_Switch_Port")
    assert fip.ip_address in ovn_central.nbctl("lr-nat-list", f"kumo-{router.uid}")
    # Converged: a further pass changes nothing.
    again = reconcile(ovn_api)
    assert not any(again.made.values()), again
    assert not any(again.removed.values())

    # Deleting through the API removes from OVN.
    stub.DeleteFloatingIp(napi.DeleteFloatingIpRequest(name=fip.name))
    stub.DeletePort(napi.DeletePortRequest(name=port.name))
    reconcile(ovn_api)
    assert port.uid not in nb_names(ovn_central, "Logical_Switch_Port")
    assert fip.ip_address not in ovn_central.nbctl("lr-nat-list", f"kumo-{router.uid}")


def test_provider_networks_get_a_localnet_port(
    ovn_api: ServerThread, admin_stubs: Stubs, ovn_central: OvnCentral
) -> None:
    vlan = net(admin_stubs).CreateNetwork(
        napi.CreateNetworkRequest(
            parent="projects/admin",
            network_id="vlan42",
            network=npb.Network(
                type=npb.Network.TYPE_VLAN, physical_network="physnet1", vlan_id=42, mtu=1500
            ),
        )
    )
    reconcile(ovn_api)
    localnet = f"ln-{vlan.uid}"
    assert ovn_central.nbctl("lsp-get-type", localnet).strip() == "localnet"
    assert ovn_central.nbctl("get", "Logical_Switch_Port", localnet, "tag").strip() == "42"
    assert "network_name=physnet1" in ovn_central.nbctl("lsp-get-options", localnet)
    net(admin_stubs).DeleteNetwork(napi.DeleteNetworkRequest(name=vlan.name))
    reconcile(ovn_api)
    assert f"kumo-{vlan.uid}" not in nb_names(ovn_central, "Logical_Switch")


def test_another_projects_port_joins_a_shared_networks_switch(
    ovn_api: ServerThread, admin_stubs: Stubs, ovn_central: OvnCentral
) -> None:
    with grpc.insecure_channel(ovn_api.address) as channel:
        tenant = make_tenant(channel, admin_stubs, "shr")
        member = tenant.stubs["member"]
        network, _ = make_network(admin_stubs, "admin", "10.21.0.0/24", shared=True)
        port = make_port(member, tenant.project, network.name)
        reconcile(ovn_api)
        switch_ports = ovn_central.nbctl("lsp-list", f"kumo-{network.uid}")
        assert port.uid in switch_ports
        addresses = ovn_central.nbctl("lsp-get-addresses", port.uid)
        assert port.fixed_ips[0].ip_address in addresses
        net(member).DeletePort(napi.DeletePortRequest(name=port.name))
        net(admin_stubs).DeleteNetwork(napi.DeleteNetworkRequest(name=network.name))
        reconcile(ovn_api)
        assert f"kumo-{network.uid}" not in nb_names(ovn_central, "Logical_Switch")
