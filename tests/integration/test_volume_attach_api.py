"""Volumes reach real guests through the whole stack: AttachVolume → API → the host's
kumo-agent (watch stream) → libvirt hot-plug of an RBD network disk (cephx) into a running
QEMU guest; DetachVolume unplugs it; attached to a second instance, the data is there.

A real API (SQLite) with the session's Ceph cluster as its RBD backend, a real libvirtd and
one kumo-agent with the libvirt driver and the same cluster in its `[volumes]` config. The
tiny guest reports hot-plugged disks on its console by serial and marks blank ones with its
hostname (scripts/build-image).
"""

from __future__ import annotations

import contextlib
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import grpc
import libvirt
import pytest
from google.longrunning import operations_pb2

from kumo.agent.config import VolumesConfig
from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import compute_service_pb2_grpc as crpc
from kumo.compute.v1 import resources_pb2 as cpb
from kumo.drivers.compute import libvirt_disks
from kumo.drivers.compute.libvirt import LibvirtDriver
from kumo.drivers.compute.libvirtd import LibvirtDaemon
from kumo.drivers.storage.rbd import RbdDriver
from kumo.storage.v1 import resources_pb2 as spb
from kumo.storage.v1 import storage_service_pb2 as sapi
from tests.conftest import make_config
from tests.integration.test_compute_lifecycle import console_until
from tests.integration.test_compute_resources import make_flavor
from tests.support.agent import AgentThread
from tests.support.ceph import CephCluster
from tests.support.cloud import ADMIN_PASSWORD, Stubs, make_tenant, sign_in, unique
from tests.support.images import upload_image
from tests.support.server import ServerThread
from tests.support.storage import create_volume, make_type, storage, succeed
from tests.support.topology import make_site

pytestmark = pytest.mark.slow


@pytest.fixture
def cloud(ceph: CephCluster) -> Iterator[tuple[ServerThread, Stubs]]:
    """An API server whose RBD backend is the session's Ceph cluster, and its admin."""
    config = make_config(
        f"sqlite:///{tempfile.mkdtemp(prefix='kumo-db-')}/kumo.db",
        storage={
            "rbd": {"conf": str(ceph.conf), "user": ceph.user, "keyring": str(ceph.user_keyring)}
        },
    )
    server = ServerThread(config)
    channel = grpc.insecure_channel(server.address)
    try:
        yield server, Stubs(channel, sign_in(channel, "admin", ADMIN_PASSWORD, "admin"))
    finally:
        channel.close()
        server.stop()


def _serial_gone(driver: LibvirtDriver, uid: str, serial: str, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if serial not in driver.attached_volumes(uid):
            return True
        time.sleep(0.2)
    return False


def test_attach_detach_through_the_api_reaches_real_guests(
    cloud: tuple[ServerThread, Stubs],
    ceph: CephCluster,
    libvirtd: LibvirtDaemon,
    guest_image: Path,
    tmp_path: Path,
) -> None:
    """Guest one writes to a hot-plugged RBD volume; after DetachVolume and AttachVolume to
    guest two, guest two reads guest one's data."""
    server, admin = cloud
    pool = unique("kumo-attach")
    ceph.create_pool(pool)
    site = make_site(admin)
    volume_type = make_type(admin, spb.BACKEND_RBD, pool)
    driver = LibvirtDriver(uri=libvirtd.uri, instances_dir=tmp_path / "instances")
    volumes = VolumesConfig(
        rbd_conf=str(ceph.conf), rbd_user=ceph.user, rbd_keyring=str(ceph.user_keyring)
    )
    agent = AgentThread(
        server.address, admin.token or "", unique("kvm"), site.rack, driver, volumes=volumes
    )
    tenant = make_tenant(admin.channel, admin, "v")
    member = tenant.stubs["member"]
    compute = crpc.ComputeServiceStub(member.channel)
    parent = f"{tenant.name}/zones/{site.zone}"
    try:
        image = upload_image(member, tenant.name, guest_image.read_bytes(), min_ram_mib=128)
        flavor = make_flavor(admin, 1, 128, 1)
        names = []
        for instance_id in ("vol-one", "vol-two"):
            op = compute.CreateInstance(
                capi.CreateInstanceRequest(
                    parent=parent,
                    instance_id=instance_id,
                    instance=cpb.Instance(flavor=flavor, image=image),
                )
            )
            done = member.operations.WaitOperation(
                operations_pb2.WaitOperationRequest(name=op.name, timeout={"seconds": 180})
            )
            assert done.done and not done.HasField("error"), done
            names.append(f"{parent}/instances/{instance_id}")
        one, two = names
        for name in names:
            assert "KUMO_BOOT_OK" in console_until(compute, name, "KUMO_BOOT_OK", 1, 90).contents
        uid_one = compute.GetInstance(capi.GetInstanceRequest(name=one)).uid
        uid_two = compute.GetInstance(capi.GetInstanceRequest(name=two)).uid

        volume = create_volume(member, parent, volume_type, 1)
        service = storage(member)
        attached = spb.Volume()
        succeed(
            member, service.AttachVolume(sapi.AttachVolumeRequest(name=volume.name, instance=one))
        ).response.Unpack(attached)
        serial = attached.attachments[0].serial
        wrote = f"disk serial={serial} wrote=written-by=vol-one"
        assert wrote in console_until(compute, one, wrote, 1, 60).contents
        host_side = RbdDriver(conf=str(ceph.conf), user="admin")
        assert host_side.read(pool, f"kumo-vol-{volume.uid}", 0, 18) == b"written-by=vol-one"

        succeed(
            member, service.DetachVolume(sapi.DetachVolumeRequest(name=volume.name, instance=one))
        )
        assert _serial_gone(driver, uid_one, serial)
        succeed(
            member, service.AttachVolume(sapi.AttachVolumeRequest(name=volume.name, instance=two))
        )
        found = f"disk serial={serial} found=written-by=vol-one"
        assert found in console_until(compute, two, found, 1, 60).contents
        assert serial in driver.attached_volumes(uid_two)
        # ExtendVolume of the attached volume: the guest's disk grows at once (blockResize).
        succeed(
            member, service.ExtendVolume(sapi.ExtendVolumeRequest(name=volume.name, size_gib=2))
        )
        conn = libvirt.open(libvirtd.uri)
        domain = conn.lookupByName(f"kumo-{uid_two}")
        target = libvirt_disks.attached(domain)[serial]
        deadline = time.monotonic() + 60
        while domain.blockInfo(target)[0] < 2 << 30 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert domain.blockInfo(target)[0] == 2 << 30
        conn.close()
        succeed(
            member, service.DetachVolume(sapi.DetachVolumeRequest(name=volume.name, instance=two))
        )
        assert _serial_gone(driver, uid_two, serial)
        host_side.close()
    finally:
        for name in ("vol-one", "vol-two"):
            with_delete = compute.DeleteInstance(
                capi.DeleteInstanceRequest(name=f"{parent}/instances/{name}")
            )
            member.operations.WaitOperation(
                operations_pb2.WaitOperationRequest(name=with_delete.name, timeout={"seconds": 60})
            )
        agent.stop()
        driver.close()


def test_boot_from_a_volume_cloned_from_the_image(
    cloud: tuple[ServerThread, Stubs],
    ceph: CephCluster,
    libvirtd: LibvirtDaemon,
    guest_image: Path,
    tmp_path: Path,
) -> None:
    """CreateInstance with `boot_volume` (an RBD clone of the tiny image): the real guest
    boots from the RBD disk (vda is the volume, through librbd) and reports KUMO_BOOT_OK;
    DeleteInstance leaves the volume AVAILABLE in Ceph. With `new_boot_volume` and
    `delete_boot_volume` the volume is made with the instance, booted from, and removed
    from Ceph with it."""
    server, admin = cloud
    pool = unique("kumo-boot")
    ceph.create_pool(pool)
    site = make_site(admin)
    volume_type = make_type(admin, spb.BACKEND_RBD, pool)
    driver = LibvirtDriver(uri=libvirtd.uri, instances_dir=tmp_path / "instances")
    volumes = VolumesConfig(
        rbd_conf=str(ceph.conf), rbd_user=ceph.user, rbd_keyring=str(ceph.user_keyring)
    )
    agent = AgentThread(
        server.address, admin.token or "", unique("kvm"), site.rack, driver, volumes=volumes
    )
    tenant = make_tenant(admin.channel, admin, "b")
    member = tenant.stubs["member"]
    compute = crpc.ComputeServiceStub(member.channel)
    parent = f"{tenant.name}/zones/{site.zone}"
    name = f"{parent}/instances/from-rbd"
    try:
        image = upload_image(member, tenant.name, guest_image.read_bytes(), min_ram_mib=128)
        root = create_volume(member, parent, volume_type, 1, source_image=image)
        assert root.state == spb.Volume.STATE_AVAILABLE and root.bootable, root.state_message
        started = time.monotonic()
        succeed(
            member,
            compute.CreateInstance(
                capi.CreateInstanceRequest(
                    parent=parent,
                    instance_id="from-rbd",
                    instance=cpb.Instance(
                        flavor=make_flavor(admin, 1, 128, 1), image=image, boot_volume=root.name
                    ),
                )
            ),
        )
        assert "KUMO_BOOT_OK" in console_until(compute, name, "KUMO_BOOT_OK", 1, 120).contents
        print(f"boot from an RBD volume to KUMO_BOOT_OK: {time.monotonic() - started:.1f} s")
        uid = compute.GetInstance(capi.GetInstanceRequest(name=name)).uid
        conn = libvirt.open(libvirtd.uri)
        domain = conn.lookupByName(f"kumo-{uid}")
        boot_disk = ET.fromstring(domain.XMLDesc(0)).find("./devices/disk/target[@dev='vda']/..")
        assert boot_disk is not None
        assert boot_disk.find("source").get("name") == f"{pool}/kumo-vol-{root.uid}"  # type: ignore[union-attr]
        assert libvirt_disks.attached(domain)[root.uid.replace("-", "")[:20]] == "vda"
        conn.close()
        service = storage(member)
        in_use = service.GetVolume(sapi.GetVolumeRequest(name=root.name))
        assert in_use.state == spb.Volume.STATE_IN_USE
        succeed(member, compute.DeleteInstance(capi.DeleteInstanceRequest(name=name)))
        after = service.GetVolume(sapi.GetVolumeRequest(name=root.name))
        assert after.state == spb.Volume.STATE_AVAILABLE and not after.attachments
        host_side = RbdDriver(conf=str(ceph.conf), user="admin")
        assert f"kumo-vol-{root.uid}" in host_side.list_volumes(pool)

        # A new volume made from the image with the instance, and deleted with it.
        name = f"{parent}/instances/on-new-rbd"
        succeed(
            member,
            compute.CreateInstance(
                capi.CreateInstanceRequest(
                    parent=parent,
                    instance_id="on-new-rbd",
                    instance=cpb.Instance(
                        flavor=make_flavor(admin, 1, 128, 1),
                        image=image,
                        new_boot_volume=cpb.NewBootVolume(volume_type=volume_type),
                        delete_boot_volume=True,
                    ),
                )
            ),
        )
        assert "KUMO_BOOT_OK" in console_until(compute, name, "KUMO_BOOT_OK", 1, 120).contents
        made = service.GetVolume(
            sapi.GetVolumeRequest(
                name=compute.GetInstance(capi.GetInstanceRequest(name=name)).boot_volume
            )
        )
        assert made.state == spb.Volume.STATE_IN_USE and f"kumo-vol-{made.uid}" in (
            host_side.list_volumes(pool)
        )
        succeed(member, compute.DeleteInstance(capi.DeleteInstanceRequest(name=name)))
        deadline = time.monotonic() + 60
        while f"kumo-vol-{made.uid}" in host_side.list_volumes(pool):
            assert time.monotonic() < deadline, "the boot volume was not deleted from Ceph"
            time.sleep(0.5)
        host_side.close()
    finally:
        with contextlib.suppress(grpc.RpcError):  # gone already when the test got that far
            compute.DeleteInstance(capi.DeleteInstanceRequest(name=name))
        agent.stop()
        driver.close()
