"""Block storage on a real single-node Ceph: API vs direct rbd, clone latency, guest writes.

Run from the repository root:

    .venv/bin/python -m tests.bench.bench_storage              # 200 volumes, 20 clones, guest
    .venv/bin/python -m tests.bench.bench_storage --quick      # 50 volumes, 10 clones, guest
    .venv/bin/python -m tests.bench.bench_storage --no-guest

One throwaway Ceph cluster (tests/support/ceph.py: mon + memstore OSD, cephx) for the run.

1. Volume create/delete per second, the same run, the same pool:
   - direct: `RbdDriver.create_volume` / `delete_volume` (the rbd bindings, client.kumo),
     `--concurrency` threads on one cluster connection, `--volumes` 1 GiB volumes;
   - API: a real API server in this process (tests/support/server.py, SQLite) with that
     cluster as its RBD backend; a tenant's member creates `--volumes` 1 GiB volumes through
     gRPC, `--concurrency` in flight (client threads: CreateVolume then WaitOperation), then
     deletes them the same way. The rate is volumes / wall time of the phase.
2. Clone-from-image latency: an image (the tiny guest image) is uploaded and its RBD base
   made once (first volume, not counted); then `--clones` volumes from that image, each
   timed CreateVolume → WaitOperation done (API), and `clone_volume` alone (driver).
3. Guest sequential write: a real libvirtd and one tiny guest; an RBD volume starting with
   `kumo-bench` is hot-plugged and the guest writes 64 MiB (busybox dd bs=1M, fsync), timed
   with its /proc/uptime (skipped with --no-guest or without libvirt/the image).

Everything shares this one Python process (clients, server, drivers): the API figures
include the client's CPU. Nothing is asserted: see tests/bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
from google.longrunning import operations_pb2

from kumo.drivers.storage.base import SnapshotRef
from kumo.drivers.storage.rbd import RbdDriver
from kumo.storage.v1 import resources_pb2 as spb
from kumo.storage.v1 import storage_service_pb2 as sapi
from tests.conftest import make_config
from tests.support.ceph import CephCluster, ceph_missing
from tests.support.cloud import ADMIN_PASSWORD, Stubs, make_tenant, sign_in, unique
from tests.support.fixtures_compute import IMAGE_DIR
from tests.support.images import upload_image
from tests.support.server import ServerThread
from tests.support.storage import make_type, storage
from tests.support.topology import make_site

GiB = 1 << 30


def _ms(values: list[float]) -> str:
    values = sorted(values)
    p50 = statistics.median(values) * 1000
    p95 = values[min(len(values) - 1, int(len(values) * 0.95))] * 1000
    return f"p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   max {values[-1] * 1000:7.1f} ms"


def direct(driver: RbdDriver, pool: str, count: int, concurrency: int) -> tuple[float, float]:
    names = [f"kumo-vol-bench-{uuid.uuid4().hex}" for _ in range(count)]
    with ThreadPoolExecutor(concurrency) as workers:
        started = time.monotonic()
        list(workers.map(lambda name: driver.create_volume(pool, name, GiB), names))
        created = time.monotonic() - started
        started = time.monotonic()
        list(workers.map(lambda name: driver.delete_volume(pool, name), names))
        deleted = time.monotonic() - started
    return count / created, count / deleted


def through_api(
    member: Stubs, parent: str, volume_type: str, count: int, concurrency: int
) -> tuple[float, float, int]:
    service = storage(member)

    def wait(operation: operations_pb2.Operation) -> bool:
        done = member.operations.WaitOperation(
            operations_pb2.WaitOperationRequest(name=operation.name)
        )
        return bool(done.done and not done.HasField("error"))

    def create(index: int) -> bool:
        return wait(
            service.CreateVolume(
                sapi.CreateVolumeRequest(
                    parent=parent,
                    volume_id=f"b{index}",
                    volume=spb.Volume(volume_type=volume_type, size_gib=1),
                )
            )
        )

    def delete(index: int) -> bool:
        return wait(
            service.DeleteVolume(sapi.DeleteVolumeRequest(name=f"{parent}/volumes/b{index}"))
        )

    with ThreadPoolExecutor(concurrency) as pool:
        started = time.monotonic()
        created_ok = sum(pool.map(create, range(count)))
        created = time.monotonic() - started
        started = time.monotonic()
        deleted_ok = sum(pool.map(delete, range(count)))
        deleted = time.monotonic() - started
    return count / created, count / deleted, 2 * count - created_ok - deleted_ok


def clones(
    member: Stubs,
    parent: str,
    volume_type: str,
    image: str,
    driver: RbdDriver,
    pool: str,
    count: int,
) -> tuple[list[float], list[float]]:
    service = storage(member)

    def one(volume_id: str) -> float:
        started = time.monotonic()
        operation = service.CreateVolume(
            sapi.CreateVolumeRequest(
                parent=parent,
                volume_id=volume_id,
                volume=spb.Volume(volume_type=volume_type, size_gib=1, source_image=image),
            )
        )
        done = member.operations.WaitOperation(
            operations_pb2.WaitOperationRequest(name=operation.name)
        )
        assert done.done and not done.HasField("error"), done
        return time.monotonic() - started

    one("warm")  # imports the image into the pool once
    api = [one(f"c{i}") for i in range(count)]
    base = next(n for n in driver.list_volumes(pool) if n.startswith("kumo-img-"))
    ref = SnapshotRef(pool, base, "base")
    raw = []
    for _ in range(count):
        name = f"kumo-vol-clone-{uuid.uuid4().hex}"
        started = time.monotonic()
        driver.clone_volume(ref, pool, name, GiB)
        raw.append(time.monotonic() - started)
        driver.delete_volume(pool, name)
    return api, raw


def guest_write(cluster: CephCluster, pool: str, image: Path) -> str:
    """MiB/s of the tiny guest writing 64 MiB into a hot-plugged RBD volume (its own clock)."""
    import libvirt

    from kumo.drivers.compute.libvirt import LibvirtDriver
    from kumo.drivers.compute.libvirt_disks import attach, ceph_secret, detach
    from kumo.drivers.compute.libvirtd import LibvirtDaemon, unavailable_reason
    from tests.support.volume_guests import spec, wait_console

    if (reason := unavailable_reason()) is not None:
        return f"skipped: {reason}"
    volumes = RbdDriver(
        conf=str(cluster.conf), user=cluster.user, keyring=str(cluster.user_keyring)
    )
    volumes.create_volume(pool, "kumo-vol-guest-bench", 128 << 20)
    volumes.write(pool, "kumo-vol-guest-bench", 0, b"kumo-bench")
    daemon = LibvirtDaemon()
    daemon.start()
    try:
        driver = LibvirtDriver(uri=daemon.uri, instances_dir=Path(tempfile.mkdtemp()) / "i")
        conn = libvirt.open(daemon.uri)
        guest = spec(unique("bench"), "bench-guest", image)
        driver.spawn(guest)
        wait_console(driver, guest.uid, r"KUMO_BOOT_OK")
        domain = conn.lookupByName(f"kumo-{guest.uid}")
        secret = ceph_secret(conn, cluster.user, cluster.key)
        source = volumes.disk_source(pool, "kumo-vol-guest-bench")
        attach(domain, source, "kumobench", secret_uuid=secret)
        line = wait_console(
            driver, guest.uid, r"disk serial=kumobench bench=(\d+) bytes from=(\S+) to=(\S+)", 120
        )
        detach(domain, "kumobench")
        driver.destroy(guest.uid)
        conn.close()
        seconds = float(line.group(3)) - float(line.group(2))
        return (
            f"{int(line.group(1)) / (1 << 20) / seconds:.0f} MiB/s ({seconds:.2f} s, guest clock)"
        )
    finally:
        daemon.stop()
        volumes.delete_volume(pool, "kumo-vol-guest-bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--volumes", type=int, default=200)
    parser.add_argument("--clones", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-guest", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.volumes, args.clones = 50, 10
    if (reason := ceph_missing()) is not None:
        raise SystemExit(f"cannot run: {reason}")
    cluster = CephCluster()
    started = time.monotonic()
    cluster.start()
    print(f"ceph: mon + memstore OSD up in {time.monotonic() - started:.1f} s")
    pool = "kumo-bench"
    cluster.create_pool(pool)
    driver = RbdDriver(conf=str(cluster.conf), user=cluster.user, keyring=str(cluster.user_keyring))
    server = None
    try:
        direct(driver, pool, 20, args.concurrency)  # warm-up: the new pool's PGs settle
        direct_create, direct_delete = direct(driver, pool, args.volumes, args.concurrency)
        config = make_config(
            f"sqlite:///{tempfile.mkdtemp(prefix='kumo-bench-')}/kumo.db",
            storage={
                "rbd": {
                    "conf": str(cluster.conf),
                    "user": cluster.user,
                    "keyring": str(cluster.user_keyring),
                },
                "reconcile_seconds": 0,
            },
            quota_defaults={"volumes": -1, "gigabytes": -1, "snapshots": -1},
        )
        server = ServerThread(config)
        channel = grpc.insecure_channel(server.address)
        admin = Stubs(channel, sign_in(channel, "admin", ADMIN_PASSWORD, "admin"))
        zone = make_site(admin).zone
        volume_type = make_type(admin, spb.BACKEND_RBD, pool)
        tenant = make_tenant(channel, admin, "bench")
        member = tenant.stubs["member"]
        parent = f"{tenant.name}/zones/{zone}"
        api_create, api_delete, errors = through_api(
            member, parent, volume_type, args.volumes, args.concurrency
        )
        image_path = IMAGE_DIR / "kumo-tiny.qcow2"
        image = upload_image(member, tenant.name, image_path.read_bytes())
        api_clone, raw_clone = clones(member, parent, volume_type, image, driver, pool, args.clones)
        guest = "skipped (--no-guest)" if args.no_guest else guest_write(cluster, pool, image_path)
    finally:
        if server is not None:
            server.stop()
        driver.close()
        cluster.stop()

    print()
    print(f"volume create/delete, {args.volumes} x 1 GiB RBD volumes, same pool, same run")
    print(
        f"  direct rbd ({args.concurrency} threads, bindings)        "
        f"create {direct_create:7.1f}/s   "
        f"delete {direct_delete:7.1f}/s"
    )
    print(
        f"  through the API ({args.concurrency} clients, Operation)  "
        f"create {api_create:7.1f}/s   delete {api_delete:7.1f}/s   errors {errors}"
    )
    print(f"clone from image (1 GiB volume of the tiny image), {args.clones} runs")
    print(f"  through the API (CreateVolume → done)   {_ms(api_clone)}")
    print(f"  driver clone_volume alone               {_ms(raw_clone)}")
    print(f"guest sequential write, 64 MiB, bs=1M, fsync, RBD network disk: {guest}")
    print(
        f"machine: {os.cpu_count()} CPUs, {platform.python_version()}, "
        f"{platform.platform(terse=True)}"
    )


if __name__ == "__main__":
    main()
