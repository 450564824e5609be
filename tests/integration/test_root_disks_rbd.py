"""Instance root disks in Ceph (`storage.root_disks = "rbd"`) through the whole stack.

A real API (SQLite) whose RBD backend and root disk pool are the session's Ceph cluster, a
real libvirtd and one kumo-agent with the libvirt driver and the same cluster in its
`[volumes]` config. The instance's root disk is a copy-on-write clone of the image's base
(`kumo-img-<image uid>@base`), which QEMU opens over librbd: no copy of the image is made,
for the boot or on the host. Snapshot, resize, rebuild and delete act on that clone; the
storage reconciler removes clones nobody records.
"""

from __future__ import annotations

import logging
import secrets
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import libvirt
import pytest

from kumo.agent.config import VolumesConfig
from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import compute_service_pb2_grpc as crpc
from kumo.compute.v1 import resources_pb2 as cpb
from kumo.drivers.compute.libvirt import LibvirtDriver
from kumo.drivers.compute.libvirtd import LibvirtDaemon
from kumo.drivers.storage.base import SnapshotRef, image_base_name
from kumo.drivers.storage.rbd import RbdDriver
from kumo.identity.v1 import identity_service_pb2 as iapi_identity
from kumo.image.v1 import image_service_pb2 as iapi
from kumo.image.v1 import image_service_pb2_grpc as irpc
from kumo.image.v1 import resources_pb2 as ipb
from kumo.server.storage.reconciler import reconcile
from tests.conftest import make_config
from tests.integration.test_compute_lifecycle import console_until
from tests.integration.test_compute_migration import metadata, progress_of
from tests.integration.test_compute_migration_libvirt import last_tick, wait_long
from tests.integration.test_compute_resources import make_flavor
from tests.support.agent import AgentThread
from tests.support.ceph import CephCluster, ceph_missing
from tests.support.cloud import ADMIN_PASSWORD, Stubs, make_tenant, sign_in, unique
from tests.support.images import upload_image
from tests.support.multihost import HostCluster, multihost_unavailable_reason
from tests.support.server import ServerThread
from tests.support.storage import succeed, wait
from tests.support.topology import make_site

pytestmark = pytest.mark.slow
GiB = 1 << 30
BOOTED = "KUMO_BOOT_OK"


@dataclass
class World:
    server: ServerThread
    admin: Stubs
    member: Stubs
    compute: crpc.ComputeServiceStub
    parent: str
    rack: str
    pool: str
    inspect: RbdDriver  # client.admin, to look at what Kumo made
    image: str
    image_uid: str


@pytest.fixture
def world(ceph: CephCluster, guest_image: Path) -> Iterator[World]:
    """An API whose new instances get their root disks in a pool of their own, a tenant and
    the tiny image."""
    pool = unique("kumo-vms")
    ceph.create_pool(pool)
    rbd = {"conf": str(ceph.conf), "user": ceph.user, "keyring": str(ceph.user_keyring)}
    config = make_config(
        f"sqlite:///{tempfile.mkdtemp(prefix='kumo-db-')}/kumo.db",
        storage={"rbd": rbd, "root_disks": "rbd", "root_disk_pool": pool, "reconcile_seconds": 0},
    )
    server = ServerThread(config)
    channel = grpc.insecure_channel(server.address)
    inspect = RbdDriver(conf=str(ceph.conf), user="admin")
    try:
        admin = Stubs(channel, sign_in(channel, "admin", ADMIN_PASSWORD, "admin"))
        tenant = make_tenant(admin.channel, admin, "r")
        member = tenant.stubs["member"]
        site = make_site(admin)
        image = upload_image(member, tenant.name, guest_image.read_bytes(), min_ram_mib=128)
        images = irpc.ImageServiceStub(member.channel)
        image_uid = images.GetImage(iapi.GetImageRequest(name=image)).uid
        yield World(
            server,
            admin,
            member,
            crpc.ComputeServiceStub(member.channel),
            f"{tenant.name}/zones/{site.zone}",
            site.rack,
            pool,
            inspect,
            image,
            image_uid,
        )
    finally:
        inspect.close()
        channel.close()
        server.stop()


def _root_disks(world: World, uid: str) -> list[str]:
    return [n for n in world.inspect.list_volumes(world.pool) if n.startswith(f"kumo-disk-{uid}")]


def _vda_source(uri: str, uid: str) -> str:
    conn = libvirt.open(uri)
    try:
        xml = conn.lookupByName(f"kumo-{uid}").XMLDesc(0)
    finally:
        conn.close()
    disk = ET.fromstring(xml).find("./devices/disk/target[@dev='vda']/..")
    assert disk is not None and disk.get("type") == "network", xml
    source = disk.find("source")
    assert source is not None and source.get("protocol") == "rbd", xml
    return source.get("name", "")


def test_instance_boots_from_a_clone_of_the_image_and_leaves_nothing_behind(
    world: World, ceph: CephCluster, libvirtd: LibvirtDaemon, tmp_path: Path
) -> None:
    """The guest boots from `kumo-disk-<uid>`, a clone of the image's base holding almost
    nothing of its own; a snapshot makes an image of it; a resize grows it; a rebuild boots
    from a new clone and removes the old one; the delete removes the last."""
    driver = LibvirtDriver(uri=libvirtd.uri, instances_dir=tmp_path / "instances")
    volumes = VolumesConfig(
        rbd_conf=str(ceph.conf), rbd_user=ceph.user, rbd_keyring=str(ceph.user_keyring)
    )
    agent = AgentThread(
        world.server.address,
        world.admin.token or "",
        unique("kvm"),
        world.rack,
        driver,
        volumes=volumes,
    )
    compute = world.compute
    name = f"{world.parent}/instances/on-rbd"
    try:
        started = time.monotonic()
        succeed(
            world.member,
            compute.CreateInstance(
                capi.CreateInstanceRequest(
                    parent=world.parent,
                    instance_id="on-rbd",
                    instance=cpb.Instance(
                        flavor=make_flavor(world.admin, 1, 128, 1), image=world.image
                    ),
                )
            ),
        )
        assert BOOTED in console_until(compute, name, BOOTED, 1, 120).contents
        print(f"\ncreate to {BOOTED} with an RBD root disk: {time.monotonic() - started:.1f} s")
        uid = compute.GetInstance(capi.GetInstanceRequest(name=name)).uid
        disk = f"kumo-disk-{uid}"
        info = world.inspect.volume_info(world.pool, disk)
        assert info.parent == SnapshotRef(world.pool, image_base_name(world.image_uid), "base")
        assert info.size_bytes == 1 * GiB
        assert _vda_source(libvirtd.uri, uid) == f"{world.pool}/{disk}"
        own = ceph.used_bytes(world.pool, disk)
        base = ceph.used_bytes(world.pool, image_base_name(world.image_uid))
        print(f"clone holds {own >> 10} KiB of its own; the image base {base >> 10} KiB")
        assert own < base // 2, (own, base)  # a copy would hold at least the image's data

        snapshot = succeed(
            world.member,
            compute.SnapshotInstance(capi.SnapshotInstanceRequest(name=name, image_id="snap")),
        )
        saved = ipb.Image()
        snapshot.response.Unpack(saved)
        assert saved.state == ipb.Image.STATE_ACTIVE and saved.size_bytes > 0, saved
        # stopped, the guest is started paused for the backup job, then powered off again
        succeed(world.member, compute.StopInstance(capi.StopInstanceRequest(name=name)))
        stopped = succeed(
            world.member,
            compute.SnapshotInstance(capi.SnapshotInstanceRequest(name=name, image_id="cold")),
        )
        cold = ipb.Image()
        stopped.response.Unpack(cold)
        assert cold.state == ipb.Image.STATE_ACTIVE and cold.size_bytes > 0, cold
        state = compute.GetInstance(capi.GetInstanceRequest(name=name)).state
        assert state == cpb.Instance.STATE_STOPPED
        succeed(world.member, compute.StartInstance(capi.StartInstanceRequest(name=name)))
        assert console_until(compute, name, BOOTED, 2, 120).contents.count(BOOTED) >= 2

        bigger = make_flavor(world.admin, 1, 128, 2)
        succeed(
            world.member,
            compute.ResizeInstance(capi.ResizeInstanceRequest(name=name, flavor=bigger)),
        )
        assert world.inspect.volume_info(world.pool, disk).size_bytes == 2 * GiB
        assert console_until(compute, name, BOOTED, 3, 120).contents.count(BOOTED) >= 3

        succeed(world.member, compute.RebuildInstance(capi.RebuildInstanceRequest(name=name)))
        (new_disk,) = _root_disks(world, uid)  # the old clone is gone
        assert new_disk.startswith(f"{disk}-"), new_disk
        rebuilt = world.inspect.volume_info(world.pool, new_disk)
        assert rebuilt.parent is not None and rebuilt.size_bytes == 2 * GiB
        assert _vda_source(libvirtd.uri, uid) == f"{world.pool}/{new_disk}"
        assert console_until(compute, name, BOOTED, 4, 120).contents.count(BOOTED) >= 4

        succeed(world.member, compute.DeleteInstance(capi.DeleteInstanceRequest(name=name)))
        assert _root_disks(world, uid) == []
    finally:
        agent.stop()
        driver.close()


def test_reconciler_removes_root_disks_nobody_records(
    world: World, guest_image: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A build with no host still makes its clone (the row is written first; it counts as the
    instance's disk, not as a volume) and its delete removes it; a clone of no instance (a
    row lost) and an old clone of an instance with no operation in flight (a rebuild
    interrupted) are removed by the storage reconciler, with a warning; the clones instances
    record are kept."""
    compute = world.compute
    name = f"{world.parent}/instances/no-host"
    create = compute.CreateInstance(
        capi.CreateInstanceRequest(
            parent=world.parent,
            instance_id="no-host",
            instance=cpb.Instance(flavor=make_flavor(world.admin, 1, 128, 1), image=world.image),
        )
    )
    failed = wait(world.member, create)
    assert failed.HasField("error"), failed  # no host to build on
    instance = compute.GetInstance(capi.GetInstanceRequest(name=name))
    assert instance.state == cpb.Instance.STATE_ERROR
    recorded = f"kumo-disk-{instance.uid}"
    assert _root_disks(world, instance.uid) == [recorded]
    project = "/".join(world.parent.split("/")[:2])
    quota = world.admin.identity.GetQuota(iapi_identity.GetQuotaRequest(name=f"{project}/quota"))
    in_use = {limit.resource: limit.in_use for limit in quota.limits}
    assert (in_use["instances"], in_use["volumes"], in_use["gigabytes"]) == (
        1,
        0,
        0,
    )  # not Cinder's

    base = world.inspect.ensure_image_base(
        world.pool, world.image_uid, guest_image, "qcow2"
    )  # as made by the build: the same base
    stray, older = f"kumo-disk-{uuid.uuid4()}", f"{recorded}-7"
    for orphan in (stray, older):
        world.inspect.clone_volume(base, world.pool, orphan, GiB)
    with caplog.at_level(logging.WARNING, logger="kumo.server.storage.root_disks"):
        report = world.server.call(reconcile(world.server.server.runtime))
    assert sorted(report.removed_root_disks) == sorted(
        f"{world.pool}/{orphan}" for orphan in (stray, older)
    )
    assert sum("orphaned root disk" in r.getMessage() for r in caplog.records) == 2
    assert _root_disks(world, instance.uid) == [recorded]
    assert stray not in world.inspect.list_volumes(world.pool)

    succeed(world.member, compute.DeleteInstance(capi.DeleteInstanceRequest(name=name)))
    assert _root_disks(world, instance.uid) == []
    again = world.server.call(reconcile(world.server.server.runtime))
    assert again.removed_root_disks == []


@dataclass
class CephHosts:
    hosts: HostCluster
    ceph: CephCluster


@pytest.fixture(scope="module")
def ceph_hosts() -> Iterator[CephHosts]:
    """Two libvirt hosts (network namespaces on a bridge of a subnet of their own, which has
    an address in the root namespace) and a Ceph cluster listening on that address, so the
    hosts' QEMU processes reach it: shared storage for live migration."""
    for reason in (multihost_unavailable_reason(), ceph_missing()):
        if reason is not None:
            pytest.skip(reason)
    subnet = f"10.215.{secrets.randbelow(250) + 1}.0/24"
    hosts = HostCluster(2, subnet=subnet, gateway=True)
    hosts.start()
    cluster = CephCluster(address=hosts.gateway or "")
    try:
        cluster.start()
        yield CephHosts(hosts, cluster)
    finally:
        cluster.stop()
        hosts.stop()


@pytest.mark.parametrize("mode", ["live", "cold"])
def test_migration_keeps_the_root_disk_in_ceph(
    ceph_hosts: CephHosts, guest_image: Path, mode: str
) -> None:
    """MigrateInstance of a guest whose root disk is in Ceph copies no disk: the destination
    opens the same clone. Live, the running guest goes on counting; cold, the stopped guest
    arrives stopped and boots there."""
    ceph, pool = ceph_hosts.ceph, unique("kumo-vms")
    ceph.create_pool(pool)
    rbd = {"conf": str(ceph.conf), "user": ceph.user, "keyring": str(ceph.user_keyring)}
    config = make_config(
        f"sqlite:///{tempfile.mkdtemp(prefix='kumo-db-')}/kumo.db",
        storage={"rbd": rbd, "root_disks": "rbd", "root_disk_pool": pool},
    )
    server = ServerThread(config)
    channel = grpc.insecure_channel(server.address)
    volumes = VolumesConfig(
        rbd_conf=str(ceph.conf), rbd_user=ceph.user, rbd_keyring=str(ceph.user_keyring)
    )
    agents: list[AgentThread] = []
    drivers: dict[str, LibvirtDriver] = {}
    try:
        admin = Stubs(channel, sign_in(channel, "admin", ADMIN_PASSWORD, "admin"))
        site = make_site(admin)
        hosts = {}
        for host in ceph_hosts.hosts.hosts:
            name = unique(host.name)
            drivers[name] = LibvirtDriver(
                uri=host.uri, instances_dir=host.instances_dir, migration_uri=host.migration_uri
            )
            agents.append(
                AgentThread(
                    server.address,
                    admin.token or "",
                    name,
                    site.rack,
                    drivers[name],
                    volumes=volumes,
                )
            )
            hosts[name] = host
        tenant = make_tenant(admin.channel, admin, "m")
        member = tenant.stubs["member"]
        compute = crpc.ComputeServiceStub(member.channel)
        image = upload_image(member, tenant.name, guest_image.read_bytes(), min_ram_mib=128)
        parent = f"{tenant.name}/zones/{site.zone}"
        created = succeed(
            member,
            compute.CreateInstance(
                capi.CreateInstanceRequest(
                    parent=parent,
                    instance_id="mover",
                    instance=cpb.Instance(flavor=make_flavor(admin, 1, 128, 1), image=image),
                )
            ),
        )
        instance = cpb.Instance()
        created.response.Unpack(instance)
        console_until(compute, instance.name, "tick 3", timeout=120)
        source = instance.host.removeprefix("hosts/")
        (destination,) = set(hosts) - {source}
        disk = f"{pool}/kumo-disk-{instance.uid}"
        assert _vda_source(hosts[source].uri, instance.uid) == disk
        before = last_tick(member, instance.name)

        options = cpb.MigrationOptions()
        if mode == "cold":
            succeed(member, compute.StopInstance(capi.StopInstanceRequest(name=instance.name)))
            options.mode = cpb.MigrationOptions.MODE_COLD
        op = crpc.ComputeServiceStub(admin.channel).MigrateInstance(
            capi.MigrateInstanceRequest(name=instance.name, options=options)
        )
        done = wait_long(admin, op)
        assert not done.HasField("error"), done.error
        moved = cpb.Instance()
        done.response.Unpack(moved)
        state = cpb.Instance.STATE_RUNNING if mode == "live" else cpb.Instance.STATE_STOPPED
        assert (moved.host, moved.state) == (f"hosts/{destination}", state)
        progress = progress_of(metadata(admin, op.name))
        print(
            f"\nRBD-rooted {mode} migration: downtime {progress.downtime_ms:.0f} ms, total "
            f"{progress.total_ms:.0f} ms, disk copied {progress.disk_processed_bytes} bytes"
        )
        assert progress.disk_total_bytes == progress.disk_processed_bytes == 0  # no block copy
        assert _vda_source(hosts[destination].uri, instance.uid) == disk
        if mode == "cold":
            succeed(member, compute.StartInstance(capi.StartInstanceRequest(name=instance.name)))
            booted = console_until(compute, instance.name, BOOTED, 2, 120).contents
            assert booted.count(BOOTED) >= 2
        else:
            assert progress.memory_processed_bytes > 0
            deadline = time.monotonic() + 60
            while last_tick(member, instance.name) < before + 5 and time.monotonic() < deadline:
                time.sleep(0.5)
            assert last_tick(member, instance.name) >= before + 5

        succeed(member, compute.DeleteInstance(capi.DeleteInstanceRequest(name=instance.name)))
        inspect = RbdDriver(conf=str(ceph.conf), user="admin")
        try:
            assert f"kumo-disk-{instance.uid}" not in inspect.list_volumes(pool)
        finally:
            inspect.close()
    finally:
        for agent in agents:
            agent.stop()
        for driver in drivers.values():
            driver.close()
        for host in ceph_hosts.hosts.hosts:
            host.daemon.destroy_all_domains()
        channel.close()
        server.stop()
