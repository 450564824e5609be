"""The least a Nova call can cost on this machine with Kumo's stack, whatever Kumo does.

Run from the repository root:

    .venv/bin/python -m tests.bench.bench_floors
    .venv/bin/python -m tests.bench.bench_floors --calls 2000 --nova-post-ms 136.1

Kumo's POST /servers and GET /servers/detail go client → HTTP (uvicorn) → gRPC → the API
server → PostgreSQL and back. This bench builds that chain with nothing else in it, to
find the part of Kumo's figures that no change to Kumo's code can remove:

- an HTTP process: uvicorn (httptools, as the gateway runs) serving a bare ASGI callable,
  no framework, no middleware, no authentication, no rendering;
- a gRPC process: a grpc.aio server with generic handlers over raw bytes, no interceptors,
  and one psycopg AsyncConnection (autocommit: each statement its own transaction) on the
  event loop, no SQLAlchemy, no thread hop;
- PostgreSQL from tests/support/postgres.py, configured as for every bench (fsync off,
  synchronous_commit off), with a table as wide as an instance row holding 100 rows.

Calls, one at a time on a keep-alive `requests` session as bench_nova makes them:

1. GET /: a constant answer (the HTTP floor, bench_nova's version-document phase);
2. GET /ping: the HTTP process makes one gRPC call that the gRPC process answers at once;
3. POST /servers: the HTTP process parses the create body (bench_nova's), makes one gRPC
   call; the gRPC process INSERTs one row (committed) and answers; 202 with a small body.
   Kumo's POST also authenticates, validates, checks quota and writes an operation;
4. GET /servers/detail: one gRPC call; the gRPC process SELECTs the 100 rows and answers a
   ListInstancesResponse of 100 instances made once at start-up; the HTTP process parses
   it and answers a 100-server Nova 2.37 body, also made once at start-up (by the
   gateway's own DetailView); the client parses the JSON, as bench_nova's does.

It prints p50/p99 per call, the CPU each process spent per call, and beside them a
hundredth of Nova's figures (`--nova-post-ms`, `--nova-detail-ms`: by default the latest
measured by bench_nova on this machine; see tests/bench/README.md). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import requests

from tests.bench.bench_api import _cpu_model, _tree_cpu_seconds
from tests.bench.bench_ec2 import _free_port, _process
from tests.bench.bench_nova import _postmaster, ms
from tests.support.postgres import PostgresServer, find_bindir

ROWS = 100
# (a POST as bench_nova sends it: its server body, microversion 2.37)
CREATE = {
    "server": {
        "name": "bench-000",
        "flavorRef": "0b6c1d3e-2f4a-4b5c-8d6e-7f8091a2b3c4",
        "imageRef": "1c7d2e4f-3a5b-4c6d-9e7f-8091a2b3c4d5",
        "networks": "none",
    }
}
# An instance row's width: 37 columns of text, integers and times, as Kumo's instances.
_TEXT = [f"t{i}" for i in range(20)]
_INTEGERS = [f"i{i}" for i in range(14)]
_TIMES = ["created", "updated"]
TABLE = (
    "CREATE TABLE wide (id uuid PRIMARY KEY, "
    + ", ".join([f"{c} text" for c in _TEXT] + [f"{c} integer" for c in _INTEGERS])
    + ", "
    + ", ".join(f"{c} timestamptz" for c in _TIMES)
    + ")"
)
INSERT = (
    f"INSERT INTO wide VALUES (gen_random_uuid(), {', '.join(['%s'] * len(_TEXT))}, "
    f"{', '.join(['%s'] * len(_INTEGERS))}, now(), now())"
)
ROW_VALUES = (*(f"value of {c}" for c in _TEXT), *range(len(_INTEGERS)))
SELECT = f"SELECT * FROM wide ORDER BY id LIMIT {ROWS}"


def _instances() -> list[Any]:
    """100 instances filled as Kumo's ListInstances fills a running one."""
    from google.protobuf import timestamp_pb2

    from kumo.compute.v1 import resources_pb2 as cpb

    now = timestamp_pb2.Timestamp()
    now.FromDatetime(datetime.now(UTC))
    project, zone = "0123456789abcdef0123456789abcdef", "zone-a"
    return [
        cpb.Instance(
            name=f"projects/{project}/zones/{zone}/instances/bench-{i:03d}",
            uid=f"6a1f0c2e-8b3d-4e5f-9a0b-1c2d3e4f{i:04d}",
            display_name=f"bench-{i:03d}",
            create_time=now,
            update_time=now,
            etag="W/1",
            flavor="flavors/bench",
            image=f"projects/{project}/images/cirros",
            hostname=f"bench-{i:03d}",
            power_intent=cpb.Instance.POWER_INTENT_RUNNING,
            generation=2,
            observed_generation=2,
            state=cpb.Instance.STATE_RUNNING,
            host="hosts/fake-1",
            vcpus=1,
            memory_mib=128,
            disk_gib=1,
        )
        for i in range(ROWS)
    ]


def _detail_body() -> bytes:
    """The 100 servers as the gateway renders them for GET /servers/detail at 2.37."""
    import orjson

    from kumo.gateway.openstack.microversions import Version
    from kumo.gateway.openstack.nova.views import DetailView

    view = DetailView("http://127.0.0.1", Version(2, 37), admin=False)
    servers = [view.render(i, "1c7d2e4f-3a5b-4c6d-9e7f-8091a2b3c4d5", {}, []) for i in _instances()]
    return orjson.dumps({"servers": servers})


# --------------------------------------------------------------------------- gRPC process


async def _serve_grpc(port: int, dsn: str) -> None:
    """The gRPC process: Ping, Insert and List over one autocommit connection."""
    import grpc
    import psycopg

    from kumo.compute.v1 import compute_service_pb2 as capi

    listing = capi.ListInstancesResponse(instances=_instances()).SerializeToString()
    connection = await psycopg.AsyncConnection.connect(dsn, autocommit=True)

    async def ping(request: bytes, context: Any) -> bytes:
        return b""

    async def insert(request: bytes, context: Any) -> bytes:
        await connection.execute(INSERT, ROW_VALUES)
        return b""

    async def list_rows(request: bytes, context: Any) -> bytes:
        cursor = await connection.execute(SELECT)
        await cursor.fetchall()
        return listing

    handlers = {
        name: grpc.unary_unary_rpc_method_handler(call)
        for name, call in (("Ping", ping), ("Insert", insert), ("List", list_rows))
    }
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("floor.Floor", handlers),)
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("serving", flush=True)
    await server.wait_for_termination()


# --------------------------------------------------------------------------- HTTP process


def _http_app(grpc_port: int) -> Callable[..., Any]:
    """The HTTP process's bare ASGI app (its gRPC channel made on the first call, inside
    uvicorn's event loop)."""
    import grpc

    from kumo.compute.v1 import compute_service_pb2 as capi

    version = json.dumps({"version": {"id": "v2.1", "status": "CURRENT"}}).encode()
    created = json.dumps({"server": {"id": "6a1f0c2e-8b3d-4e5f-9a0b-1c2d3e4f0000"}}).encode()
    detail = _detail_body()
    calls: dict[str, Any] = {}

    def stubs() -> dict[str, Any]:
        if not calls:
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}")
            calls["ping"] = channel.unary_unary("/floor.Floor/Ping")
            calls["insert"] = channel.unary_unary("/floor.Floor/Insert")
            calls["list"] = channel.unary_unary(
                "/floor.Floor/List", response_deserializer=capi.ListInstancesResponse.FromString
            )
        return calls

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path, status, body = scope["path"], 200, version
        if path == "/ping":
            await stubs()["ping"](b"")
        elif path == "/servers" and scope["method"] == "POST":
            chunks, more = [], True
            while more:
                message = await receive()
                chunks.append(message.get("body", b""))
                more = message.get("more_body", False)
            json.loads(b"".join(chunks))
            await stubs()["insert"](b"")
            status, body = 202, created
        elif path == "/servers/detail":
            await stubs()["list"](b"")
            body = detail
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def _serve_http(port: int, grpc_port: int) -> None:
    import uvicorn

    uvicorn.run(_http_app(grpc_port), host="127.0.0.1", port=port, log_level="warning")


# --------------------------------------------------------------------------- bench


@contextlib.contextmanager
def _chain(dsn: str) -> Iterator[tuple[str, dict[str, int]]]:
    """The gRPC and HTTP processes; yields the HTTP base URL and the pids by role."""
    grpc_port, http_port = _free_port(), _free_port()
    me = [sys.executable, "-m", "tests.bench.bench_floors"]
    server = subprocess.Popen(
        [*me, "--serve-grpc", str(grpc_port), dsn], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        if server.stdout.readline().strip() != "serving":
            raise RuntimeError("the gRPC process did not start")
        url = f"http://127.0.0.1:{http_port}"
        with _process([*me, "--serve-http", str(http_port), str(grpc_port)], url) as http:
            yield url, {"http": http.pid, "grpc": server.pid}
    finally:
        server.terminate()
        server.wait(timeout=10)


def _measure(
    session: requests.Session,
    call: Callable[[], requests.Response],
    count: int,
    pids: dict[str, int],
) -> tuple[list[float], dict[str, float]]:
    """Latencies of `count` calls (after count/10 unmeasured) and CPU ms per call by process."""
    for _ in range(count // 10):
        call().raise_for_status()

    def cpu() -> dict[str, float]:
        return {
            **{role: _tree_cpu_seconds(pid) for role, pid in pids.items()},
            "client": time.process_time(),
        }

    before, latencies = cpu(), []
    for _ in range(count):
        start = time.perf_counter()
        answer = call()
        answer.json()
        latencies.append(time.perf_counter() - start)
        answer.raise_for_status()
    after = cpu()
    return latencies, {k: 1000 * (after[k] - before[k]) / count for k in before}


def run(args: argparse.Namespace) -> None:
    bindir = find_bindir()
    if bindir is None:
        raise SystemExit("PostgreSQL is not installed (scripts/install.sh --test installs it)")
    import psycopg

    postgres = PostgresServer(bindir)
    postgres.start()
    try:
        dsn = postgres.create_database().replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute(TABLE)
            for _ in range(ROWS):
                connection.execute(INSERT, ROW_VALUES)
        with _chain(dsn) as (url, pids):
            pids["database"] = _postmaster(postgres)
            session = requests.Session()
            session.headers["Accept"] = "application/json"
            cells = [
                ("GET / (HTTP only)", lambda: session.get(f"{url}/", timeout=30), None),
                ("GET /ping (HTTP + gRPC)", lambda: session.get(f"{url}/ping", timeout=30), None),
                (
                    "POST /servers (HTTP + gRPC + one INSERT)",
                    lambda: session.post(f"{url}/servers", json=CREATE, timeout=30),
                    args.nova_post_ms,
                ),
                (
                    f"GET /servers/detail (HTTP + gRPC + SELECT {ROWS} + {ROWS} servers)",
                    lambda: session.get(f"{url}/servers/detail", timeout=30),
                    args.nova_detail_ms,
                ),
            ]
            results = [
                (name, *_measure(session, call, args.calls, pids), nova)
                for name, call, nova in cells
            ]
    finally:
        postgres.stop()
    print()
    print(f"Floors: {args.calls} calls per row, one at a time (keep-alive requests session)")
    print()
    roles = ["client", "http", "grpc", "database"]
    print(
        "| call | p50 ms | p99 ms | Nova / 100 ms | "
        + " | ".join(f"CPU {r} ms" for r in roles)
        + " |"
    )
    print("|---|---|---|---|" + "---|" * len(roles))
    for name, latencies, cpu, nova in results:
        target = f"{nova / 100:.2f}" if nova else ""
        cpus = " | ".join(f"{cpu[r]:.2f}" for r in roles)
        print(
            f"| {name} | {ms(latencies, 0.5):.2f} | {ms(latencies, 0.99):.2f} | {target} | {cpus} |"
        )
    print()
    print(
        f"detail body: {len(_detail_body()):,} bytes; load average (1 min) {os.getloadavg()[0]:.2f}"
    )
    print(f"machine: {os.cpu_count()} CPUs, {_cpu_model()}; Python {sys.version.split()[0]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=1000, help="measured calls per row")
    parser.add_argument("--nova-post-ms", type=float, default=144.7, help="Nova's POST p50")
    parser.add_argument("--nova-detail-ms", type=float, default=297.9, help="Nova's detail p50")
    parser.add_argument("--serve-grpc", nargs=2, metavar=("PORT", "DSN"), help=argparse.SUPPRESS)
    parser.add_argument("--serve-http", nargs=2, metavar=("PORT", "GRPC"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_grpc:
        asyncio.run(_serve_grpc(int(args.serve_grpc[0]), args.serve_grpc[1]))
    elif args.serve_http:
        _serve_http(int(args.serve_http[0]), int(args.serve_http[1]))
    else:
        run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
