"""A real guest end to end: API → scheduler → kumo-agent → libvirt → QEMU (TCG) → console."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import libvirt
import pytest
from google.longrunning import operations_pb2

from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import compute_service_pb2_grpc as crpc
from kumo.compute.v1 import resources_pb2 as cpb
from kumo.drivers.compute.libvirt import LibvirtDriver
from kumo.drivers.compute.libvirtd import LibvirtDaemon
from kumo.image.v1 import resources_pb2 as ipb
from tests.integration.test_compute_lifecycle import console_until
from tests.integration.test_compute_resources import make_flavor
from tests.support.agent import AgentThread
from tests.support.cloud import Stubs, Tenant, rpc_error, unique
from tests.support.images import upload_image
from tests.support.server import ServerThread
from tests.support.topology import make_site

pytestmark = pytest.mark.slow
S = cpb.Instance


@pytest.mark.parametrize("api", ["sqlite"], indirect=True)
def test_real_guest_boots_prints_its_hostname_and_goes_away(
    api: ServerThread,
    admin: Stubs,
    tenant: Tenant,
    libvirtd: LibvirtDaemon,
    guest_image: Path,
    tmp_path: Path,
) -> None:
    """The tiny image boots on a real libvirtd through the whole stack; stop, start,
    resize (and confirm), snapshot (a live disk copy uploaded as an image), delete."""
    site = make_site(admin)
    driver = LibvirtDriver(uri=libvirtd.uri, instances_dir=tmp_path / "instances")
    agent = AgentThread(api.address, admin.token or "", unique("kvm"), site.rack, driver)
    try:
        member = tenant.stubs["member"]
        service = crpc.ComputeServiceStub(member.channel)
        image = upload_image(member, tenant.name, guest_image.read_bytes(), min_ram_mib=128)
        started = time.monotonic()
        op = service.CreateInstance(
            capi.CreateInstanceRequest(
                parent=f"{tenant.name}/zones/{site.zone}",
                instance_id="guest-one",
                instance=cpb.Instance(flavor=make_flavor(admin, 1, 128, 1), image=image),
            )
        )
        done = member.operations.WaitOperation(
            operations_pb2.WaitOperationRequest(name=op.name, timeout={"seconds": 180})
        )
        assert done.done and not done.HasField("error"), done
        instance = cpb.Instance()
        done.response.Unpack(instance)
        console = console_until(service, instance.name, "tick 2", timeout=120)
        print(f"create → RUNNING and console ticking: {time.monotonic() - started:.1f} s")
        assert "KUMO_BOOT_OK" in console.contents and "hostname=guest-one" in console.contents

        for method, request, expected in (
            (service.StopInstance, capi.StopInstanceRequest, S.STATE_STOPPED),
            (service.StartInstance, capi.StartInstanceRequest, S.STATE_RUNNING),
        ):
            step = method(request(name=instance.name))
            finished = member.operations.WaitOperation(
                operations_pb2.WaitOperationRequest(name=step.name, timeout={"seconds": 120})
            )
            assert finished.done and not finished.HasField("error"), finished
            assert (
                service.GetInstance(capi.GetInstanceRequest(name=instance.name)).state == expected
            )

        console_until(service, instance.name, "KUMO_BOOT_OK", count=2, timeout=120)
        bigger = make_flavor(admin, 1, 192, 2)
        for call, request in (
            (service.ResizeInstance, capi.ResizeInstanceRequest(name=instance.name, flavor=bigger)),
            (
                service.ConfirmResizeInstance,
                capi.ConfirmResizeInstanceRequest(name=instance.name),
            ),
        ):
            step = call(request)
            finished = member.operations.WaitOperation(
                operations_pb2.WaitOperationRequest(name=step.name, timeout={"seconds": 120})
            )
            assert finished.done and not finished.HasField("error"), finished
        connection = libvirt.open(libvirtd.uri)
        try:
            assert connection.lookupByName(f"kumo-{instance.uid}").maxMemory() == 192 * 1024
        finally:
            connection.close()
        console = console_until(service, instance.name, "KUMO_BOOT_OK", count=3, timeout=120)
        assert console.contents.count("KUMO_BOOT_OK") == 3  # created, started, resized

        snap = service.SnapshotInstance(
            capi.SnapshotInstanceRequest(name=instance.name, image_id="guest-one-snap")
        )
        saved = member.operations.WaitOperation(
            operations_pb2.WaitOperationRequest(name=snap.name, timeout={"seconds": 120})
        )
        assert saved.done and not saved.HasField("error"), saved
        image_saved = ipb.Image()
        saved.response.Unpack(image_saved)
        assert image_saved.state == ipb.Image.STATE_ACTIVE and image_saved.size_bytes > 0

        gone = service.DeleteInstance(capi.DeleteInstanceRequest(name=instance.name))
        member.operations.WaitOperation(
            operations_pb2.WaitOperationRequest(name=gone.name, timeout={"seconds": 120})
        )
        code, _ = rpc_error(
            lambda: service.GetInstance(capi.GetInstanceRequest(name=instance.name))
        )
        assert code == grpc.StatusCode.NOT_FOUND
        connection = libvirt.open(libvirtd.uri)
        try:
            assert not [d.name() for d in connection.listAllDomains() if instance.uid in d.name()]
        finally:
            connection.close()
    finally:
        agent.stop()
