"""Throughput, latency and memory of the real `kumo-api` on SQLite and PostgreSQL.

Run from the repository root:

    .venv/bin/python -m tests.bench.bench_api            # full run, 5 s per cell
    .venv/bin/python -m tests.bench.bench_api --quick    # 1.5 s per cell
    .venv/bin/python -m tests.bench.bench_api --backends sqlite --cells get:8 \\
        --profile /tmp/kumo-prof                         # py-spy the server under one cell

For each backend it starts `kumo-api` as a subprocess on a free 127.0.0.1 port,
seeds one project plus 100 more as the cloud administrator, then drives unary
GetProject and ListProjects(page_size=100) from asyncio tasks on grpc.aio
channels in this process (one channel per 8 clients), a fixed time per cell
after a warm-up. It prints a table of calls/s and p50/p99 latency, the server's
idle RSS before and after the load, and the machine. The client shares the
machine with the server, so the figures include client CPU. Nothing is
asserted: see tests/bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kumo.identity.v1 import identity_service_pb2 as iapi
from kumo.identity.v1 import identity_service_pb2_grpc as irpc
from kumo.identity.v1 import resources_pb2 as ipb
from tests.support.cloud import ADMIN_PASSWORD, Stubs, sign_in
from tests.support.postgres import PostgresServer, find_bindir, free_port

CLIENTS = (1, 8, 64)
CLIENTS_PER_CHANNEL = 8
EXTRA_PROJECTS = 100
PAGE_SIZE = 100
MAIN_PROJECT = "bench"
MAX_CALLS_PER_CLIENT = 10_000_000  # a bound on every client loop besides its deadline
CALL_TIMEOUT = 30.0
START_TIMEOUT = 120.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- the server


def _proc_status(pid: int, key: str) -> int:
    """A `kB` field of /proc/PID/status, in kB (0 if absent)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _proc_cpu_seconds(pid: int) -> float:
    """User plus system CPU time of the process (all its threads), in seconds."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def _machine_busy_seconds() -> float:
    """CPU seconds spent busy by all CPUs since boot (from /proc/stat; idle and iowait excluded)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    # guest time is already counted in user and nice
    return (sum(values[:8]) - idle) / CLK_TCK


def _tree_cpu_seconds(root: int) -> float:
    """CPU seconds of process `root` and its direct children (a postmaster and its backends)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = (entry / "stat").read_text()
            fields = text[text.rindex(")") + 2 :].split()
            if int(entry.name) == root or int(fields[1]) == root:
                total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


class ApiProcess:
    """`kumo-api --port <free>` in a subprocess with its own data dir and database."""

    def __init__(self, database_url: str, workdir: Path, db_pid: int | None = None) -> None:
        self.workdir = workdir
        self.db_pid = db_pid  # the PostgreSQL postmaster, whose CPU is reported apart
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUMO_")}
        env.update(
            KUMO_DATA_DIR=str(workdir / "data"),
            KUMO_DATABASE__URL=database_url,
            KUMO_BOOTSTRAP__ADMIN_PASSWORD=ADMIN_PASSWORD,
            KUMO_AUTH__SCRYPT_LOG2_N="10",
        )
        executable = Path(sys.executable).parent / "kumo-api"
        self.stderr_path = workdir / "kumo-api.stderr"
        self._stderr = self.stderr_path.open("wb")
        self.proc = subprocess.Popen(
            [str(executable), "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # a Ctrl-C reaches only us; we stop it ourselves
        )
        self.pid = self.proc.pid
        self.stdout: list[str] = []
        self._serving = threading.Event()
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()

    def _read_stdout(self) -> None:
        # Drains stdout for the process' whole life so that it never blocks on the pipe.
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.stdout.append(line)
            if "serving gRPC on" in line:
                self._serving.set()

    def wait_serving(self) -> float:
        """Waits for the 'serving gRPC on' line; returns the seconds it took."""
        start = time.monotonic()
        while not self._serving.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() - start > START_TIMEOUT:
                raise RuntimeError(
                    f"kumo-api did not start (exit {self.proc.poll()}); stdout: "
                    f"{self.stdout[-5:]}; stderr tail:\n{self.stderr_tail()}"
                )
        return time.monotonic() - start

    def stderr_tail(self, lines: int = 20) -> str:
        self._stderr.flush()
        text = self.stderr_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def rss_mib(self) -> float:
        return _proc_status(self.pid, "VmRSS") / 1024

    def peak_rss_mib(self) -> float:
        return _proc_status(self.pid, "VmHWM") / 1024

    def cpu_seconds(self) -> float:
        return _proc_cpu_seconds(self.pid)

    def db_cpu_seconds(self) -> float:
        return 0.0 if self.db_pid is None else _tree_cpu_seconds(self.db_pid)

    def stop(self) -> None:
        """SIGTERM (graceful), then SIGKILL after 15 s. Idempotent."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                self.proc.wait(5)
        self._reader.join(5)
        self._stderr.close()


# --------------------------------------------------------------------------- the load


@dataclass
class Cell:
    backend: str
    method: str
    clients: int
    seconds: float
    completed: int = 0  # calls that finished inside the measurement window
    errors: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)  # seconds, calls wholly inside
    server_cpu: float = 0.0  # seconds of server CPU during the window
    bench_cpu: float = 0.0  # seconds of this process' CPU during the window
    db_cpu: float | None = None  # seconds of PostgreSQL CPU (server and backends)
    other_cpu: float = 0.0  # seconds of CPU used by everything else on the machine

    @property
    def rate(self) -> float:
        return self.completed / self.seconds

    def percentile_ms(self, q: float) -> float:
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] * 1000


def _calls(channel: grpc.aio.Channel) -> dict[str, tuple[Callable[..., Any], Any]]:
    stub = irpc.IdentityServiceStub(channel)
    # Health Check (not in the default cells) goes through the whole interceptor chain,
    # token included, but not the database: the floor of grpc.aio plus interceptors.
    health = health_pb2_grpc.HealthStub(channel)
    return {
        "GetProject": (stub.GetProject, iapi.GetProjectRequest(name=f"projects/{MAIN_PROJECT}")),
        "ListProjects": (stub.ListProjects, iapi.ListProjectsRequest(page_size=PAGE_SIZE)),
        "Check": (health.Check, health_pb2.HealthCheckRequest()),
    }


async def run_cell(
    api: ApiProcess,
    token: str,
    cell: Cell,
    warmup: float,
    profile: Callable[[float], subprocess.Popen[bytes]] | None = None,
) -> None:
    """Drives `cell.clients` concurrent clients for warm-up plus `cell.seconds`; fills `cell`."""
    metadata = (("authorization", f"Bearer {token}"),)
    channels = [
        grpc.aio.insecure_channel(api.address)
        for _ in range(math.ceil(cell.clients / CLIENTS_PER_CHANNEL))
    ]
    try:
        for channel in channels:
            await asyncio.wait_for(channel.channel_ready(), 10)
        calls = [_calls(channel)[cell.method] for channel in channels]
        begin = time.perf_counter()
        window_start = begin + warmup
        window_end = window_start + cell.seconds
        done_in_window = [0] * cell.clients

        async def client(index: int) -> list[float]:
            method, request = calls[index % len(calls)]
            latencies: list[float] = []
            for _ in range(MAX_CALLS_PER_CLIENT):
                sent = time.perf_counter()
                if sent >= window_end:
                    break
                try:
                    await method(request, metadata=metadata, timeout=CALL_TIMEOUT)
                except grpc.aio.AioRpcError as error:
                    name = error.code().name
                    cell.errors[name] = cell.errors.get(name, 0) + 1
                    continue
                received = time.perf_counter()
                if window_start <= received <= window_end:
                    done_in_window[index] += 1
                    if sent >= window_start:
                        latencies.append(received - sent)
            return latencies

        async def sample_cpu() -> tuple[float, float, float, float]:
            await asyncio.sleep(max(0.0, window_start - time.perf_counter()))
            server0, bench0, db0 = api.cpu_seconds(), time.process_time(), api.db_cpu_seconds()
            busy0 = _machine_busy_seconds()
            profiler = profile(cell.seconds) if profile is not None else None
            await asyncio.sleep(max(0.0, window_end - time.perf_counter()))
            server1, bench1, db1 = api.cpu_seconds(), time.process_time(), api.db_cpu_seconds()
            busy1 = _machine_busy_seconds()
            if profiler is not None:
                await asyncio.get_running_loop().run_in_executor(None, profiler.wait)
            server, bench, db = server1 - server0, bench1 - bench0, db1 - db0
            return server, bench, db, max(0.0, busy1 - busy0 - server - bench - db)

        sampler = asyncio.ensure_future(sample_cpu())
        results = await asyncio.gather(*(client(i) for i in range(cell.clients)))
        cell.server_cpu, cell.bench_cpu, db_cpu, cell.other_cpu = await sampler
        cell.db_cpu = db_cpu if api.db_pid is not None else None
        cell.completed = sum(done_in_window)
        cell.latencies = [value for lat in results for value in lat]
    finally:
        for channel in channels:
            await channel.close()


# --------------------------------------------------------------------------- one backend


@dataclass
class BackendResult:
    backend: str
    start_seconds: float = 0.0
    idle_rss_start: float = 0.0
    idle_rss_after: float = 0.0
    peak_rss: float = 0.0
    cells: list[Cell] = field(default_factory=list)


def seed(address: str) -> str:
    """Creates the main project plus EXTRA_PROJECTS more; returns the admin's token."""
    with grpc.insecure_channel(address) as channel:
        token = sign_in(channel, "admin", ADMIN_PASSWORD, "admin")
        admin = Stubs(channel, token)
        ids = [MAIN_PROJECT] + [f"bench-{n:03d}" for n in range(1, EXTRA_PROJECTS + 1)]
        for project_id in ids:
            admin.identity.CreateProject(
                iapi.CreateProjectRequest(
                    project_id=project_id, project=ipb.Project(display_name=project_id)
                )
            )
        page = admin.identity.ListProjects(iapi.ListProjectsRequest(page_size=PAGE_SIZE))
        if len(page.projects) != PAGE_SIZE:
            raise RuntimeError(f"a List page holds {len(page.projects)} projects, not {PAGE_SIZE}")
        return token


def bench_backend(
    backend: str,
    database_url: str,
    workdir: Path,
    cells: list[tuple[str, int]],
    seconds: float,
    warmup: float,
    settle: float,
    profile_dir: Path | None,
    db_pid: int | None = None,
) -> BackendResult:
    result = BackendResult(backend)
    api = ApiProcess(database_url, workdir, db_pid)
    try:
        result.start_seconds = api.wait_serving()
        time.sleep(settle)
        result.idle_rss_start = api.rss_mib()
        token = seed(api.address)
        for method, clients in cells:
            cell = Cell(backend, method, clients, seconds)
            profile = None
            if profile_dir is not None:
                profile = _profiler(api.pid, profile_dir / f"{backend}-{method}-{clients}")
            asyncio.run(run_cell(api, token, cell, warmup, profile))
            result.cells.append(cell)
            print(f"  {_row(cell)}", file=sys.stderr, flush=True)
        time.sleep(settle)
        result.idle_rss_after = api.rss_mib()
        result.peak_rss = api.peak_rss_mib()
        if api.proc.poll() is not None:
            raise RuntimeError(f"kumo-api exited during the run:\n{api.stderr_tail()}")
    finally:
        api.stop()
    return result


def _profiler(pid: int, stem: Path) -> Callable[[float], subprocess.Popen[bytes]]:
    """Starts `py-spy record` (raw folded stacks, own time by thread-less function) on pid."""
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"

    def start(seconds: float) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                py_spy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
                "--rate", "200", "--format", "raw", "--output", f"{stem}.folded",
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

    return start


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


# --------------------------------------------------------------------------- report


HEADER = (
    f"{'backend':<9} | {'method':<12} | {'clients':>7} | {'calls/s':>8} | {'p50 ms':>7} | "
    f"{'p99 ms':>7} | {'srv CPU':>7} | {'bench CPU':>9} | {'db CPU':>6} | {'other CPU':>9} | errors"
)


def _row(cell: Cell) -> str:
    errors = ", ".join(f"{k}={v}" for k, v in sorted(cell.errors.items())) or "0"
    db = "-" if cell.db_cpu is None else f"{cell.db_cpu / cell.seconds:.0%}"
    return (
        f"{cell.backend:<9} | {cell.method:<12} | {cell.clients:>7} | {cell.rate:>8,.0f} | "
        f"{cell.percentile_ms(0.50):>7.2f} | {cell.percentile_ms(0.99):>7.2f} | "
        f"{cell.server_cpu / cell.seconds:>6.0%} | {cell.bench_cpu / cell.seconds:>8.0%} | "
        f"{db:>6} | {cell.other_cpu / cell.seconds:>8.0%} | "
        f"{errors}"
    )


def _versions() -> str:
    import importlib.metadata as md

    names = ["grpcio", "protobuf", "sqlalchemy", "psycopg"]
    return ", ".join(f"{n} {md.version(n)}" for n in names)


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def report(results: list[BackendResult], args: argparse.Namespace, skipped: list[str]) -> None:
    print()
    print(
        f"Kumo API benchmark: {args.seconds:g} s per cell after {args.warmup:g} s warm-up; "
        f"{CLIENTS_PER_CHANNEL} clients per grpc.aio channel; ListProjects page_size={PAGE_SIZE}"
        + ("; PROFILED (py-spy attached, figures not comparable)" if args.profile else "")
    )
    print(HEADER)
    print("-" * len(HEADER))
    for result in results:
        for cell in result.cells:
            print(_row(cell))
    print()
    print("srv / bench / db / other CPU: CPU time over the window of kumo-api / this client")
    print("process / PostgreSQL / everything else incl. hypervisor steal (100% = one core; other")
    print("CPU above a few % means the cell was disturbed). p50/p99: calls sent and answered")
    print("inside the window.")
    print()
    for result in results:
        print(
            f"RSS {result.backend:<8}: idle after start-up {result.idle_rss_start:6.1f} MiB, "
            f"idle after load {result.idle_rss_after:6.1f} MiB, peak {result.peak_rss:6.1f} MiB "
            f"(start-up to 'serving' {result.start_seconds:.1f} s)"
        )
    for name in skipped:
        print(f"{name}: skipped (PostgreSQL is not installed)")
    print()
    affinity = len(os.sched_getaffinity(0))
    print(
        f"machine: nproc {affinity} (cpu_count {os.cpu_count()}), {_cpu_model()}; "
        f"Python {platform.python_version()} ({platform.python_implementation()}) on "
        f"{platform.system()} {platform.release()}"
    )
    print(f"versions: {_versions()}")
    print("note: the client runs on the same machine, so the figures include its CPU.")


# --------------------------------------------------------------------------- main


def _cells(text: str | None) -> list[tuple[str, int]]:
    all_cells = [(m, c) for m in ("GetProject", "ListProjects") for c in CLIENTS]
    if not text:
        return all_cells
    short = {"get": "GetProject", "list": "ListProjects", "check": "Check"}
    chosen = []
    for item in text.split(","):
        method, _, clients = item.partition(":")
        chosen.append((short.get(method.lower(), method), int(clients)))
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_api", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1.5 s per cell, shorter warm-up")
    parser.add_argument("--seconds", type=float, help="measurement seconds per cell (default 5)")
    parser.add_argument("--warmup", type=float, help="warm-up seconds per cell (default 1)")
    parser.add_argument(
        "--backends", default="sqlite,postgres", help="comma-separated: sqlite, postgres"
    )
    parser.add_argument(
        "--cells",
        help="comma-separated method:clients, method one of get, list, check (health Check: "
        "interceptors without the database); default: get and list with 1, 8 and 64 clients",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="run py-spy record on the server during each cell; folded stacks go to this folder",
    )
    args = parser.parse_args(argv)
    args.seconds = args.seconds or (1.5 if args.quick else 5.0)
    args.warmup = args.warmup if args.warmup is not None else (0.5 if args.quick else 1.0)
    settle = 0.5 if args.quick else 2.0
    cells = _cells(args.cells)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)

    # SIGTERM should clean up like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    results: list[BackendResult] = []
    skipped: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="kumo-bench-"))
    try:
        for backend in args.backends.split(","):
            workdir = root / backend
            workdir.mkdir()
            print(f"{backend}: starting kumo-api ...", file=sys.stderr, flush=True)
            if backend == "sqlite":
                url = f"sqlite:///{workdir / 'kumo.db'}"
                results.append(
                    bench_backend(
                        backend, url, workdir, cells, args.seconds, args.warmup, settle,
                        args.profile,
                    )
                )  # fmt: skip
            elif backend == "postgres":
                with postgres() as pg:
                    if pg is None:
                        skipped.append(backend)
                        continue
                    postmaster = int((pg.data / "postmaster.pid").read_text().split()[0])
                    results.append(
                        bench_backend(
                            backend, pg.create_database(), workdir, cells, args.seconds,
                            args.warmup, settle, args.profile, postmaster,
                        )
                    )  # fmt: skip
            else:
                parser.error(f"unknown backend {backend!r}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report(results, args, skipped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
