"""OVN fixtures: a private OVN central (NB/SB + northd on unix sockets in a temp dir),
started once per session and stopped by pid at the end."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kumo.drivers.network.ovn_local import OvnCentral, OvsChassis
from kumo.drivers.network.ovs_host import OvsPortBinder
from kumo.server.network.reconciler import PassResult
from kumo.server.notifier import NETWORK
from tests.support.netns import Guest, add_netns, del_netns
from tests.support.server import ServerThread


def have_ovn() -> bool:
    """Whether OVN central's binaries are installed."""
    return all(shutil.which(b) for b in ("ovsdb-server", "ovn-northd", "ovn-nbctl"))


def started_central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OvnCentral]:
    """A new OVN central in a temp dir, stopped at the end."""
    if not have_ovn():
        pytest.skip("OVN is not installed (scripts/install.sh installs it)")
    central = OvnCentral(Path(tmp_path_factory.mktemp("ovn")))
    central.start()
    try:
        yield central
    finally:
        central.stop()


@pytest.fixture(scope="session")
def ovn_central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OvnCentral]:
    """OVN NB/SB databases and northd, shared by the session's API server (ovn_api), its
    chassis and the tests using them (they isolate by naming)."""
    yield from started_central(tmp_path_factory)


@dataclass
class Chassis:
    """An OVS (netdev) + ovn-controller chassis in its own namespace, with an "outside"
    namespace on the physical network `external` (bridge br-ex)."""

    ovs: OvsChassis
    netns: str
    binder: OvsPortBinder
    outside: Guest
    workdir: Path
    guests: list[Guest] = field(default_factory=list)

    def guest(self, mac: str = "") -> Guest:
        """A new guest namespace plugged into the chassis (deleted at the end)."""
        guest = Guest(self.netns, self.workdir, mac)
        self.guests.append(guest)
        return guest

    def plug(self, port_uid: str, mac: str) -> Guest:
        """A guest bound to OVN port `port_uid` and up in OVN."""
        guest = self.guest(mac)
        self.binder.bind(port_uid, guest.host_dev, mac)
        assert self.binder.wait_up(guest.host_dev, 20), f"port {port_uid} never came up"
        return guest


CHASSIS = "kumo-chassis-1"


@pytest.fixture(scope="session")
def ovn_chassis(
    ovn_central: OvnCentral, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Chassis]:
    """One chassis bound to the session's OVN central, in a test-made namespace."""
    if not shutil.which("ovs-vswitchd") or not shutil.which("ovn-controller"):
        pytest.skip("OVS/ovn-controller are not installed (scripts/install.sh installs them)")
    workdir = Path(tmp_path_factory.mktemp("chassis"))
    netns = add_netns("kch")
    ovs = OvsChassis(
        workdir / "ovs", ovn_central, CHASSIS, netns=netns, bridge_mappings="external:br-ex"
    )
    chassis: Chassis | None = None
    try:
        ovs.start()
        ovs.vsctl(
            "--may-exist", "add-br", "br-ex", "--", "set", "bridge", "br-ex", "datapath_type=netdev"
        )
        deadline = time.monotonic() + 20
        while CHASSIS not in ovn_central.sbctl("--bare", "--columns=name", "list", "Chassis"):
            assert time.monotonic() < deadline, "the chassis never registered"
            time.sleep(0.1)
        outside = Guest(netns, workdir)
        ovs.vsctl("--may-exist", "add-port", "br-ex", outside.host_dev)
        chassis = Chassis(ovs, netns, OvsPortBinder(ovs.db_remote), outside, workdir)
        yield chassis
    finally:
        if chassis is not None:
            chassis.binder.close()
            for guest in [*chassis.guests, chassis.outside]:
                guest.close()
        ovs.stop()
        del_netns(netns)


@pytest.fixture(scope="session")
def ovn_api(ovn_central: OvnCentral) -> Iterator[ServerThread]:
    """An API server (SQLite) whose network reconciler drives the session's OVN central,
    with router gateways on CHASSIS; tests run passes when they need them (the periodic
    one is an hour away and changes do not wake it)."""
    from tests.conftest import make_config

    url = f"sqlite:///{tempfile.mkdtemp(prefix='kumo-db-')}/kumo.db"
    server = ServerThread(
        make_config(
            url,
            network={
                "driver": "ovn",
                "ovn_nb_remote": ovn_central.nb_remote,
                "gateway_chassis": [CHASSIS],
                "reconcile_seconds": 3600,
            },
        )
    )
    passes_on_request_only(server)
    try:
        yield server
    finally:
        server.stop()


def passes_on_request_only(server: ServerThread) -> None:
    """Stops API changes from waking the server's network reconciler: it passes only when
    a test asks (`reconcile`)."""
    assert server.server.network is not None
    server.server.runtime.notifier.unsubscribe(NETWORK, server.server.network.wake)


def reconcile(server: ServerThread) -> PassResult:
    """Runs one network reconciliation pass now; returns what it did."""
    assert server.server.network is not None
    result: PassResult = server.call(server.server.network.run_pass())
    return result
