"""OVN's northbound database lost or unreachable: Kumo keeps accepting changes, and once
OVN is back (even empty) the reconciler rebuilds every object from Kumo's database."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from kumo.drivers.errors import NetworkBackendUnavailable
from kumo.drivers.network.ovn_local import OvnCentral
from kumo.network.v1 import network_service_pb2 as napi
from kumo.network.v1 import resources_pb2 as npb
from kumo.server.network.reconciler import PassResult
from tests.conftest import make_config
from tests.support.cloud import ADMIN_PASSWORD, Stubs, sign_in
from tests.support.network import make_network, make_port, net
from tests.support.ovn import have_ovn, passes_on_request_only, reconcile
from tests.support.server import ServerThread


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[OvnCentral, ServerThread]]:
    """A private OVN central and an API server driving it (passes only when asked)."""
    if not have_ovn():
        pytest.skip("OVN is not installed (scripts/install.sh installs it)")
    central = OvnCentral(tmp_path / "ovn")
    central.start()
    server = None
    try:
        url = f"sqlite:///{tempfile.mkdtemp(prefix='kumo-db-')}/kumo.db"
        server = ServerThread(
            make_config(
                url,
                network={
                    "driver": "ovn",
                    "ovn_nb_remote": central.nb_remote,
                    "reconcile_seconds": 3600,
                },
            )
        )
        passes_on_request_only(server)
        yield central, server
    finally:
        if server is not None:
            server.stop()
        central.stop()


def reconcile_when_reachable(server: ServerThread, timeout: float = 30) -> PassResult:
    """Passes until OVN is reachable again (the driver reconnects with a back-off)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return reconcile(server)
        except NetworkBackendUnavailable:
            assert time.monotonic() < deadline, "OVN never became reachable again"
            time.sleep(0.5)


def switches(central: OvnCentral) -> set[str]:
    out = central.nbctl("--format=json", "--columns=name", "list", "Logical_Switch")
    return {row[0] for row in json.loads(out)["data"]}


def test_lost_northbound_database_is_rebuilt(stack: tuple[OvnCentral, ServerThread]) -> None:
    central, server = stack
    with grpc.insecure_channel(server.address) as channel:
        admin = Stubs(channel, sign_in(channel, "admin", ADMIN_PASSWORD, "admin"))
        network, _ = make_network(admin, "admin", "10.70.0.0/24")
        port = make_port(admin, "admin", network.name)
        reconcile(server)
        assert f"kumo-{network.uid}" in switches(central)

        # OVN central goes down: the API still takes changes, a pass fails as unavailable.
        central.stop()
        later = make_port(admin, "admin", network.name)
        with pytest.raises(NetworkBackendUnavailable):
            reconcile(server)
        stub = net(admin)
        assert stub.GetPort(napi.GetPortRequest(name=later.name)).state == (
            npb.SYNC_STATE_PROVISIONING
        )

        # It comes back with an empty database: everything is rebuilt.
        (central.dir / "nb.db").unlink()
        central.start()
        result = reconcile_when_reachable(server)
        assert result.errors == 0, result
        assert f"kumo-{network.uid}" in switches(central)
        ports = central.nbctl("--bare", "--columns=name", "list", "Logical_Switch_Port")
        assert port.uid in ports and later.uid in ports
        assert stub.GetPort(napi.GetPortRequest(name=later.name)).state == npb.SYNC_STATE_ACTIVE
