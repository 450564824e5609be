"""Live migration of a running 128 MiB TCG guest between two libvirt hosts: downtime and total
time through the Kumo driver, and raw `virsh migrate --live` beside it.

Run from the repository root (as root; about 2-3 minutes):

    .venv/bin/python -m tests.bench.bench_migration                  # 10 runs per cell
    .venv/bin/python -m tests.bench.bench_migration --runs 20 --downtimes default,50,30

Hosts: a `HostCluster` of two (tests/support/multihost.py): each a libvirtd in its own
network namespace at its own address on one bridge; storage not shared. One guest of the
tiny image (1 vCPU, 128 MiB; it prints `tick <n>` once a second) is spawned on host-1 by
the Kumo libvirt driver and migrated back and forth, alternating directions, `--runs` times
per cell. A cell is a max-downtime setting (`default`: QEMU's own 300 ms) and a tool; for
one setting the tools take turns run by run (kumo, virsh, kumo, ...), so that both see the
same machine:

- kumo: `prepare_incoming` on the destination, `migrate_live` on the source (peer to peer,
  LIVE | PERSIST_DEST, block migration of the overlay, `max_downtime_ms`); downtime and
  total time are the completed job's statistics (libvirt's `downtime` and `time_elapsed`);
  `call` is the wall time of `migrate_live` (definition rewrite, job polling, undefine and
  file removal on the source included).
- virsh: the same migration by `virsh migrate --live --p2p --persistent --copy-storage-inc
  --migrate-disks vda --abort-on-error --xml --persistent-xml` (the definition the driver
  would send, same destination files from `prepare_incoming`), after `virsh
  migrate-setmaxdowntime` (300 ms for `default`, as the driver sets); figures from
  `virsh domjobinfo --completed` on the source, which is then undefined and its files
  removed, as the driver does. `call` is the wall time of the `virsh migrate` process.

After every run the guest must tick on the destination (a tick later than the last one seen
on the source), or the run is reported as broken. Nothing is asserted: see
tests/bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from kumo.drivers.compute.base import GuestSpec, MigrationOptions
from kumo.drivers.compute.libvirt import (
    DOMAIN_PREFIX,
    METADATA_NS,
    QEMU_DEFAULT_MAX_DOWNTIME_MS,
    LibvirtDriver,
)
from kumo.drivers.compute.libvirt_migration import rewrite_definition
from tests.bench.bench_api import _cpu_model, _machine_busy_seconds
from tests.support.multihost import Host, HostCluster, multihost_unavailable_reason

REPO = Path(__file__).resolve().parents[2]
TINY_IMAGE = REPO / "build" / "images" / "kumo-tiny.qcow2"
TICK = re.compile(rb"tick (\d+)")
BOOT_TIMEOUT = 120.0
TICK_TIMEOUT = 15.0


@dataclass
class Cell:
    tool: str  # kumo | virsh
    downtime_setting: int | None  # ms, None: QEMU's default
    downtime_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)
    call_ms: list[float] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)
    busy_cpu: float = 0.0  # machine CPU seconds during the cell
    wall: float = 0.0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


class Bench:
    """The two hosts, their drivers, and the one guest that moves between them."""

    def __init__(self, cluster: HostCluster) -> None:
        self.hosts = cluster.hosts[:2]
        self.drivers = [
            LibvirtDriver(uri=h.uri, instances_dir=h.instances_dir, migration_uri=h.migration_uri)
            for h in self.hosts
        ]
        self.spec = GuestSpec(
            uid="bench-migrant",
            name="projects/bench/zones/zone-1/instances/bench-migrant",
            hostname="migrant",
            vcpus=1,
            memory_mib=128,
            disk_gib=1,
            image_path=TINY_IMAGE,
        )
        self.at = 0  # index of the host the guest runs on

    def console(self, host: int) -> bytes:
        driver, out = self.drivers[host], b""
        while chunk := driver.read_console(self.spec.uid, len(out)):
            out += chunk
        return out

    def last_tick(self, host: int) -> int:
        ticks = TICK.findall(self.console(host))
        return int(ticks[-1]) if ticks else -1

    def boot(self) -> None:
        self.drivers[0].spawn(self.spec)
        deadline = time.monotonic() + BOOT_TIMEOUT
        while self.last_tick(0) < 2:
            if time.monotonic() > deadline:
                raise TimeoutError("the guest did not boot: " + repr(self.console(0)[-300:]))
            time.sleep(0.2)

    def ticks_on(self, host: int, after: int) -> bool:
        deadline = time.monotonic() + TICK_TIMEOUT
        while time.monotonic() < deadline:
            if self.last_tick(host) > after:
                return True
            time.sleep(0.1)
        return False

    def why_silent(self, host: int, before: int) -> str:
        """What a run that broke left: the guest's state and console end on `host`."""
        state = self.drivers[host].state(self.spec.uid).value
        tail = self.console(host)[-60:]
        return f"no tick after {before} in {TICK_TIMEOUT:g} s; guest {state}, console ends {tail!r}"

    def run_kumo(self, cell: Cell) -> None:
        source, dest = self.at, 1 - self.at
        before = self.last_tick(source)
        target = self.drivers[dest].prepare_incoming(self.spec)
        options = MigrationOptions(max_downtime_ms=cell.downtime_setting)
        started = time.monotonic()
        result = self.drivers[source].migrate_live(self.spec.uid, target, options)
        cell.call_ms.append((time.monotonic() - started) * 1000)
        self.at = dest
        if result.downtime_ms is not None:
            cell.downtime_ms.append(result.downtime_ms)
        cell.total_ms.append(result.total_ms)
        if not self.ticks_on(dest, before):
            cell.broken.append(f"kumo {source}->{dest}: {self.why_silent(dest, before)}")

    def run_virsh(self, cell: Cell) -> None:
        source, dest = self.at, 1 - self.at
        src_host: Host = self.hosts[source]
        before = self.last_tick(source)
        target = self.drivers[dest].prepare_incoming(self.spec)
        domain = DOMAIN_PREFIX + self.spec.uid
        source_dir = str(src_host.instances_dir / self.spec.uid)
        virsh = ["virsh", "-q", "-c", src_host.uri]
        live = _run([*virsh, "dumpxml", "--migratable", "--security-info", domain])
        inactive = _run(
            [*virsh, "dumpxml", "--migratable", "--security-info", "--inactive", domain]
        )
        with tempfile.TemporaryDirectory(prefix="kumo-bench-mig-") as tmp:
            dest_xml, persist_xml = Path(tmp) / "dest.xml", Path(tmp) / "persist.xml"
            dest_xml.write_text(
                rewrite_definition(live, source_dir, target.properties, METADATA_NS)
            )
            persist_xml.write_text(
                rewrite_definition(inactive, source_dir, target.properties, METADATA_NS)
            )
            downtime = cell.downtime_setting or QEMU_DEFAULT_MAX_DOWNTIME_MS  # as the driver
            _run([*virsh, "migrate-setmaxdowntime", domain, str(downtime)])
            started = time.monotonic()
            _run(
                [
                    *virsh,
                    "migrate",
                    "--live",
                    "--p2p",
                    "--persistent",
                    "--copy-storage-inc",
                    "--migrate-disks",
                    "vda",
                    "--abort-on-error",
                    "--xml",
                    str(dest_xml),
                    "--persistent-xml",
                    str(persist_xml),
                    domain,
                    target.uri,
                ]
            )
            cell.call_ms.append((time.monotonic() - started) * 1000)
        info = _run([*virsh, "domjobinfo", "--completed", domain])
        downtime_match = re.search(r"Total downtime:\s+(\d+)", info)
        elapsed_match = re.search(r"Time elapsed:\s+(\d+)", info)
        if downtime_match:
            cell.downtime_ms.append(float(downtime_match.group(1)))
        if elapsed_match:
            cell.total_ms.append(float(elapsed_match.group(1)))
        _run([*virsh, "undefine", "--nvram", domain])
        shutil.rmtree(source_dir, ignore_errors=True)
        self.at = dest
        if not self.ticks_on(dest, before):
            cell.broken.append(f"virsh {source}->{dest}: {self.why_silent(dest, before)}")

    def close(self) -> None:
        for driver in self.drivers:
            driver.destroy(self.spec.uid)
            driver.close()


def _run(argv: list[str]) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:5])}...: {result.stderr.strip()}")
    return result.stdout


def report(cells: list[Cell], args: argparse.Namespace, probe_s: float, boot_s: float) -> None:
    print()
    print(
        f"Live migration, 128 MiB TCG guest (tiny image, ticking), host-1 <-> host-2 "
        f"alternating, {args.runs} runs per cell; storage not shared (block migration of "
        f"the qcow2 overlay); libvirtd and QEMU at nice {args.nice}"
    )
    header = (
        f"{'tool':<6} | {'max downtime':>12} | {'runs':>4} | {'downtime p50':>12} | "
        f"{'p90':>6} | {'max':>6} | {'total p50':>9} | {'p90':>6} | {'call p50':>8} | "
        f"{'machine CPU':>11} | broken"
    )
    print(header)
    print("-" * len(header))
    cores = os.cpu_count() or 1
    for c in cells:
        setting = "default" if c.downtime_setting is None else f"{c.downtime_setting} ms"
        other = 100.0 * c.busy_cpu / (c.wall * cores) if c.wall else float("nan")
        print(
            f"{c.tool:<6} | {setting:>12} | {len(c.total_ms):>4} | "
            f"{percentile(c.downtime_ms, 50):>9.0f} ms | {percentile(c.downtime_ms, 90):>6.0f} | "
            f"{max(c.downtime_ms, default=float('nan')):>6.0f} | "
            f"{percentile(c.total_ms, 50):>6.0f} ms | {percentile(c.total_ms, 90):>6.0f} | "
            f"{percentile(c.call_ms, 50):>5.0f} ms | {other:>10.0f}% | {len(c.broken)}"
        )
        for line in c.broken:
            print(f"    broken: {line}")
    print()
    print("downtime, total: the completed job's statistics (libvirt `downtime`, `time_elapsed`);")
    print(
        "call: wall time of migrate_live / of the virsh process; machine CPU: the whole machine's"
    )
    print("busy CPU during the cell, in % of all cores (the guest's TCG vCPU is part of it).")
    print(
        f"hosts up (two libvirtd, QEMU probe) {probe_s:.1f} s; first boot to `tick 2` "
        f"{boot_s:.1f} s"
    )
    import libvirt

    print(
        f"machine: {cores} cores, {_cpu_model()}; Python {platform.python_version()}; "
        f"libvirt {libvirt.getVersion() // 1_000_000}.{libvirt.getVersion() // 1000 % 1000}; "
        + _run(["qemu-system-x86_64", "--version"]).splitlines()[0]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="migrations per cell (default 10)")
    parser.add_argument(
        "--downtimes",
        default="default,50",
        help="max-downtime settings in ms, `default` for QEMU's own (default: default,50)",
    )
    parser.add_argument("--tools", default="kumo,virsh", help="kumo,virsh (default both)")
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run both hosts' libvirtd (and so their QEMUs) at this nice value, e.g. -10 to "
        "shield the measurement from other work on a shared machine (default 0: as is)",
    )
    args = parser.parse_args(argv)
    reason = multihost_unavailable_reason()
    if reason is None and not TINY_IMAGE.exists():
        reason = f"{TINY_IMAGE} is missing (scripts/build-image)"
    if reason is None and shutil.which("virsh") is None and "virsh" in args.tools:
        reason = "virsh is not installed (libvirt-clients)"
    if reason is not None:
        print(f"bench_migration: skipped: {reason}", file=sys.stderr)
        return 1
    settings = [None if s == "default" else int(s) for s in args.downtimes.split(",")]
    tools = args.tools.split(",")
    started = time.monotonic()
    with HostCluster(2) as cluster:
        probe_s = time.monotonic() - started
        for host in cluster.hosts:
            if args.nice and host.daemon.pid is not None:
                # Per thread on Linux: every libvirtd thread, so the QEMUs they fork inherit it.
                for task in Path(f"/proc/{host.daemon.pid}/task").iterdir():
                    os.setpriority(os.PRIO_PROCESS, int(task.name), args.nice)
        bench = Bench(cluster)
        try:
            started = time.monotonic()
            bench.boot()
            boot_s = time.monotonic() - started
            cells = [Cell(tool, setting) for setting in settings for tool in tools]
            for setting in settings:
                # The tools take turns run by run, so both see the same machine.
                row = [c for c in cells if c.downtime_setting == setting]
                for _ in range(args.runs):
                    for cell in row:
                        run = bench.run_kumo if cell.tool == "kumo" else bench.run_virsh
                        busy, started = _machine_busy_seconds(), time.monotonic()
                        run(cell)
                        cell.wall += time.monotonic() - started
                        cell.busy_cpu += _machine_busy_seconds() - busy
                for cell in row:
                    print(
                        f"{cell.tool} {cell.downtime_setting or 'default'}: "
                        f"downtimes {[round(d) for d in cell.downtime_ms]}",
                        file=sys.stderr,
                        flush=True,
                    )
        finally:
            bench.close()
    report(cells, args, probe_s, boot_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
