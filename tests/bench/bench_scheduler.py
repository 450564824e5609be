"""Placements per second of Kumo's scheduler, side by side with OpenStack Placement.

Run from the repository root:

    .venv/bin/python -m tests.bench.bench_scheduler              # 10,000 on 1,000 hosts
    .venv/bin/python -m tests.bench.bench_scheduler --quick      # 1,000 on 1,000 hosts
    .venv/bin/python -m tests.bench.bench_scheduler --backends sqlite --no-placement \\
        --profile /tmp/kumo-prof                                 # py-spy the Kumo loop

Kumo: on a migrated database (a SQLite file, and PostgreSQL when installed) it
writes one region → zone → KVM pool → racks → `--hosts` hosts with capacity and a
fresh heartbeat, plus `--instances` unplaced instance rows as CreateInstance
leaves them, straight through the models. Then it places every instance with the
BUILD handler's own step (the row by uid, then `InstanceOperations._place`:
`scheduler.place()` — filters, weigher, claim — then the new generation and
state), one transaction per placement, in a loop, and times each.

OpenStack Placement (optional, `--placement-venv`, default /tmp/placement-venv):
tests/bench/placement_driver.py, run with that venv's Python, creates as many
resource providers with the same inventories and does what Nova's scheduler does
per instance: GET /allocation_candidates (limit = `--placement-limit`, by default
1,000 like Nova's `max_placement_results`), then PUT /allocations for the first
candidate, in-process (WSGI calls, no HTTP) on SQLite with Kumo's pragmas.

It prints placements/s, p50/p99 per placement, CPU, and the Kumo/Placement
ratio. Nothing is asserted: see tests/bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kumo.compute.v1 import resources_pb2 as cpb
from kumo.server.config import Config, load_config
from kumo.server.db.base import utcnow
from kumo.server.db.engine import Database
from kumo.server.db.migrate import upgrade
from kumo.server.db.models import (
    HostRow,
    InstanceRow,
    PoolRow,
    ProjectRow,
    RackRow,
    RegionRow,
    ZoneRow,
)
from kumo.server.services.compute.common import instance_by_uid
from kumo.server.services.compute.instance_operations import InstanceOperations
from kumo.topology.v1 import resources_pb2 as tpb
from tests.bench.bench_api import _cpu_model, _machine_busy_seconds, _tree_cpu_seconds
from tests.support.postgres import PostgresServer, find_bindir

HERE = Path(__file__).resolve().parent
PLACEMENT_DRIVER = HERE / "placement_driver.py"
DEFAULT_PLACEMENT_VENV = Path("/tmp/placement-venv")
HOSTS_PER_RACK = 40
# One host: 16 vCPUs (64 with the default 4.0 CPU allocation ratio), 64 GiB, 1,000 GiB.
HOST_VCPUS, HOST_MEMORY_MIB, HOST_DISK_GIB = 16, 65536, 1000
# One instance: what Placement is asked for, VCPU:1,MEMORY_MB:128,DISK_GB:1.
INSTANCE_VCPUS, INSTANCE_MEMORY_MIB, INSTANCE_DISK_GIB = 1, 128, 1
PROJECT, ZONE, POOL = "bench", "bench-zone", "bench-pool"
INSERT_BATCH = 2000


# --------------------------------------------------------------------------- results


@dataclass
class Run:
    """One system on one backend: every placement's latency."""

    system: str
    backend: str
    latencies: list[float] = field(default_factory=list)  # seconds, one per placement
    seconds: float = 0.0  # wall time of the whole loop
    setup_seconds: float = 0.0
    failures: int = 0
    cpu_seconds: float = 0.0  # the placing process
    db_cpu_seconds: float | None = None  # PostgreSQL (server and backends)
    other_cpu_seconds: float = 0.0  # everything else on the machine
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else math.nan

    def percentile_ms(self, q: float, values: list[float] | None = None) -> float:
        ordered = sorted(self.latencies if values is None else values)
        if not ordered:
            return math.nan
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] * 1000


def _segments(latencies: list[float], parts: int = 10) -> str:
    """p50 in ms of each tenth of the run, in order (does the cost grow with the claims?)."""
    if len(latencies) < parts:
        return "-"
    size = len(latencies) // parts
    return " ".join(
        f"{statistics.median(latencies[i * size : (i + 1) * size]) * 1000:.2f}"
        for i in range(parts)
    )


# --------------------------------------------------------------------------- Kumo


def _config(url: str, workdir: Path, weigher: str) -> Config:
    # The loop may run longer than the default heartbeat timeout (60 s); the hosts'
    # heartbeats are written once, so liveness must not expire during it.
    return load_config(
        None,
        data_dir=str(workdir / "data"),
        database={"url": url},
        topology={"heartbeat_timeout_seconds": 86400},
        scheduler={"weigher": weigher},
    )


def seed(db: Database, hosts: int, instances: int) -> list[str]:
    """The topology tree, `hosts` live hosts and `instances` unplaced instances; their uids."""
    now = utcnow()
    racks = math.ceil(hosts / HOSTS_PER_RACK)

    def topology(session: Session) -> None:
        session.add(ProjectRow(id=PROJECT))
        session.add(RegionRow(id="bench-region"))
        session.flush()
        session.add(ZoneRow(id=ZONE, region_id="bench-region"))
        session.flush()
        session.add(PoolRow(id=POOL, zone_id=ZONE, hypervisor_kind=tpb.HYPERVISOR_KIND_KVM))
        session.flush()
        session.add_all(RackRow(id=f"rack-{r:03d}", pool_id=POOL) for r in range(racks))
        session.flush()
        session.add_all(
            HostRow(
                id=f"host-{h:04d}",
                rack_id=f"rack-{h // HOSTS_PER_RACK:03d}",
                vcpus=HOST_VCPUS,
                memory_mib=HOST_MEMORY_MIB,
                disk_gib=HOST_DISK_GIB,
                admin_state=tpb.Host.STATE_ENABLED,
                last_heartbeat_time=now,
            )
            for h in range(hosts)
        )

    db.transaction(topology)
    uids: list[str] = []
    for start in range(0, instances, INSERT_BATCH):

        def batch(session: Session, start: int = start) -> list[str]:
            rows = [
                InstanceRow(
                    id=f"vm-{i:05d}",
                    project_id=PROJECT,
                    zone_id=ZONE,
                    flavor_id="bench",
                    image_project_id=PROJECT,
                    image_id="bench",
                    hostname=f"vm-{i:05d}",
                    vcpus=INSTANCE_VCPUS,
                    memory_mib=INSTANCE_MEMORY_MIB,
                    disk_gib=INSTANCE_DISK_GIB,
                    host_id=None,
                    state=cpb.Instance.STATE_PROVISIONING,  # as CreateInstance leaves it
                    status_message="scheduling",
                )
                for i in range(start, min(instances, start + INSERT_BATCH))
            ]
            session.add_all(rows)
            session.flush()
            return [row.uid for row in rows]

        uids += db.transaction(batch)
    return uids


def bench_kumo(
    backend: str,
    url: str,
    workdir: Path,
    args: argparse.Namespace,
    db_pid: int | None = None,
) -> Run:
    run = Run("kumo", backend)
    config = _config(url, workdir, args.weigher)
    db = Database(url)
    try:
        started = time.perf_counter()
        upgrade(db.engine)
        uids = seed(db, args.hosts, args.instances)
        run.setup_seconds = time.perf_counter() - started
        # The BUILD handler's own placement step, called as the handler calls it (through
        # db.run, which on SQLite is this same synchronous transaction inline).
        handler = cast(Any, SimpleNamespace(runtime=SimpleNamespace(config=config)))
        tried: set[str] = set()

        def place_one(session: Session, uid: str) -> str | None:
            row = instance_by_uid(session, uid)
            assert row is not None
            InstanceOperations._place(handler, session, row, tried)
            return row.host_id

        if args.warmup:  # the first placement compiles and caches the statements
            db.transaction(lambda s: place_one(s, uids[0]))
            uids = uids[1:]
        profiler = _py_spy(os.getpid(), args.profile, f"kumo-{backend}") if args.profile else None
        db_cpu0 = _tree_cpu_seconds(db_pid) if db_pid else 0.0
        cpu0, busy0, wall0 = time.process_time(), _machine_busy_seconds(), time.perf_counter()
        for index, uid in enumerate(uids):
            t0 = time.perf_counter()
            try:
                db.transaction(lambda s, uid=uid: place_one(s, uid))
            except Exception as error:  # NoValidHost: counted, not timed
                run.failures += 1
                if run.failures == 1:
                    run.notes.append(f"first failure: {error}")
                continue
            run.latencies.append(time.perf_counter() - t0)
            if (index + 1) % 1000 == 0:
                rate = (index + 1) / (time.perf_counter() - wall0)
                print(f"  kumo {backend}: {index + 1}/{len(uids)}, {rate:.0f}/s", file=sys.stderr)
        run.seconds = time.perf_counter() - wall0
        run.cpu_seconds = time.process_time() - cpu0
        busy = _machine_busy_seconds() - busy0
        if db_pid:
            run.db_cpu_seconds = _tree_cpu_seconds(db_pid) - db_cpu0
        run.other_cpu_seconds = max(0.0, busy - run.cpu_seconds - (run.db_cpu_seconds or 0.0))
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(60)
        run.notes.append(_spread(db))
    finally:
        db.close()
    return run


def _spread(db: Database) -> str:
    """How the claims ended up: instances per host (min / max) over the hosts used."""

    def read(session: Session) -> tuple[int, int, int]:
        counts = list(
            session.scalars(
                select(func.count())
                .select_from(InstanceRow)
                .where(InstanceRow.host_id.is_not(None))
                .group_by(InstanceRow.host_id)
            )
        )
        return len(counts), min(counts, default=0), max(counts, default=0)

    used, low, high = db.transaction(read)
    return f"claims on {used} hosts, {low}-{high} instances per host"


def _py_spy(pid: int, folder: Path, stem: str) -> subprocess.Popen[bytes]:
    """`py-spy record` on `pid` until SIGINT; folded stacks go to folder/stem.folded."""
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    folder.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            py_spy, "record", "--pid", str(pid), "--rate", "250", "--format", "raw",
            "--output", str(folder / f"{stem}.folded"), "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(1.0)  # attached before the loop starts
    return process


# --------------------------------------------------------------------------- Placement


def venv_unavailable(venv: Path, imports: str, how: str) -> str | None:
    """Why the separate venv `venv` cannot `import {imports}` (`how`: how to make it), or
    None when it can."""
    python = venv / "bin" / "python"
    if not python.exists():
        return f"no {python}: {how}"
    check = subprocess.run([str(python), "-c", f"import {imports}"], capture_output=True, text=True)
    if check.returncode != 0:
        return f"{imports} does not import in {venv}: {check.stderr.strip().splitlines()[-1:]}"
    return None


def placement_unavailable(venv: Path) -> str | None:
    """Why openstack-placement cannot run from `venv`, or None."""
    how = f"python3 -m venv {venv} && {venv}/bin/pip install openstack-placement"
    return venv_unavailable(venv, "placement.deploy", how)


def bench_placement(workdir: Path, args: argparse.Namespace) -> Run:
    run = Run("placement", "sqlite")
    command = [
        str(args.placement_venv / "bin" / "python"), str(PLACEMENT_DRIVER),
        "--db", str(workdir / "placement.db"), "--hosts", str(args.hosts),
        "--placements", str(args.placement_count), "--limit", str(args.placement_limit),
        "--vcpus", str(HOST_VCPUS), "--memory-mib", str(HOST_MEMORY_MIB),
        "--disk-gib", str(HOST_DISK_GIB), "--instance-memory-mib", str(INSTANCE_MEMORY_MIB),
    ]  # fmt: skip
    if args.warmup:
        command.append("--warmup")
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True
    )
    profiler = None
    try:
        if args.profile:
            profiler = _py_spy(process.pid, args.profile, "placement")
        out, _ = process.communicate()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(60)
    if process.returncode != 0:
        raise RuntimeError(f"placement_driver.py failed with exit code {process.returncode}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    run.latencies = result["latencies"]
    run.seconds = result["seconds"]
    run.setup_seconds = result["setup_seconds"]
    run.failures = result["failures"]
    run.cpu_seconds = result["cpu_seconds"]
    run.other_cpu_seconds = result["other_cpu_seconds"]
    get, put = result["get_latencies"], result["put_latencies"]
    run.notes.append(
        f"GET /allocation_candidates p50 {run.percentile_ms(0.5, get):.2f} ms, "
        f"p99 {run.percentile_ms(0.99, get):.2f} ms ({result['candidates_min']}-"
        f"{result['candidates_max']} candidates returned); PUT /allocations p50 "
        f"{run.percentile_ms(0.5, put):.2f} ms, p99 {run.percentile_ms(0.99, put):.2f} ms"
    )
    run.notes.append(result["versions"])
    return run


# --------------------------------------------------------------------------- report

HEADER = (
    f"{'system':<9} | {'backend':<8} | {'placed':>6} | {'seconds':>7} | {'place/s':>8} | "
    f"{'p50 ms':>7} | {'p99 ms':>7} | {'max ms':>7} | {'bench CPU':>9} | {'db CPU':>6} | "
    f"{'other CPU':>9} | failed"
)


def _row(run: Run) -> str:
    seconds = run.seconds or math.nan
    db = "-" if run.db_cpu_seconds is None else f"{run.db_cpu_seconds / seconds:.0%}"
    return (
        f"{run.system:<9} | {run.backend:<8} | {len(run.latencies):>6} | {run.seconds:>7.1f} | "
        f"{run.rate:>8,.0f} | {run.percentile_ms(0.50):>7.2f} | {run.percentile_ms(0.99):>7.2f} | "
        f"{run.percentile_ms(1.0):>7.2f} | {run.cpu_seconds / seconds:>8.0%} | {db:>6} | "
        f"{run.other_cpu_seconds / seconds:>8.0%} | {run.failures}"
    )


def _versions() -> str:
    import importlib.metadata as md

    return ", ".join(f"{n} {md.version(n)}" for n in ("sqlalchemy", "psycopg"))


def report(runs: list[Run], args: argparse.Namespace, skipped: list[str]) -> None:
    print()
    print(
        f"Scheduler benchmark: {args.hosts:,} hosts ({HOST_VCPUS} vCPUs, {HOST_MEMORY_MIB} MiB, "
        f"{HOST_DISK_GIB} GiB each), instances of {INSTANCE_VCPUS} vCPU / "
        f"{INSTANCE_MEMORY_MIB} MiB / {INSTANCE_DISK_GIB} GiB; one transaction per placement"
        + ("; PROFILED (py-spy attached, figures not comparable)" if args.profile else "")
    )
    print(HEADER)
    print("-" * len(HEADER))
    for run in runs:
        print(_row(run))
    print()
    for run in runs:
        print(f"{run.system} {run.backend}: setup {run.setup_seconds:.1f} s (not timed)")
        print(f"  p50 ms per tenth of the run: {_segments(run.latencies)}")
        for note in run.notes:
            print(f"  {note}")
    kumo = [r for r in runs if r.system == "kumo" and r.backend == "sqlite"]
    placement = [r for r in runs if r.system == "placement"]
    if kumo and placement and placement[0].latencies:
        k, p = kumo[0], placement[0]
        print()
        print(
            f"Kumo/Placement on SQLite: {k.rate / p.rate:.1f}x the placements/s, "
            f"p50 {p.percentile_ms(0.5) / k.percentile_ms(0.5):.1f}x lower, "
            f"p99 {p.percentile_ms(0.99) / k.percentile_ms(0.99):.1f}x lower"
        )
    print()
    print("Kumo: InstanceOperations._place (row by uid + scheduler.place + state) in")
    print(f"Database.transaction, weigher {args.weigher}, all hosts in one zone/pool. Placement:")
    print(f"GET /allocation_candidates?resources=VCPU:1,MEMORY_MB:{INSTANCE_MEMORY_MIB},DISK_GB:1")
    print(f"&limit={args.placement_limit} then PUT /allocations/<consumer> with the first one,")
    print("in-process WSGI (whole middleware stack, noauth2, microversion 1.36), SQLite with")
    print("WAL + synchronous=NORMAL like Kumo's. bench / db / other CPU: CPU time over the loop")
    print("of the placing process / PostgreSQL / everything else (100% = one core; other CPU")
    print("above a few % means the machine was busy and the figures are not trustworthy).")
    for name in skipped:
        print(f"skipped: {name}")
    print()
    print(
        f"machine: nproc {len(os.sched_getaffinity(0))} (cpu_count {os.cpu_count()}), "
        f"{_cpu_model()}; Python {platform.python_version()} on {platform.system()} "
        f"{platform.release()}; load average at start {args.load_at_start}"
    )
    print(f"versions: {_versions()}")


# --------------------------------------------------------------------------- main


@contextlib.contextmanager
def postgres() -> Iterator[PostgresServer | None]:
    bindir = find_bindir()
    if bindir is None:
        yield None
        return
    server = PostgresServer(bindir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.bench_scheduler", description=__doc__
    )
    parser.add_argument("--quick", action="store_true", help="1,000 instances, 500 in Placement")
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--instances", type=int, help="Kumo placements (default 10,000)")
    parser.add_argument(
        "--backends",
        default="sqlite,postgres",
        help="Kumo's, comma-separated: sqlite, postgres ('' for Placement only)",
    )
    parser.add_argument("--weigher", choices=("spread", "pack"), default="spread")
    parser.add_argument(
        "--placement-venv",
        type=Path,
        default=DEFAULT_PLACEMENT_VENV,
        help="a venv with openstack-placement (default /tmp/placement-venv)",
    )
    parser.add_argument(
        "--placement-count", type=int, help="Placement placements (default: as many as Kumo's)"
    )
    parser.add_argument(
        "--placement-limit",
        type=int,
        default=1000,
        help="allocation candidates per request (Nova's max_placement_results default: 1000)",
    )
    parser.add_argument("--no-placement", action="store_true", help="Kumo only")
    parser.add_argument("--no-warmup", dest="warmup", action="store_false")
    parser.add_argument(
        "--profile", type=Path, help="py-spy each placing loop; folded stacks go to this folder"
    )
    args = parser.parse_args(argv)
    args.instances = args.instances or (1000 if args.quick else 10000)
    args.placement_count = args.placement_count or (500 if args.quick else args.instances)
    args.load_at_start = " ".join(Path("/proc/loadavg").read_text().split()[:3])

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    runs: list[Run] = []
    skipped: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="kumo-bench-sched-"))
    try:
        for backend in filter(None, args.backends.split(",")):
            workdir = root / backend
            workdir.mkdir()
            print(f"kumo {backend}: seeding and placing ...", file=sys.stderr, flush=True)
            if backend == "sqlite":
                runs.append(bench_kumo(backend, f"sqlite:///{workdir / 'kumo.db'}", workdir, args))
            elif backend == "postgres":
                with postgres() as pg:
                    if pg is None:
                        skipped.append("kumo on PostgreSQL (PostgreSQL is not installed)")
                        continue
                    postmaster = int((pg.data / "postmaster.pid").read_text().split()[0])
                    runs.append(
                        bench_kumo(backend, pg.create_database(), workdir, args, postmaster)
                    )
            else:
                parser.error(f"unknown backend {backend!r}")
            print(f"  {_row(runs[-1])}", file=sys.stderr, flush=True)
        if not args.no_placement:
            reason = placement_unavailable(args.placement_venv)
            if reason is not None:
                skipped.append(f"OpenStack Placement: {reason}")
            else:
                print("placement: creating providers and placing ...", file=sys.stderr)
                runs.append(bench_placement(root, args))
                print(f"  {_row(runs[-1])}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report(runs, args, skipped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
