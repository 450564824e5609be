"""The live-migration half of the compute driver contract, over a pair of hosts per driver.

`fake`: two FakeDrivers of this process. `libvirt`: two real libvirtd "hosts" of the
session's `libvirt_hosts` fixture (each in its own network namespace, at its own address;
storage not shared, so every migration is a block migration of the guest's overlay),
running real TCG guests of the tiny image, which prints `tick <n>` once a second on its
serial console: a guest that keeps counting on the destination, with no new boot, has
moved while it ran.

The destination's death is its hypervisor dying mid-migration: the fake is set
unavailable, the real host's libvirtd is SIGKILLed (its QEMU survives it until the daemon is
started again and reaps the half-received guest). Migrations that must still run when the
test acts on them are slowed down with a bandwidth cap.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kumo.drivers.compute.base import (
    ComputeDriver,
    GuestSpec,
    GuestState,
    MigrationOptions,
    MigrationProgress,
    MigrationTarget,
)
from kumo.drivers.compute.fake import FakeDriver
from kumo.drivers.compute.libvirt import LibvirtDriver
from kumo.drivers.errors import (
    DriverError,
    GuestAlreadyExists,
    GuestNotFound,
    InvalidGuestState,
    MigrationCancelled,
    MigrationFailed,
)
from tests.contract.test_compute_driver import BOOT, KEYS
from tests.support.multihost import HostCluster

TICK = re.compile(rb"tick (\d+)")
SLOW = MigrationOptions(bandwidth_mibps=1)  # ~70 s for a 128 MiB guest: time to act


@dataclass
class Pair:
    """Two hosts of one driver, and what the suite needs to act on them."""

    name: str
    drivers: tuple[ComputeDriver, ComputeDriver]
    image: Path
    boot_timeout: float
    ticks: bool  # the guests print `tick <n>` (real guests)
    kill: Callable[[int], None]  # host i's hypervisor dies
    revive: Callable[[int], None]  # and comes back
    leftovers: Callable[[int, str], list[str]]  # what host i holds of guest uid
    disk: Callable[[int, str], Path] | None = None  # host i's root disk file of guest uid
    uids: list[str] = field(default_factory=list)

    def spec(self) -> GuestSpec:
        uid = f"mig-{uuid.uuid4().hex[:10]}"
        self.uids.append(uid)
        return GuestSpec(
            uid=uid,
            name=f"projects/contract/zones/zone-1/instances/{uid}",
            hostname="migrant",
            vcpus=1,
            memory_mib=128,
            disk_gib=1,
            image_path=self.image,
            ssh_authorized_keys=KEYS,
            user_data=b"#!/bin/sh\necho migrant\n",
        )

    def console(self, host: int, uid: str) -> bytes:
        driver, out = self.drivers[host], b""
        while chunk := driver.read_console(uid, len(out)):
            out += chunk
        return out

    def last_tick(self, host: int, uid: str) -> int:
        ticks = TICK.findall(self.console(host, uid))
        return int(ticks[-1]) if ticks else -1

    def running_guest(self, host: int = 0) -> GuestSpec:
        """A guest spawned on host `host`, booted (and ticking, for real guests)."""
        spec = self.spec()
        self.drivers[host].spawn(spec)
        deadline = time.monotonic() + self.boot_timeout
        while not BOOT.search(self.console(host, spec.uid)) or (
            self.ticks and self.last_tick(host, spec.uid) < 1
        ):
            assert time.monotonic() < deadline, self.console(host, spec.uid)[-400:]
            time.sleep(0.2)
        return spec

    def wait_tick_after(self, host: int, uid: str, tick: int, timeout: float = 15.0) -> int:
        """Waits until host's console shows a tick greater than `tick`; returns it."""
        deadline = time.monotonic() + timeout
        while (last := self.last_tick(host, uid)) <= tick:
            assert time.monotonic() < deadline, f"no tick after {tick} on host {host}"
            time.sleep(0.2)
        return last


def _fake_pair(request: pytest.FixtureRequest, workdir: Path) -> Pair:
    image = workdir / "image.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "16M"], check=True)
    # Each migration: 10 samples 0.05 s apart (long enough to act on, or to time out).
    drivers = tuple(FakeDriver(migration_steps=10, migration_step_seconds=0.05) for _ in "ab")

    def kill(host: int) -> None:
        drivers[host].set_available(False)

    def revive(host: int) -> None:
        drivers[host].set_available(True)

    def leftovers(host: int, uid: str) -> list[str]:
        driver = drivers[host]
        return [f"guest {uid}" for g in driver.list_guests() if g == uid] + [
            f"incoming {u}" for u in driver.incoming() if u == uid
        ]

    return Pair("fake", (drivers[0], drivers[1]), image, 1.0, False, kill, revive, leftovers)


def _libvirt_pair(request: pytest.FixtureRequest, workdir: Path) -> Pair:
    cluster: HostCluster = request.getfixturevalue("libvirt_hosts")
    image: Path = request.getfixturevalue("guest_image")
    hosts = cluster.hosts[:2]
    drivers = tuple(
        LibvirtDriver(
            uri=h.uri,
            instances_dir=h.instances_dir,
            migration_uri=h.migration_uri,
        )
        for h in hosts
    )

    def kill(host: int) -> None:
        hosts[host].daemon.kill()

    def revive(host: int) -> None:
        hosts[host].daemon.start()
        drivers[host].close()  # its connection died with the daemon

    def leftovers(host: int, uid: str) -> list[str]:
        found = [str(p) for p in [hosts[host].instances_dir / uid] if p.exists()]
        conn = hosts[host].daemon.open()
        try:
            found += [d.name() for d in conn.listAllDomains() if d.name() == f"kumo-{uid}"]
        finally:
            conn.close()
        return found

    def disk(host: int, uid: str) -> Path:
        return hosts[host].instances_dir / uid / "disk.qcow2"

    return Pair(
        "libvirt", (drivers[0], drivers[1]), image, 60.0, True, kill, revive, leftovers, disk
    )


PAIRS: dict[str, Callable[[pytest.FixtureRequest, Path], Pair]] = {
    "fake": _fake_pair,
    "libvirt": _libvirt_pair,
}


@pytest.fixture(scope="module", params=sorted(PAIRS))
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    p = PAIRS[request.param](request, tmp_path_factory.mktemp(f"migration-{request.param}"))
    try:
        yield p
    finally:
        for uid in p.uids:
            for driver in p.drivers:
                with contextlib.suppress(DriverError):
                    driver.destroy(uid)
        for driver in p.drivers:
            driver.close()


# ---- values --------------------------------------------------------------------------------------


def test_target_round_trips_as_a_dict() -> None:
    target = MigrationTarget(uid="u", uri="qemu+tcp://h/system", properties={"a": "b"})
    assert MigrationTarget.from_dict(target.to_dict()) == target
    with pytest.raises(ValueError):
        MigrationTarget.from_dict({"uri": "x"})


@pytest.mark.parametrize(
    "changes",
    [
        {"max_downtime_ms": 0},
        {"bandwidth_mibps": -1},
        {"bandwidth_mibps": True},
        {"timeout_seconds": 0},
    ],
)
def test_options_out_of_range(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        MigrationOptions(**changes)  # type: ignore[arg-type]


# ---- contract ------------------------------------------------------------------------------------


def test_hosts_advertise_migration_uris(pair: Pair) -> None:
    uris = [d.host_info().migration_uri for d in pair.drivers]
    assert all(uris) and uris[0] != uris[1]


def test_prepare_incoming_is_idempotent_and_cleaned_up(pair: Pair) -> None:
    spec = pair.spec()
    dest = pair.drivers[1]
    target = dest.prepare_incoming(spec)
    assert target.uid == spec.uid and target.uri == dest.host_info().migration_uri
    assert not target.shared_storage
    assert dest.prepare_incoming(spec) == target
    assert dest.state(spec.uid) == GuestState.ABSENT  # nothing defined, nothing running
    assert spec.uid not in dest.list_guests()
    dest.cleanup_incoming(spec.uid)
    dest.cleanup_incoming(spec.uid)  # idempotent
    assert pair.leftovers(1, spec.uid) == []


def test_migration_errors(pair: Pair) -> None:
    source, dest = pair.drivers
    spec = pair.spec()
    target = dest.prepare_incoming(spec)
    with pytest.raises(GuestNotFound):
        source.migrate_live(spec.uid, target)
    with pytest.raises(GuestNotFound):
        source.abort_migration(spec.uid)
    source.spawn(spec)
    source.stop(spec.uid, timeout_seconds=0)
    with pytest.raises(InvalidGuestState):
        source.migrate_live(spec.uid, target)
    with pytest.raises(GuestAlreadyExists):
        source.prepare_incoming(spec)  # defined there already
    source.abort_migration(spec.uid)  # no migration running: no-op
    dest.cleanup_incoming(spec.uid)
    source.destroy(spec.uid)
    assert pair.leftovers(0, spec.uid) == [] and pair.leftovers(1, spec.uid) == []


def test_live_migration_there_and_back(pair: Pair) -> None:
    spec = pair.running_guest(0)
    uid = spec.uid
    source, dest = pair.drivers
    before = pair.last_tick(0, uid)
    samples: list[MigrationProgress] = []
    result = source.migrate_live(
        uid, dest.prepare_incoming(spec), MigrationOptions(max_downtime_ms=100), samples.append
    )
    assert result.total_ms > 0
    assert result.downtime_ms is not None and result.downtime_ms >= 0
    assert source.state(uid) == GuestState.ABSENT and uid not in source.list_guests()
    assert pair.leftovers(0, uid) == []  # no domain, no files on the source
    assert dest.list_guests().get(uid) == GuestState.RUNNING
    assert all(s.memory_total_bytes >= s.memory_processed_bytes >= 0 for s in samples)
    if pair.ticks:
        after = pair.wait_tick_after(1, uid, before)
        assert after > before  # the counter goes on where it was: the guest did not restart
        assert not BOOT.search(pair.console(1, uid)), "the guest booted again on the destination"
    with pytest.raises(InvalidGuestState):
        dest.cleanup_incoming(uid)  # it arrived: only destroy removes it

    # ... and back, to a host that had it before, with the other options (the hypervisor
    # accepts them; this idle guest converges before post-copy would start).
    before = pair.last_tick(1, uid)
    options = MigrationOptions(auto_converge=True, post_copy=True, bandwidth_mibps=512)
    dest.migrate_live(uid, source.prepare_incoming(spec), options)
    assert source.list_guests().get(uid) == GuestState.RUNNING
    assert pair.leftovers(1, uid) == []
    if pair.ticks:
        assert pair.wait_tick_after(0, uid, before) > before
    source.destroy(uid)
    assert pair.leftovers(0, uid) == []


def _qemu_io(disk: Path, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["qemu-io", "-f", "qcow2", "-c", command, str(disk)], capture_output=True, text=True
    )


def test_cold_migration_there_and_back(pair: Pair) -> None:
    """A stopped guest moves with its disk; it arrives paused before its first instruction:
    resume boots it there, stop powers it off at once."""
    spec = pair.running_guest(0)
    uid = spec.uid
    source, dest = pair.drivers
    with pytest.raises(InvalidGuestState):
        source.migrate_cold(uid, dest.prepare_incoming(spec))  # running: stop it first
    source.stop(uid, timeout_seconds=0)
    if pair.disk is not None:  # a mark written past the image's data must travel with the disk
        assert _qemu_io(pair.disk(0, uid), "write -P 0x5a 1000M 64k").returncode == 0
    samples: list[MigrationProgress] = []
    result = source.migrate_cold(uid, dest.prepare_incoming(spec), None, samples.append)
    assert result.total_ms > 0
    assert source.state(uid) == GuestState.ABSENT and pair.leftovers(0, uid) == []
    assert dest.state(uid) == GuestState.PAUSED
    with pytest.raises(InvalidGuestState):
        dest.cleanup_incoming(uid)  # it arrived: only destroy removes it
    booted_before = len(BOOT.findall(pair.console(1, uid)))
    dest.resume(uid)  # its first instruction: a boot
    deadline = time.monotonic() + pair.boot_timeout
    while len(BOOT.findall(pair.console(1, uid))) <= booted_before:
        assert time.monotonic() < deadline, pair.console(1, uid)[-400:]
        time.sleep(0.2)
    dest.stop(uid, timeout_seconds=0)
    if pair.disk is not None:
        check = _qemu_io(pair.disk(1, uid), "read -P 0x5a 1000M 64k")
        assert check.returncode == 0 and "Pattern verification failed" not in check.stdout

    dest.migrate_cold(uid, source.prepare_incoming(spec))
    assert source.state(uid) == GuestState.PAUSED and pair.leftovers(1, uid) == []
    source.stop(uid, timeout_seconds=30)  # a guest that never ran powers off at once
    assert source.state(uid) == GuestState.SHUTOFF
    source.destroy(uid)
    assert pair.leftovers(0, uid) == []


def test_failed_cold_migration_leaves_the_guest_off(pair: Pair) -> None:
    spec = pair.spec()
    uid = spec.uid
    source, dest = pair.drivers
    source.spawn(spec)
    source.stop(uid, timeout_seconds=0)
    target = dest.prepare_incoming(spec)
    pair.kill(1)
    try:
        with pytest.raises(MigrationFailed):
            source.migrate_cold(uid, target, MigrationOptions(timeout_seconds=30))
    finally:
        pair.revive(1)
    assert source.state(uid) == GuestState.SHUTOFF
    dest.cleanup_incoming(uid)
    assert pair.leftovers(1, uid) == []
    source.destroy(uid)


def test_destination_dies_mid_migration(pair: Pair) -> None:
    spec = pair.running_guest(0)
    uid = spec.uid
    source, dest = pair.drivers
    target = dest.prepare_incoming(spec)
    killed: list[MigrationProgress] = []

    def kill_destination(progress: MigrationProgress) -> None:
        if not killed:
            killed.append(progress)
            pair.kill(1)

    try:
        with pytest.raises(MigrationFailed) as failure:
            source.migrate_live(uid, target, SLOW, kill_destination)
    finally:
        pair.revive(1)
    assert killed, "the migration ended before the destination could be killed"
    assert not isinstance(failure.value, MigrationCancelled)
    assert failure.value.fields["reason"]
    print("destination death:", failure.value)
    assert source.state(uid) == GuestState.RUNNING
    if pair.ticks:
        before = pair.last_tick(0, uid)
        assert pair.wait_tick_after(0, uid, before) > before  # still running on the source
    dest.cleanup_incoming(uid)
    assert pair.leftovers(1, uid) == []
    source.destroy(uid)


def test_abort_migration(pair: Pair) -> None:
    spec = pair.running_guest(0)
    uid = spec.uid
    source, dest = pair.drivers
    target = dest.prepare_incoming(spec)
    seen: list[MigrationProgress] = []

    def abort(progress: MigrationProgress) -> None:
        if progress.memory_total_bytes:  # past the set-up (and the disk copy): memory moves
            seen.append(progress)
            source.abort_migration(uid)

    with pytest.raises(MigrationCancelled):
        source.migrate_live(uid, target, SLOW, abort)
    assert seen and seen[0].memory_total_bytes >= spec.memory_mib * 2**20
    assert 0 < seen[0].memory_remaining_bytes <= seen[0].memory_total_bytes
    assert source.state(uid) == GuestState.RUNNING
    source.abort_migration(uid)  # nothing running now: no-op
    dest.cleanup_incoming(uid)
    assert pair.leftovers(1, uid) == []
    assert dest.state(uid) == GuestState.ABSENT
    source.destroy(uid)


def test_failing_progress_callback_cancels(pair: Pair) -> None:
    spec = pair.running_guest(0)
    uid = spec.uid
    source, dest = pair.drivers
    target = dest.prepare_incoming(spec)

    def fail(progress: MigrationProgress) -> None:
        raise RuntimeError("the operation store is gone")

    with pytest.raises(MigrationFailed, match="operation store is gone"):
        source.migrate_live(uid, target, SLOW, fail)
    assert source.state(uid) == GuestState.RUNNING
    dest.cleanup_incoming(uid)
    assert pair.leftovers(1, uid) == []
    source.destroy(uid)


def test_migration_timeout(pair: Pair) -> None:
    spec = pair.running_guest(0)
    uid = spec.uid
    source, dest = pair.drivers
    target = dest.prepare_incoming(spec)
    with pytest.raises(MigrationFailed, match="timed out"):
        source.migrate_live(uid, target, MigrationOptions(bandwidth_mibps=1, timeout_seconds=0.3))
    assert source.state(uid) == GuestState.RUNNING
    dest.cleanup_incoming(uid)
    assert pair.leftovers(1, uid) == []
    source.destroy(uid)


def test_libvirt_shared_storage_moves_memory_only(
    libvirt_hosts: HostCluster, guest_image: Path, tmp_path: Path
) -> None:
    """Two hosts that see one instances_dir (shared storage): the destination finds the
    guest's disk in place, makes nothing, and the disk is neither copied nor removed."""
    hosts = libvirt_hosts.hosts[:2]
    source, dest = (
        LibvirtDriver(uri=h.uri, instances_dir=tmp_path, migration_uri=h.migration_uri)
        for h in hosts
    )
    pair = Pair("shared", (source, dest), guest_image, 60.0, True, _no_kill, _no_kill, _none)
    spec = pair.running_guest(0)
    disk = tmp_path / spec.uid / "disk.qcow2"
    inode = disk.stat().st_ino
    try:
        target = dest.prepare_incoming(spec)
        assert target.shared_storage
        before = pair.last_tick(0, spec.uid)
        source.migrate_live(spec.uid, target, MigrationOptions(max_downtime_ms=50))
        assert disk.stat().st_ino == inode  # the same file, in use on the destination
        assert source.state(spec.uid) == GuestState.ABSENT
        assert pair.wait_tick_after(1, spec.uid, before) > before
        with pytest.raises(InvalidGuestState):
            dest.cleanup_incoming(spec.uid)
    finally:
        for driver in (source, dest):
            with contextlib.suppress(DriverError):
                driver.destroy(spec.uid)
            driver.close()
    assert not disk.exists()


def _no_kill(host: int) -> None:
    raise AssertionError("not used")


def _none(host: int, uid: str) -> list[str]:
    return []


def test_libvirt_stale_directory_is_not_shared_storage(
    libvirt_hosts: HostCluster, guest_image: Path, tmp_path: Path
) -> None:
    """A destination directory left with the guest's name (not the source's storage) looks
    like shared storage to `prepare_incoming`; the source sees no token and refuses, so the
    guest never runs on a stale disk."""
    hosts = libvirt_hosts.hosts[:2]
    source, dest = (
        LibvirtDriver(uri=h.uri, instances_dir=tmp_path / h.name, migration_uri=h.migration_uri)
        for h in hosts
    )
    pair = Pair("stale", (source, dest), guest_image, 60.0, True, _no_kill, _no_kill, _none)
    spec = pair.spec()
    stale = tmp_path / hosts[1].name / spec.uid
    stale.mkdir(parents=True)
    (stale / "disk.qcow2").write_bytes(b"stale")
    try:
        source.spawn(spec)
        target = dest.prepare_incoming(spec)
        assert target.shared_storage
        with pytest.raises(MigrationFailed, match="not shared"):
            source.migrate_live(spec.uid, target)
        assert source.state(spec.uid) == GuestState.RUNNING
        dest.cleanup_incoming(spec.uid)
        assert (stale / "disk.qcow2").read_bytes() == b"stale"  # not the driver's to remove
    finally:
        for driver in (source, dest):
            with contextlib.suppress(DriverError):
                driver.destroy(spec.uid)
            driver.close()
