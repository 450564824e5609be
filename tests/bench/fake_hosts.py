"""Fake hosts for the benchmarks, in a process of their own: kumo-agents on FakeDriver.

    python -m tests.bench.fake_hosts ENDPOINT TOKEN RACK HOSTS CAPACITY

starts HOSTS agents (tests/support/agent.py) in rack RACK, each with room for CAPACITY
one-vCPU/128 MiB/1 GiB instances, prints `ready` once all are registered and runs until
its standard input closes. A benchmark's client measures latency from its own
interpreter: agents in the same interpreter would share its GIL and inflate its figures
(and real hosts are other machines).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import compute_service_pb2_grpc as crpc
from kumo.compute.v1 import resources_pb2 as cpb
from kumo.drivers.compute.fake import FakeDriver
from tests.support.agent import AgentThread
from tests.support.cloud import Stubs, Tenant, set_quota, unique
from tests.support.topology import Site, make_site


@dataclass
class BenchCell:
    """Where a benchmark creates: the site of the fake hosts, the one-vCPU flavor's id, and
    the hosts' process (for its pid)."""

    site: Site
    flavor: str
    hosts: subprocess.Popen[str]


@contextlib.contextmanager
def bench_cell(
    endpoints: str, admin: Stubs, tenant: Tenant, instances: int, hosts: int
) -> Iterator[BenchCell]:
    """Room for `instances` one-vCPU/128 MiB/1 GiB instances: the tenant's quota, a new site
    whose rack holds `hosts` fake hosts (this module, in a process of their own) with that
    room plus ten each, and a flavor of that size. The hosts stop on leaving. `endpoints`:
    the API's address, or several replicas' separated by commas (the hosts take turns)."""
    room = instances + 10
    set_quota(admin, tenant, instances=room, vcpus=room, ram_mib=room * 128)
    site = make_site(admin)
    per_host = instances // hosts + 10
    process = subprocess.Popen(
        [
            *(str(Path(sys.executable).parent / "python"), "-m", "tests.bench.fake_hosts"),
            *(endpoints, admin.token or "", site.rack, str(hosts), str(per_host)),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError("the fake hosts did not start")
        flavor = unique("small")
        crpc.ComputeServiceStub(admin.channel).CreateFlavor(
            capi.CreateFlavorRequest(
                flavor_id=flavor, flavor=cpb.Flavor(vcpus=1, memory_mib=128, disk_gib=1)
            )
        )
        yield BenchCell(site, flavor, process)
    finally:
        process.communicate(timeout=60)  # closing its input stops the agents


def main(argv: list[str]) -> int:
    endpoints, token, rack, hosts, capacity = argv[0], argv[1], argv[2], int(argv[3]), int(argv[4])
    replicas = endpoints.split(",")  # the hosts' agents take turns
    agents = [
        AgentThread(
            replicas[index % len(replicas)],
            token,
            unique("bench"),
            rack,
            FakeDriver(vcpus=capacity, memory_mib=capacity * 128, disk_gib=capacity),
        )
        for index in range(hosts)
    ]
    print("ready", flush=True)
    try:
        sys.stdin.read()
    finally:
        for agent in agents:
            agent.stop()
            shutil.rmtree(agent.config.state_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
