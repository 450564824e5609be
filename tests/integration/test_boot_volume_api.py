"""Boot from volume through the API, on both databases, with a fake-driver agent.

CreateInstance with `boot_volume` attaches the volume (IN_USE) in its creating transaction;
the host's assignment carries it as the root volume, which the agent hands to the driver's
spawn; the volume cannot be deleted or detached while the instance exists; DeleteInstance
releases it (AVAILABLE, data kept). Bad input is a typed error and leaves nothing behind.
The volumes are local qcow2 files made from an image, so the assignment names a real file.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc
from google.longrunning import operations_pb2

from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import compute_service_pb2_grpc as crpc
from kumo.compute.v1 import resources_pb2 as cpb
from kumo.drivers.compute.base import GuestSpec
from kumo.drivers.compute.fake import FakeDriver
from kumo.identity.v1 import identity_service_pb2 as iapi
from kumo.storage.v1 import resources_pb2 as spb
from kumo.storage.v1 import storage_service_pb2 as sapi
from tests.integration.test_compute_resources import make_flavor
from tests.support.agent import AgentThread
from tests.support.cloud import Stubs, Tenant, rpc_error, unique
from tests.support.images import upload_image
from tests.support.server import ServerThread
from tests.support.storage import create_volume, make_type, storage, succeed
from tests.support.topology import make_site

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


def test_boot_from_volume_attaches_it_as_the_root_disk(
    api: ServerThread, admin: Stubs, tenant: Tenant, other_tenant: Tenant
) -> None:
    site = make_site(admin)
    local = make_type(admin, spb.BACKEND_QCOW2, "local")
    driver = FakeDriver()
    agent = AgentThread(api.address, admin.token or "", unique("fk"), site.rack, driver)
    member = tenant.stubs["member"]
    volumes = storage(member)
    compute = crpc.ComputeServiceStub(member.channel)
    parent = f"{tenant.name}/zones/{site.zone}"
    try:
        image = upload_image(member, tenant.name)
        flavor = make_flavor(admin, 1, 128, 1)
        root = create_volume(member, parent, local, source_image=image)
        assert root.state == V.STATE_AVAILABLE and root.bootable, root.state_message

        def create(instance_id: str, boot_volume: str) -> operations_pb2.Operation:
            return compute.CreateInstance(
                capi.CreateInstanceRequest(
                    parent=parent,
                    instance_id=instance_id,
                    instance=cpb.Instance(flavor=flavor, image=image, boot_volume=boot_volume),
                )
            )

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
        time.sleep(1)  # an agent pass with the guest running must leave the root disk alone
        assert serial in driver.attached_volumes(instance.uid)

        # In use: a second boot, delete, detach, rebuild and snapshot are refused.
        in_use = grpc.StatusCode.FAILED_PRECONDITION
        assert _code(lambda: create("bad-e", root.name)) == in_use
        assert (
            _code(lambda: volumes.DeleteVolume(sapi.DeleteVolumeRequest(name=root.name))) == in_use
        )
        detach = sapi.DetachVolumeRequest(name=root.name, instance=name)
        assert _code(lambda: volumes.DetachVolume(detach)) == in_use
        rebuild = capi.RebuildInstanceRequest(name=name)
        assert _code(lambda: compute.RebuildInstance(rebuild)) == in_use
        snap = capi.SnapshotInstanceRequest(name=name, image_id=unique("snap"))
        assert _code(lambda: compute.SnapshotInstance(snap)) == in_use
        listed = compute.ListInstances(capi.ListInstancesRequest(parent=parent)).instances
        assert [i.name for i in listed] == [name]
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
    finally:
        agent.stop()
