"""The compute driver contract, run over every driver registered in `kumo.drivers.compute`.

Each registered driver gets a `Harness` from `HARNESSES` (how to configure it here, and how
long its guests take to boot); a registered driver without one, or one that leaves a
ComputeDriver method unimplemented, fails the suite: nothing is skipped for being missing.
The fake runs in memory; the libvirt driver runs against a real libvirtd (the session's
`libvirtd` fixture) with real QEMU guests booting the tiny image (`guest_image`), which
prints `KUMO_BOOT_OK`, `hostname=` and `ssh_keys=` on its serial console at every boot.

Guests boot in about 8 s under TCG, so the lifecycle is one test that walks one guest through
every state in turn, and the other tests boot nothing.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from kumo.drivers.compute.base import (
    ROOT_DISK_SERIAL,
    ComputeDriver,
    GuestNic,
    GuestSpec,
    GuestState,
    HostInfo,
)
from kumo.drivers.compute.fake import FakeDriver
from kumo.drivers.compute.libvirtd import LibvirtDaemon
from kumo.drivers.compute.loader import (
    compute_driver_class,
    compute_driver_entry_points,
    load_compute_driver,
)
from kumo.drivers.errors import (
    DriverError,
    GuestAlreadyExists,
    GuestNotFound,
    HypervisorUnavailable,
    ImageError,
    InvalidGuestState,
)
from kumo.drivers.storage.base import DiskSource, VolumeDisk

REGISTERED = sorted(compute_driver_entry_points())
KEYS = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIContractSuiteKeyNumberOne000000000000000 one@kumo",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIContractSuiteKeyNumberTwo000000000000000 two@kumo",
)
BOOT = re.compile(rb"KUMO_BOOT_OK\r?\nhostname=(\S+)\r?\nssh_keys=(\d+)\r?\n")


def qemu_img_info(path: Path) -> dict[str, Any]:
    """`qemu-img info` of a file (fails the test if qemu-img cannot read it)."""
    result = subprocess.run(
        ["qemu-img", "info", "-U", "--output=json", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    info: dict[str, Any] = json.loads(result.stdout)
    return info


@dataclass
class Harness:
    """One driver under test and what the suite needs to know to drive it."""

    name: str
    driver: ComputeDriver
    image: Path  # a bootable standalone qcow2
    workdir: Path
    boot_timeout: float  # seconds a boot may take to reach the console
    shutdown_timeout: float  # ACPI wait for stop and soft reboot (the tiny guest ignores ACPI)
    crash: Callable[[str], None]  # makes a guest die on its own
    leftovers: Callable[[str], list[str]]  # what is left on the host of a removed guest
    uids: list[str] = field(default_factory=list)

    def spec(self, **changes: Any) -> GuestSpec:
        """A fresh guest spec (its uid is remembered, to remove it after the tests)."""
        uid = changes.pop("uid", None) or f"ct-{uuid.uuid4().hex[:12]}"
        self.uids.append(uid)
        spec = GuestSpec(
            uid=uid,
            name=f"projects/contract/zones/zone-1/instances/{uid}",
            hostname="alpha-guest",
            vcpus=1,
            memory_mib=128,
            disk_gib=1,
            image_path=self.image,
            image_format="qcow2",
            ssh_authorized_keys=KEYS,
            user_data=b"#!/bin/sh\necho contract\n",
        )
        return replace(spec, **changes)

    def console(self, uid: str) -> bytes:
        """The whole console stream, read in chunks as the agent reads it."""
        out = b""
        while chunk := self.driver.read_console(uid, len(out)):
            out += chunk
        return out

    def wait_boots(self, uid: str, count: int, since: int = 0) -> list[tuple[str, int]]:
        """Waits until the console (from byte `since`) shows `count` complete boots; returns
        each boot's (hostname, ssh key count)."""
        deadline = time.monotonic() + self.boot_timeout * count
        while True:
            boots = [(h.decode(), int(n)) for h, n in BOOT.findall(self.console(uid)[since:])]
            if len(boots) >= count:
                return boots
            if time.monotonic() > deadline:
                tail = self.console(uid)[-600:].decode(errors="replace")
                pytest.fail(f"{count} boot(s) not seen after {since}, console ends:\n{tail}")
            time.sleep(0.2)

    def wait_state(self, uid: str, state: GuestState, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.driver.state(uid) != state:
            assert time.monotonic() < deadline, f"{uid} is {self.driver.state(uid)}, not {state}"
            time.sleep(0.1)


def _no_leftovers(uid: str) -> list[str]:
    return []


def _harness_fake(request: pytest.FixtureRequest, workdir: Path) -> Harness:
    image = workdir / "image.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "16M"], check=True)
    driver = load_compute_driver("fake", vcpus=8, memory_mib=16384, disk_gib=100)
    assert isinstance(driver, FakeDriver)
    return Harness(
        name="fake",
        driver=driver,
        image=image,
        workdir=workdir,
        boot_timeout=1.0,
        shutdown_timeout=0.0,
        crash=driver.crash,
        leftovers=_no_leftovers,
    )


def _harness_libvirt(request: pytest.FixtureRequest, workdir: Path) -> Harness:
    daemon: LibvirtDaemon = request.getfixturevalue("libvirtd")
    image: Path = request.getfixturevalue("guest_image")
    instances = workdir / "instances"
    driver = load_compute_driver("libvirt", uri=daemon.uri, instances_dir=instances)

    def crash(uid: str) -> None:  # QEMU dies: SIGKILL by the pid libvirtd recorded
        pid = int((daemon.dir / "run" / "qemu" / f"kumo-{uid}.pid").read_text())
        os.kill(pid, signal.SIGKILL)

    def leftovers(uid: str) -> list[str]:
        found = [str(p) for p in [instances / uid] if p.exists()]
        conn = daemon.open()
        try:
            found += [d.name() for d in conn.listAllDomains() if d.name() == f"kumo-{uid}"]
        finally:
            conn.close()
        return found

    return Harness(
        name="libvirt",
        driver=driver,
        image=image,
        workdir=workdir,
        boot_timeout=60.0,
        shutdown_timeout=1.0,
        crash=crash,
        leftovers=leftovers,
    )


HARNESSES: dict[str, Callable[[pytest.FixtureRequest, Path], Harness]] = {
    "fake": _harness_fake,
    "libvirt": _harness_libvirt,
}


@pytest.fixture(scope="module", params=REGISTERED)
def harness(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Harness]:
    """Each registered driver in turn, configured for this machine."""
    name: str = request.param
    make = HARNESSES.get(name)
    if make is None:
        pytest.fail(f"compute driver {name!r} is registered but the contract suite cannot run it")
    h = make(request, tmp_path_factory.mktemp(f"compute-{name}"))
    try:
        yield h
    finally:
        for uid in h.uids:
            with contextlib.suppress(DriverError):
                h.driver.destroy(uid)
        h.driver.close()


# ---- registration -------------------------------------------------------------------------------


def test_in_tree_drivers_are_registered() -> None:
    assert {"fake", "libvirt"} <= set(REGISTERED)


@pytest.mark.parametrize("name", REGISTERED)
def test_implements_every_method(name: str) -> None:
    cls = compute_driver_class(name)
    assert name in HARNESSES, f"{name}: no harness in the contract suite"
    assert not getattr(cls, "__abstractmethods__", frozenset()), cls.__abstractmethods__
    for method in sorted(ComputeDriver.__abstractmethods__):
        impl = getattr(cls, method)
        assert impl is not getattr(ComputeDriver, method), f"{name}.{method} is inherited"
        assert "NotImplementedError" not in inspect.getsource(impl), f"{name}.{method} is a stub"


def test_unknown_driver_name() -> None:
    with pytest.raises(LookupError, match=r"registered: .*fake"):
        load_compute_driver("no-such-driver")


# ---- contract -----------------------------------------------------------------------------------


def test_validate_and_host_info(harness: Harness) -> None:
    harness.driver.validate()
    info = harness.driver.host_info()
    assert isinstance(info, HostInfo)
    assert info.vcpus >= 1 and info.memory_mib >= 128 and info.disk_gib >= 1
    assert info.description


def test_unknown_guest(harness: Harness) -> None:
    d = harness.driver
    spec = harness.spec()
    for uid in (spec.uid, "../../etc", "", "kumo-x/y"):
        assert d.state(uid) == GuestState.ABSENT
        assert uid not in d.list_guests()
        d.destroy(uid)  # idempotent: nothing to do
        calls: list[tuple[str, tuple[Any, ...]]] = [
            ("start", ()),
            ("stop", (0,)),
            ("reboot", (False,)),
            ("reboot", (True,)),
            ("suspend", ()),
            ("resume", ()),
            ("read_console", (0,)),
            ("snapshot", (harness.workdir / "never.qcow2",)),
        ]
        if uid == spec.uid:
            calls.append(("rebuild", (spec,)))
        for method, args in calls:
            with pytest.raises(GuestNotFound):
                getattr(d, method)(uid, *args)
    assert not (harness.workdir / "never.qcow2").exists()


def test_spawn_with_bad_image_leaves_nothing(harness: Harness) -> None:
    d = harness.driver
    raw_declared = harness.spec(image_format="raw")  # the file is qcow2
    bad = [
        harness.spec(image_path=harness.workdir / "missing.qcow2"),
        harness.spec(image_path=Path("relative/image.qcow2")),
        raw_declared,
    ]
    for spec in bad:
        with pytest.raises(ImageError):
            d.spawn(spec)
        assert d.state(spec.uid) == GuestState.ABSENT
        assert spec.uid not in d.list_guests()
        assert harness.leftovers(spec.uid) == []
        with pytest.raises(GuestNotFound):
            d.read_console(spec.uid)


def test_spawn_with_a_root_volume_boots_from_it(harness: Harness) -> None:
    """Boot from volume: with `root_volume` (here a local qcow2 copy of the image) and an
    image that cannot boot, or no image at all (what the agent gives), the guest boots,
    from the volume, which it lists by serial; destroying the guest leaves the volume in
    place. A spec with neither is a ValueError."""
    d = harness.driver
    blank = harness.workdir / "blank.qcow2"
    if not blank.exists():
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(blank), "16M"], check=True)
    volume = harness.workdir / f"root-{uuid.uuid4().hex[:8]}.qcow2"
    subprocess.run(
        ["qemu-img", "convert", "-O", "qcow2", str(harness.image), str(volume)], check=True
    )
    root = VolumeDisk(
        serial="bootvolume0123456789", source=DiskSource("file", str(volume), "qcow2")
    )
    spec = harness.spec(image_path=blank, root_volume=root)
    d.spawn(spec)
    d.spawn(spec)  # idempotent
    assert harness.wait_boots(spec.uid, 1)[0][0] == "alpha-guest"
    assert root.serial in d.attached_volumes(spec.uid)
    d.destroy(spec.uid)
    assert harness.leftovers(spec.uid) == []
    assert volume.exists()
    spec = harness.spec(image_path=None, root_volume=root)
    d.spawn(spec)
    assert harness.wait_boots(spec.uid, 1)[0][0] == "alpha-guest"
    d.destroy(spec.uid)
    assert harness.leftovers(spec.uid) == [] and volume.exists()
    with pytest.raises(ValueError, match="image_path"):
        harness.spec(image_path=None)


def test_a_root_disk_made_elsewhere_is_the_root_not_a_volume(harness: Harness) -> None:
    """A root disk the control plane made (`root_volume` with ROOT_DISK_SERIAL, a clone in
    Ceph in production, a local copy of the image here): the guest boots from it, it is not
    listed as a volume (the agent never unplugs it), and it can grow by its serial. No
    image is needed (the agent fetches none): the guest is resized and rebuilt (onto a new
    root disk, which the control plane made) without one."""
    d = harness.driver
    disk = harness.workdir / f"root-{uuid.uuid4().hex[:8]}.qcow2"
    subprocess.run(
        ["qemu-img", "convert", "-O", "qcow2", str(harness.image), str(disk)], check=True
    )
    root = VolumeDisk(serial=ROOT_DISK_SERIAL, source=DiskSource("file", str(disk), "qcow2"))
    spec = harness.spec(image_path=None, root_volume=root)
    d.spawn(spec)
    assert harness.wait_boots(spec.uid, 1)[0][0] == "alpha-guest"
    assert ROOT_DISK_SERIAL not in d.attached_volumes(spec.uid)
    d.resize_volume(spec.uid, ROOT_DISK_SERIAL, 2 << 30)
    d.stop(spec.uid, 0)
    d.resize(spec.uid, replace(spec, memory_mib=160, disk_gib=2))
    assert d.state(spec.uid) == GuestState.SHUTOFF
    d.start(spec.uid)
    assert len(harness.wait_boots(spec.uid, 2)) == 2
    fresh = harness.workdir / f"root-{uuid.uuid4().hex[:8]}.qcow2"
    subprocess.run(
        ["qemu-img", "convert", "-O", "qcow2", str(harness.image), str(fresh)], check=True
    )
    moved = VolumeDisk(serial=ROOT_DISK_SERIAL, source=DiskSource("file", str(fresh), "qcow2"))
    d.rebuild(spec.uid, replace(spec, hostname="beta-guest", root_volume=moved))
    assert harness.wait_boots(spec.uid, 3)[-1][0] == "beta-guest"
    d.destroy(spec.uid)
    assert harness.leftovers(spec.uid) == []
    assert disk.exists()


def test_raw_image_and_snapshot_content(harness: Harness) -> None:
    """A raw image boots as the backing file of a qcow2 root disk, and a snapshot taken at
    once holds the image's content (the tiny guest never writes its disk)."""
    d = harness.driver
    raw = harness.workdir / "image.raw"
    if not raw.exists():
        subprocess.run(
            ["qemu-img", "convert", "-O", "raw", str(harness.image), str(raw)], check=True
        )
    spec = harness.spec(image_path=raw, image_format="raw")
    d.spawn(spec)
    dest = harness.workdir / f"{spec.uid}.qcow2"
    d.snapshot(spec.uid, dest)
    info = qemu_img_info(dest)
    assert info["format"] == "qcow2" and "backing-filename" not in info
    compare = subprocess.run(["qemu-img", "compare", str(raw), str(dest)], capture_output=True)
    assert compare.returncode == 0, compare.stdout + compare.stderr
    d.destroy(spec.uid)
    assert harness.leftovers(spec.uid) == []


def test_lifecycle(harness: Harness) -> None:
    """One guest through every state, checked on its console; then a guest booted from its
    snapshot."""
    d = harness.driver
    spec = harness.spec()
    uid = spec.uid

    # spawn: running, and the guest got its hostname and keys
    d.spawn(spec)
    assert d.state(uid) == GuestState.RUNNING
    assert harness.wait_boots(uid, 1) == [("alpha-guest", 2)]
    assert d.list_guests().get(uid) == GuestState.RUNNING

    # spawn again: the same spec is a no-op, another spec under the uid is refused
    d.spawn(spec)
    assert d.state(uid) == GuestState.RUNNING
    assert len(harness.wait_boots(uid, 1)) == 1
    with pytest.raises(GuestAlreadyExists):
        d.spawn(replace(spec, vcpus=2))

    # the console reads by offset
    out = harness.console(uid)
    assert d.read_console(uid, 5, max_bytes=3) == out[5:8]
    assert d.read_console(uid, len(out) + 1_000_000) == b""
    with pytest.raises(ValueError):
        d.read_console(uid, -1)

    # suspend and resume, each idempotent
    d.suspend(uid)
    assert d.state(uid) == GuestState.PAUSED
    d.suspend(uid)
    assert d.list_guests()[uid] == GuestState.PAUSED
    with pytest.raises(InvalidGuestState):
        d.start(uid)
    with pytest.raises(InvalidGuestState):
        d.reboot(uid, hard=False)
    d.resume(uid)
    assert d.state(uid) == GuestState.RUNNING
    d.resume(uid)
    d.start(uid)  # running already: no-op
    assert d.state(uid) == GuestState.RUNNING

    # soft reboot (the tiny guest ignores ACPI: the driver falls back to hard), then hard
    d.reboot(uid, hard=False, timeout_seconds=harness.shutdown_timeout)
    assert d.state(uid) == GuestState.RUNNING
    assert len(harness.wait_boots(uid, 2)) == 2
    d.reboot(uid, hard=True)
    assert d.state(uid) == GuestState.RUNNING
    assert len(harness.wait_boots(uid, 3)) == 3

    # snapshot of the running guest: a standalone qcow2; the guest keeps running
    snap = harness.workdir / f"{uid}-snap.qcow2"
    d.snapshot(uid, snap)
    info = qemu_img_info(snap)
    assert info["format"] == "qcow2" and "backing-filename" not in info
    assert d.state(uid) == GuestState.RUNNING
    with pytest.raises(ImageError):
        d.snapshot(uid, harness.workdir / "no-such-dir" / "snap.qcow2")

    # the guest dies on its own: CRASHED; stop is a no-op, start runs it again
    harness.crash(uid)
    harness.wait_state(uid, GuestState.CRASHED)
    assert d.list_guests()[uid] == GuestState.CRASHED
    d.stop(uid, 0)
    assert d.state(uid) == GuestState.CRASHED
    with pytest.raises(InvalidGuestState):
        d.suspend(uid)
    d.start(uid)
    assert d.state(uid) == GuestState.RUNNING

    # stop: shut off, idempotent; nothing but start or a hard reboot runs it
    d.stop(uid, timeout_seconds=harness.shutdown_timeout)
    assert d.state(uid) == GuestState.SHUTOFF
    d.stop(uid)
    assert d.list_guests()[uid] == GuestState.SHUTOFF
    for call in (d.suspend, d.resume, lambda u: d.reboot(u, hard=False)):
        with pytest.raises(InvalidGuestState):
            call(uid)
    assert d.state(uid) == GuestState.SHUTOFF
    d.snapshot(uid, harness.workdir / f"{uid}-off.qcow2")  # also while shut off
    assert qemu_img_info(harness.workdir / f"{uid}-off.qcow2")["format"] == "qcow2"
    d.reboot(uid, hard=True)  # a hard reboot starts a shut-off guest
    assert d.state(uid) == GuestState.RUNNING
    d.stop(uid, 0)
    d.start(uid)
    assert d.state(uid) == GuestState.RUNNING

    # rebuild: a bad image or a foreign spec changes nothing
    with pytest.raises(ImageError):
        d.rebuild(uid, replace(spec, image_path=harness.workdir / "missing.qcow2"))
    with pytest.raises(ValueError):
        d.rebuild(uid, harness.spec())
    assert d.state(uid) == GuestState.RUNNING

    # rebuild: fresh disk, new metadata, boots again with it
    rebuilt = replace(spec, hostname="beta-guest", ssh_authorized_keys=KEYS[:1])
    mark = len(harness.console(uid))
    d.rebuild(uid, rebuilt)
    assert d.state(uid) == GuestState.RUNNING
    assert ("beta-guest", 1) in harness.wait_boots(uid, 1, since=mark)
    d.spawn(rebuilt)  # the guest now has the rebuilt spec
    with pytest.raises(GuestAlreadyExists):
        d.spawn(spec)

    # destroy: gone with its files; again is fine
    d.destroy(uid)
    assert d.state(uid) == GuestState.ABSENT
    assert uid not in d.list_guests()
    assert harness.leftovers(uid) == []
    d.destroy(uid)
    with pytest.raises(GuestNotFound):
        d.read_console(uid)

    # the snapshot boots
    second = harness.spec(hostname="gamma-guest", image_path=snap, ssh_authorized_keys=())
    d.spawn(second)
    assert harness.wait_boots(second.uid, 1) == [("gamma-guest", 0)]
    d.destroy(second.uid)
    assert harness.leftovers(second.uid) == []


def test_rebuild_keeps_shut_off_guest_off(harness: Harness) -> None:
    d = harness.driver
    spec = harness.spec()
    d.spawn(spec)
    d.stop(spec.uid, 0)
    d.rebuild(spec.uid, replace(spec, hostname="delta-guest"))
    assert d.state(spec.uid) == GuestState.SHUTOFF
    d.destroy(spec.uid)


def test_resize_needs_a_shut_off_guest_and_keeps_it(harness: Harness) -> None:
    d = harness.driver
    spec = harness.spec()
    bigger = replace(spec, vcpus=spec.vcpus + 1, memory_mib=spec.memory_mib + 64)
    bigger = replace(bigger, disk_gib=spec.disk_gib + 1)
    with pytest.raises(GuestNotFound):
        d.resize(spec.uid, bigger)
    d.spawn(spec)
    harness.wait_boots(spec.uid, 1)
    with pytest.raises(InvalidGuestState):
        d.resize(spec.uid, bigger)
    with pytest.raises(ValueError):
        d.resize(spec.uid, replace(bigger, uid="someone-else"))
    d.stop(spec.uid, harness.shutdown_timeout)
    d.resize(spec.uid, bigger)
    d.resize(spec.uid, bigger)  # idempotent
    assert d.state(spec.uid) == GuestState.SHUTOFF
    d.start(spec.uid)
    harness.wait_boots(spec.uid, 2)
    assert d.state(spec.uid) == GuestState.RUNNING
    d.stop(spec.uid, harness.shutdown_timeout)
    d.resize(spec.uid, spec)  # back (a revert shrinks the disk again)
    d.destroy(spec.uid)


@contextlib.contextmanager
def _taps(harness: Harness, count: int) -> Iterator[list[str]]:
    """`count` tap names; for libvirt, persistent taps made here (QEMU opens them by name,
    as the agent's taps) and removed after."""
    names = [f"ct{uuid.uuid4().hex[:8]}{i}" for i in range(count)]
    made: list[str] = []
    try:
        if harness.name == "libvirt":
            for name in names:
                subprocess.run(["ip", "tuntap", "add", "dev", name, "mode", "tap"], check=True)
                made.append(name)
        yield names
    finally:
        for name in made:
            subprocess.run(["ip", "link", "del", "dev", name], check=False)


def test_nics_attach_and_detach(harness: Harness) -> None:
    """A running guest gets and loses NICs at once; a shut-off one in its definition, which
    it has when started; paused guests and unknown ones are refused."""
    d = harness.driver
    with _taps(harness, 3) as taps:
        first, second, third = (
            GuestNic(tap, f"02:4b:00:00:{index:02x}:01") for index, tap in enumerate(taps)
        )
        spec = harness.spec(nics=(first,))
        for call in (
            lambda: d.attached_nics(spec.uid),
            lambda: d.attach_nic(spec.uid, second),
            lambda: d.detach_nic(spec.uid, first.mac_address),
        ):
            with pytest.raises(GuestNotFound):
                call()
        d.spawn(spec)
        harness.wait_boots(spec.uid, 1)
        assert d.attached_nics(spec.uid) == {first.mac_address}
        d.attach_nic(spec.uid, second)
        d.attach_nic(spec.uid, second)  # idempotent
        assert d.attached_nics(spec.uid) == {first.mac_address, second.mac_address}
        d.detach_nic(spec.uid, first.mac_address)
        d.detach_nic(spec.uid, first.mac_address)  # idempotent
        assert d.attached_nics(spec.uid) == {second.mac_address}
        assert d.state(spec.uid) == GuestState.RUNNING

        d.suspend(spec.uid)
        with pytest.raises(InvalidGuestState):
            d.attach_nic(spec.uid, third)
        with pytest.raises(InvalidGuestState):
            d.detach_nic(spec.uid, second.mac_address)
        d.resume(spec.uid)

        d.stop(spec.uid, harness.shutdown_timeout)
        d.attach_nic(spec.uid, third)
        d.detach_nic(spec.uid, second.mac_address)
        assert d.attached_nics(spec.uid) == {third.mac_address}
        # A shut-off guest's definition changes without its tap (the agent makes taps only
        # for guests that are to run).
        tapless = GuestNic(f"ct{uuid.uuid4().hex[:8]}x", "02:4b:00:00:ff:01")
        d.attach_nic(spec.uid, tapless)
        assert d.attached_nics(spec.uid) == {third.mac_address, tapless.mac_address}
        d.detach_nic(spec.uid, tapless.mac_address)
        assert d.state(spec.uid) == GuestState.SHUTOFF
        d.start(spec.uid)
        harness.wait_boots(spec.uid, 2)
        assert d.attached_nics(spec.uid) == {third.mac_address}
        d.destroy(spec.uid)


# ---- driver-specific ----------------------------------------------------------------------------


def test_fake_hooks() -> None:
    d = FakeDriver(vcpus=4, memory_mib=2048, disk_gib=10, description="rack 7")
    assert d.host_info() == HostInfo(4, 2048, 10, "rack 7", d.migration_uri)
    d.set_available(False)
    with pytest.raises(HypervisorUnavailable):
        d.list_guests()
    d.set_available(True)
    d.fail_next("list_guests", HypervisorUnavailable(reason="flap"))
    with pytest.raises(HypervisorUnavailable, match="flap"):
        d.list_guests()
    assert d.list_guests() == {}
    with pytest.raises(ValueError):
        d.fail_next("no_such_method", DriverError(reason="x"))


def test_libvirt_ignores_foreign_domains(libvirtd: LibvirtDaemon, tmp_path: Path) -> None:
    driver = load_compute_driver("libvirt", uri=libvirtd.uri, instances_dir=tmp_path)
    tag = uuid.uuid4().hex[:8]
    conn = libvirtd.open()
    foreign = []
    try:
        for name in (f"kumo-foreign{tag}", f"other-{tag}"):
            xml = (
                f"<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory>"
                "<os><type arch='x86_64'>hvm</type></os></domain>"
            )
            foreign.append(conn.defineXML(xml))
        guests = driver.list_guests()
        assert f"foreign{tag}" not in guests and f"other-{tag}" not in guests
        assert driver.state(f"foreign{tag}") == GuestState.ABSENT
        with pytest.raises(GuestNotFound):
            driver.start(f"foreign{tag}")
        spec = GuestSpec(
            uid=f"foreign{tag}",
            name="n",
            hostname="h",
            vcpus=1,
            memory_mib=64,
            disk_gib=1,
            image_path=tmp_path / "unused.qcow2",
        )
        with pytest.raises(GuestAlreadyExists):
            driver.spawn(spec)
        driver.destroy(f"foreign{tag}")  # not ours: left alone
        assert conn.lookupByName(f"kumo-foreign{tag}")
    finally:
        for dom in foreign:
            dom.undefine()
        conn.close()
        driver.close()


def test_libvirt_failed_spawn_cleans_up(
    libvirtd: LibvirtDaemon,
    guest_image: Path,
    tmp_path: Path,
) -> None:
    """A failure after the disk is made (an unknown machine type) removes everything."""
    driver = load_compute_driver(
        "libvirt", uri=libvirtd.uri, instances_dir=tmp_path, machine="no-such-machine"
    )
    with pytest.raises(HypervisorUnavailable, match="no-such-machine"):
        driver.validate()
    spec = GuestSpec(
        uid=f"ct-{uuid.uuid4().hex[:12]}",
        name="n",
        hostname="h",
        vcpus=1,
        memory_mib=128,
        disk_gib=1,
        image_path=guest_image,
    )
    with pytest.raises(DriverError) as caught:
        driver.spawn(spec)
    assert not isinstance(caught.value, ImageError)
    assert caught.value.__cause__ is not None
    assert not (tmp_path / spec.uid).exists()
    assert driver.state(spec.uid) == GuestState.ABSENT
    driver.close()


def test_libvirt_domain_definition(
    libvirtd: LibvirtDaemon,
    guest_image: Path,
    tmp_path: Path,
) -> None:
    """What the spawned domain looks like: persistent, TCG here, ACPI, virtio root disk,
    serial console to a file, metadata on fw_cfg, Kumo's marker."""
    driver = load_compute_driver("libvirt", uri=libvirtd.uri, instances_dir=tmp_path)
    spec = GuestSpec(
        uid=f"ct-{uuid.uuid4().hex[:12]}",
        name="projects/p/zones/z/instances/i",
        hostname="h",
        vcpus=1,
        memory_mib=128,
        disk_gib=2,
        image_path=guest_image,
        ssh_authorized_keys=KEYS,
        user_data=b"\x00\x01binary",
    )
    driver.spawn(spec)
    conn = libvirtd.open()
    try:
        dom = conn.lookupByName(f"kumo-{spec.uid}")
        xml = dom.XMLDesc(0)
        assert dom.isPersistent()
        # KVM needs vmx/svm: without them /dev/kvm may exist and libvirt may offer kvm (as on
        # this kind of machine), but a kvm guest would fail, so the driver must choose TCG.
        if not re.search(r"\b(vmx|svm)\b", Path("/proc/cpuinfo").read_text()):
            assert "<domain type='qemu'" in xml
        for needle in (
            "<acpi/>",
            "bus='virtio'",
            f"{tmp_path}/{spec.uid}/console.log",
            "name='opt/kumo/hostname'",
            "name='opt/kumo/ssh_authorized_keys'",
            "name='opt/kumo/user_data'",
            "https://kumo.dev/xmlns/libvirt/guest/v1",
        ):
            assert needle in xml, needle
        info = qemu_img_info(tmp_path / spec.uid / "disk.qcow2")
        assert info["virtual-size"] == 2 * 1024**3
        assert Path(info["backing-filename"]) == guest_image
        assert (tmp_path / spec.uid / "user_data").read_bytes() == spec.user_data
    finally:
        conn.close()
        driver.destroy(spec.uid)
        driver.close()
    assert not (tmp_path / spec.uid).exists()


def test_libvirt_resize_changes_the_domain_and_disk(
    libvirtd: LibvirtDaemon, guest_image: Path, tmp_path: Path
) -> None:
    driver = load_compute_driver("libvirt", uri=libvirtd.uri, instances_dir=tmp_path)
    spec = GuestSpec(
        uid=f"ct-{uuid.uuid4().hex[:12]}",
        name="projects/p/zones/z/instances/r",
        hostname="r",
        vcpus=1,
        memory_mib=128,
        disk_gib=2,
        image_path=guest_image,
    )
    driver.spawn(spec)
    driver.stop(spec.uid, 0)
    disk = tmp_path / spec.uid / "disk.qcow2"
    conn = libvirtd.open()
    try:
        driver.resize(spec.uid, replace(spec, vcpus=2, memory_mib=192, disk_gib=3))
        xml = conn.lookupByName(f"kumo-{spec.uid}").XMLDesc(0)
        assert re.search(r"<vcpu[^>]*>2</vcpu>", xml)
        assert "<memory unit='KiB'>196608</memory>" in xml
        assert qemu_img_info(disk)["virtual-size"] == 3 * 1024**3
        driver.resize(spec.uid, spec)
        assert qemu_img_info(disk)["virtual-size"] == 2 * 1024**3
        assert Path(qemu_img_info(disk)["backing-filename"]) == guest_image
    finally:
        conn.close()
        driver.destroy(spec.uid)
        driver.close()


def test_libvirt_unreachable(tmp_path: Path) -> None:
    driver = load_compute_driver(
        "libvirt", uri=f"qemu+unix:///system?socket={tmp_path}/none", instances_dir=tmp_path
    )
    with pytest.raises(HypervisorUnavailable):
        driver.validate()
    with pytest.raises(HypervisorUnavailable):
        driver.state("x")
