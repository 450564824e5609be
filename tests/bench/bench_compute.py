"""Instances end to end: create → RUNNING and delete rates on fake hosts, and a real guest's boot.

Run from the repository root:

    .venv/bin/python -m tests.bench.bench_compute              # 20 fake hosts, 500 instances
    .venv/bin/python -m tests.bench.bench_compute --quick      # 5 hosts, 100 instances
    .venv/bin/python -m tests.bench.bench_compute --no-real --op-concurrency 16

Fake hosts: a real API server in this process (tests/support/server.py, SQLite)
and `--hosts` real kumo-agents (tests/support/agent.py) on FakeDriver, each
its own thread and event loop. A tenant (member role) creates `--instances`
instances through the API, `--concurrency` in flight (client threads, each
CreateInstance then WaitOperation), then deletes them all the same way. Per
instance it records the call → WaitOperation-returned-done time (what a client
sees) and the operation's own end_time - create_time (the server's view).
Before the measured phases, one instance per host is created and deleted
(unmeasured) so that every agent has fetched the image.

Real guest (skipped when libvirtd/QEMU or build/images/kumo-tiny.qcow2 are
missing, or with --no-real): a private libvirtd (LibvirtDaemon, started before any
timing: its ~8 s QEMU probe is not counted) and one kumo-agent with the libvirt
driver in another zone of the same server; `--real-runs` times, one after the
other, CreateInstance of the tiny image and then poll (every 0.1 s)
GetInstance / GetSerialPortOutput until RUNNING and until `KUMO_BOOT_OK` shows in
the console. The agent ships the console every `console_poll_interval_seconds`
(1 s by default), which bounds the precision. Each guest is deleted before the next.

Everything (server, agents, clients) shares this one Python process, so the
figures include the clients' and agents' CPU and their share of the GIL.
Nothing is asserted: see tests/bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.longrunning import operations_pb2

from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import compute_service_pb2_grpc as crpc
from kumo.compute.v1 import resources_pb2 as cpb
from kumo.drivers.compute.fake import FakeDriver
from kumo.server.config import Config, load_config
from kumo.type.v1 import operation_metadata_pb2
from tests.bench.bench_api import _cpu_model, _machine_busy_seconds
from tests.support.agent import AgentThread
from tests.support.cloud import (
    ADMIN_PASSWORD,
    Stubs,
    Tenant,
    make_tenant,
    set_quota,
    sign_in,
    unique,
)
from tests.support.images import upload_image
from tests.support.server import ServerThread
from tests.support.topology import Site, make_site

REPO = Path(__file__).resolve().parents[2]
TINY_IMAGE = REPO / "build" / "images" / "kumo-tiny.qcow2"
WAIT_SECONDS = 600  # per operation: far beyond any expected build
BOOT_MARKER = "KUMO_BOOT_OK"
GUEST_TIMEOUT = 300.0  # one real guest, CreateInstance to the boot marker (TCG is slow)
_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}
S = cpb.Instance


# --------------------------------------------------------------------------- results


@dataclass
class Phase:
    """One measured phase: per-instance latencies, the phase's wall time and CPU."""

    name: str
    count: int = 0
    client: list[float] = field(default_factory=list)  # call → WaitOperation returned, s
    server: list[float] = field(default_factory=list)  # operation end_time - create_time, s
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    other_cpu_seconds: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.client) / self.seconds if self.seconds else math.nan

    @staticmethod
    def percentile_ms(values: list[float], q: float) -> float:
        if not values:
            return math.nan
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] * 1000


@dataclass
class GuestRun:
    """One real guest: seconds from CreateInstance to RUNNING and to the boot marker."""

    running: float = math.nan
    boot_marker: float = math.nan
    deleted: float = math.nan
    error: str = ""


# --------------------------------------------------------------------------- helpers


def _config(workdir: Path, op_concurrency: int | None) -> Config:
    values: dict[str, Any] = {
        "data_dir": str(workdir / "data"),
        "listen": {"port": 0},
        "database": {"url": f"sqlite:///{workdir / 'kumo.db'}"},
        "bootstrap": {"admin_password": ADMIN_PASSWORD},
        "auth": {"scrypt_log2_n": 10},
    }
    if op_concurrency is not None:
        values["operations"] = {"concurrency": op_concurrency}
    return load_config(None, **values)


def _flavor(admin: Stubs, vcpus: int, memory_mib: int, disk_gib: int) -> str:
    flavor_id = unique("bench")
    crpc.ComputeServiceStub(admin.channel).CreateFlavor(
        capi.CreateFlavorRequest(
            flavor_id=flavor_id,
            flavor=cpb.Flavor(vcpus=vcpus, memory_mib=memory_mib, disk_gib=disk_gib),
        )
    )
    return f"flavors/{flavor_id}"


def _raise_quota(admin: Stubs, tenant: Tenant, instances: int) -> None:
    set_quota(admin, tenant, instances=instances, vcpus=instances * 4, ram_mib=instances * 1024)


def _server_seconds(operation: operations_pb2.Operation) -> float | None:
    metadata = operation_metadata_pb2.OperationMetadata()
    if not operation.metadata.Unpack(metadata) or not metadata.HasField("end_time"):
        return None
    end = metadata.end_time.ToNanoseconds()
    return (end - metadata.create_time.ToNanoseconds()) / 1e9


def _wait(stubs: Stubs, operation: operations_pb2.Operation) -> operations_pb2.Operation:
    deadline = time.monotonic() + WAIT_SECONDS
    while not operation.done and time.monotonic() < deadline:
        operation = stubs.operations.WaitOperation(
            operations_pb2.WaitOperationRequest(name=operation.name, timeout={"seconds": 60})
        )
    return operation


def run_phase(
    name: str,
    stubs: Stubs,
    items: list[str],
    start: Callable[[str], operations_pb2.Operation],
    concurrency: int,
) -> Phase:
    """`start(item)` then wait for its operation, for every item, `concurrency` at a time."""
    phase = Phase(name, len(items))
    lock = threading.Lock()

    def one(item: str) -> None:
        sent = time.perf_counter()
        try:
            done = _wait(stubs, start(item))
        except grpc.RpcError as error:
            with lock:
                code = error.code().name
                phase.errors[code] = phase.errors.get(code, 0) + 1
            return
        elapsed = time.perf_counter() - sent
        server = _server_seconds(done)
        with lock:
            if not done.done:
                phase.errors["not done"] = phase.errors.get("not done", 0) + 1
            elif done.HasField("error"):
                key = f"op {_CODE_NAMES.get(done.error.code, done.error.code)}"
                phase.errors[key] = phase.errors.get(key, 0) + 1
            else:
                phase.client.append(elapsed)
                if server is not None:
                    phase.server.append(server)

    cpu0, busy0, wall0 = time.process_time(), _machine_busy_seconds(), time.perf_counter()
    with ThreadPoolExecutor(concurrency, thread_name_prefix=f"bench-{name}") as pool:
        list(pool.map(one, items))
    phase.seconds = time.perf_counter() - wall0
    phase.cpu_seconds = time.process_time() - cpu0
    phase.other_cpu_seconds = max(0.0, _machine_busy_seconds() - busy0 - phase.cpu_seconds)
    return phase


# --------------------------------------------------------------------------- fake hosts


@dataclass
class Cloud:
    server: ServerThread
    channel: grpc.Channel
    admin: Stubs
    tenant: Tenant
    member: Stubs
    compute: crpc.ComputeServiceStub


def bench_fake(cloud: Cloud, args: argparse.Namespace, agents: list[AgentThread]) -> list[Phase]:
    site = make_site(cloud.admin)
    for index in range(args.hosts):
        agents.append(
            AgentThread(
                cloud.server.address,
                cloud.admin.token or "",
                f"fake-{index:03d}-{unique('h')[-4:]}",
                site.rack,
                FakeDriver(),
            )
        )
    flavor = _flavor(cloud.admin, 1, 128, 1)
    image = upload_image(cloud.member, cloud.tenant.name)
    parent = f"{cloud.tenant.name}/zones/{site.zone}"

    def create(instance_id: str) -> operations_pb2.Operation:
        return cloud.compute.CreateInstance(
            capi.CreateInstanceRequest(
                parent=parent,
                instance_id=instance_id,
                instance=cpb.Instance(flavor=flavor, image=image),
            )
        )

    def delete(instance_id: str) -> operations_pb2.Operation:
        return cloud.compute.DeleteInstance(
            capi.DeleteInstanceRequest(name=f"{parent}/instances/{instance_id}")
        )

    phases = []
    if args.warmup:  # one per host (spread): every agent fetches the image, unmeasured
        warm = [f"warm-{i:03d}" for i in range(args.hosts)]
        print(f"  warm-up: {len(warm)} instances", file=sys.stderr, flush=True)
        run_phase("warm-create", cloud.member, warm, create, args.concurrency)
        run_phase("warm-delete", cloud.member, warm, delete, args.concurrency)
    ids = [f"vm-{i:04d}" for i in range(args.instances)]
    for name, fn in (("create", create), ("delete", delete)):
        print(f"  {name}: {len(ids)} instances ...", file=sys.stderr, flush=True)
        phases.append(run_phase(name, cloud.member, ids, fn, args.concurrency))
        print(f"  {_row(phases[-1], args)}", file=sys.stderr, flush=True)
    return phases


# --------------------------------------------------------------------------- a real guest


def real_unavailable() -> str | None:
    """Why the real-guest part cannot run here, or None."""
    from kumo.drivers.compute.libvirtd import unavailable_reason

    reason = unavailable_reason()
    if reason is None and not TINY_IMAGE.exists():
        reason = f"{TINY_IMAGE} is missing (scripts/build-image build/images builds it)"
    return reason


def bench_real(
    cloud: Cloud, args: argparse.Namespace, workdir: Path, agents: list[AgentThread]
) -> tuple[list[GuestRun], float, str]:
    """The real-guest runs, the seconds libvirtd took to start (not in the runs) and the
    accelerator the driver chose."""
    from kumo.drivers.compute.libvirt import LibvirtDriver
    from kumo.drivers.compute.libvirtd import LibvirtDaemon

    daemon = LibvirtDaemon()
    started = time.monotonic()
    daemon.start()
    daemon_seconds = time.monotonic() - started
    runs: list[GuestRun] = []
    driver = LibvirtDriver(uri=daemon.uri, instances_dir=workdir / "instances")
    agent: AgentThread | None = None
    try:
        site = make_site(cloud.admin)
        agent = AgentThread(
            cloud.server.address,
            cloud.admin.token or "",
            unique("kvm"),
            site.rack,
            driver,
            console_poll_interval_seconds=args.console_poll,
        )
        agents.append(agent)
        image = upload_image(
            cloud.member, cloud.tenant.name, TINY_IMAGE.read_bytes(), min_ram_mib=128
        )
        flavor = _flavor(cloud.admin, 1, 128, 1)
        for attempt in range(1, args.real_runs + 1):
            print(f"  real guest {attempt}/{args.real_runs} ...", file=sys.stderr, flush=True)
            runs.append(_one_guest(cloud, site, flavor, image, f"guest-{attempt}"))
            print(f"    {runs[-1]}", file=sys.stderr, flush=True)
    finally:
        if agent is not None:
            agent.stop()  # before its libvirtd goes away
        daemon.stop()
    accelerator = {"kvm": "KVM", "qemu": "TCG"}.get(str(getattr(driver, "_domain_type", "")), "?")
    return runs, daemon_seconds, accelerator


def _one_guest(cloud: Cloud, site: Site, flavor: str, image: str, instance_id: str) -> GuestRun:
    run = GuestRun()
    name = f"{cloud.tenant.name}/zones/{site.zone}/instances/{instance_id}"
    started = time.perf_counter()
    operation = cloud.compute.CreateInstance(
        capi.CreateInstanceRequest(
            parent=f"{cloud.tenant.name}/zones/{site.zone}",
            instance_id=instance_id,
            instance=cpb.Instance(flavor=flavor, image=image),
        )
    )
    deadline = time.monotonic() + GUEST_TIMEOUT
    while time.monotonic() < deadline and (math.isnan(run.running) or math.isnan(run.boot_marker)):
        now = time.perf_counter() - started
        if math.isnan(run.running):
            instance = cloud.compute.GetInstance(capi.GetInstanceRequest(name=name))
            if instance.state == S.STATE_RUNNING:
                run.running = now
            elif instance.state == S.STATE_ERROR:
                run.error = instance.status_message
                break
        if math.isnan(run.boot_marker):
            out = cloud.compute.GetSerialPortOutput(capi.GetSerialPortOutputRequest(name=name))
            if BOOT_MARKER in out.contents:
                run.boot_marker = now
        time.sleep(0.1)
    done = _wait(cloud.member, operation)
    if done.HasField("error") and not run.error:
        run.error = done.error.message
    begun = time.perf_counter()
    gone = _wait(cloud.member, cloud.compute.DeleteInstance(capi.DeleteInstanceRequest(name=name)))
    run.deleted = time.perf_counter() - begun if not gone.HasField("error") else math.nan
    return run


# --------------------------------------------------------------------------- report


HEADER = (
    f"{'phase':<7} | {'hosts':>5} | {'instances':>9} | {'in flight':>9} | {'op conc':>7} | "
    f"{'seconds':>7} | {'per s':>6} | {'p50 ms':>7} | {'p99 ms':>7} | {'srv p50':>7} | "
    f"{'srv p99':>7} | {'CPU':>5} | {'other CPU':>9} | errors"
)


def _row(phase: Phase, args: argparse.Namespace) -> str:
    errors = ", ".join(f"{k}={v}" for k, v in sorted(phase.errors.items())) or "0"
    seconds = phase.seconds or math.nan
    return (
        f"{phase.name:<7} | {args.hosts:>5} | {phase.count:>9} | {args.concurrency:>9} | "
        f"{args.op_concurrency_shown:>7} | {phase.seconds:>7.1f} | {phase.rate:>6.1f} | "
        f"{Phase.percentile_ms(phase.client, 0.5):>7.0f} | "
        f"{Phase.percentile_ms(phase.client, 0.99):>7.0f} | "
        f"{Phase.percentile_ms(phase.server, 0.5):>7.0f} | "
        f"{Phase.percentile_ms(phase.server, 0.99):>7.0f} | "
        f"{phase.cpu_seconds / seconds:>4.0%} | "
        f"{phase.other_cpu_seconds / seconds:>8.0%} | {errors}"
    )


def _versions() -> str:
    import importlib.metadata as md

    names = ["grpcio", "protobuf", "sqlalchemy", "libvirt-python"]
    found = []
    for name in names:
        with contextlib.suppress(md.PackageNotFoundError):
            found.append(f"{name} {md.version(name)}")
    return ", ".join(found)


def report(
    phases: list[Phase],
    guests: list[GuestRun],
    daemon_seconds: float,
    accelerator: str,
    args: argparse.Namespace,
    skipped: list[str],
) -> None:
    print()
    if phases:
        print(
            f"Compute benchmark, fake hosts: kumo server (SQLite) + {args.hosts} kumo-agents on "
            "FakeDriver, all in this process"
        )
        print(HEADER)
        print("-" * len(HEADER))
        for phase in phases:
            print(_row(phase, args))
        print()
        print("p50/p99: CreateInstance/DeleteInstance call until WaitOperation returns it done")
        print("(client view); srv p50/p99: the operation's end_time - create_time. op conc: the")
        print("server's operations.concurrency (BUILD/DELETE handlers run at once). CPU: this")
        print("process (server + agents + clients; 100% = one core); other CPU: everything else.")
    if guests:
        print()
        print(
            f"Real guest (libvirt, QEMU {accelerator}, "
            f"{TINY_IMAGE.name}, 1 vCPU / 128 MiB): seconds from CreateInstance; libvirtd "
            f"started beforehand in {daemon_seconds:.1f} s (not counted)"
        )
        print(f"{'run':>3} | {'RUNNING s':>9} | {BOOT_MARKER + ' s':>15} | {'delete s':>8} | error")
        for index, guest in enumerate(guests, 1):
            print(
                f"{index:>3} | {guest.running:>9.1f} | {guest.boot_marker:>15.1f} | "
                f"{guest.deleted:>8.1f} | {guest.error or '-'}"
            )
        print(
            f"(console shipped every {args.console_poll:g} s by the agent; polled every 0.1 s; "
            "run 1 includes the agent's first fetch of the image)"
        )
    for reason in skipped:
        print(f"skipped: {reason}")
    print()
    print(
        f"machine: nproc {len(os.sched_getaffinity(0))} (cpu_count {os.cpu_count()}), "
        f"{_cpu_model()}; Python {platform.python_version()} on {platform.system()} "
        f"{platform.release()}; load average at start {args.load_at_start}"
    )
    print(f"versions: {_versions()}")


# --------------------------------------------------------------------------- main


@contextlib.contextmanager
def cloud_for(workdir: Path, args: argparse.Namespace) -> Iterator[Cloud]:
    server = ServerThread(_config(workdir, args.op_concurrency))
    try:
        with grpc.insecure_channel(server.address) as channel:
            admin = Stubs(channel, sign_in(channel, "admin", ADMIN_PASSWORD, "admin"))
            tenant = make_tenant(channel, admin, "bench")
            _raise_quota(admin, tenant, args.instances + args.hosts + args.real_runs + 10)
            member = tenant.stubs["member"]
            yield Cloud(
                server, channel, admin, tenant, member, crpc.ComputeServiceStub(member.channel)
            )
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.bench_compute", description=__doc__
    )
    parser.add_argument("--quick", action="store_true", help="5 hosts, 100 instances, 1 guest")
    parser.add_argument("--hosts", type=int, help="fake hosts (default 20)")
    parser.add_argument("--instances", type=int, help="instances created (default 500)")
    parser.add_argument("--concurrency", type=int, default=16, help="client calls in flight")
    parser.add_argument(
        "--op-concurrency",
        type=int,
        help="the server's operations.concurrency (default: the server's default)",
    )
    parser.add_argument("--no-warmup", dest="warmup", action="store_false")
    parser.add_argument("--no-fake", action="store_true", help="only the real guest")
    parser.add_argument("--no-real", action="store_true", help="only the fake hosts")
    parser.add_argument("--real-runs", type=int, help="real guests, one after the other (3)")
    parser.add_argument(
        "--console-poll",
        type=float,
        default=1.0,
        help="the real agent's console_poll_interval_seconds (default 1, the agent's default)",
    )
    args = parser.parse_args(argv)
    args.hosts = args.hosts or (5 if args.quick else 20)
    args.instances = args.instances or (100 if args.quick else 500)
    args.real_runs = args.real_runs or (1 if args.quick else 3)
    args.op_concurrency_shown = (
        args.op_concurrency
        if args.op_concurrency is not None
        else load_config(None).operations.concurrency
    )
    args.load_at_start = " ".join(Path("/proc/loadavg").read_text().split()[:3])

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    phases: list[Phase] = []
    guests: list[GuestRun] = []
    daemon_seconds = math.nan
    accelerator = "?"
    skipped: list[str] = []
    agents: list[AgentThread] = []
    root = Path(tempfile.mkdtemp(prefix="kumo-bench-compute-"))
    try:
        with cloud_for(root, args) as cloud:
            try:
                if not args.no_fake:
                    print(f"fake: {args.hosts} hosts ...", file=sys.stderr, flush=True)
                    phases = bench_fake(cloud, args, agents)
                for agent in agents:  # the fake hosts are done; free their threads
                    agent.stop()
                if not args.no_real:
                    reason = real_unavailable()
                    if reason is not None:
                        skipped.append(f"real guest: {reason}")
                    else:
                        print("real: starting libvirtd ...", file=sys.stderr, flush=True)
                        guests, daemon_seconds, accelerator = bench_real(cloud, args, root, agents)
            finally:
                for agent in agents:
                    agent.stop()
                    shutil.rmtree(agent.config.state_dir, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report(phases, guests, daemon_seconds, accelerator, args, skipped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
