"""One contract over every network driver: the in-memory fake and OVN (a real NB/SB +
northd started by the session). Each test names its objects with fresh uids."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from kumo.drivers.errors import DriverError
from kumo.drivers.network.base import (
    FloatingIpSpec,
    Gateway,
    Kind,
    NetworkDriver,
    NetworkSpec,
    PortSpec,
    RouterInterface,
    RouterSpec,
    RuleSpec,
    SecurityGroupSpec,
    SubnetSpec,
)
from kumo.drivers.network.loader import load_network_driver
from kumo.drivers.network.ovn_local import OvnCentral
from tests.support.ovn import started_central


@pytest.fixture(scope="module")
def own_central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OvnCentral]:
    """An OVN central of this module's own: no reconciler sees these objects as strays."""
    yield from started_central(tmp_path_factory)


@pytest.fixture(params=["fake", "ovn"])
def driver(request: pytest.FixtureRequest) -> Iterator[NetworkDriver]:
    """Each driver, started."""
    if request.param == "ovn":
        central = request.getfixturevalue("own_central")
        found = load_network_driver("ovn", remote=central.nb_remote, gateway_chassis=["gw-1"])
    else:
        found = load_network_driver("fake")
    found.start()
    try:
        yield found
    finally:
        found.close()


def uid() -> str:
    return str(uuid.uuid4())


def network(driver: NetworkDriver, cidr: str = "10.0.0.0/24") -> tuple[str, str]:
    net, sub = uid(), uid()
    driver.ensure_network(NetworkSpec(uid=net, name="projects/p/networks/n"))
    driver.ensure_subnet(
        SubnetSpec(uid=sub, network_uid=net, cidr=cidr, gateway_ip=cidr[:-4] + "1")
    )
    return net, sub


def test_network_subnet_port_lifecycle(driver: NetworkDriver) -> None:
    net, sub = network(driver)
    port = PortSpec(
        uid=uid(),
        network_uid=net,
        mac_address="02:4b:00:00:00:10",
        ip_addresses=("10.0.0.10",),
        dhcp_subnet_uid=sub,
        port_security=False,
    )
    driver.ensure_port(port)
    driver.ensure_port(port)  # idempotent
    found = driver.inventory().uids
    assert net in found[Kind.NETWORK] and sub in found[Kind.SUBNET] and port.uid in found[Kind.PORT]
    assert driver.port_up(port.uid) in (True, False)
    driver.delete_port(port.uid)
    driver.delete_port(port.uid)  # already gone: fine
    driver.delete_subnet(sub)
    driver.delete_network(net)
    driver.delete_network(net)
    found = driver.inventory().uids
    assert port.uid not in found[Kind.PORT] and net not in found[Kind.NETWORK]
    assert sub not in found[Kind.SUBNET]


def test_dhcp_off_removes_the_subnets_service(driver: NetworkDriver) -> None:
    net, sub = network(driver, "10.1.0.0/24")
    driver.ensure_subnet(
        SubnetSpec(
            uid=sub, network_uid=net, cidr="10.1.0.0/24", gateway_ip="10.1.0.1", dhcp_enabled=False
        )
    )
    assert sub not in driver.inventory().uids[Kind.SUBNET]
    driver.delete_network(net)


def test_a_port_needs_its_network_and_groups(driver: NetworkDriver) -> None:
    with pytest.raises(DriverError):
        driver.ensure_port(PortSpec(uid=uid(), network_uid=uid(), mac_address="02:4b:00:00:00:11"))
    net, _ = network(driver, "10.2.0.0/24")
    with pytest.raises(DriverError):
        driver.ensure_port(
            PortSpec(
                uid=uid(),
                network_uid=net,
                mac_address="02:4b:00:00:00:12",
                security_group_uids=(uid(),),
            )
        )
    driver.delete_network(net)


def test_security_groups_rules_and_membership(driver: NetworkDriver) -> None:
    web, db = uid(), uid()
    rules = (
        RuleSpec(direction="ingress", protocol="tcp", port_min=80),
        RuleSpec(direction="ingress", protocol="tcp", port_min=5432, remote_group_uid=web),
        RuleSpec(direction="egress"),
    )
    driver.ensure_security_group(SecurityGroupSpec(uid=web, rules=rules))
    driver.ensure_security_group(SecurityGroupSpec(uid=db, rules=rules[1:]))
    driver.ensure_security_group(SecurityGroupSpec(uid=web, rules=rules[:1]))  # replace rules
    net, _ = network(driver, "10.3.0.0/24")
    port = PortSpec(
        uid=uid(),
        network_uid=net,
        mac_address="02:4b:00:00:00:13",
        ip_addresses=("10.3.0.5",),
        security_group_uids=(web, db),
    )
    driver.ensure_port(port)
    assert {web, db} <= driver.inventory().uids[Kind.SECURITY_GROUP]
    driver.delete_port(port.uid)
    driver.delete_security_group(web)
    driver.delete_security_group(web)
    driver.delete_security_group(db)
    assert web not in driver.inventory().uids[Kind.SECURITY_GROUP]
    driver.delete_network(net)


def test_router_gateway_and_floating_ip(driver: NetworkDriver) -> None:
    ext, _ = network(driver, "172.24.0.0/24")
    net, _ = network(driver, "10.4.0.0/24")
    leg = PortSpec(
        uid=uid(),
        network_uid=net,
        mac_address="02:4b:00:00:01:01",
        ip_addresses=("10.4.0.1",),
        router_interface=True,
        port_security=False,
    )
    driver.ensure_port(leg)
    router = RouterSpec(
        uid=uid(),
        interfaces=(RouterInterface(leg.uid, "02:4b:00:00:01:01", "10.4.0.1/24"),),
        gateway=Gateway(ext, "02:4b:00:00:01:02", "172.24.0.2/24", "172.24.0.1", ("10.4.0.0/24",)),
    )
    fip = FloatingIpSpec(
        uid=uid(), router_uid=router.uid, external_ip="172.24.0.3", fixed_ip="10.4.0.7"
    )
    with pytest.raises(DriverError):
        driver.ensure_floating_ip(fip)  # no router yet
    driver.ensure_router(router)
    driver.ensure_router(router)
    driver.ensure_floating_ip(fip)
    driver.ensure_floating_ip(fip)
    assert fip.uid in driver.inventory().uids[Kind.FLOATING_IP]
    moved = FloatingIpSpec(
        uid=fip.uid, router_uid=router.uid, external_ip="172.24.0.3", fixed_ip="10.4.0.8"
    )
    driver.ensure_floating_ip(moved)
    assert fip.uid in driver.inventory().uids[Kind.FLOATING_IP]
    driver.ensure_router(RouterSpec(uid=router.uid))  # no legs any more
    driver.delete_router(router.uid)
    found = driver.inventory().uids
    assert router.uid not in found[Kind.ROUTER] and fip.uid not in found[Kind.FLOATING_IP]
    driver.delete_floating_ip(fip.uid)
    driver.delete_port(leg.uid)
    driver.delete_network(net)
    driver.delete_network(ext)
