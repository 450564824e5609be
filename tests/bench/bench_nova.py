"""Kumo's Nova dialect beside OpenStack Nova's own API: 100 server creates, the time until
all are ACTIVE, and GET /servers/detail over them, in one run.

Run from the repository root:

    .venv/bin/python -m tests.bench.bench_nova                       # 100 servers, both
    .venv/bin/python -m tests.bench.bench_nova --only kumo --servers 20
    .venv/bin/python -m tests.bench.bench_nova --nova-venv build/nova-venv

Kumo: `kumo-api` (SQLite) in a subprocess, `--hosts` kumo-agents on FakeDriver in another
(tests/bench/fake_hosts.py), and the whole REST gateway (`kumo.gateway.app:create_app`)
under uvicorn in a third. A project member's token comes from the gateway's Keystone
(POST /v3/auth/tokens, password), the image id from its Glance (GET /image/v2/images).

Nova: tests/bench/nova_stack.py, run with the Python of a separate venv holding
`nova==34.0.0` and `openstack-placement` (Kumo's .venv never imports them), starts a
private RabbitMQ, Placement, nova-api (osapi_compute WSGI app), nova-conductor,
nova-scheduler and nova-compute on `fake.FakeDriver`, all on SQLite files, with
`auth_strategy = noauth2`; it prints the compute endpoint, a token, a flavor and an image
id. See tests/bench/README.md for what it needs.

The same client code then runs against each, one HTTP call at a time on a keep-alive
`requests` session, with `OpenStack-API-Version: compute 2.37` and `"networks": "none"`:

1. POST /servers x`--servers` (each answer is 202 before the server is built);
2. GET /servers?status=ACTIVE every `--poll` seconds until all are ACTIVE (time from the
   first POST, and from the last POST's answer, to the poll that saw them all ACTIVE);
3. `--settle` seconds later (the work a boot leaves behind, such as Kumo's agents sending
   the new guests' boot consoles to the API, is over), GET /servers/detail x`--details`
   with all servers present (links followed).

On Kumo it then times, as a baseline for the gateway's share, the two gRPC calls its
POST /servers makes (CreateInstance, GetInstance) `--servers` times, on the member's
channel (those servers are built after the measured phases).

It prints p50/p99 per phase and target and Nova/Kumo ratios, with the load average and the
machine's busy CPU during each target. Nothing is asserted: see tests/bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import requests

from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import compute_service_pb2_grpc as crpc
from kumo.compute.v1 import resources_pb2 as cpb
from tests.bench.bench_api import _cpu_model, _machine_busy_seconds, _tree_cpu_seconds
from tests.bench.bench_ec2 import _free_port, _process, _py_spy
from tests.bench.bench_scheduler import venv_unavailable
from tests.bench.fake_hosts import bench_cell
from tests.support.cloud import ADMIN_PASSWORD, PASSWORD, Stubs, make_tenant, sign_in
from tests.support.images import upload_image
from tests.support.postgres import PostgresServer, find_bindir
from tests.support.process import ApiProcess, api_settings

BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve().parent
NOVA_STACK = HERE / "nova_stack.py"
DEFAULT_NOVA_VENV = HERE.parents[1] / "build" / "nova-venv"
MICROVERSION = "compute 2.37"  # the first with `networks: none`
FLOOR_CALLS = 200


@dataclass
class Target:
    """Where and how to create servers: the compute endpoint (…/v2.1), the identity headers
    (a token for Kumo), and the `server` body of a create (without its name)."""

    name: str
    compute_url: str
    headers: dict[str, str]
    server: dict[str, Any]
    grpc_create: Callable[[int], None] | None = None  # Kumo: the same create over gRPC
    grpc_list: Callable[[], int] | None = None  # Kumo: ListInstances as GET /servers/detail
    pids: dict[str, int] = field(default_factory=dict)  # what --profile records
    db_pid: int | None = None  # Kumo's PostgreSQL postmaster (its backends are its children)


@dataclass
class Result:
    """One target's figures (seconds)."""

    creates: list[float] = field(default_factory=list)
    # GET of the compute endpoint's version document: the HTTP floor (no backend call)
    floors: list[float] = field(default_factory=list)
    grpc_creates: list[float] = field(default_factory=list)
    grpc_lists: list[float] = field(default_factory=list)
    details: list[float] = field(default_factory=list)
    # CPU seconds per GET /servers/detail, by process (Kumo: api, gateway, hosts, database,
    # client), and per server from the first POST until all are ACTIVE
    detail_cpu: dict[str, float] = field(default_factory=dict)
    build_cpu: dict[str, float] = field(default_factory=dict)
    active_from_first: float = float("nan")
    active_from_last: float = float("nan")
    polls: int = 0
    errors: int = 0
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average before and after
    busy_cpu_per_second: float = 0.0  # the machine's busy CPU seconds per wall second
    note: str = ""


def ms(values: list[float], q: float) -> float:
    """The q-quantile in milliseconds (nan when empty)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _list(session: requests.Session, target: Target, path: str) -> list[dict[str, Any]]:
    """Every server of GET `path` (/servers/detail, /servers?status=...), following
    `servers_links`."""
    url: str | None = f"{target.compute_url}{path}"
    servers: list[dict[str, Any]] = []
    while url:
        answer = session.get(url, timeout=120)
        answer.raise_for_status()
        body = answer.json()
        servers += body["servers"]
        links = body.get("servers_links") or []
        url = links[0]["href"] if links else None
    return servers


def _cpu_seconds(target: Target) -> dict[str, float]:
    """CPU seconds used so far by each of the target's processes (and this client)."""
    cpu = {label: _tree_cpu_seconds(pid) for label, pid in target.pids.items()}
    if target.db_pid is not None:
        cpu["database"] = _tree_cpu_seconds(target.db_pid)
    cpu["client"] = time.process_time()
    return cpu


def _create(
    session: requests.Session,
    target: Target,
    args: argparse.Namespace,
    result: Result,
    ids: set[str],
) -> None:
    """POST /servers x`args.servers`, one at a time: latencies into `result`, ids into `ids`."""
    for index in range(args.servers):
        body = {"server": {**target.server, "name": f"bench-{index:03d}"}}
        start = time.perf_counter()
        answer = session.post(f"{target.compute_url}/servers", json=body, timeout=120)
        result.creates.append(time.perf_counter() - start)
        if answer.status_code != 202:
            raise RuntimeError(f"{target.name}: POST /servers: {answer.status_code} {answer.text}")
        ids.add(answer.json()["server"]["id"])
        time.sleep(args.spacing)


def _await_active(
    session: requests.Session,
    target: Target,
    args: argparse.Namespace,
    result: Result,
    ids: set[str],
    first: float,
    last: float,
) -> None:
    """Polls until the servers `ids` are all ACTIVE (their times from `first` and `last`
    go in `result`), all ACTIVE or ERROR, or `args.active_timeout` after `last` (those two
    in `result.note`)."""
    deadline = last + args.active_timeout
    while True:
        # The brief list filtered by status: cheaper for both than the detailed list, so
        # that polling takes as little as possible from the builds it waits for.
        active = sum(s["id"] in ids for s in _list(session, target, "/servers?status=ACTIVE"))
        result.polls += 1
        now = time.perf_counter()
        if active == len(ids):
            result.active_from_first, result.active_from_last = now - first, now - last
            return
        if result.polls % 10 == 0 or now > deadline:
            result.errors = sum(
                s["id"] in ids for s in _list(session, target, "/servers?status=ERROR")
            )
            if active + result.errors == len(ids) or now > deadline:
                result.note = (
                    f"not all ACTIVE after {now - first:.0f} s: {active} ACTIVE, "
                    f"{result.errors} ERROR"
                )
                return
        time.sleep(args.poll)


def measure(target: Target, args: argparse.Namespace) -> Result:
    """The three phases against one target."""
    result = Result()
    session = requests.Session()
    session.headers.update(
        {
            **target.headers,
            "OpenStack-API-Version": MICROVERSION,
            "X-OpenStack-Nova-API-Version": MICROVERSION.split()[1],
            "Accept": "application/json",
        }
    )
    load0, busy0, wall0 = os.getloadavg()[0], _machine_busy_seconds(), time.perf_counter()
    for _ in range(FLOOR_CALLS):
        start = time.perf_counter()
        session.get(f"{target.compute_url}/", timeout=30).raise_for_status()
        result.floors.append(time.perf_counter() - start)
    ids: set[str] = set()
    profile: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
    if args.profile and target.pids:
        profile = _py_spy(target.pids, args.profile / f"{target.name.lower()}-creates")
    cpu0 = _cpu_seconds(target)
    with profile:  # the creates and the builds
        first = time.perf_counter()
        _create(session, target, args, result, ids)
        last = time.perf_counter()
        _await_active(session, target, args, result, ids, first, last)
    if result.polls and not result.note:
        cpu1 = _cpu_seconds(target)
        result.build_cpu = {k: (cpu1[k] - cpu0[k]) / len(ids) for k in cpu0}
    time.sleep(args.settle)
    profile = contextlib.nullcontext()
    if args.profile and target.pids:
        profile = _py_spy(target.pids, args.profile / f"{target.name.lower()}-details")
    cpu0 = _cpu_seconds(target)
    with profile:
        for _ in range(args.details):
            start = time.perf_counter()
            count = len(_list(session, target, "/servers/detail"))
            result.details.append(time.perf_counter() - start)
            if count != len(ids):
                print(f"  warning: {target.name} listed {count} servers", file=sys.stderr)
    if args.details:
        cpu1 = _cpu_seconds(target)
        result.detail_cpu = {k: (cpu1[k] - cpu0[k]) / args.details for k in cpu0}
    wall = time.perf_counter() - wall0
    result.load = (load0, os.getloadavg()[0])
    result.busy_cpu_per_second = (_machine_busy_seconds() - busy0) / wall
    if target.grpc_list is not None:
        for _ in range(args.details):
            start = time.perf_counter()
            target.grpc_list()
            result.grpc_lists.append(time.perf_counter() - start)
    if target.grpc_create is not None:  # last: its builds run after the measured phases
        for index in range(args.servers):
            start = time.perf_counter()
            target.grpc_create(index)
            result.grpc_creates.append(time.perf_counter() - start)
    return result


# --------------------------------------------------------------------------- Kumo


def _keystone_token(url: str, user: str, project: str) -> str:
    """A project-scoped token from the gateway's Keystone (password method)."""
    answer = requests.post(
        f"{url}/v3/auth/tokens",
        json={
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {"name": user, "domain": {"id": "default"}, "password": PASSWORD}
                    },
                },
                "scope": {"project": {"id": project}},
            }
        },
        timeout=60,
    )
    answer.raise_for_status()
    return answer.headers["X-Subject-Token"]


def _postmaster(postgres: PostgresServer) -> int:
    """The pid of the PostgreSQL server's postmaster."""
    return int((postgres.data / "postmaster.pid").read_text().split()[0])


@contextlib.contextmanager
def kumo_target(
    args: argparse.Namespace, workdir: Path, postgres: PostgresServer | None
) -> Iterator[Target]:
    """Kumo's API, fake hosts and gateway, and a project ready for `args.servers`."""
    workdir.mkdir(parents=True, exist_ok=True)
    url = postgres.create_database() if postgres else f"sqlite:///{workdir / 'kumo.db'}"
    # Replicas one after another: the first creates the schema and the administrator.
    replicas = [ApiProcess(api_settings(workdir, url)) for _ in range(args.api_replicas)]
    try:
        for replica in replicas:
            replica.start()
        server = replicas[0]
        addresses = [replica.address for replica in replicas]
        with grpc.insecure_channel(server.address) as channel, contextlib.ExitStack() as stack:
            admin = Stubs(channel, sign_in(channel, "admin", ADMIN_PASSWORD, "admin"))
            tenant = make_tenant(channel, admin, "novabench")
            cell = stack.enter_context(
                bench_cell(",".join(addresses), admin, tenant, 2 * args.servers, args.hosts)
            )
            site, flavor = cell.site, cell.flavor
            image_name = upload_image(tenant.stubs["member"], tenant.name)
            member = crpc.ComputeServiceStub(tenant.stubs["member"].channel)
            parent = f"{tenant.name}/zones/{site.zone}"

            def grpc_create(index: int) -> None:
                """What the gateway's POST /servers calls: CreateInstance, GetInstance."""
                instance_id = f"grpc-{index:03d}"
                member.CreateInstance(
                    capi.CreateInstanceRequest(
                        parent=parent,
                        instance_id=instance_id,
                        instance=cpb.Instance(
                            display_name=instance_id, flavor=f"flavors/{flavor}", image=image_name
                        ),
                    )
                )
                member.GetInstance(
                    capi.GetInstanceRequest(name=f"{parent}/instances/{instance_id}")
                )

            def grpc_list() -> int:
                """What the gateway's GET /servers/detail asks first: ListInstances."""
                answer = member.ListInstances(
                    capi.ListInstancesRequest(parent=f"{tenant.name}/zones/-", page_size=1000)
                )
                return len(answer.instances)

            port = _free_port()
            url = f"http://127.0.0.1:{port}"
            gateway = [  # kumo-gateway's app, heap frozen as kumo-gateway does
                str(BIN / "python"),
                "-c",
                "import sys, uvicorn; from kumo.gateway.app import Settings, create_app; "
                "from kumo.server.heap import freeze_startup_heap; "
                "app = create_app(Settings(sys.argv[1])); freeze_startup_heap(); "
                "uvicorn.run(app, host='127.0.0.1', port=int(sys.argv[2]), log_level='warning')",
                # (a target of every replica: the gateway spreads its calls round robin)
                "ipv4:" + ",".join(addresses),
                str(port),
            ]
            with _process(gateway, f"{url}/healthz") as gateway_process:
                token = _keystone_token(url, tenant.users["member"], tenant.project)
                images = requests.get(
                    f"{url}/image/v2/images", headers={"X-Auth-Token": token}, timeout=60
                ).json()["images"]
                image = next(
                    i["id"] for i in images if image_name.endswith("/" + str(i.get("name")))
                )
                yield Target(
                    "Kumo",
                    f"{url}/compute/v2.1",
                    {"X-Auth-Token": token},
                    {
                        "imageRef": image,
                        "flavorRef": flavor,
                        "networks": "none",
                        "availability_zone": site.zone,
                    },
                    grpc_create,
                    grpc_list,
                    {
                        **{f"api{i or ''}": replica.pid for i, replica in enumerate(replicas)},
                        "gateway": gateway_process.pid,
                        "hosts": cell.hosts.pid,
                    },
                    _postmaster(postgres) if postgres else None,
                )
    finally:
        for replica in replicas:
            if replica.proc is not None and replica.proc.poll() is None:
                replica.terminate()
            replica.close()


# --------------------------------------------------------------------------- Nova


def nova_unavailable(venv: Path) -> str | None:
    """Why Nova cannot run from `venv`, or None."""
    how = "see tests/bench/README.md (bench_nova) to make it"
    return venv_unavailable(venv, "nova.wsgi, placement.deploy", how)


@contextlib.contextmanager
def nova_target(
    args: argparse.Namespace, workdir: Path, postgres: PostgresServer | None
) -> Iterator[Target]:
    """nova_stack.py in the Nova venv; yields once it printed its endpoint."""
    log = (workdir / "nova-stack.log").open("w")
    databases = []
    if postgres:  # else nova_stack.py makes SQLite files
        for name in ("api", "cell0", "cell1", "placement"):
            databases += [f"--{name}-db", postgres.create_database()]
    stack = subprocess.Popen(
        [
            *(str(args.nova_venv / "bin" / "python"), str(NOVA_STACK)),
            *("--workdir", str(workdir / "nova"), "--api-workers", str(args.api_workers)),
            *databases,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        start_new_session=True,
    )
    assert stack.stdout is not None and stack.stdin is not None
    try:
        line = stack.stdout.readline()
        if not line:
            stack.wait(60)
            tail = (workdir / "nova-stack.log").read_text()[-3000:]
            raise RuntimeError(f"nova_stack.py exited with {stack.returncode}:\n{tail}")
        ready = json.loads(line)
        yield Target("Nova", ready["compute_url"], ready["headers"], ready["server"])
    finally:
        stack.stdin.close()  # it stops its services
        try:
            stack.wait(120)
        except subprocess.TimeoutExpired:
            os.killpg(stack.pid, 9)
            stack.wait(10)
        log.close()
        if args.keep_logs:
            print(f"  Nova logs kept in {workdir}", file=sys.stderr)


# --------------------------------------------------------------------------- report


def report(args: argparse.Namespace, results: dict[str, Result], versions: str) -> None:
    """Prints the table."""
    kumo, nova = results.get("Kumo"), results.get("Nova")
    print()
    print(
        f"Nova API benchmark: {args.servers} servers, one HTTP call at a time, "
        f"GET /servers/detail x{args.details}; database {args.database}; Kumo on "
        f"{args.hosts} fake hosts, Nova on one fake.FakeDriver compute (RabbitMQ)"
    )
    print()
    print("| phase | figure | " + " | ".join(results) + " | Nova / Kumo |")
    print("|---|---|" + "---|" * len(results) + "---|")

    def row(phase: str, figure: str, value: Any) -> None:
        cells = [value(r) for r in results.values()]
        ratio = f"{value(nova) / value(kumo):.0f}x" if kumo and nova else ""
        print(f"| {phase} | {figure} | " + " | ".join(f"{c:.1f}" for c in cells) + f" | {ratio} |")

    row("GET /v2.1/ (version document: the HTTP floor)", "p50 ms", lambda r: ms(r.floors, 0.5))
    row("POST /servers", "p50 ms", lambda r: ms(r.creates, 0.5))
    row("POST /servers", "p99 ms", lambda r: ms(r.creates, 0.99))
    if kumo and kumo.grpc_creates:
        for q in (0.5, 0.99):
            print(
                f"| Kumo gRPC CreateInstance + GetInstance (what POST calls) | p{q * 100:.0f} ms "
                f"| {ms(kumo.grpc_creates, q):.1f} |" + " |" * len(results)
            )
    row("all ACTIVE", "s from first POST", lambda r: r.active_from_first)
    row("all ACTIVE", "s from last POST", lambda r: r.active_from_last)
    row(f"GET /servers/detail ({args.servers})", "p50 ms", lambda r: ms(r.details, 0.5))
    row(f"GET /servers/detail ({args.servers})", "p99 ms", lambda r: ms(r.details, 0.99))
    if kumo and kumo.grpc_lists:
        for q in (0.5, 0.99):
            print(
                f"| Kumo gRPC ListInstances (what detail calls first) | p{q * 100:.0f} ms "
                f"| {ms(kumo.grpc_lists, q):.1f} |" + " |" * len(results)
            )
    for what, cpu in (
        ("server from first POST to all ACTIVE", kumo.build_cpu if kumo else {}),
        ("GET /servers/detail", kumo.detail_cpu if kumo else {}),
    ):
        for label, seconds in cpu.items():
            print(
                f"| Kumo CPU per {what} | {label} ms | {1000 * seconds:.2f} |" + " |" * len(results)
            )
    print()
    for name, result in results.items():
        print(
            f"{name}: load average (1 min) {result.load[0]:.2f} before, {result.load[1]:.2f} "
            f"after; machine busy {result.busy_cpu_per_second:.2f} CPU s/s; "
            f"{result.polls} polls every {args.poll} s"
            + (f"; {result.note}" if result.note else "")
        )
    print(
        f"machine: {os.cpu_count()} CPUs, {_cpu_model()}; Python {platform.python_version()}"
        + (f"; Nova side: {versions}" if versions else "")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_nova", description=__doc__)
    parser.add_argument("--servers", type=int, default=100)
    parser.add_argument("--details", type=int, default=20, help="GET /servers/detail calls")
    parser.add_argument("--hosts", type=int, default=4, help="Kumo fake hosts")
    parser.add_argument("--poll", type=float, default=0.2, help="seconds between polls")
    parser.add_argument(
        "--spacing",
        type=float,
        default=0.0,
        help="seconds to wait after each POST (a diagnostic: a create's own latency, with "
        "the previous server's build done; the ACTIVE times then include the waits)",
    )
    parser.add_argument("--active-timeout", type=float, default=600)
    parser.add_argument(
        "--settle",
        type=float,
        default=3.0,
        help="seconds between all ACTIVE and the GETs of /servers/detail, for the work a "
        "boot leaves behind (Kumo: the new guests' boot consoles reach the API) to end",
    )
    parser.add_argument("--only", choices=("kumo", "nova"))
    parser.add_argument(
        "--database",
        choices=("postgres", "sqlite"),
        default="postgres",
        help="one PostgreSQL server for both (a database each), or SQLite files (Nova's "
        "several processes then fail builds with 'database is locked')",
    )
    parser.add_argument("--nova-venv", type=Path, default=DEFAULT_NOVA_VENV)
    parser.add_argument("--api-workers", type=int, default=2, help="nova-api gunicorn workers")
    parser.add_argument(
        "--api-replicas",
        type=int,
        default=1,
        help="kumo-api processes on the one database (PostgreSQL), each with its controllers",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="py-spy Kumo's API server, gateway and hosts from the first POST until all are "
        "ACTIVE and during the GETs "
        "of /servers/detail: DIR/kumo-{creates,details}-{api,gateway,hosts}.folded (figures of a "
        "profiled run are not comparable)",
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the Nova work folder")
    args = parser.parse_args(argv)
    if args.api_replicas < 1 or (args.api_replicas > 1 and args.database != "postgres"):
        parser.error("--api-replicas: 1, or more on PostgreSQL (--database postgres)")
    results: dict[str, Result] = {}
    versions = ""
    workdir = Path(tempfile.mkdtemp(prefix="kumo-bench-nova-"))
    with contextlib.ExitStack() as stack:
        if not args.keep_logs:  # (also when a phase fails)
            stack.callback(subprocess.run, ["rm", "-rf", str(workdir)], check=False)
        postgres = None
        if args.database == "postgres":
            bindir = find_bindir()
            if bindir is None:
                parser.error("no PostgreSQL server installed: use --database sqlite")
            postgres = PostgresServer(bindir)
            postgres.start()
            stack.callback(postgres.stop)
        if args.only != "nova":
            print("Kumo ...", file=sys.stderr, flush=True)
            with kumo_target(args, workdir / "kumo", postgres) as target:
                results["Kumo"] = measure(target, args)
        if args.only != "kumo":
            reason = nova_unavailable(args.nova_venv)
            if reason:
                print(f"Nova skipped: {reason}", file=sys.stderr)
            else:
                print("Nova ...", file=sys.stderr, flush=True)
                with nova_target(args, workdir, postgres) as target:
                    results["Nova"] = measure(target, args)
                versions = (workdir / "nova" / "versions.txt").read_text().strip()
    report(args, results, versions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
