"""`kumo up` runs this machine as an OVN chassis: two guests on a Kumo network (made with the
`kumo` CLI, as the README shows) lease the addresses Kumo allocated, one pings the other and
reads its TCP greeting (user data script, scripts/build-image), and their ports go ACTIVE;
after Ctrl-C and `kumo up` again, they talk again."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from google.longrunning import operations_pb2

from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import resources_pb2 as cpb
from kumo.drivers.compute.libvirtd import unavailable_reason
from kumo.network.v1 import network_service_pb2 as napi
from kumo.network.v1 import network_service_pb2_grpc as nrpc
from kumo.network.v1 import resources_pb2 as npb
from tests.e2e.test_cli_against_kumo_up import Up
from tests.e2e.test_first_guest import _stubs, operations_pb2_grpc_stub

pytestmark = pytest.mark.slow
ZONE = "projects/admin/zones/local-1"


def test_guests_of_kumo_up_talk_over_ovn(tmp_path: Path) -> None:
    if (reason := unavailable_reason()) is not None:
        pytest.skip(reason)
    if not all(shutil.which(b) for b in ("ovn-northd", "ovs-vswitchd", "ovn-controller")):
        pytest.skip("OVN/OVS are not installed (scripts/install.sh installs them)")
    up = Up(tmp_path)
    try:
        assert "OVN chassis in netns" in "".join(up.banner), "".join(up.banner)
        channel, service, metadata = _stubs(up, tmp_path)
        network_stub = nrpc.NetworkServiceStub(channel)
        password_file = tmp_path / "data" / "admin-password"
        endpoint = f"127.0.0.1:{up.port}"
        up.kumo(
            "login",
            "--endpoint",
            endpoint,
            "--user",
            "admin",
            "--password-file",
            str(password_file),
        )
        up.kumo("network", "create", "lan")
        up.kumo("subnet", "create", "lan/lan4", "--cidr", "10.90.0.0/24")
        started = time.monotonic()
        up.kumo(
            "instance", "create", "one", "--zone", "local-1", "--flavor", "tiny",
            "--image", "projects/admin/images/kumo-tiny", "--network", "lan",
        )  # fmt: skip
        one = service.GetInstance(
            capi.GetInstanceRequest(name=f"{ZONE}/instances/one"), metadata=metadata
        )
        fixed = one.network_interfaces[0].ip_addresses[0]
        talker = (
            "#!/bin/sh\n"
            f"for i in $(seq 90); do ping -c 1 -W 1 {fixed} >/dev/null 2>&1 && break;"
            " sleep 1; done\n"
            f'for i in $(seq 30); do r=$(nc -w 2 {fixed} 7000 </dev/null) && [ -n "$r" ] && break;'
            " sleep 1; done\n"
            f'echo "tcp {fixed}: $r"\n'
        )
        op = service.CreateInstance(
            capi.CreateInstanceRequest(
                parent=ZONE,
                instance_id="two",
                instance=cpb.Instance(
                    flavor="flavors/tiny",
                    image="projects/admin/images/kumo-tiny",
                    network_interfaces=[
                        cpb.NetworkInterface(network="projects/admin/networks/lan")
                    ],
                    user_data=talker.encode(),
                ),
            ),
            metadata=metadata,
        )
        done = operations_pb2_grpc_stub(channel).WaitOperation(
            operations_pb2.WaitOperationRequest(name=op.name, timeout={"seconds": 180}),
            metadata=metadata,
        )
        assert done.done and not done.HasField("error"), done
        names = [one.name, f"{ZONE}/instances/two"]
        deadline = time.monotonic() + 150
        while True:
            out = service.GetSerialPortOutput(
                capi.GetSerialPortOutputRequest(name=names[1]), metadata=metadata
            ).contents
            if f"tcp {fixed}:" in out or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert f"tcp {fixed}: hello from one" in out, out[-2000:]
        console = up.kumo("instance", "console", "one", "--zone", "local-1").stdout
        assert f"ip eth0={fixed}/24" in console, console[-2000:]
        print(f"kumo up → two guests talking over OVN: {time.monotonic() - started:.1f} s")
        instance = service.GetInstance(capi.GetInstanceRequest(name=names[1]), metadata=metadata)
        (nic,) = instance.network_interfaces
        assert f"ip eth0={nic.ip_addresses[0]}/24" in out
        deadline = time.monotonic() + 30  # the reconciler's periodic pass sees OVN's `up`
        while True:
            port = network_stub.GetPort(napi.GetPortRequest(name=nic.port), metadata=metadata)
            if port.status == npb.Port.STATUS_ACTIVE or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert port.status == npb.Port.STATUS_ACTIVE
        channel.close()
    finally:
        assert up.stop() == 0
    # Ctrl-C and kumo up again: the guests start on a new chassis and talk again.
    again = Up(tmp_path)
    try:
        channel, service, metadata = _stubs(again, tmp_path)
        greeting = f"tcp {fixed}: hello from one"
        deadline = time.monotonic() + 150
        while True:
            out = service.GetSerialPortOutput(
                capi.GetSerialPortOutputRequest(name=names[1]), metadata=metadata
            ).contents
            if out.count(greeting) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert out.count(greeting) >= 2, out[-2000:]
        for name in names:
            gone = service.DeleteInstance(capi.DeleteInstanceRequest(name=name), metadata=metadata)
            operations_pb2_grpc_stub(channel).WaitOperation(
                operations_pb2.WaitOperationRequest(name=gone.name, timeout={"seconds": 120}),
                metadata=metadata,
            )
        channel.close()
    finally:
        assert again.stop() == 0
