"""The REST gateway's overhead over direct gRPC, per call.

Run from the repository root:

    .venv/bin/python -m tests.bench.bench_gateway            # 3 s per cell
    .venv/bin/python -m tests.bench.bench_gateway --seconds 1

Starts an API server (SQLite) and the gateway in this process (each on its own thread
and event loop, on 127.0.0.1), a site with one host run by a real agent on the fake compute
driver, and a project with 10 servers. Then, for 1 and 8 concurrent clients (threads, each
with its own keep-alive HTTP session or the shared gRPC channel), it times:

- get: gRPC GetInstance / native REST GET /v1/{name} / Nova GET /servers/{id}
- list: gRPC ListInstances (10) / native REST GET /v1/.../instances / Nova GET /servers/detail

and prints calls/s, p50 and p99 per path, and the gateway's added p50 over gRPC. Client,
gateway and API share the machine (and this process's GIL for the gateway and API
threads), so the figures are an upper bound of the overhead. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc
import requests

from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import compute_service_pb2_grpc as crpc
from kumo.compute.v1 import resources_pb2 as cpb
from kumo.drivers.compute.fake import FakeDriver
from tests.conftest import make_config
from tests.integration.test_compute_resources import make_flavor
from tests.support.agent import AgentThread
from tests.support.cloud import ADMIN_PASSWORD, Stubs, make_tenant, sign_in
from tests.support.gateway import GatewayThread
from tests.support.images import upload_image
from tests.support.server import ServerThread
from tests.support.topology import make_site

SERVERS = 10  # the default instance quota


def _time(call: Callable[[], Any], clients: int, seconds: float) -> tuple[float, list[float]]:
    """Runs `call` from `clients` threads for `seconds`; returns calls/s and latencies."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    deadline = time.monotonic() + seconds

    def loop(mine: list[float]) -> None:
        while time.monotonic() < deadline:
            start = time.perf_counter()
            call()
            mine.append(time.perf_counter() - start)

    for _ in range(20):
        call()  # warm-up
    threads = [threading.Thread(target=loop, args=(mine,)) for mine in latencies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    merged = sorted(x for mine in latencies for x in mine)
    return len(merged) / seconds, merged


def _percentile(values: list[float], fraction: float) -> float:
    return values[min(len(values) - 1, int(len(values) * fraction))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()

    api = ServerThread(make_config(f"sqlite:///{tempfile.mkdtemp()}/kumo.db"))
    gateway = GatewayThread(api.address)
    channel = grpc.insecure_channel(api.address)
    admin = Stubs(channel, sign_in(channel, "admin", ADMIN_PASSWORD, "admin"))
    site = make_site(admin)
    agent = AgentThread(
        api.address, admin.token or "", "bench-host", site.rack,
        FakeDriver(vcpus=64, memory_mib=65536, disk_gib=1000),
    )  # fmt: skip
    try:
        tenant = make_tenant(channel, admin, "bench")
        member = tenant.stubs["member"]
        compute = crpc.ComputeServiceStub(member.channel)
        flavor = make_flavor(admin, 1, 128, 1)
        image = upload_image(member, tenant.name)
        parent = f"{tenant.name}/zones/{site.zone}"
        for index in range(SERVERS):
            compute.CreateInstance(
                capi.CreateInstanceRequest(
                    parent=parent,
                    instance_id=f"vm-{index}",
                    instance=cpb.Instance(flavor=flavor, image=image, display_name=f"vm-{index}"),
                )
            )
        target = compute.GetInstance(capi.GetInstanceRequest(name=f"{parent}/instances/vm-0"))
        token = member.token or ""
        local = threading.local()

        def session() -> requests.Session:
            if not hasattr(local, "session"):
                local.session = requests.Session()
            return local.session

        def rest(path: str, headers: dict[str, str]) -> Callable[[], Any]:
            def call() -> None:
                response = session().get(gateway.url + path, headers=headers, timeout=30)
                response.raise_for_status()

            return call

        bearer = {"Authorization": f"Bearer {token}"}
        nova = {"X-Auth-Token": token}
        cases: dict[str, dict[str, Callable[[], Any]]] = {
            "get": {
                "gRPC": lambda: compute.GetInstance(capi.GetInstanceRequest(name=target.name)),
                "native REST": rest(f"/v1/{target.name}", bearer),
                "Nova": rest(f"/compute/v2.1/servers/{target.uid}", nova),
            },
            "list 10": {
                "gRPC": lambda: compute.ListInstances(
                    capi.ListInstancesRequest(parent=f"{tenant.name}/zones/-", page_size=100)
                ),
                "native REST": rest(f"/v1/{tenant.name}/zones/-/instances?pageSize=100", bearer),
                "Nova": rest("/compute/v2.1/servers/detail", nova),
            },
        }
        print(f"machine: {platform.machine()}, {platform.python_version()}, SQLite, loopback")
        print(f"{'call':8} {'path':12} {'clients':>7} {'calls/s':>9} {'p50 ms':>8} "
              f"{'p99 ms':>8} {'+p50 ms':>8}")  # fmt: skip
        for name, paths in cases.items():
            for clients in (1, 8):
                base = 0.0
                for label, call in paths.items():
                    rate, latencies = _time(call, clients, args.seconds)
                    p50 = _percentile(latencies, 0.5)
                    if label == "gRPC":
                        base = p50
                    extra = "" if label == "gRPC" else f"{p50 - base:8.2f}"
                    print(f"{name:8} {label:12} {clients:7d} {rate:9.0f} {p50:8.2f} "
                          f"{_percentile(latencies, 0.99):8.2f} {extra:>8}")  # fmt: skip
    finally:
        agent.stop()
        gateway.stop()
        channel.close()
        api.stop()


if __name__ == "__main__":
    main()
