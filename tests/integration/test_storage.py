"""Block storage through the API on a real single-node Ceph cluster (and local qcow2).

One API server per database backend (SQLite, PostgreSQL), with the session's Ceph cluster
configured as its RBD backend (client.kumo, cephx). The tests check both what the API says
and what is really in Ceph, read back with the rbd bindings as the cluster administrator.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from functools import partial

import grpc
import pytest
from google.longrunning import operations_pb2
from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.drivers.storage.base import VolumeDriver
from kumo.drivers.storage.rbd import RbdDriver
from kumo.identity.v1 import identity_service_pb2 as iapi
from kumo.server.db.models import VolumeRow
from kumo.server.storage.reconciler import reconcile
from kumo.storage.v1 import resources_pb2 as spb
from kumo.storage.v1 import storage_service_pb2 as sapi
from tests.conftest import BACKENDS, database_url_for, make_config
from tests.integration.test_operations import metadata
from tests.support.ceph import CephCluster
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
from tests.support.topology import make_site

GiB = 1 << 30
V = spb.Volume


class World:
    """The module's server, its admin, a zone, and an RBD and a qcow2 volume type."""

    def __init__(self, ceph: CephCluster, database_url: str) -> None:
        self.ceph = ceph
        self.pool = unique("kumo-vols")
        ceph.create_pool(self.pool)
        config = make_config(
            database_url,
            storage={
                "rbd": {
                    "conf": str(ceph.conf),
                    "user": ceph.user,
                    "keyring": str(ceph.user_keyring),
                }
            },
        )
        self.server = ServerThread(config)
        self.channel = grpc.insecure_channel(self.server.address)
        self.admin = Stubs(self.channel, sign_in(self.channel, "admin", ADMIN_PASSWORD, "admin"))
        self.zone = make_site(self.admin).zone
        self.rbd_type = make_type(self.admin, spb.BACKEND_RBD, self.pool)
        self.backup_pool = unique("kumo-backups")
        ceph.create_pool(self.backup_pool)
        self.rbd_backup_type = make_type(
            self.admin, spb.BACKEND_RBD, self.pool, backup_pool=self.backup_pool
        )
        self.local_type = make_type(self.admin, spb.BACKEND_QCOW2, "local")
        # The cluster seen by its administrator, to check what is really in Ceph.
        self.inspect: VolumeDriver = RbdDriver(conf=str(ceph.conf), user="admin")

    def tenant(self) -> Tenant:
        return make_tenant(self.channel, self.admin, "s")

    def parent(self, tenant: Tenant) -> str:
        return f"{tenant.name}/zones/{self.zone}"

    def rbd_images(self) -> list[str]:
        return self.inspect.list_volumes(self.pool)

    def close(self) -> None:
        self.channel.close()
        self.server.stop()


@pytest.fixture(scope="module", params=BACKENDS)
def world(ceph: CephCluster, request: pytest.FixtureRequest) -> Iterator[World]:
    w = World(ceph, database_url_for(request.param, request))
    try:
        yield w
    finally:
        w.close()


def object_of(volume: spb.Volume) -> str:
    return f"kumo-vol-{volume.uid}"


def usage(stubs: Stubs, tenant: Tenant) -> dict[str, int]:
    quota = stubs.identity.GetQuota(iapi.GetQuotaRequest(name=f"{tenant.name}/quota"))
    return {limit.resource: limit.in_use for limit in quota.limits}


def test_rbd_create_snapshot_clone_extend_delete(world: World) -> None:
    """The whole life of RBD volumes, checked in Ceph: a clone made from a snapshot sees the
    snapshot's data, data written through the clone is only there, extend grows the image,
    and nothing is left after the deletes (quota usage back to zero)."""
    tenant = world.tenant()
    member = tenant.stubs["member"]
    service = storage(member)
    parent = world.parent(tenant)
    source = create_volume(member, parent, world.rbd_type, 1, display_name="data")
    assert source.state == V.STATE_AVAILABLE, source.state_message
    assert object_of(source) in world.rbd_images()
    assert world.inspect.volume_info(world.pool, object_of(source)).size_bytes == GiB
    world.inspect.write(world.pool, object_of(source), 4096, b"written before the snapshot")

    op = service.CreateSnapshot(
        sapi.CreateSnapshotRequest(parent=source.name, snapshot_id="s1", snapshot=spb.Snapshot())
    )
    snapshot = spb.Snapshot()
    succeed(member, op).response.Unpack(snapshot)
    assert snapshot.state == spb.Snapshot.STATE_AVAILABLE and snapshot.size_gib == 1
    assert service.GetSnapshot(sapi.GetSnapshotRequest(name=snapshot.name)).uid == snapshot.uid
    world.inspect.write(world.pool, object_of(source), 4096, b"WRITTEN AFTER THE SNAPSHOT!")

    clone = create_volume(member, parent, world.rbd_type, 2, source_snapshot=snapshot.name)
    assert clone.state == V.STATE_AVAILABLE, clone.state_message
    # Without a type, a copy of a snapshot has its volume's type (not the default's), as in
    # Cinder.
    untyped = create_volume(member, parent, "", source_snapshot=snapshot.name)
    assert (untyped.state, untyped.volume_type) == (V.STATE_AVAILABLE, world.rbd_type), untyped
    succeed(member, service.DeleteVolume(sapi.DeleteVolumeRequest(name=untyped.name)))
    info = world.inspect.volume_info(world.pool, object_of(clone))
    assert info.parent is not None and info.parent.volume == object_of(source)
    assert info.size_bytes == 2 * GiB
    assert world.inspect.read(world.pool, object_of(clone), 4096, 27) == (
        b"written before the snapshot"
    )
    world.inspect.write(world.pool, object_of(clone), 0, b"only in the clone")
    assert world.inspect.read(world.pool, object_of(clone), 0, 17) == b"only in the clone"
    assert world.inspect.read(world.pool, object_of(source), 0, 17) == bytes(17)

    copy = create_volume(member, parent, world.rbd_type, 1, source_volume=source.name)
    assert copy.state == V.STATE_AVAILABLE, copy.state_message
    assert world.inspect.volume_info(world.pool, object_of(copy)).parent is None  # flattened
    assert world.inspect.read(world.pool, object_of(copy), 4096, 27) == (
        b"WRITTEN AFTER THE SNAPSHOT!"
    )

    extended = V()
    succeed(
        member, service.ExtendVolume(sapi.ExtendVolumeRequest(name=source.name, size_gib=3))
    ).response.Unpack(extended)
    assert extended.size_gib == 3 and extended.state == V.STATE_AVAILABLE
    assert world.inspect.volume_info(world.pool, object_of(source)).size_bytes == 3 * GiB
    assert usage(member, tenant)["gigabytes"] == 3 + 2 + 1 + 1  # volumes + the snapshot

    code, status = rpc_error(
        lambda: service.DeleteVolume(sapi.DeleteVolumeRequest(name=source.name))
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "snapshot" in status.message  # type: ignore[union-attr]
    for name in (clone.name, copy.name):
        succeed(member, service.DeleteVolume(sapi.DeleteVolumeRequest(name=name)))
    succeed(member, service.DeleteSnapshot(sapi.DeleteSnapshotRequest(name=snapshot.name)))
    succeed(member, service.DeleteVolume(sapi.DeleteVolumeRequest(name=source.name)))
    for volume in (source, clone, copy):
        assert object_of(volume) not in world.rbd_images()
    counts = usage(member, tenant)
    assert (counts["volumes"], counts["gigabytes"], counts["snapshots"]) == (0, 0, 0)


def test_deleting_a_snapshot_flattens_its_clones(world: World) -> None:
    """A clone outlives the snapshot it came from, with its data."""
    tenant = world.tenant()
    member = tenant.stubs["member"]
    service = storage(member)
    source = create_volume(member, world.parent(tenant), world.rbd_type)
    world.inspect.write(world.pool, object_of(source), 0, b"base data")
    op = service.CreateSnapshot(
        sapi.CreateSnapshotRequest(parent=source.name, snapshot_id="s", snapshot=spb.Snapshot())
    )
    snapshot = spb.Snapshot()
    succeed(member, op).response.Unpack(snapshot)
    clone = create_volume(
        member, world.parent(tenant), world.rbd_type, source_snapshot=snapshot.name
    )
    succeed(member, service.DeleteSnapshot(sapi.DeleteSnapshotRequest(name=snapshot.name)))
    info = world.inspect.volume_info(world.pool, object_of(clone))
    assert info.parent is None
    assert world.inspect.read(world.pool, object_of(clone), 0, 9) == b"base data"
    listed = service.ListSnapshots(sapi.ListSnapshotsRequest(parent=source.name))
    assert list(listed.snapshots) == []


def test_volume_from_image_is_a_copy_on_write_clone(world: World) -> None:
    """A volume made from an image clones the image's base in Ceph (imported once), is
    bootable, and the second clone is fast (no copy)."""
    tenant = world.tenant()
    member = tenant.stubs["member"]
    image = upload_image(member, tenant.name)
    first = create_volume(member, world.parent(tenant), world.rbd_type, source_image=image)
    assert first.state == V.STATE_AVAILABLE, first.state_message
    assert first.bootable and first.source_image == image
    info = world.inspect.volume_info(world.pool, object_of(first))
    assert info.parent is not None and info.parent.volume.startswith("kumo-img-")
    assert info.parent.snapshot == "base"
    started = time.monotonic()
    second = create_volume(member, world.parent(tenant), world.rbd_type, source_image=image)
    elapsed = time.monotonic() - started
    assert world.inspect.volume_info(world.pool, object_of(second)).parent == info.parent
    print(f"clone-from-image through the API: {elapsed * 1000:.0f} ms")


def test_bad_input_is_typed_and_changes_nothing_in_ceph(world: World) -> None:
    """Zero, negative and huge sizes, an unknown type, shrinking, attaching an attached
    volume that is not multi-attach: each is a typed error and Ceph is unchanged."""
    tenant = world.tenant()
    member = tenant.stubs["member"]
    service = storage(member)
    parent = world.parent(tenant)
    volume = create_volume(member, parent, world.rbd_type, 2)
    before = world.rbd_images()

    def create(size: int, volume_type: str = world.rbd_type) -> None:
        service.CreateVolume(
            sapi.CreateVolumeRequest(
                parent=parent,
                volume_id=unique("bad"),
                volume=V(volume_type=volume_type, size_gib=size),
            )
        )

    for size in (0, -1, 16385, 2**31 - 1):
        code, status = rpc_error(lambda size=size: create(size))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, size
        assert "size_gib" in str(status)
    code, _ = rpc_error(lambda: create(1, "volumeTypes/no-such-type"))
    assert code == grpc.StatusCode.NOT_FOUND
    code, _ = rpc_error(lambda: create(1, "not a type name"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    for size in (1, 2, 0, -5):
        request = sapi.ExtendVolumeRequest(name=volume.name, size_gib=size)
        code, _ = rpc_error(lambda request=request: service.ExtendVolume(request))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, size

    _, instance_a, instance_b = _two_instances(world, tenant)
    succeed(
        member,
        service.AttachVolume(sapi.AttachVolumeRequest(name=volume.name, instance=instance_a)),
    )
    code, status = rpc_error(
        lambda: service.AttachVolume(
            sapi.AttachVolumeRequest(name=volume.name, instance=instance_b)
        )
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "multi-attach" in status.message  # type: ignore[union-attr]
    code, status = rpc_error(
        lambda: service.DeleteVolume(sapi.DeleteVolumeRequest(name=volume.name))
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "attached" in status.message  # type: ignore[union-attr]
    current = service.GetVolume(sapi.GetVolumeRequest(name=volume.name))
    assert current.size_gib == 2 and current.state == V.STATE_IN_USE
    assert [a.instance for a in current.attachments] == [instance_a]
    assert world.rbd_images() == before
    assert world.inspect.volume_info(world.pool, object_of(volume)).size_bytes == 2 * GiB
    assert usage(member, tenant)["volumes"] == 1


def _two_instances(world: World, tenant: Tenant) -> tuple[str, str, str]:
    """Two instance records in the tenant (no host: they never run; enough to attach to)."""
    from kumo.compute.v1 import compute_service_pb2 as capi
    from kumo.compute.v1 import compute_service_pb2_grpc as crpc
    from kumo.compute.v1 import resources_pb2 as cpb

    flavor = crpc.ComputeServiceStub(world.admin.channel).CreateFlavor(
        capi.CreateFlavorRequest(
            flavor_id=unique("f"), flavor=cpb.Flavor(vcpus=1, memory_mib=128, disk_gib=1)
        )
    )
    member = tenant.stubs["member"]
    image = upload_image(member, tenant.name)
    compute = crpc.ComputeServiceStub(member.channel)
    parent = world.parent(tenant)
    names = []
    for _ in range(2):
        instance_id = unique("i")
        op = compute.CreateInstance(
            capi.CreateInstanceRequest(
                parent=parent,
                instance_id=instance_id,
                instance=cpb.Instance(flavor=flavor.name, image=image),
            )
        )
        wait(member, op)
        names.append(f"{parent}/instances/{instance_id}")
    return parent, names[0], names[1]


def test_attach_detach_and_multi_attach(world: World) -> None:
    """Attachments are recorded with the serial guests see; multi-attach volumes take two
    instances; detaching the last makes the volume AVAILABLE again."""
    tenant = world.tenant()
    member = tenant.stubs["member"]
    service = storage(member)
    _, a, b = _two_instances(world, tenant)
    shared = create_volume(member, world.parent(tenant), world.local_type, multi_attach=True)
    assert shared.state == V.STATE_AVAILABLE, shared.state_message
    for instance, mode in ((a, spb.ATTACH_MODE_READ_WRITE), (b, spb.ATTACH_MODE_READ_ONLY)):
        succeed(
            member,
            service.AttachVolume(
                sapi.AttachVolumeRequest(name=shared.name, instance=instance, mode=mode)
            ),
        )
    current = service.GetVolume(sapi.GetVolumeRequest(name=shared.name))
    assert current.state == V.STATE_IN_USE
    assert {(x.instance, x.mode) for x in current.attachments} == {
        (a, spb.ATTACH_MODE_READ_WRITE),
        (b, spb.ATTACH_MODE_READ_ONLY),
    }
    assert all(x.serial == shared.uid.replace("-", "")[:20] for x in current.attachments)
    code, _ = rpc_error(
        lambda: service.AttachVolume(sapi.AttachVolumeRequest(name=shared.name, instance=a))
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    for instance in (a, b):
        succeed(
            member,
            service.DetachVolume(sapi.DetachVolumeRequest(name=shared.name, instance=instance)),
        )
    code, _ = rpc_error(
        lambda: service.DetachVolume(sapi.DetachVolumeRequest(name=shared.name, instance=a))
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    current = service.GetVolume(sapi.GetVolumeRequest(name=shared.name))
    assert current.state == V.STATE_AVAILABLE and not current.attachments
    # The attach and the detach (not the refused ones) name the instance as `related`.
    request = operations_pb2.ListOperationsRequest(
        name="operations", filter=f'related = "{a}"', page_size=100
    )
    found = [metadata(op) for op in member.operations.ListOperations(request).operations]
    assert [(m.verb, m.target, m.related) for m in found] == [
        ("DetachVolume", shared.name, a),
        ("AttachVolume", shared.name, a),
    ]


def test_volume_types_are_admin_managed(world: World) -> None:
    """Members read types but cannot change them; a type in use cannot be deleted."""
    tenant = world.tenant()
    member = storage(tenant.stubs["member"])
    admin = storage(world.admin)
    kind = make_type(
        world.admin, spb.BACKEND_QCOW2, "gold", qos=spb.QosLimits(max_iops=500), description="x"
    )
    assert member.GetVolumeType(sapi.GetVolumeTypeRequest(name=kind)).qos.max_iops == 500
    assert kind in [
        t.name for t in member.ListVolumeTypes(sapi.ListVolumeTypesRequest()).volume_types
    ]
    code, _ = rpc_error(
        lambda: member.CreateVolumeType(
            sapi.CreateVolumeTypeRequest(
                volume_type_id="mine",
                volume_type=spb.VolumeType(backend=spb.BACKEND_QCOW2, pool="p"),
            )
        )
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED
    code, _ = rpc_error(
        lambda: admin.CreateVolumeType(
            sapi.CreateVolumeTypeRequest(
                volume_type_id=unique("vt"),
                volume_type=spb.VolumeType(backend=spb.BACKEND_FAKE, pool="p"),
            )
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT  # the fake is not configured here
    updated = admin.UpdateVolumeType(
        sapi.UpdateVolumeTypeRequest(
            volume_type=spb.VolumeType(name=kind, qos=spb.QosLimits(max_iops=9))
        )
    )
    assert updated.qos.max_iops == 9 and updated.pool == "gold"
    volume = create_volume(tenant.stubs["member"], world.parent(tenant), kind)
    code, _ = rpc_error(lambda: admin.DeleteVolumeType(sapi.DeleteVolumeTypeRequest(name=kind)))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    succeed(tenant.stubs["member"], member.DeleteVolume(sapi.DeleteVolumeRequest(name=volume.name)))
    admin.DeleteVolumeType(sapi.DeleteVolumeTypeRequest(name=kind))


def test_update_snapshot_changes_labels_under_its_etag(world: World) -> None:
    """UpdateSnapshot changes the masked editable fields only, bumps the etag, refuses a
    stale etag (ABORTED) and bad labels (INVALID_ARGUMENT) without changing what is stored."""
    tenant = world.tenant()
    member = tenant.stubs["member"]
    service = storage(member)
    source = create_volume(member, world.parent(tenant), world.local_type)
    op = service.CreateSnapshot(
        sapi.CreateSnapshotRequest(
            parent=source.name,
            snapshot_id="s",
            snapshot=spb.Snapshot(description="before", labels={"keep": "1"}),
        )
    )
    snapshot = spb.Snapshot()
    succeed(member, op).response.Unpack(snapshot)
    request = sapi.UpdateSnapshotRequest(
        snapshot=spb.Snapshot(
            name=snapshot.name, etag=snapshot.etag, labels={"team": "a"}, description="ignored"
        )
    )
    request.update_mask.paths.append("labels")
    updated = service.UpdateSnapshot(request)
    assert dict(updated.labels) == {"team": "a"} and updated.description == "before"
    assert updated.etag != snapshot.etag
    assert updated.state == spb.Snapshot.STATE_AVAILABLE and updated.uid == snapshot.uid
    code, _ = rpc_error(lambda: service.UpdateSnapshot(request))  # the etag is stale now
    assert code == grpc.StatusCode.ABORTED
    too_long = sapi.UpdateSnapshotRequest(
        snapshot=spb.Snapshot(name=snapshot.name, labels={"k": "v" * 64})
    )
    code, _ = rpc_error(lambda: service.UpdateSnapshot(too_long))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    stored = service.GetSnapshot(sapi.GetSnapshotRequest(name=snapshot.name))
    assert dict(stored.labels) == {"team": "a"} and stored.etag == updated.etag
    succeed(member, service.DeleteSnapshot(sapi.DeleteSnapshotRequest(name=snapshot.name)))


def test_update_list_and_retype(world: World) -> None:
    """Update changes the writable fields; List pages and filters; Retype moves the data to
    the new type's pool (here between two qcow2 pools)."""
    tenant = world.tenant()
    member = tenant.stubs["member"]
    service = storage(member)
    other_pool = make_type(world.admin, spb.BACKEND_QCOW2, unique("pool"))
    volumes = [create_volume(member, world.parent(tenant), world.local_type) for _ in range(3)]
    updated = service.UpdateVolume(
        sapi.UpdateVolumeRequest(volume=V(name=volumes[0].name, display_name="boot", bootable=True))
    )
    assert updated.display_name == "boot" and updated.bootable
    page = service.ListVolumes(sapi.ListVolumesRequest(parent=world.parent(tenant), page_size=2))
    rest = service.ListVolumes(
        sapi.ListVolumesRequest(
            parent=world.parent(tenant), page_token=page.next_page_token, page_size=2
        )
    )
    assert len(page.volumes) == 2 and len(rest.volumes) == 1
    every_zone = service.ListVolumes(
        sapi.ListVolumesRequest(parent=f"{tenant.name}/zones/-", filter='state = "STATE_AVAILABLE"')
    )
    assert {v.name for v in every_zone.volumes} == {v.name for v in volumes}
    backends = world.server.server.runtime.storage
    local = backends.driver(spb.BACKEND_QCOW2)
    local.write("local", object_of(volumes[1]), 0, b"moves along")
    retyped = V()
    succeed(
        member,
        service.RetypeVolume(
            sapi.RetypeVolumeRequest(name=volumes[1].name, volume_type=other_pool)
        ),
    ).response.Unpack(retyped)
    assert retyped.volume_type == other_pool and retyped.state == V.STATE_AVAILABLE
    new_pool = backends.driver(spb.BACKEND_QCOW2)
    assert object_of(volumes[1]) not in new_pool.list_volumes("local")
    stored = storage(world.admin).GetVolumeType(sapi.GetVolumeTypeRequest(name=other_pool)).pool
    assert new_pool.read(stored, object_of(volumes[1]), 0, 11) == b"moves along"


def test_transfer_moves_a_volume_and_its_quota(world: World) -> None:
    """A transfer is accepted in another project with its key (a wrong key finds nothing);
    the volume and its usage move there."""
    giver, taker = world.tenant(), world.tenant()
    service = storage(giver.stubs["member"])
    volume = create_volume(giver.stubs["member"], world.parent(giver), world.local_type, 2)
    transfer = service.CreateVolumeTransfer(
        sapi.CreateVolumeTransferRequest(
            parent=giver.name,
            volume_transfer_id="gift",
            volume_transfer=spb.VolumeTransfer(volume=volume.name),
        )
    )
    assert transfer.auth_key and transfer.volume == volume.name
    fetched = service.GetVolumeTransfer(sapi.GetVolumeTransferRequest(name=transfer.name))
    assert not fetched.auth_key
    listed = service.ListVolumeTransfers(sapi.ListVolumeTransfersRequest(parent=giver.name))
    assert [t.name for t in listed.volume_transfers] == [transfer.name]
    receiver = storage(taker.stubs["member"])

    def accept(key: str) -> spb.Volume:
        moved: spb.Volume = receiver.AcceptVolumeTransfer(
            sapi.AcceptVolumeTransferRequest(
                name=transfer.name, auth_key=key, destination_project=taker.name
            )
        )
        return moved

    code, _ = rpc_error(lambda: accept("wrong key"))
    assert code == grpc.StatusCode.NOT_FOUND
    moved = accept(transfer.auth_key)
    assert moved.name == f"{world.parent(taker)}/volumes/{volume.name.rsplit('/', 1)[1]}"
    assert moved.uid == volume.uid and moved.size_gib == 2
    assert usage(giver.stubs["member"], giver)["gigabytes"] == 0
    assert usage(taker.stubs["member"], taker)["gigabytes"] == 2
    code, _ = rpc_error(lambda: service.GetVolume(sapi.GetVolumeRequest(name=volume.name)))
    assert code == grpc.StatusCode.NOT_FOUND
    again = service.CreateVolume(
        sapi.CreateVolumeRequest(
            parent=world.parent(giver),
            volume_id="x",
            volume=V(volume_type=world.local_type, size_gib=1),
        )
    )
    wait(giver.stubs["member"], again)
    second = service.CreateVolumeTransfer(
        sapi.CreateVolumeTransferRequest(
            parent=giver.name,
            volume_transfer_id="withdrawn",
            volume_transfer=spb.VolumeTransfer(volume=f"{world.parent(giver)}/volumes/x"),
        )
    )
    service.DeleteVolumeTransfer(sapi.DeleteVolumeTransferRequest(name=second.name))
    code, _ = rpc_error(lambda: accept(second.auth_key))
    assert code == grpc.StatusCode.NOT_FOUND


def test_quota_is_charged_in_the_create_transaction(world: World) -> None:
    """Past the gigabytes limit a create is RESOURCE_EXHAUSTED and nothing is made."""
    tenant = world.tenant()
    member = tenant.stubs["member"]
    before = world.rbd_images()
    code, _ = rpc_error(
        lambda: storage(member).CreateVolume(
            sapi.CreateVolumeRequest(
                parent=world.parent(tenant),
                volume_id="too-big",
                volume=V(volume_type=world.rbd_type, size_gib=1001),
            )
        )
    )
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert world.rbd_images() == before
    assert usage(member, tenant)["gigabytes"] == 0


def test_backups_are_incremental_and_restore(world: World) -> None:
    """A first backup copies the volume into the type's backup pool; the next one is made
    over it (the snapshot diff); each restores to its own point in time; a backup others were
    made over is deleted last; backups outlive their volume."""
    tenant = world.tenant()
    member = tenant.stubs["member"]
    service = storage(member)
    parent = world.parent(tenant)
    volume = create_volume(member, parent, world.rbd_backup_type, 1)
    world.inspect.write(world.pool, object_of(volume), 0, b"monday")

    def back_up(backup_id: str) -> spb.Backup:
        op = service.CreateBackup(
            sapi.CreateBackupRequest(
                parent=parent, backup_id=backup_id, backup=spb.Backup(source_volume=volume.name)
            )
        )
        made = spb.Backup()
        succeed(member, op).response.Unpack(made)
        assert made.state == spb.Backup.STATE_AVAILABLE, made.state_message
        return made

    first = back_up("mon")
    assert not first.parent_backup
    world.inspect.write(world.pool, object_of(volume), 8 << 20, b"tuesday")
    second = back_up("tue")
    assert second.parent_backup == first.name
    image = f"kumo-bak-{volume.uid}"
    stored = world.inspect.volume_info(world.backup_pool, image)
    assert set(stored.snapshots) == {f"kumo-bak-{first.uid}", f"kumo-bak-{second.uid}"}
    # Only the latest backup's snapshot stays on the volume, for the next diff.
    assert world.inspect.volume_info(world.pool, object_of(volume)).snapshots == (
        f"kumo-bsnap-{second.uid}",
    )
    assert service.GetBackup(sapi.GetBackupRequest(name=first.name)).size_gib == 1
    listed = service.ListBackups(sapi.ListBackupsRequest(parent=parent))
    assert [b.name for b in listed.backups] == [first.name, second.name]

    monday = create_volume(member, parent, world.rbd_type, 1, source_backup=first.name)
    tuesday = create_volume(member, parent, world.rbd_type, 2, source_backup=second.name)
    for restored in (monday, tuesday):
        assert restored.state == V.STATE_AVAILABLE, restored.state_message
    assert world.inspect.read(world.pool, object_of(monday), 0, 6) == b"monday"
    assert world.inspect.read(world.pool, object_of(monday), 8 << 20, 7) == bytes(7)
    assert world.inspect.read(world.pool, object_of(tuesday), 8 << 20, 7) == b"tuesday"
    assert world.inspect.volume_info(world.pool, object_of(tuesday)).size_bytes == 2 * GiB

    code, _ = rpc_error(lambda: service.DeleteBackup(sapi.DeleteBackupRequest(name=first.name)))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    succeed(member, service.DeleteVolume(sapi.DeleteVolumeRequest(name=volume.name)))
    assert object_of(volume) not in world.rbd_images()
    for backup in (second, first):
        succeed(member, service.DeleteBackup(sapi.DeleteBackupRequest(name=backup.name)))
    assert image not in world.inspect.list_volumes(world.backup_pool)
    for restored in (monday, tuesday):
        succeed(member, service.DeleteVolume(sapi.DeleteVolumeRequest(name=restored.name)))
    counts = usage(member, tenant)
    assert (counts["volumes"], counts["gigabytes"]) == (0, 0)


def _set_state(world: World, uid: str, state: int) -> None:
    """Writes a volume's state straight into the database (what a crash leaves behind)."""

    def write(session: Session) -> None:
        row = session.scalar(select(VolumeRow).where(VolumeRow.uid == uid))
        assert row is not None
        row.state = state

    world.server.call(world.server.server.runtime.db.run(write))


def test_reconciler_removes_orphans_and_settles_interrupted_creates(world: World) -> None:
    """Kumo-named RBD objects without rows are removed (with their snapshots), snapshots
    without rows too; volumes a crash left in CREATING (operation no longer running) are
    adopted when their image is complete, else ERROR, and can then be deleted."""
    tenant = world.tenant()
    member = tenant.stubs["member"]
    parent = world.parent(tenant)
    # An image whose row is gone (a restored database), with a snapshot of its own.
    orphan = f"kumo-vol-{uuid.uuid4()}"
    world.inspect.create_volume(world.pool, orphan, 8 << 20)
    world.inspect.create_snapshot(world.pool, orphan, "kumo-snap-lost")
    # A stray snapshot of a volume that is known.
    kept = create_volume(member, parent, world.rbd_type)
    stray = f"kumo-snap-{uuid.uuid4()}"
    world.inspect.create_snapshot(world.pool, object_of(kept), stray)
    # A foreign image in the same pool is none of Kumo's business.
    world.inspect.create_volume(world.pool, "someone-elses", 1 << 20)
    # Creates a crash interrupted: one finished in Ceph, one never reached it.
    finished = create_volume(member, parent, world.rbd_type)
    _set_state(world, finished.uid, V.STATE_CREATING)
    unfinished = create_volume(member, parent, world.rbd_type)
    world.inspect.delete_volume(world.pool, object_of(unfinished))
    _set_state(world, unfinished.uid, V.STATE_CREATING)

    report = world.server.call(reconcile(world.server.server.runtime))

    assert f"{world.pool}/{orphan}" in report.removed_volumes
    assert f"{world.pool}/{object_of(kept)}@{stray}" in report.removed_snapshots
    assert finished.uid in report.adopted and unfinished.uid in report.failed
    assert orphan not in world.rbd_images()
    assert object_of(kept) in world.rbd_images()
    assert world.inspect.volume_info(world.pool, object_of(kept)).snapshots == ()
    assert world.inspect.volume_info(world.pool, "someone-elses").size_bytes == 1 << 20
    service = storage(member)
    assert service.GetVolume(sapi.GetVolumeRequest(name=finished.name)).state == V.STATE_AVAILABLE
    failed = service.GetVolume(sapi.GetVolumeRequest(name=unfinished.name))
    assert failed.state == V.STATE_ERROR and "interrupted" in failed.state_message
    succeed(member, service.DeleteVolume(sapi.DeleteVolumeRequest(name=unfinished.name)))
    again = world.server.call(reconcile(world.server.server.runtime))
    assert (again.removed_volumes, again.removed_snapshots, again.adopted, again.failed) == (
        [],
        [],
        [],
        [],
    )
    assert usage(member, tenant)["volumes"] == 2
    world.inspect.delete_volume(world.pool, "someone-elses")


def test_deleting_the_project_deletes_its_storage(world: World) -> None:
    """DeleteProject removes the project's volumes, snapshots, clones and backups from Ceph
    before their records (the reconciler finds nothing afterwards)."""
    tenant = world.tenant()
    member = tenant.stubs["member"]
    service = storage(member)
    parent = world.parent(tenant)
    volume = create_volume(member, parent, world.rbd_backup_type)
    op = service.CreateSnapshot(
        sapi.CreateSnapshotRequest(parent=volume.name, snapshot_id="s", snapshot=spb.Snapshot())
    )
    succeed(member, op)
    clone = create_volume(
        member, parent, world.rbd_type, source_snapshot=f"{volume.name}/snapshots/s"
    )
    op = service.CreateBackup(
        sapi.CreateBackupRequest(
            parent=parent, backup_id="b", backup=spb.Backup(source_volume=volume.name)
        )
    )
    succeed(member, op)
    objects = {object_of(volume), object_of(clone)}
    assert objects <= set(world.rbd_images())
    assert f"kumo-bak-{volume.uid}" in world.inspect.list_volumes(world.backup_pool)
    succeed(
        world.admin, world.admin.identity.DeleteProject(iapi.DeleteProjectRequest(name=tenant.name))
    )
    assert not objects & set(world.rbd_images())
    assert f"kumo-bak-{volume.uid}" not in world.inspect.list_volumes(world.backup_pool)
    report = world.server.call(reconcile(world.server.server.runtime))
    assert not report.removed_volumes and not report.removed_snapshots


def test_deleting_an_instance_releases_its_volumes(world: World) -> None:
    """DeleteInstance detaches the instance's volumes: they become AVAILABLE again, except
    those attached to go with it (AttachVolume's `delete_with_instance`, changed either way
    by UpdateAttachment), which are deleted."""
    from kumo.compute.v1 import compute_service_pb2 as capi
    from kumo.compute.v1 import compute_service_pb2_grpc as crpc

    tenant = world.tenant()
    member = tenant.stubs["member"]
    service = storage(member)
    _, instance, other = _two_instances(world, tenant)
    kept, doomed, changed = (
        create_volume(member, world.parent(tenant), world.local_type) for _ in range(3)
    )
    for volume, goes in ((kept, True), (doomed, False), (changed, False)):
        attach = sapi.AttachVolumeRequest(
            name=volume.name, instance=instance, delete_with_instance=goes
        )
        succeed(member, service.AttachVolume(attach))
    (attached,) = service.GetVolume(sapi.GetVolumeRequest(name=kept.name)).attachments
    assert attached.delete_with_instance
    for volume, goes in ((kept, False), (doomed, True), (doomed, True)):  # (idempotent)
        update = sapi.UpdateAttachmentRequest(
            name=volume.name, instance=instance, delete_with_instance=goes
        )
        (attachment,) = service.UpdateAttachment(update).attachments
        assert attachment.delete_with_instance is goes
    for instance_name, code in ((other, "FAILED_PRECONDITION"), ("i", "INVALID_ARGUMENT")):
        refused = sapi.UpdateAttachmentRequest(name=changed.name, instance=instance_name)
        assert rpc_error(partial(service.UpdateAttachment, refused))[0].name == code
    compute = crpc.ComputeServiceStub(member.channel)
    succeed(member, compute.DeleteInstance(capi.DeleteInstanceRequest(name=instance)))
    for volume in (kept, changed):
        current = service.GetVolume(sapi.GetVolumeRequest(name=volume.name))
        assert current.state == V.STATE_AVAILABLE and not current.attachments
        succeed(member, service.DeleteVolume(sapi.DeleteVolumeRequest(name=volume.name)))
    deadline = time.monotonic() + 30
    while True:  # (the volume that goes with the instance is deleted after it)
        try:
            service.GetVolume(sapi.GetVolumeRequest(name=doomed.name))
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.NOT_FOUND
            break
        assert time.monotonic() < deadline, "the volume did not go with its instance"
        time.sleep(0.2)


def test_a_volume_left_deleting_by_a_failed_delete_can_be_deleted_again(world: World) -> None:
    """A delete whose operation failed (the volume stays DELETING) is retried by another."""
    tenant = world.tenant()
    member = tenant.stubs["member"]
    volume = create_volume(member, world.parent(tenant), world.rbd_type)
    _set_state(world, volume.uid, V.STATE_DELETING)
    service = storage(member)
    code, _ = rpc_error(
        lambda: service.ExtendVolume(sapi.ExtendVolumeRequest(name=volume.name, size_gib=2))
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    succeed(member, service.DeleteVolume(sapi.DeleteVolumeRequest(name=volume.name)))
    assert object_of(volume) not in world.rbd_images()
    assert usage(member, tenant)["volumes"] == 0
