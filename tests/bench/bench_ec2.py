"""The EC2 dialect beside moto's EC2 server: RunInstances xN, DescribeInstances over N,
TerminateInstances xN, with boto3, in one run.

Run from the repository root:

    .venv/bin/python -m tests.bench.bench_ec2                  # 500 instances
    .venv/bin/python -m tests.bench.bench_ec2 --instances 100 --describes 10

Kumo: `kumo-api` (SQLite) in a subprocess (tests/support/process.py), `--hosts`
kumo-agents on FakeDriver in another (tests/bench/fake_hosts.py: not in this process, whose
GIL they would share with the measuring client), and the EC2 gateway
(`kumo.gateway.aws.app:create_app`) under uvicorn in a subprocess of its own. moto:
`moto_server` (moto[server], which does not verify signatures) in a subprocess. One boto3
client per target (SigV4 with a Kumo access key for Kumo; any key for moto), calls one
after the other:

1. RunInstances xN, each MinCount=MaxCount=1 (botocore fills ClientToken);
2. DescribeInstances of all N x`--describes`, each following NextToken to the end (moto
   answers 100 per page unasked, Kumo up to 1,000);
3. TerminateInstances xN, one instance each.

Per call: the client-side latency (boto3 call to parsed result). It prints p50, p95 and
mean per phase and target, the ratio moto/Kumo of the p50s, and the machine; then the CPU
time each process spent during each phase per call (from /proc: Linux only), which the
machine's load moves far less than latency: this process (boto3 and botocore's parsing),
moto_server, or Kumo's gateway, API server and fake hosts. Kumo's
RunInstances answers before the instance is built (as EC2 and moto do), and the builds run
in the gaps between calls and after the phase (the API server puts calls first: see
kumo.server.priority); before the Describe phase the bench waits, unmeasured, until all
are RUNNING and then until the target's processes are idle. Nothing is asserted: see
tests/bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore
import grpc
from botocore.config import Config as BotoConfig

from kumo.gateway.aws import ids
from tests.bench.bench_api import _cpu_model
from tests.bench.fake_hosts import bench_cell
from tests.support.cloud import ADMIN_PASSWORD, Stubs, make_tenant, sign_in
from tests.support.ec2 import REGION, access_key
from tests.support.images import upload_image
from tests.support.process import ApiProcess, api_settings

BIN = Path(sys.executable).parent


@dataclass
class Phase:
    """The latencies (seconds) of one phase on one target."""

    name: str
    seconds: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # process label -> CPU seconds

    def cpu_ms(self, label: str) -> float:
        """A process's CPU time during the phase, per call, in milliseconds."""
        return 1000 * self.cpu[label] / len(self.seconds)

    def ms(self, q: float) -> float:
        """The q-quantile in milliseconds."""
        ordered = sorted(self.seconds)
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def mean_ms(self) -> float:
        """The mean in milliseconds."""
        return 1000 * statistics.fmean(self.seconds)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # it answers (an error page is an answer)
        except (OSError, urllib.error.URLError):
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


@contextlib.contextmanager
def _process(args: list[str], url: str) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_http(url, process)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _client(url: str, key_id: str, secret: str, region: str = REGION) -> Any:
    return boto3.client(
        "ec2",
        endpoint_url=url,
        region_name=region,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=BotoConfig(retries={"max_attempts": 1}),
    )


def _timed(phase: Phase, call: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    result = call()
    phase.seconds.append(time.perf_counter() - start)
    return result


def _describe_all(ec2: Any) -> int:
    """Every instance, following NextToken (moto pages by 100 when not asked; Kumo
    answers up to 1,000 at once): the number seen."""
    count, token = 0, None
    while True:
        page = ec2.describe_instances(**({"NextToken": token} if token else {}))
        count += sum(len(r["Instances"]) for r in page["Reservations"])
        token = page.get("NextToken")
        if not token:
            return count


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process so far (Linux: /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def _cpu_of(phase: Phase, pids: dict[str, int]) -> Iterator[None]:
    """Adds each process's CPU time during the block to `phase.cpu` (`client`: this one)."""
    before = {label: _cpu_seconds(pid) for label, pid in pids.items()}
    client = time.process_time()
    yield
    for label, pid in pids.items():
        phase.cpu[label] = phase.cpu.get(label, 0.0) + _cpu_seconds(pid) - before[label]
    phase.cpu["client"] = phase.cpu.get("client", 0.0) + time.process_time() - client


def _wait_quiet(pids: dict[str, int], window: float = 0.5, share: float = 0.05) -> None:
    """Returns once the target's processes together used under `share` of a core over a
    `window` (at most after 120 s): Kumo finishes its builds' last steps in the background,
    after the instances already show `running`, and the next phase should not pay for them."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        before = sum(_cpu_seconds(pid) for pid in pids.values())
        time.sleep(window)
        if sum(_cpu_seconds(pid) for pid in pids.values()) - before < share * window:
            return


Profiler = Callable[[str], contextlib.AbstractContextManager[None]]


def _no_profile(_phase: str) -> contextlib.AbstractContextManager[None]:
    return contextlib.nullcontext()


@contextlib.contextmanager
def _py_spy(pids: dict[str, int], stem: Path) -> Iterator[None]:
    """`py-spy record` (raw folded stacks) on each process while the block runs:
    `<stem>-<label>.folded`. Only the thread holding the GIL is sampled (`--gil`): the
    Python work each process does, not its threads waiting for the database or the GIL."""
    py_spy = shutil.which("py-spy", path=str(BIN)) or "py-spy"
    stem.parent.mkdir(parents=True, exist_ok=True)
    spies = [
        subprocess.Popen(
            [
                *(py_spy, "record", "--pid", str(pid), "--format", "raw", "--nonblocking"),
                *("--rate", "200", "--gil", "--output", f"{stem}-{label}.folded"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for label, pid in pids.items()
    ]
    time.sleep(1.0)  # attached
    try:
        yield
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)
        for spy in spies:
            spy.wait(timeout=60)


def run_phases(
    ec2: Any,
    image: str,
    instance_type: str,
    args: argparse.Namespace,
    wait_running: Callable[[list[str]], None],
    pids: dict[str, int],
    profile: Profiler = _no_profile,
) -> list[Phase]:
    """The three measured phases against one target (each inside `profile(phase name)`),
    with the CPU time the target's processes (`pids`, by label) and this one spent."""
    run, describe, terminate = (
        Phase("RunInstances"),
        Phase("DescribeInstances"),
        Phase("TerminateInstances"),
    )
    instance_ids = []
    with profile(run.name), _cpu_of(run, pids):
        for _ in range(args.instances):
            answer = _timed(
                run,
                lambda: ec2.run_instances(
                    ImageId=image, InstanceType=instance_type, MinCount=1, MaxCount=1
                ),
            )
            instance_ids.append(answer["Instances"][0]["InstanceId"])
    wait_running(instance_ids)
    _wait_quiet(pids)
    with profile(describe.name), _cpu_of(describe, pids):
        for _ in range(args.describes):
            count = _timed(describe, lambda: _describe_all(ec2))
            if count != args.instances:
                print(f"  warning: DescribeInstances saw {count} instances", file=sys.stderr)
    with profile(terminate.name), _cpu_of(terminate, pids):
        for instance_id in instance_ids:
            _timed(terminate, lambda i=instance_id: ec2.terminate_instances(InstanceIds=[i]))
    return [run, describe, terminate]


def bench_moto(args: argparse.Namespace) -> list[Phase]:
    """moto_server in a subprocess."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with _process([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], url) as moto:
        ec2 = _client(url, "AKIDMOTO", "moto-secret", "us-east-1")  # moto knows AWS's regions
        image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        pids = {"moto_server": moto.pid}
        return run_phases(ec2, image, "t2.micro", args, lambda _ids: None, pids)


def bench_kumo(args: argparse.Namespace, workdir: Path) -> list[Phase]:
    """Kumo's API server and fake hosts here, the EC2 gateway in a subprocess."""
    server = ApiProcess(api_settings(workdir, f"sqlite:///{workdir / 'kumo.db'}"))
    server.start()
    try:
        with grpc.insecure_channel(server.address) as channel, contextlib.ExitStack() as stack:
            admin = Stubs(channel, sign_in(channel, "admin", ADMIN_PASSWORD, "admin"))
            tenant = make_tenant(channel, admin, "ec2bench")
            cell = stack.enter_context(
                bench_cell(server.address, admin, tenant, args.instances, args.hosts)
            )
            flavor = cell.flavor
            image = ids.image_ec2_id(upload_image(tenant.stubs["member"], tenant.name))
            key = access_key(tenant)
            port = _free_port()
            url = f"http://127.0.0.1:{port}"
            gateway = [  # kumo-gateway's app, heap frozen as kumo-gateway does
                str(BIN / "python"),
                "-c",
                "import sys, uvicorn; from kumo.gateway.aws.app import create_app; "
                "from kumo.server.heap import freeze_startup_heap; "
                "app = create_app(sys.argv[1]); freeze_startup_heap(); "
                "uvicorn.run(app, host='127.0.0.1', port=int(sys.argv[2]), log_level='warning')",
                server.address,
                str(port),
            ]
            with _process(gateway, url) as gateway_process:
                ec2 = _client(url, key.key_id, key.secret)
                profile = _no_profile
                pids = {"api": server.pid, "gateway": gateway_process.pid, "hosts": cell.hosts.pid}
                if args.profile is not None:

                    def profile(phase: str) -> contextlib.AbstractContextManager[None]:
                        return _py_spy(
                            {k: pids[k] for k in ("api", "gateway")}, args.profile / phase
                        )

                def wait_running(instance_ids: list[str]) -> None:
                    deadline = time.monotonic() + 600
                    while time.monotonic() < deadline:
                        states = [
                            i["State"]["Name"]
                            for r in ec2.describe_instances()["Reservations"]
                            for i in r["Instances"]
                        ]
                        if states.count("running") == len(instance_ids):
                            return
                        time.sleep(0.5)

                return run_phases(ec2, image, flavor, args, wait_running, pids, profile)
    finally:
        server.terminate()
        server.close()


CPU_COLUMNS = ("client", "moto_server", "gateway", "api", "hosts")


def report(args: argparse.Namespace, results: dict[str, list[Phase]]) -> None:
    """Prints the table."""
    print()
    print(
        f"EC2 benchmark: {args.instances} instances, DescribeInstances x{args.describes}, "
        f"one boto3 call at a time; Kumo on {args.hosts} fake hosts (SQLite)"
    )
    print()
    print("| phase | target | calls | p50 ms | p95 ms | mean ms | moto p50 / Kumo p50 |")
    print("|---|---|---|---|---|---|---|")
    for index, phase in enumerate(results["kumo"]):
        moto = results["moto"][index]
        for target, measured in (("moto", moto), ("Kumo", phase)):
            ratio = f"{moto.ms(0.5) / phase.ms(0.5):.1f}x" if target == "Kumo" else ""
            print(
                f"| {phase.name} | {target} | {len(measured.seconds)} | {measured.ms(0.5):.1f} "
                f"| {measured.ms(0.95):.1f} | {measured.mean_ms:.1f} | {ratio} |"
            )
    print()
    print("CPU time per call (ms) during each phase, by process (`client`: this one, boto3):")
    print()
    print("| phase | target | " + " | ".join(CPU_COLUMNS) + " |")
    print("|---|---|" + "---|" * len(CPU_COLUMNS))
    for index, phase in enumerate(results["kumo"]):
        for target, measured in (("moto", results["moto"][index]), ("Kumo", phase)):
            cells = [f"{measured.cpu_ms(c):.1f}" if c in measured.cpu else "" for c in CPU_COLUMNS]
            print(f"| {phase.name} | {target} | " + " | ".join(cells) + " |")
    print()
    print(
        f"machine: {os.cpu_count()} CPUs, {_cpu_model()}; Python {platform.python_version()}; "
        f"boto3 {boto3.__version__}, botocore {botocore.__version__}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_ec2", description=__doc__)
    parser.add_argument("--instances", type=int, default=500)
    parser.add_argument("--describes", type=int, default=20)
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--only", choices=("kumo", "moto"))
    parser.add_argument(
        "--profile",
        type=Path,
        help="py-spy the API server and the gateway during each Kumo phase; folded stacks "
        "go to this folder (figures of a profiled run are not comparable)",
    )
    args = parser.parse_args(argv)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[Phase]] = {}
    with tempfile.TemporaryDirectory(prefix="kumo-bench-ec2-") as workdir:
        if args.only != "kumo":
            print("moto ...", file=sys.stderr, flush=True)
            results["moto"] = bench_moto(args)
        if args.only != "moto":
            print("Kumo ...", file=sys.stderr, flush=True)
            results["kumo"] = bench_kumo(args, Path(workdir))
    if len(results) == 2:
        report(args, results)
    else:
        for target, phases in results.items():
            for phase in phases:
                cpu = ", ".join(f"{k} {phase.cpu_ms(k):.1f}" for k in phase.cpu)
                print(
                    f"{target} {phase.name}: p50 {phase.ms(0.5):.1f} ms, "
                    f"p95 {phase.ms(0.95):.1f} ms, mean {phase.mean_ms:.1f} ms; "
                    f"CPU ms per call: {cpu}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
