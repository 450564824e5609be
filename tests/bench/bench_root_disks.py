"""Instance root disks: local qcow2 overlays vs copy-on-write clones in Ceph, real guests.

Run from the repository root:

    .venv/bin/python -m tests.bench.bench_root_disks             # 5 guests per kind
    .venv/bin/python -m tests.bench.bench_root_disks --quick     # 3 guests per kind

One throwaway Ceph cluster (tests/support/ceph.py: mon + memstore OSD, cephx) and one private
libvirtd (its ~8 s QEMU probe is not counted). For each kind of root disk, a real API server
in this process (tests/support/server.py, SQLite; `storage.root_disks` = `local` or `rbd`, the
latter with the cluster as its RBD backend) and one kumo-agent with the libvirt driver (and
the cluster in its `[volumes]` config). One instance of the tiny image is created and deleted
first, unmeasured (the agent caches the image; for `rbd` the image's base is imported into
the pool once). Then `--guests` times, one after the other: CreateInstance, polled every
0.1 s until the operation is done (RUNNING) and until `KUMO_BOOT_OK` shows in the console
(the agent ships it every second, which bounds the precision), then DeleteInstance until done.

Clone latency: `clone_volume` of the image's base alone (the driver call the BUILD operation
makes), `--clones` times, and `delete_volume` of each.

Everything shares this one Python process. Nothing is asserted: see tests/bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import grpc
from google.longrunning import operations_pb2

from kumo.agent.config import VolumesConfig
from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import compute_service_pb2_grpc as crpc
from kumo.compute.v1 import resources_pb2 as cpb
from kumo.drivers.compute.libvirt import LibvirtDriver
from kumo.drivers.compute.libvirtd import LibvirtDaemon, unavailable_reason
from kumo.drivers.storage.base import SnapshotRef
from kumo.drivers.storage.rbd import RbdDriver
from tests.conftest import make_config
from tests.integration.test_compute_resources import make_flavor
from tests.support.agent import AgentThread
from tests.support.ceph import CephCluster, ceph_missing
from tests.support.cloud import ADMIN_PASSWORD, Stubs, make_tenant, sign_in, unique
from tests.support.fixtures_compute import IMAGE_DIR
from tests.support.images import upload_image
from tests.support.server import ServerThread
from tests.support.topology import make_site

GiB = 1 << 30
BOOTED = "KUMO_BOOT_OK"


def _ms(values: list[float]) -> str:
    values = sorted(values)
    p50 = statistics.median(values) * 1000
    return f"p50 {p50:8.1f} ms   max {values[-1] * 1000:8.1f} ms"


def _done(stubs: Stubs, operation: operations_pb2.Operation) -> bool:
    op = stubs.operations.GetOperation(operations_pb2.GetOperationRequest(name=operation.name))
    if op.done and op.HasField("error"):
        raise RuntimeError(f"{operation.name} failed: {op.error}")
    return bool(op.done)


def _guest(stubs: Stubs, parent: str, flavor: str, image: str, index: int) -> dict[str, float]:
    """Times one instance: create → done (RUNNING), → KUMO_BOOT_OK, delete → done."""
    compute = crpc.ComputeServiceStub(stubs.channel)
    instance_id = f"g{index}"
    name = f"{parent}/instances/{instance_id}"
    started = time.monotonic()
    op = compute.CreateInstance(
        capi.CreateInstanceRequest(
            parent=parent,
            instance_id=instance_id,
            instance=cpb.Instance(flavor=flavor, image=image),
        )
    )
    times: dict[str, float] = {}
    deadline = started + 300
    while "booted" not in times and time.monotonic() < deadline:
        if "running" not in times and _done(stubs, op):
            times["running"] = time.monotonic() - started
        output = compute.GetSerialPortOutput(capi.GetSerialPortOutputRequest(name=name))
        if BOOTED in output.contents:
            times["booted"] = time.monotonic() - started
        time.sleep(0.1)
    if "booted" not in times:
        raise RuntimeError(f"{name} did not boot in 300 s")
    while "running" not in times:
        if _done(stubs, op):
            times["running"] = time.monotonic() - started
        time.sleep(0.1)
    started = time.monotonic()
    op = compute.DeleteInstance(capi.DeleteInstanceRequest(name=name))
    while not _done(stubs, op):
        time.sleep(0.1)
    times["deleted"] = time.monotonic() - started
    return times


def run_kind(
    kind: str, cluster: CephCluster, daemon: LibvirtDaemon, pool: str, guests: int
) -> list[dict[str, float]]:
    """`guests` timed instances (after one unmeasured) with root disks of `kind`."""
    storage: dict[str, Any] = {
        "rbd": {
            "conf": str(cluster.conf),
            "user": cluster.user,
            "keyring": str(cluster.user_keyring),
        },
        "root_disks": kind,
        "root_disk_pool": pool,
        "reconcile_seconds": 0,
    }
    config = make_config(
        f"sqlite:///{tempfile.mkdtemp(prefix='kumo-bench-')}/kumo.db", storage=storage
    )
    server = ServerThread(config)
    channel = grpc.insecure_channel(server.address)
    driver = LibvirtDriver(uri=daemon.uri, instances_dir=Path(tempfile.mkdtemp()) / "instances")
    agent = None
    try:
        admin = Stubs(channel, sign_in(channel, "admin", ADMIN_PASSWORD, "admin"))
        site = make_site(admin)
        volumes = VolumesConfig(
            rbd_conf=str(cluster.conf), rbd_user=cluster.user, rbd_keyring=str(cluster.user_keyring)
        )
        agent = AgentThread(
            server.address, admin.token or "", unique("kvm"), site.rack, driver, volumes=volumes
        )
        tenant = make_tenant(channel, admin, "bench")
        member = tenant.stubs["member"]
        parent = f"{tenant.name}/zones/{site.zone}"
        flavor = make_flavor(admin, 1, 128, 1)
        image = upload_image(member, tenant.name, (IMAGE_DIR / "kumo-tiny.qcow2").read_bytes())
        _guest(member, parent, flavor, image, 0)  # warm: image cache, base import
        return [_guest(member, parent, flavor, image, i) for i in range(1, guests + 1)]
    finally:
        if agent is not None:
            agent.stop()
        driver.close()
        channel.close()
        server.stop()


def clone_latency(cluster: CephCluster, pool: str, count: int) -> tuple[list[float], list[float]]:
    """`clone_volume` / `delete_volume` of a root disk from the image base made by the runs."""
    driver = RbdDriver(conf=str(cluster.conf), user=cluster.user, keyring=str(cluster.user_keyring))
    try:
        base = next(n for n in driver.list_volumes(pool) if n.startswith("kumo-img-"))
        ref = SnapshotRef(pool, base, "base")
        made, removed = [], []
        for _ in range(count):
            name = f"kumo-disk-{uuid.uuid4()}"
            started = time.monotonic()
            driver.clone_volume(ref, pool, name, GiB)
            made.append(time.monotonic() - started)
            started = time.monotonic()
            driver.delete_volume(pool, name)
            removed.append(time.monotonic() - started)
        return made, removed
    finally:
        driver.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--guests", type=int, default=5)
    parser.add_argument("--clones", type=int, default=20)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.guests, args.clones = 3, 10
    for reason in (ceph_missing(), unavailable_reason()):
        if reason is not None:
            raise SystemExit(f"cannot run: {reason}")
    if not (IMAGE_DIR / "kumo-tiny.qcow2").exists():
        raise SystemExit(
            "cannot run: build/images/kumo-tiny.qcow2 is missing (scripts/build-image)"
        )
    cluster = CephCluster()
    cluster.start()
    pool = "kumo-vms"
    cluster.create_pool(pool)
    daemon = LibvirtDaemon()
    daemon.start()
    try:
        results = {
            kind: run_kind(kind, cluster, daemon, pool, args.guests) for kind in ("local", "rbd")
        }
        made, removed = clone_latency(cluster, pool, args.clones)
    finally:
        daemon.stop()
        cluster.stop()

    print()
    print(
        f"root disks, tiny image, 1 vCPU / 128 MiB / 1 GiB, {args.guests} guests per kind, "
        "one at a time"
    )
    for kind, runs in results.items():
        print(f"  {kind:5}  create → RUNNING       {_ms([r['running'] for r in runs])}")
        print(f"  {kind:5}  create → {BOOTED}  {_ms([r['booted'] for r in runs])}")
        print(f"  {kind:5}  delete → done          {_ms([r['deleted'] for r in runs])}")
    print(f"RBD root disk clone of the image base ({args.clones} x 1 GiB, driver call)")
    print(f"  clone_volume   {_ms(made)}")
    print(f"  delete_volume  {_ms(removed)}")
    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )


if __name__ == "__main__":
    main()
