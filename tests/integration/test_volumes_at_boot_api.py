"""Volumes attached to an instance as it is made (`Instance.volumes_at_boot`), through the
API on both databases, with a fake-driver agent and local qcow2 volumes.

CreateInstance attaches existing volumes and records new ones (empty, or copies of a
snapshot: CREATING, attached, quotas charged) in its creating transaction; BUILD waits for
the new ones; the host hot-plugs them all once the guest runs; the instance shows them with
whether each goes with it, and DeleteInstance deletes those and leaves the others
AVAILABLE. Bad input is a typed error and stores nothing.
"""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import grpc
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import resources_pb2 as cpb
from kumo.server.db.engine import Database
from kumo.server.errors import FailedPrecondition
from kumo.server.services.storage.attachments import attach, check_attachable, volume_in
from kumo.storage.v1 import resources_pb2 as spb
from kumo.storage.v1 import storage_service_pb2 as sapi
from tests.integration.test_bad_input import violations
from tests.integration.test_boot_volume_api import (  # noqa: F401  (module fixture)
    FakeHost,
    _in_use,
    _volumes_of,
    fake_host,
    launcher,
)
from tests.support.cloud import Stubs, Tenant, rpc_error, unique
from tests.support.server import ServerThread
from tests.support.storage import create_volume, storage, succeed

V = spb.Volume
At = cpb.VolumeAtBoot


def _attached_to_guest(host: FakeHost, uid: str, serials: set[str]) -> None:
    deadline = time.monotonic() + 30
    while not serials <= host.driver.attached_volumes(uid):
        assert time.monotonic() < deadline, (serials, host.driver.attached_volumes(uid))
        time.sleep(0.1)


def test_an_instance_is_made_with_more_volumes(
    fake_host: FakeHost,  # noqa: F811
    admin: Stubs,
    tenant: Tenant,
    other_tenant: Tenant,
) -> None:
    site, local, _ = fake_host
    launch = launcher(admin, tenant, site.zone)
    member, compute, volumes, parent, image, _ = launch
    data = create_volume(member, parent, local)
    busy = create_volume(member, parent, local)
    source = create_volume(member, parent, local, 2, source_image=image)
    snap = sapi.CreateSnapshotRequest(
        parent=source.name, snapshot_id=unique("s"), snapshot=spb.Snapshot()
    )
    succeed(member, volumes.CreateSnapshot(snap))
    snapshot = f"{source.name}/snapshots/{snap.snapshot_id}"
    theirs = create_volume(
        other_tenant.stubs["member"], f"{other_tenant.name}/zones/{site.zone}", local
    )
    holder = f"{parent}/instances/holder"
    succeed(member, launch.create("holder"))
    attach_busy = sapi.AttachVolumeRequest(name=busy.name, instance=holder, device="/dev/vdz")
    bad_device = sapi.AttachVolumeRequest(name=busy.name, instance=holder, device="vd b")
    got, status = rpc_error(partial(volumes.AttachVolume, bad_device))
    assert got == grpc.StatusCode.INVALID_ARGUMENT and "device" in violations(status), status
    succeed(member, volumes.AttachVolume(attach_busy))
    shown = volumes.GetVolume(sapi.GetVolumeRequest(name=busy.name)).attachments
    assert [(a.instance, a.device) for a in shown] == [(holder, "/dev/vdz")]

    # Bad input: typed errors, nothing stored (a valid new volume before a bad entry too).
    new = At(size_gib=1, volume_type=local)
    before = (_volumes_of(member, parent), _in_use(member, tenant.name))
    invalid, missing, refused = (
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    first = "instance.volumes_at_boot[0]"
    bad: list[tuple[list[cpb.VolumeAtBoot], grpc.StatusCode, str]] = [
        ([At()], invalid, first),
        ([At(volume=data.name, size_gib=1)], invalid, first),
        ([At(volume_type=local)], invalid, f"{first}.size_gib"),
        ([At(size_gib=1, volume_type="volumeTypes/none")], missing, "volumeTypes/none"),
        ([At(volume="not a volume")], invalid, f"{first}.volume"),
        ([At(volume=data.name, device="/dev/sd f")], invalid, f"{first}.device"),
        ([new, At(volume=data.name), At(volume=data.name)], invalid,
         "instance.volumes_at_boot[2].volume"),
        ([new] * 17, invalid, "instance.volumes_at_boot"),
        ([new, At(volume=theirs.name)], missing, theirs.name),
        ([new, At(volume=busy.name)], refused, busy.name),
        ([At(source_snapshot=f"{theirs.name}/snapshots/s")], invalid,
         f"{first}.source_snapshot"),
    ]  # fmt: skip
    for index, (wanted, code, mentioned) in enumerate(bad):
        got, status = rpc_error(partial(launch.create, f"bad-{index}", volumes_at_boot=wanted))
        assert status is not None and got == code, (index, got, status)
        where = violations(status) if code == invalid else {}
        assert mentioned in where or mentioned in status.message, (index, status)
    assert (_volumes_of(member, parent), _in_use(member, tenant.name)) == before
    listed = compute.ListInstances(capi.ListInstancesRequest(parent=parent)).instances
    assert [i.name for i in listed] == [holder]

    # An existing volume, a new empty one and a copy of the snapshot; the new ones go with
    # the instance, as does its new boot volume.
    name = f"{parent}/instances/with-volumes"
    operation = launch.create(
        "with-volumes",
        new_boot_volume=cpb.NewBootVolume(volume_type=local),
        delete_boot_volume=True,
        volumes_at_boot=[
            At(volume=data.name, device="/dev/vdb"),
            At(size_gib=3, volume_type=local, delete_with_instance=True),
            At(source_snapshot=snapshot, delete_with_instance=True),
        ],
    )
    instance = compute.GetInstance(capi.GetInstanceRequest(name=name))
    shown = {v.volume: v.delete_with_instance for v in instance.attached_volumes}
    devices = {v.volume: v.device for v in instance.attached_volumes}
    assert devices[data.name] == "/dev/vdb" and devices[instance.boot_volume] == ""
    assert len(shown) == 4 and shown.pop(data.name) is False and shown.pop(instance.boot_volume)
    assert list(shown.values()) == [True, True]
    charged = _in_use(member, tenant.name)
    assert (charged["volumes"], charged["gigabytes"]) == (
        before[1]["volumes"] + 3,
        before[1]["gigabytes"] + 1 + 3 + 2,
    )
    succeed(member, operation)
    made = {n: volumes.GetVolume(sapi.GetVolumeRequest(name=n)) for n in shown}
    sizes = sorted((v.size_gib, v.source_snapshot, v.volume_type) for v in made.values())
    assert sizes == [(2, snapshot, local), (3, "", local)]
    everything = [data, *made.values()]
    for volume in everything:
        now = volumes.GetVolume(sapi.GetVolumeRequest(name=volume.name))
        assert now.state == V.STATE_IN_USE and [a.instance for a in now.attachments] == [name]
    serials = {
        a.serial
        for v in everything
        for a in volumes.GetVolume(sapi.GetVolumeRequest(name=v.name)).attachments
    }
    _attached_to_guest(fake_host, instance.uid, serials)
    listed = compute.ListInstances(capi.ListInstancesRequest(parent=parent)).instances
    assert [i.attached_volumes for i in listed if i.name == name] == [instance.attached_volumes]

    # Its deletion deletes the new volumes and its boot volume, and releases the other.
    succeed(member, compute.DeleteInstance(capi.DeleteInstanceRequest(name=name)))
    doomed = {*made, instance.boot_volume}
    deadline = time.monotonic() + 30
    while doomed & _volumes_of(member, parent).keys():
        assert time.monotonic() < deadline, "volumes made with the instance were left behind"
        time.sleep(0.2)
    kept = volumes.GetVolume(sapi.GetVolumeRequest(name=data.name))
    assert kept.state == V.STATE_AVAILABLE and not kept.attachments, kept
    assert _in_use(member, tenant.name)["volumes"] == before[1]["volumes"]


def test_an_instance_deleted_at_once_leaves_no_volume_behind(
    fake_host: FakeHost,  # noqa: F811
    admin: Stubs,
    tenant: Tenant,
) -> None:
    """DeleteInstance right after CreateInstance, while the new volumes may still be
    CREATING: the DELETE waits for those that go with the instance and deletes them, and
    releases the one kept (AVAILABLE once made); nothing is orphaned, quotas come back."""
    site, local, _ = fake_host
    launch = launcher(admin, tenant, site.zone)
    member, compute, volumes, parent, _, _ = launch
    before = (set(_volumes_of(member, parent)), _in_use(member, tenant.name))
    name = f"{parent}/instances/short-lived"
    launch.create(
        "short-lived",
        new_boot_volume=cpb.NewBootVolume(volume_type=local),
        delete_boot_volume=True,
        volumes_at_boot=[
            At(size_gib=1, volume_type=local, delete_with_instance=True),
            At(size_gib=2, volume_type=local),
        ],
    )
    succeed(member, compute.DeleteInstance(capi.DeleteInstanceRequest(name=name)))
    deadline = time.monotonic() + 30
    while len(set(_volumes_of(member, parent)) - before[0]) != 1:
        assert time.monotonic() < deadline, _volumes_of(member, parent)
        time.sleep(0.2)
    (kept,) = set(_volumes_of(member, parent)) - before[0]
    while (now := volumes.GetVolume(sapi.GetVolumeRequest(name=kept))).state != V.STATE_AVAILABLE:
        assert time.monotonic() < deadline, now
        time.sleep(0.2)
    assert (now.size_gib, list(now.attachments)) == (2, [])
    succeed(member, volumes.DeleteVolume(sapi.DeleteVolumeRequest(name=kept)))
    while kept in _volumes_of(member, parent):
        assert time.monotonic() < deadline, "the kept volume was not deleted"
        time.sleep(0.2)
    assert _in_use(member, tenant.name) == before[1]


def test_two_transactions_attaching_one_volume_cannot_both_find_it_free(
    api: ServerThread,
    fake_host: FakeHost,  # noqa: F811
    admin: Stubs,
    tenant: Tenant,
) -> None:
    """What two API processes do when they attach one volume at once, step by step in two
    transactions on the API's database: each looks the volume up and checks it (as
    CreateInstance's volumes at boot and AttachVolume do), waits for the other, then
    attaches. On PostgreSQL the lookup locks the row (FOR UPDATE), so the second waits for
    the first's commit and then finds the volume taken; without the lock both found it
    free and both attached it. On SQLite (one writer; Kumo runs it in one process) the
    second's write fails. Either way: one attachment."""
    site, local, _ = fake_host
    launch = launcher(admin, tenant, site.zone)
    member, _, _, parent, _, _ = launch
    volume = create_volume(member, parent, local)
    for holder in ("left", "right"):
        succeed(member, launch.create(holder))
    project, zone = tenant.name.split("/")[1], site.zone
    db = Database(api.config.database_url)
    both_checked = threading.Barrier(2, timeout=3)

    def take(holder: str) -> str:
        def step(session: Session) -> None:
            row = volume_in(session, project, zone, volume.name, "volume")
            check_attachable(session, row, volume.name, f"{parent}/instances/{holder}")
            with contextlib.suppress(threading.BrokenBarrierError):
                both_checked.wait()  # (broken: the other waits for this one's lock)
            attach(session, row, holder, spb.ATTACH_MODE_READ_WRITE)

        try:
            db.transaction(step)
        except (FailedPrecondition, OperationalError) as error:
            return str(error)
        return "attached"

    try:
        with ThreadPoolExecutor(2) as pool:
            outcomes = sorted(pool.map(take, ("left", "right")))
    finally:
        db.close()
    assert outcomes.count("attached") == 1, outcomes
    if db.engine.dialect.name == "postgresql":
        assert "is attached and not multi-attach" in outcomes[1], outcomes
    now = storage(member).GetVolume(sapi.GetVolumeRequest(name=volume.name))
    assert len(now.attachments) == 1, now
