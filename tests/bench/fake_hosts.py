"""Fake hosts for the benchmarks, in a process of their own: kumo-agents on FakeDriver.

    python -m tests.bench.fake_hosts ENDPOINT TOKEN RACK HOSTS CAPACITY

starts HOSTS agents (tests/support/agent.py) in rack RACK, each with room for CAPACITY
one-vCPU/128 MiB/1 GiB instances, prints `ready` once all are registered and runs until
its standard input closes. A benchmark's client measures latency from its own
interpreter: agents in the same interpreter would share its GIL and inflate its figures
(and real hosts are other machines).
"""

from __future__ import annotations

import sys

from kumo.drivers.compute.fake import FakeDriver
from tests.support.agent import AgentThread
from tests.support.cloud import unique


def main(argv: list[str]) -> int:
    endpoint, token, rack, hosts, capacity = argv[0], argv[1], argv[2], int(argv[3]), int(argv[4])
    agents = [
        AgentThread(
            endpoint,
            token,
            unique("bench"),
            rack,
            FakeDriver(vcpus=capacity, memory_mib=capacity * 128, disk_gib=capacity),
        )
        for _ in range(hosts)
    ]
    print("ready", flush=True)
    try:
        sys.stdin.read()
    finally:
        for agent in agents:
            agent.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
