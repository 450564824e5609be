"""OpenStack Placement doing the scheduler's work, for tests/bench/bench_scheduler.py.

Not part of Kumo: run by bench_scheduler.py with the Python of a separate virtual
environment that holds `openstack-placement` (Kumo's .venv never imports it):

    /tmp/placement-venv/bin/python tests/bench/placement_driver.py --db /tmp/p.db \\
        --hosts 1000 --placements 10000 --limit 1000

It builds Placement's WSGI app in this process (`placement.deploy.loadapp`, the
whole middleware stack, `auth_strategy = noauth2`) on a SQLite file, creates
`--hosts` resource providers with VCPU / MEMORY_MB / DISK_GB inventories, then for
each of `--placements` consumers does what Nova's scheduler does: GET
/allocation_candidates?resources=VCPU:1,MEMORY_MB:128,DISK_GB:1&limit=L, then PUT
/allocations/{consumer} claiming the first candidate. Requests are WSGI calls
(webob `Request.blank(...).get_response(app)`): no socket, no HTTP server, so the
figures are Placement's own cost, as Kumo's are `place()`'s own. It prints one JSON
object on stdout (timings in seconds); progress goes to stderr.

Only the standard library and Placement's own dependencies are imported, through
importlib, so that Kumo's type checker need not know them.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

MICROVERSION = "placement 1.36"  # what Nova's scheduler report client sends for these calls
CLK_TCK = os.sysconf("SC_CLK_TCK")
PROJECT = str(uuid.UUID(int=1))
USER = str(uuid.UUID(int=2))


def _machine_busy_seconds() -> float:
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / CLK_TCK


class Placement:
    """The WSGI app and a tiny client that calls it in-process."""

    def __init__(self, db_path: Path, wal: bool) -> None:
        cfg = importlib.import_module("oslo_config.cfg")
        conf = importlib.import_module("placement.conf")
        db_api = importlib.import_module("placement.db_api")
        deploy = importlib.import_module("placement.deploy")
        self._webob = importlib.import_module("webob")
        config = cfg.ConfigOpts()
        conf.register_opts(config)
        config.set_override("connection", f"sqlite:///{db_path}", group="placement_database")
        config.set_override("sync_on_startup", True, group="placement_database")
        config.set_override("auth_strategy", "noauth2", group="api")
        config([], project="placement", default_config_files=[])
        db_api.configure(config)
        if wal:
            # The pragmas Kumo's engine sets on SQLite (kumo.server.db.engine), so that
            # both sides pay the same for a commit.
            sqlalchemy = importlib.import_module("sqlalchemy")
            engine = db_api.get_placement_engine()

            def pragmas(dbapi_connection: Any, _record: Any) -> None:
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.close()

            sqlalchemy.event.listen(engine, "connect", pragmas)
            engine.dispose()
        self.app = deploy.loadapp(config)  # also runs the migrations (sync_on_startup)
        self.headers = {
            "x-auth-token": "admin",
            "OpenStack-API-Version": MICROVERSION,
            "Accept": "application/json",
        }

    def call(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        request = self._webob.Request.blank(path, method=method, headers=self.headers)
        if body is not None:
            request.body = json.dumps(body).encode()
            request.content_type = "application/json"
        response = request.get_response(self.app)
        if response.status_int != expect:
            raise RuntimeError(f"{method} {path}: {response.status}: {response.text[:500]}")
        return json.loads(response.body) if response.body else None


def create_providers(placement: Placement, hosts: int, vcpus: int, memory: int, disk: int) -> None:
    for index in range(hosts):
        rp_uuid = str(uuid.UUID(int=0x1000 + index))
        placement.call(
            "POST",
            "/resource_providers",
            {"name": f"host-{index:04d}", "uuid": rp_uuid},
            expect=200,
        )
        placement.call(
            "PUT",
            f"/resource_providers/{rp_uuid}/inventories",
            {
                "resource_provider_generation": 0,
                "inventories": {
                    "VCPU": {"total": vcpus, "allocation_ratio": 4.0},
                    "MEMORY_MB": {"total": memory, "allocation_ratio": 1.0},
                    "DISK_GB": {"total": disk, "allocation_ratio": 1.0},
                },
            },
        )


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    placement = Placement(args.db, not args.no_wal)
    create_providers(placement, args.hosts, args.vcpus, args.memory_mib, args.disk_gib)
    setup = time.perf_counter() - started
    resources = f"VCPU:1,MEMORY_MB:{args.instance_memory_mib},DISK_GB:1"
    query = f"/allocation_candidates?resources={resources}&limit={args.limit}"
    if args.warmup:  # one unmeasured round to warm caches, then release its claim
        candidates = placement.call("GET", query)
        consumer = str(uuid.uuid4())
        _claim(placement, consumer, candidates["allocation_requests"][0])
        placement.call("DELETE", f"/allocations/{consumer}", expect=204)
    total: list[float] = []
    get: list[float] = []
    put: list[float] = []
    returned: list[int] = []
    failures = 0
    cpu0, busy0, wall0 = time.process_time(), _machine_busy_seconds(), time.perf_counter()
    for index in range(args.placements):
        t0 = time.perf_counter()
        candidates = placement.call("GET", query)
        t1 = time.perf_counter()
        requests = candidates["allocation_requests"]
        returned.append(len(requests))
        if not requests:
            failures += 1
            continue
        _claim(placement, str(uuid.UUID(int=0x10_0000 + index)), requests[0])
        t2 = time.perf_counter()
        get.append(t1 - t0)
        put.append(t2 - t1)
        total.append(t2 - t0)
        if (index + 1) % 500 == 0:
            print(
                f"  placement: {index + 1}/{args.placements}, "
                f"{(index + 1) / (time.perf_counter() - wall0):.0f}/s",
                file=sys.stderr,
                flush=True,
            )
    wall = time.perf_counter() - wall0
    cpu, busy = time.process_time() - cpu0, _machine_busy_seconds() - busy0
    return {
        "setup_seconds": setup,
        "seconds": wall,
        "placements": len(total),
        "failures": failures,
        "latencies": total,
        "get_latencies": get,
        "put_latencies": put,
        "candidates_min": min(returned, default=0),
        "candidates_max": max(returned, default=0),
        "cpu_seconds": cpu,
        "other_cpu_seconds": max(0.0, busy - cpu),
        "versions": _versions(),
    }


def _claim(placement: Placement, consumer: str, allocation_request: dict[str, Any]) -> None:
    placement.call(
        "PUT",
        f"/allocations/{consumer}",
        {
            "allocations": allocation_request["allocations"],
            "project_id": PROJECT,
            "user_id": USER,
            "consumer_generation": None,
        },
        expect=204,
    )


def _versions() -> str:
    import importlib.metadata as md

    names = ["openstack-placement", "sqlalchemy", "oslo.db", "webob"]
    found = []
    for name in names:
        try:
            found.append(f"{name} {md.version(name)}")
        except md.PackageNotFoundError:
            continue
    return ", ".join(found)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", type=Path, required=True, help="the SQLite file to create")
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--placements", type=int, default=10000)
    parser.add_argument("--limit", type=int, default=1000, help="allocation candidates asked")
    parser.add_argument("--vcpus", type=int, default=16)
    parser.add_argument("--memory-mib", type=int, default=65536)
    parser.add_argument("--disk-gib", type=int, default=1000)
    parser.add_argument("--instance-memory-mib", type=int, default=128)
    parser.add_argument("--no-wal", action="store_true", help="keep oslo.db's SQLite defaults")
    parser.add_argument("--warmup", action="store_true", help="one unmeasured placement first")
    args = parser.parse_args()
    result = run(args)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
