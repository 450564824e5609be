"""A new user's first minute: `kumo up`, sign in, boot the default image, read its console;
Ctrl-C and `kumo up` again bring the guest back (desired state survives restarts)."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest
from google.longrunning import operations_pb2, operations_pb2_grpc

from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import compute_service_pb2_grpc as crpc
from kumo.compute.v1 import resources_pb2 as cpb
from kumo.drivers.compute.libvirtd import unavailable_reason
from tests.e2e.test_cli_against_kumo_up import Up
from tests.support.cloud import sign_in

pytestmark = pytest.mark.slow
INSTANCE = "projects/admin/zones/local-1/instances/demo"
Metadata = tuple[tuple[str, str]]


def _stubs(
    up: Up, tmp_path: Path
) -> tuple[grpc.Channel, crpc.ComputeServiceStub, tuple[tuple[str, str]]]:
    channel = grpc.insecure_channel(f"127.0.0.1:{up.port}")
    password = (tmp_path / "data" / "admin-password").read_text().strip()
    token = sign_in(channel, "admin", password, "admin")
    return channel, crpc.ComputeServiceStub(channel), (("authorization", f"Bearer {token}"),)


def _console(
    service: crpc.ComputeServiceStub, metadata: tuple[tuple[str, str]], text: str, count: int
) -> str:
    deadline = time.monotonic() + 120
    while True:
        out = service.GetSerialPortOutput(
            capi.GetSerialPortOutputRequest(name=INSTANCE), metadata=metadata
        )
        if out.contents.count(text) >= count or time.monotonic() > deadline:
            return str(out.contents)
        time.sleep(0.5)


def test_boot_the_default_image_and_survive_a_restart(tmp_path: Path) -> None:
    """The banner's first-guest recipe works; after a restart the guest runs again."""
    if (reason := unavailable_reason()) is not None:
        pytest.skip(reason)
    up = Up(tmp_path)
    try:
        assert "host " in "".join(up.banner), "".join(up.banner)
        channel, service, metadata = _stubs(up, tmp_path)
        started = time.monotonic()
        op = service.CreateInstance(
            capi.CreateInstanceRequest(
                parent="projects/admin/zones/local-1",
                instance_id="demo",
                instance=cpb.Instance(
                    flavor="flavors/tiny", image="projects/admin/images/kumo-tiny"
                ),
            ),
            metadata=metadata,
        )
        operations = operations_pb2_grpc_stub(channel)
        done = operations.WaitOperation(
            operations_pb2.WaitOperationRequest(name=op.name, timeout={"seconds": 180}),
            metadata=metadata,
        )
        assert done.done and not done.HasField("error"), done
        console = _console(service, metadata, "hostname=demo", 1)
        print(f"kumo up → guest console: {time.monotonic() - started:.1f} s")
        assert "KUMO_BOOT_OK" in console
        channel.close()
    finally:
        assert up.stop() == 0
    again = Up(tmp_path)
    try:
        channel, service, metadata = _stubs(again, tmp_path)
        console = _console(service, metadata, "KUMO_BOOT_OK", 2)  # booted once more
        assert console.count("KUMO_BOOT_OK") >= 2
        instance = service.GetInstance(capi.GetInstanceRequest(name=INSTANCE), metadata=metadata)
        assert instance.state == cpb.Instance.STATE_RUNNING
        gone = service.DeleteInstance(capi.DeleteInstanceRequest(name=INSTANCE), metadata=metadata)
        operations_pb2_grpc_stub(channel).WaitOperation(
            operations_pb2.WaitOperationRequest(name=gone.name, timeout={"seconds": 120}),
            metadata=metadata,
        )
        channel.close()
    finally:
        assert again.stop() == 0


def operations_pb2_grpc_stub(channel: grpc.Channel) -> operations_pb2_grpc.OperationsStub:
    return operations_pb2_grpc.OperationsStub(channel)
