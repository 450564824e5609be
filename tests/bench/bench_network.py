"""Port create/delete per second: through Kumo's API vs direct ovsdbapp on OVN's NB.

Run from the repository root:

    .venv/bin/python -m tests.bench.bench_network              # 500 ports
    .venv/bin/python -m tests.bench.bench_network --ports 200 --concurrency 8

A private OVN central (NB/SB + northd in a temp dir, unix sockets) serves both
sides. Rows of the table:

- `api create` / `api delete`: CreatePort / DeletePort over gRPC to a real API
  server in this process (SQLite, tests/support/server.py), `--concurrency` client
  threads; each call commits the port and its IPAM address in one transaction
  (the reconciler's periodic pass is an hour away, so this is the API alone).
- `api → OVN sync`: one reconciler pass after the creates (or the deletes), i.e.
  the time until every port created through the API exists in OVN's NB (or is
  gone from it); rate = ports / pass time.
- `ovsdbapp create` / `ovsdbapp delete`: lsp_add / lsp_del straight on the NB, one
  port per transaction, from one thread (what a client of OVN alone would do).

Everything shares this one Python process (clients, server, reconciler). Nothing
is asserted: see tests/bench/README.md.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

from kumo.drivers.network.base import NetworkSpec
from kumo.drivers.network.ovn import OvnDriver, switch_name
from kumo.drivers.network.ovn_local import OvnCentral
from kumo.identity.v1 import identity_service_pb2 as iapi
from kumo.identity.v1 import resources_pb2 as ipb
from kumo.network.v1 import network_service_pb2 as napi
from kumo.network.v1 import resources_pb2 as npb
from tests.conftest import make_config
from tests.support.cloud import ADMIN_PASSWORD, Stubs, make_tenant, sign_in
from tests.support.network import make_network, net
from tests.support.ovn import reconcile
from tests.support.server import ServerThread

HEADER = f"{'path':<22} {'ports':>6} {'seconds':>8} {'ports/s':>9}"


def timed(count: int, concurrency: int, one: Callable[[int], object]) -> float:
    """Seconds to run `one(i)` for every i, `concurrency` at a time."""
    start = time.perf_counter()
    if concurrency == 1:
        for i in range(count):
            one(i)
    else:
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(one, range(count)))
    return time.perf_counter() - start


def row(path: str, count: int, seconds: float) -> str:
    return f"{path:<22} {count:>6} {seconds:>8.2f} {count / seconds:>9.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ports", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    rows: list[str] = []
    with tempfile.TemporaryDirectory(prefix="kumo-bench-net-") as tmp:
        central = OvnCentral(Path(tmp) / "ovn")
        central.start()
        try:
            url = f"sqlite:///{tmp}/kumo.db"
            server = ServerThread(
                make_config(
                    url,
                    data_dir=str(Path(tmp) / "data"),
                    network={
                        "driver": "ovn",
                        "ovn_nb_remote": central.nb_remote,
                        "reconcile_seconds": 3600,
                    },
                )
            )
            try:
                with grpc.insecure_channel(server.address) as channel:
                    admin = Stubs(channel, sign_in(channel, "admin", ADMIN_PASSWORD, "admin"))
                    tenant = make_tenant(channel, admin, "bench")
                    admin.identity.UpdateQuota(
                        iapi.UpdateQuotaRequest(
                            quota=ipb.Quota(
                                name=f"{tenant.name}/quota",
                                limits=[ipb.QuotaLimit(resource="ports", limit=args.ports)],
                            )
                        )
                    )
                    member = tenant.stubs["member"]
                    network, _ = make_network(member, tenant.project, "10.0.0.0/16")
                    reconcile(server)
                    stub = net(member)
                    ids = [f"p{i}" for i in range(args.ports)]
                    seconds = timed(
                        args.ports,
                        args.concurrency,
                        lambda i: stub.CreatePort(
                            napi.CreatePortRequest(
                                parent=tenant.name,
                                port_id=ids[i],
                                port=npb.Port(network=network.name),
                            )
                        ),
                    )
                    rows.append(row("api create", args.ports, seconds))
                    start = time.perf_counter()
                    reconcile(server)
                    rows.append(row("api → OVN sync", args.ports, time.perf_counter() - start))
                    seconds = timed(
                        args.ports,
                        args.concurrency,
                        lambda i: stub.DeletePort(
                            napi.DeletePortRequest(name=f"{tenant.name}/ports/{ids[i]}")
                        ),
                    )
                    rows.append(row("api delete", args.ports, seconds))
                    start = time.perf_counter()
                    reconcile(server)
                    rows.append(
                        row("api → OVN sync (del)", args.ports, time.perf_counter() - start)
                    )
            finally:
                server.stop()
            driver = OvnDriver(central.nb_remote)
            uid = str(uuid.uuid4())
            driver.ensure_network(NetworkSpec(uid=uid, name="bench"))
            api = driver.api
            names = [f"direct-{i}" for i in range(args.ports)]

            def add(i: int) -> None:
                api.lsp_add(switch_name(uid), names[i]).execute(check_error=True)
                api.lsp_set_addresses(
                    names[i],
                    [f"02:4c:00:00:{i // 256:02x}:{i % 256:02x} 10.1.{i // 256}.{i % 256}"],
                ).execute(check_error=True)

            rows.append(row("ovsdbapp create", args.ports, timed(args.ports, 1, add)))
            rows.append(
                row(
                    "ovsdbapp delete",
                    args.ports,
                    timed(
                        args.ports,
                        1,
                        lambda i: api.lsp_del(names[i]).execute(check_error=True),
                    ),
                )
            )
            driver.close()
        finally:
            central.stop()
    print()
    print(
        f"Ports on one OVN network; {platform.node()}, Python {platform.python_version()}, "
        f"{args.concurrency} API clients"
    )
    print(HEADER)
    print("-" * len(HEADER))
    for line in rows:
        print(line)


if __name__ == "__main__":
    main()
