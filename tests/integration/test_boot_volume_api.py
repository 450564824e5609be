"""Boot from volume through the API, on both databases, with a fake-driver agent.

CreateInstance with `boot_volume` attaches the volume (IN_USE) in its creating transaction;
the host's assignment carries it as the root volume, which the agent hands to the driver's
spawn; the volume cannot be deleted or detached while the instance exists; DeleteInstance
releases it (AVAILABLE, data kept). Bad input is a typed error and leaves nothing behind.
The volumes are local qcow2 files made from an image, so the assignment names a real file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, NamedTuple

import grpc
import pytest
from google.longrunning import operations_pb2

from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import compute_service_pb2_grpc as crpc
from kumo.compute.v1 import resources_pb2 as cpb
from kumo.drivers.compute.base import GuestSpec
from kumo.drivers.compute.fake import FakeDriver
from kumo.identity.v1 import identity_service_pb2 as iapi
from kumo.image.v1 import image_service_pb2 as iapi_images
from kumo.image.v1 import image_service_pb2_grpc as irpc
from kumo.storage.v1 import resources_pb2 as spb
from kumo.storage.v1 import storage_service_pb2 as sapi
from kumo.topology.v1 import topology_service_pb2 as tapi
from tests.conftest import database_url_for, make_config
from tests.integration.test_bad_input import violations
from tests.integration.test_compute_resources import make_flavor
from tests.support.agent import AgentThread
from tests.support.cloud import (
    ADMIN_PASSWORD,
    Stubs,
    Tenant,
    make_tenant,
    rpc_error,
    sign_in,
    unique,
)
from tests.support.images import upload_image
from tests.support.server import ServerThread
from tests.support.storage import create_volume, make_type, storage, succeed, wait
from tests.support.topology import Site, make_site

V = spb.Volume


def _spec_when(driver: FakeDriver, uid: str, timeout: float = 60) -> GuestSpec:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return driver.spec_of(uid)
        except Exception:
            time.sleep(0.1)
    raise AssertionError(f"guest {uid} was not spawned")


def _code(call: Callable[[], object]) -> grpc.StatusCode:
    code, _ = rpc_error(call)
    return code


class FakeHost(NamedTuple):
    """A zone with one fake-driver host, and a qcow2 volume type."""

    site: Site
    volume_type: str
    driver: FakeDriver


@pytest.fixture
def fake_host(api: ServerThread, admin: Stubs) -> Iterator[FakeHost]:
    site = make_site(admin)
    driver = FakeDriver()
    agent = AgentThread(api.address, admin.token or "", unique("fk"), site.rack, driver)
    try:
        yield FakeHost(site, make_type(admin, spb.BACKEND_QCOW2, "local"), driver)
    finally:
        agent.stop()


class Launcher(NamedTuple):
    """A project member's stubs, and an image and a flavor to create instances with in a
    zone (`parent`)."""

    member: Stubs
    compute: Any
    volumes: Any
    parent: str
    image: str
    flavor: str

    def create(self, instance_id: str, **fields: object) -> operations_pb2.Operation:
        """CreateInstance of the image and flavor, with these other Instance fields."""
        return self.compute.CreateInstance(
            capi.CreateInstanceRequest(
                parent=self.parent,
                instance_id=instance_id,
                instance=cpb.Instance(flavor=self.flavor, image=self.image, **fields),  # type: ignore[arg-type]
            )
        )


def launcher(
    admin: Stubs, tenant: Tenant, zone: str, sizes: tuple[int, ...] = (1, 128, 1)
) -> Launcher:
    """A Launcher for the tenant's member in `zone`, with a new image and a new flavor."""
    member = tenant.stubs["member"]
    return Launcher(
        member,
        crpc.ComputeServiceStub(member.channel),
        storage(member),
        f"{tenant.name}/zones/{zone}",
        upload_image(member, tenant.name),
        make_flavor(admin, *sizes),
    )


def test_boot_from_volume_attaches_it_as_the_root_disk(
    fake_host: FakeHost, admin: Stubs, tenant: Tenant, other_tenant: Tenant
) -> None:
    site, local, driver = fake_host
    launch = launcher(admin, tenant, site.zone)
    member, compute, volumes, parent, image, _ = launch
    root = create_volume(member, parent, local, source_image=image)
    assert root.state == V.STATE_AVAILABLE and root.bootable, root.state_message

    def create(instance_id: str, boot_volume: str) -> operations_pb2.Operation:
        return launch.create(instance_id, boot_volume=boot_volume)

    # Bad input first: typed errors, nothing stored.
    blank = create_volume(member, parent, local)
    others = create_volume(
        other_tenant.stubs["member"],
        f"{other_tenant.name}/zones/{site.zone}",
        local,
        source_image=upload_image(other_tenant.stubs["member"], other_tenant.name),
    )
    assert _code(lambda: create("bad-a", others.name)) == grpc.StatusCode.NOT_FOUND
    missing = f"{parent}/volumes/no-such-volume"
    assert _code(lambda: create("bad-b", missing)) == grpc.StatusCode.NOT_FOUND
    assert _code(lambda: create("bad-c", blank.name)) == grpc.StatusCode.FAILED_PRECONDITION
    assert _code(lambda: create("bad-d", "not a volume")) == grpc.StatusCode.INVALID_ARGUMENT

    name = f"{parent}/instances/from-volume"
    succeed(member, create("from-volume", root.name))
    instance = compute.GetInstance(capi.GetInstanceRequest(name=name))
    assert instance.boot_volume == root.name
    current = volumes.GetVolume(sapi.GetVolumeRequest(name=root.name))
    assert current.state == V.STATE_IN_USE
    assert [a.instance for a in current.attachments] == [name]
    serial = current.attachments[0].serial

    # The host boots the guest from it.
    spec = _spec_when(driver, instance.uid)
    assert spec.root_volume is not None and spec.root_volume.serial == serial
    assert spec.root_volume.source.kind == "file"
    assert spec.root_volume.source.path.endswith(f"kumo-vol-{root.uid}.qcow2")
    assert not spec.root_volume.read_only
    assert spec.image_path is None  # the host fetched no image: the volume holds it
    time.sleep(1)  # an agent pass with the guest running must leave the root disk alone
    assert serial in driver.attached_volumes(instance.uid)

    # In use: a second boot, delete, detach, rebuild and snapshot are refused.
    in_use = grpc.StatusCode.FAILED_PRECONDITION
    assert _code(lambda: create("bad-e", root.name)) == in_use
    assert _code(lambda: volumes.DeleteVolume(sapi.DeleteVolumeRequest(name=root.name))) == in_use
    detach = sapi.DetachVolumeRequest(name=root.name, instance=name)
    assert _code(lambda: volumes.DetachVolume(detach)) == in_use
    rebuild = capi.RebuildInstanceRequest(name=name)
    assert _code(lambda: compute.RebuildInstance(rebuild)) == in_use
    snap = capi.SnapshotInstanceRequest(name=name, image_id=unique("snap"))
    assert _code(lambda: compute.SnapshotInstance(snap)) == in_use
    listed = compute.ListInstances(capi.ListInstancesRequest(parent=parent)).instances
    assert [i.name for i in listed] == [name]
    # The instance shows its attached volumes, read with it (Get and List), in id order.
    assert [(v.volume, v.uid) for v in instance.attached_volumes] == [(root.name, root.uid)]
    assert listed[0].attached_volumes == instance.attached_volumes
    succeed(member, volumes.AttachVolume(sapi.AttachVolumeRequest(name=blank.name, instance=name)))
    both = compute.GetInstance(capi.GetInstanceRequest(name=name)).attached_volumes
    assert [v.volume for v in both] == sorted([root.name, blank.name])
    succeed(member, volumes.DetachVolume(sapi.DetachVolumeRequest(name=blank.name, instance=name)))
    shown = compute.ListInstances(capi.ListInstancesRequest(parent=parent)).instances
    assert shown[0].attached_volumes == instance.attached_volumes
    quota = member.identity.GetQuota(iapi.GetQuotaRequest(name=f"{tenant.name}/quota"))
    assert {q.resource: q.in_use for q in quota.limits}["instances"] == 1
    for stubs, volume in ((member, blank), (other_tenant.stubs["member"], others)):
        now = storage(stubs).GetVolume(sapi.GetVolumeRequest(name=volume.name))
        assert now.state == V.STATE_AVAILABLE and not now.attachments

    # Deleting the instance releases the volume, which survives.
    succeed(member, compute.DeleteInstance(capi.DeleteInstanceRequest(name=name)))
    current = volumes.GetVolume(sapi.GetVolumeRequest(name=root.name))
    assert current.state == V.STATE_AVAILABLE and not current.attachments
    succeed(member, volumes.DeleteVolume(sapi.DeleteVolumeRequest(name=root.name)))


def _volumes_of(stubs: Stubs, parent: str) -> dict[str, spb.Volume]:
    listed = storage(stubs).ListVolumes(sapi.ListVolumesRequest(parent=parent, page_size=100))
    return {v.name: v for v in listed.volumes}


def _in_use(stubs: Stubs, project: str) -> dict[str, int]:
    quota = stubs.identity.GetQuota(iapi.GetQuotaRequest(name=f"{project}/quota"))
    return {q.resource: q.in_use for q in quota.limits}


def test_boot_from_a_new_volume_made_from_the_image(
    api: ServerThread, fake_host: FakeHost, admin: Stubs, tenant: Tenant
) -> None:
    """CreateInstance with `new_boot_volume` records a volume made from the image (CREATING,
    attached, quotas charged) in its creating transaction; BUILD boots from it once made
    (IN_USE); with `delete_boot_volume` DeleteInstance deletes it, without, leaves it
    AVAILABLE. A volume that cannot be made fails the build (instance ERROR). Bad input is
    a typed error and stores nothing."""
    site, local, driver = fake_host
    launch = launcher(admin, tenant, site.zone)
    member, compute, volumes, parent, image, flavor = launch

    create = launch.create

    new = cpb.NewBootVolume(size_gib=1, volume_type=local)
    other = create_volume(member, parent, local, source_image=image)
    before = (_volumes_of(member, parent), _in_use(member, tenant.name))
    bad: list[tuple[dict[str, object], grpc.StatusCode, str]] = [
        ({"new_boot_volume": new, "boot_volume": other.name}, grpc.StatusCode.INVALID_ARGUMENT,
         "instance.new_boot_volume"),
        ({"delete_boot_volume": True}, grpc.StatusCode.INVALID_ARGUMENT,
         "instance.delete_boot_volume"),
        ({"new_boot_volume": cpb.NewBootVolume(size_gib=-1)}, grpc.StatusCode.INVALID_ARGUMENT,
         "instance.new_boot_volume.size_gib"),
        ({"new_boot_volume": cpb.NewBootVolume(size_gib=1, volume_type="volumeTypes/none")},
         grpc.StatusCode.NOT_FOUND, "volumeTypes/none"),
    ]  # fmt: skip
    for index, (fields, code, mentioned) in enumerate(bad):
        got, status = rpc_error(partial(create, f"bad-{index}", **fields))
        assert status is not None and got == code, (fields, got, status)
        where = violations(status) if code == grpc.StatusCode.INVALID_ARGUMENT else {}
        assert mentioned in where or mentioned in status.message, (fields, status)
    assert (_volumes_of(member, parent), _in_use(member, tenant.name)) == before
    listed = compute.ListInstances(capi.ListInstancesRequest(parent=parent)).instances
    assert not listed

    # Made with the instance, booted from, deleted with it.
    name = f"{parent}/instances/on-new"
    operation = create("on-new", new_boot_volume=new, delete_boot_volume=True)
    instance = compute.GetInstance(capi.GetInstanceRequest(name=name))
    assert instance.delete_boot_volume and instance.boot_volume.startswith(f"{parent}/volumes/")
    made = volumes.GetVolume(sapi.GetVolumeRequest(name=instance.boot_volume))
    assert made.state in (V.STATE_CREATING, V.STATE_IN_USE), made
    assert (made.source_image, made.bootable, made.size_gib) == (image, True, 1)
    assert [a.instance for a in made.attachments] == [name]
    charged = _in_use(member, tenant.name)
    assert (charged["volumes"], charged["gigabytes"]) == (
        before[1]["volumes"] + 1,
        before[1]["gigabytes"] + 1,
    )
    succeed(member, operation)
    made = volumes.GetVolume(sapi.GetVolumeRequest(name=instance.boot_volume))
    assert made.state == V.STATE_IN_USE, made
    spec = _spec_when(driver, instance.uid)
    assert spec.root_volume is not None
    assert spec.root_volume.source.path.endswith(f"kumo-vol-{made.uid}.qcow2")
    succeed(member, compute.DeleteInstance(capi.DeleteInstanceRequest(name=name)))
    deadline = time.monotonic() + 30
    while instance.boot_volume in _volumes_of(member, parent):
        assert time.monotonic() < deadline, "the boot volume was not deleted"
        time.sleep(0.2)
    assert _in_use(member, tenant.name)["volumes"] == before[1]["volumes"]

    # Without delete_boot_volume the volume stays, AVAILABLE; no size: the image's (1 GiB).
    name = f"{parent}/instances/keeps"
    succeed(member, create("keeps", new_boot_volume=cpb.NewBootVolume(volume_type=local)))
    kept = compute.GetInstance(capi.GetInstanceRequest(name=name)).boot_volume
    assert volumes.GetVolume(sapi.GetVolumeRequest(name=kept)).size_gib == 1
    succeed(member, compute.DeleteInstance(capi.DeleteInstanceRequest(name=name)))
    after = volumes.GetVolume(sapi.GetVolumeRequest(name=kept))
    assert after.state == V.STATE_AVAILABLE and not after.attachments, after
    succeed(member, volumes.DeleteVolume(sapi.DeleteVolumeRequest(name=kept)))

    # An image whose data is gone: the volume is ERROR, the build fails.
    broken = upload_image(member, tenant.name)
    images = irpc.ImageServiceStub(member.channel)
    (api.config.images_dir / images.GetImage(iapi_images.GetImageRequest(name=broken)).uid).unlink()
    name = f"{parent}/instances/broken"
    done = wait(
        member,
        compute.CreateInstance(
            capi.CreateInstanceRequest(
                parent=parent,
                instance_id="broken",
                instance=cpb.Instance(
                    flavor=flavor, image=broken, new_boot_volume=new, delete_boot_volume=True
                ),
            )
        ),
    )
    assert done.error.code == grpc.StatusCode.FAILED_PRECONDITION.value[0], done
    failed = compute.GetInstance(capi.GetInstanceRequest(name=name))
    assert failed.state == cpb.Instance.STATE_ERROR and "is in ERROR" in failed.status_message
    errored = volumes.GetVolume(sapi.GetVolumeRequest(name=failed.boot_volume))
    assert errored.state == V.STATE_ERROR, errored
    succeed(member, compute.DeleteInstance(capi.DeleteInstanceRequest(name=name)))
    deadline = time.monotonic() + 30
    while failed.boot_volume in _volumes_of(member, parent):
        assert time.monotonic() < deadline, "the ERROR boot volume was not deleted"
        time.sleep(0.2)
    succeed(member, volumes.DeleteVolume(sapi.DeleteVolumeRequest(name=other.name)))


def test_boot_from_a_new_volume_made_from_a_snapshot(
    fake_host: FakeHost, admin: Stubs, tenant: Tenant, other_tenant: Tenant
) -> None:
    """`new_boot_volume.source_snapshot`: the new volume is a copy of a snapshot of a
    bootable volume, of that volume's type unless one is given, and the guest boots from it.
    A snapshot of a volume that is not bootable is FAILED_PRECONDITION, another project's
    INVALID_ARGUMENT; neither stores anything."""
    site, local, driver = fake_host
    launch = launcher(admin, tenant, site.zone)
    member, compute, volumes, parent, image, _ = launch

    def snapshot_of(volume: spb.Volume) -> str:
        request = sapi.CreateSnapshotRequest(
            parent=volume.name, snapshot_id=unique("s"), snapshot=spb.Snapshot()
        )
        succeed(member, volumes.CreateSnapshot(request))
        return f"{volume.name}/snapshots/{request.snapshot_id}"

    def create(instance_id: str, snapshot: str) -> operations_pb2.Operation:
        wanted = cpb.NewBootVolume(source_snapshot=snapshot)
        return launch.create(instance_id, new_boot_volume=wanted)

    bootable = snapshot_of(create_volume(member, parent, local, 2, source_image=image))
    blank = snapshot_of(create_volume(member, parent, local))
    theirs = other_tenant.stubs["member"]
    foreign = create_volume(theirs, f"{other_tenant.name}/zones/{site.zone}", local)
    before = _volumes_of(member, parent)
    assert _code(lambda: create("bad-a", blank)) == grpc.StatusCode.FAILED_PRECONDITION
    assert _code(lambda: create("bad-b", f"{foreign.name}/snapshots/s")) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    assert _volumes_of(member, parent) == before

    name = f"{parent}/instances/from-snapshot"
    succeed(member, create("from-snapshot", bootable))
    instance = compute.GetInstance(capi.GetInstanceRequest(name=name))
    made = volumes.GetVolume(sapi.GetVolumeRequest(name=instance.boot_volume))
    assert (made.source_snapshot, made.size_gib, made.volume_type) == (bootable, 2, local)
    assert made.state == V.STATE_IN_USE and made.bootable, made
    spec = _spec_when(driver, instance.uid)
    assert spec.root_volume is not None
    assert spec.root_volume.source.path.endswith(f"kumo-vol-{made.uid}.qcow2")
    succeed(member, compute.DeleteInstance(capi.DeleteInstanceRequest(name=name)))


def test_an_instance_on_a_boot_volume_takes_no_host_disk(
    api: ServerThread, admin: Stubs, tenant: Tenant
) -> None:
    """On a host with 10 GiB of disk, a flavor of 50 GiB cannot place an instance whose root
    disk is on the host (NO_VALID_HOST), but places one that boots from a volume, which
    claims the host's vCPUs and memory and none of its disk (as Nova asks no DISK_GB of a
    volume-backed server); its deletion gives them back."""
    site = make_site(admin)
    host = unique("fk")
    agent = AgentThread(api.address, admin.token or "", host, site.rack, FakeDriver(disk_gib=10))
    try:
        local = make_type(admin, spb.BACKEND_QCOW2, "local")
        launch = launcher(admin, tenant, site.zone, (2, 256, 50))
        member, compute, parent = launch.member, launch.compute, launch.parent

        def create(instance_id: str, **fields: object) -> operations_pb2.Operation:
            return wait(member, launch.create(instance_id, **fields))

        def allocated() -> tuple[int, int, int]:
            got = admin.topology.GetHost(tapi.GetHostRequest(name=f"hosts/{host}")).allocated
            return got.vcpus, got.memory_mib, got.disk_gib

        refused = create("on-host")
        assert "no host has enough" in refused.error.message, refused
        placed = create("on-volume", new_boot_volume=cpb.NewBootVolume(volume_type=local),
                        delete_boot_volume=True)  # fmt: skip
        assert not placed.HasField("error"), placed.error
        assert allocated() == (2, 256, 0)
        for name in ("on-volume", "on-host"):
            succeed(
                member,
                compute.DeleteInstance(
                    capi.DeleteInstanceRequest(name=f"{parent}/instances/{name}")
                ),
            )
        assert allocated() == (0, 0, 0)
    finally:
        agent.stop()


def test_new_boot_volumes_need_no_free_operation_slot(request: pytest.FixtureRequest) -> None:
    """An API that runs one operation at a time, and 6 instances created at once, each on a
    new boot volume: all of them are built, and all of them go with their volumes. A BUILD
    holding the only slot while it waits for its volume's CREATE_VOLUME, which waited for a
    free slot, hung for good before the waiter expedited it (the test timed out)."""
    config = make_config(database_url_for("sqlite", request), operations={"concurrency": 1})
    server = ServerThread(config)
    try:
        with grpc.insecure_channel(server.address) as channel:
            admin = Stubs(channel, sign_in(channel, "admin", ADMIN_PASSWORD, "admin"))
            tenant = make_tenant(channel, admin, "n")
            site = make_site(admin)
            agent = AgentThread(server.address, admin.token or "", unique("fk"), site.rack,
                                FakeDriver())  # fmt: skip
            try:
                local = make_type(admin, spb.BACKEND_QCOW2, "local")
                launch = launcher(admin, tenant, site.zone)
                wanted = cpb.NewBootVolume(volume_type=local)
                with ThreadPoolExecutor(6) as pool:  # at once, as a burst would
                    started = list(
                        pool.map(
                            lambda n: launch.create(
                                f"burst-{n}", new_boot_volume=wanted, delete_boot_volume=True
                            ),
                            range(6),
                        )
                    )
                for operation in started:
                    succeed(launch.member, operation)
                for n in range(6):
                    name = f"{launch.parent}/instances/burst-{n}"
                    succeed(
                        launch.member,
                        launch.compute.DeleteInstance(capi.DeleteInstanceRequest(name=name)),
                    )
                deadline = time.monotonic() + 60
                while _volumes_of(launch.member, launch.parent):
                    assert time.monotonic() < deadline, "boot volumes left behind"
                    time.sleep(0.2)
            finally:
                agent.stop()
    finally:
        server.stop()
