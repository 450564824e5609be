"""Host-side binding (OvsPortBinder) on the test chassis: bind by iface-id, up only when
OVN installed the port, unbind, and the errors for what cannot be bound."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from kumo.drivers.errors import DriverError, NetworkBackendUnavailable
from kumo.drivers.network.ovs_host import OvsPortBinder
from tests.support.cloud import ADMIN_PASSWORD, Stubs, sign_in
from tests.support.network import make_network, make_port
from tests.support.ovn import Chassis, reconcile
from tests.support.server import ServerThread


def test_bind_up_unbind(ovn_api: ServerThread, ovn_chassis: Chassis) -> None:
    with grpc.insecure_channel(ovn_api.address) as channel:
        admin = Stubs(channel, sign_in(channel, "admin", ADMIN_PASSWORD, "admin"))
        network, _ = make_network(admin, "admin", "10.60.0.0/24")
        port = make_port(admin, "admin", network.name)
    binder = ovn_chassis.binder
    binder.ensure_bridge()  # idempotent: br-int exists already (ovn-controller made it)
    guest = ovn_chassis.guest(port.mac_address)
    # Bound before OVN knows the port: not up.
    binder.bind(port.uid, guest.host_dev, port.mac_address)
    binder.bind(port.uid, guest.host_dev, port.mac_address)  # idempotent
    assert not binder.wait_up(guest.host_dev, 1)
    reconcile(ovn_api)
    assert binder.wait_up(guest.host_dev, 20)
    binder.unbind(guest.host_dev)
    binder.unbind(guest.host_dev)  # already gone: fine
    assert not binder.is_up(guest.host_dev)


def test_binding_a_missing_device_fails(ovn_chassis: Chassis) -> None:
    with pytest.raises(DriverError):
        ovn_chassis.binder.bind("no-such-port", "nosuchdev0", timeout=2)
    ovn_chassis.binder.unbind("nosuchdev0")


def test_unreachable_ovs_is_unavailable(tmp_path: Path) -> None:
    binder = OvsPortBinder(f"unix:{tmp_path}/missing.sock")
    with pytest.raises(NetworkBackendUnavailable):
        binder.ensure_bridge()
