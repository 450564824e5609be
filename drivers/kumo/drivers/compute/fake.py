"""The fake compute driver: a hypervisor in memory, for scale tests and agent tests.

A real driver, selected by configuration (`load_compute_driver("fake", ...)`), that keeps
its guests in a dict: no processes, no disks, microseconds per call, so one test process can
run the agents of thousands of hosts. It follows the same contract as the libvirt driver
and passes the same contract suite (tests/contract/test_compute_driver.py):

- States and transitions are those of `ComputeDriver` (base.py): spawn → RUNNING; stop →
  SHUTOFF; start from SHUTOFF or CRASHED; suspend/resume between RUNNING and PAUSED; a soft
  reboot needs RUNNING (it never waits: fake guests always obey ACPI); a hard reboot works
  from any state; rebuild keeps a SHUTOFF guest SHUTOFF and restarts an active one. The same
  calls are no-ops and the same ones raise GuestNotFound, GuestAlreadyExists,
  InvalidGuestState and ImageError.
- Images are checked as the libvirt driver checks them, from the file header: the file must
  exist and be readable; a qcow2 image starts with `QFI\\xfb`, has no backing file and a
  virtual size within `disk_gib`; anything else is raw, sized by its length.
- The console: every boot (spawn, start, reboots, rebuild of an active guest) appends
  `KUMO_BOOT_OK\\nhostname=<hostname>\\nssh_keys=<count>\\n`, what the tiny test image prints.
  The stream lasts until `destroy`.
- Disks are never written, so the root disk's content is the image's: `snapshot` writes a
  copy of a qcow2 image, or converts a raw one to qcow2 (sparse), either way a standalone
  qcow2 that `qemu-img` reads and that the fake (or libvirt) can boot.
- NICs: a guest has its spec's (spawn, rebuild, resize); `attach_nic` and `detach_nic`
  change a RUNNING or SHUTOFF guest's set, by MAC, at once.
- The host reports the capacity it was configured with (`vcpus`, `memory_mib`, `disk_gib`,
  `description`); like libvirt, the fake does not refuse guests beyond it (overcommit is the
  scheduler's business).

- Live migration works between fake drivers of one process: each registers itself under its
  `migration_uri` (default `fake://<random>`; `HostInfo.migration_uri`), and `migrate_live`
  hands the guest (spec, state) to the driver registered under the target's URI in
  `migration_steps` progress samples, checking before each that the destination is still
  there and available and that no `abort_migration` came. The destination's console
  stream starts at the switch-over, as on real hosts. A destination unreachable (closed,
  unknown URI, `set_available(False)`, even mid-way, e.g. from the `on_progress`
  callback) fails the migration with MigrationFailed, and the guest stays on the source.
  `migrate_cold` does the same with a stopped guest, which arrives PAUSED and unstarted:
  `resume` boots it (a boot on its console), `stop` powers it off.

Hooks for tests (not part of ComputeDriver): `set_available(False)` makes every call raise
HypervisorUnavailable until it is set back; `crash(uid)` makes a guest CRASHED as if it died
on its own; `fail_next(method, error)` makes the next call of that method raise `error`;
`hold_migrations(True)` pauses this driver's outgoing migrations after their current progress
sample until `hold_migrations(False)` (an abort still ends them at once), so a test acts
mid-migration however slow the machine is.
"""

from __future__ import annotations

import errno
import os
import shutil
import struct
import threading
import time
import uuid as uuidlib
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from kumo.drivers.compute.base import (
    CONSOLE_CHUNK,
    DEFAULT_SHUTDOWN_TIMEOUT,
    ROOT_DISK_SERIAL,
    ComputeDriver,
    GuestNic,
    GuestSpec,
    GuestState,
    HostInfo,
    MigrationOptions,
    MigrationProgress,
    MigrationResult,
    MigrationTarget,
    ProgressCallback,
    is_valid_uid,
)
from kumo.drivers.errors import (
    DriverError,
    GuestAlreadyExists,
    GuestNotFound,
    HypervisorUnavailable,
    ImageError,
    InvalidGuestState,
    MigrationCancelled,
    MigrationFailed,
)
from kumo.drivers.storage.base import VolumeDisk

QCOW2_MAGIC = b"QFI\xfb"
GIB = 1024**3
_STOPPED = (GuestState.SHUTOFF, GuestState.CRASHED)
_ACTIVE = (GuestState.RUNNING, GuestState.PAUSED)
#: Fake drivers of this process by migration URI: where `migrate_live` finds destinations.
_BY_MIGRATION_URI: weakref.WeakValueDictionary[str, FakeDriver] = weakref.WeakValueDictionary()
_registry_lock = threading.Lock()


@dataclass
class _Guest:
    spec: GuestSpec
    fingerprint: str
    state: GuestState = GuestState.SHUTOFF
    console: bytearray = field(default_factory=bytearray)
    volumes: dict[str, VolumeDisk] = field(default_factory=dict)
    volume_sizes: dict[str, int] = field(default_factory=dict)  # as told by resize_volume
    unstarted: bool = False  # paused before its first instruction (arrived cold)
    nics: dict[str, GuestNic] = field(default_factory=dict)  # by MAC; the spec's at first

    def __post_init__(self) -> None:
        self.take_nics_of(self.spec)

    def take_nics_of(self, spec: GuestSpec) -> None:
        """Has the NICs of `spec` (spawn, rebuild, resize, arrival)."""
        self.nics = {nic.mac_address: nic for nic in spec.nics}

    def boot(self) -> None:
        self.state = GuestState.RUNNING
        self.unstarted = False
        spec = self.spec
        self.console += (
            f"KUMO_BOOT_OK\nhostname={spec.hostname}\n"
            f"ssh_keys={len(spec.ssh_authorized_keys)}\n".encode()
        )


class FakeDriver(ComputeDriver):
    """Guests in memory (see the module docstring). Each instance is one host."""

    def __init__(
        self,
        vcpus: int = 64,
        memory_mib: int = 256 * 1024,
        disk_gib: int = 4096,
        description: str = "fake hypervisor",
        migration_uri: str | None = None,
        migration_steps: int = 3,
        migration_step_seconds: float = 0.0,
    ) -> None:
        self.migration_uri = migration_uri or f"fake://{uuidlib.uuid4().hex}"
        self._host = HostInfo(
            vcpus=int(vcpus),
            memory_mib=int(memory_mib),
            disk_gib=int(disk_gib),
            description=description,
            migration_uri=self.migration_uri,
        )
        self._guests: dict[str, _Guest] = {}
        self._lock = threading.RLock()
        self._available = True
        self._failures: dict[str, DriverError] = {}
        self._migration_steps = max(1, int(migration_steps))
        self._migration_step_seconds = float(migration_step_seconds)
        self._incoming: dict[str, GuestSpec] = {}  # prepared, not arrived
        self._migrating: dict[str, threading.Event] = {}  # uid -> abort requested
        self._migrations_go = threading.Event()  # cleared while migrations are held
        self._migrations_go.set()
        with _registry_lock:
            _BY_MIGRATION_URI[self.migration_uri] = self

    # ---- test hooks --------------------------------------------------------------------------

    def set_available(self, available: bool) -> None:
        """While False, every driver call raises HypervisorUnavailable."""
        self._available = available

    def hold_migrations(self, held: bool) -> None:
        """While True, migrations from this driver wait after their current progress sample
        (abort_migration still ends them at once); False lets them go on. Idempotent."""
        if held:
            self._migrations_go.clear()
        else:
            self._migrations_go.set()

    def crash(self, uid: str) -> None:
        """Makes the guest CRASHED, as if it died on its own. Raises GuestNotFound."""
        with self._lock:
            self._get(uid).state = GuestState.CRASHED

    def spec_of(self, uid: str) -> GuestSpec:
        """The spec the guest was last given (spawn, rebuild, resize). Raises GuestNotFound."""
        with self._lock:
            return self._get(uid).spec

    def fail_next(self, method: str, error: DriverError) -> None:
        """The next call of `method` (e.g. "spawn") raises `error` and changes nothing."""
        if not callable(getattr(ComputeDriver, method, None)):
            raise ValueError(f"ComputeDriver has no method {method!r}")
        self._failures[method] = error

    def _enter(self, method: str) -> None:
        if not self._available:
            raise HypervisorUnavailable(reason="fake hypervisor set unavailable")
        error = self._failures.pop(method, None)
        if error is not None:
            raise error

    def _get(self, uid: str) -> _Guest:
        guest = self._guests.get(uid) if is_valid_uid(uid) else None
        if guest is None:
            raise GuestNotFound(uid=uid)
        return guest

    # ---- ComputeDriver -----------------------------------------------------------------------

    def validate(self) -> None:
        self._enter("validate")

    def host_info(self) -> HostInfo:
        self._enter("host_info")
        return self._host

    def spawn(self, spec: GuestSpec) -> None:
        with self._lock:
            self._enter("spawn")
            fingerprint = spec.fingerprint()
            existing = self._guests.get(spec.uid)
            if existing is not None:
                if existing.fingerprint == fingerprint:
                    return
                raise GuestAlreadyExists(uid=spec.uid)
            check_image(spec)
            guest = _Guest(spec=spec, fingerprint=fingerprint)
            root = spec.root_volume
            if root is not None and root.serial != ROOT_DISK_SERIAL:  # a boot volume is listed
                guest.volumes[root.serial] = root
            guest.boot()
            self._guests[spec.uid] = guest

    def destroy(self, uid: str) -> None:
        with self._lock:
            self._enter("destroy")
            self._guests.pop(uid, None)

    def start(self, uid: str) -> None:
        with self._lock:
            self._enter("start")
            guest = self._get(uid)
            if guest.state == GuestState.RUNNING:
                return
            if guest.state == GuestState.PAUSED:
                raise InvalidGuestState(uid=uid, state="paused", action="start (use resume)")
            guest.boot()

    def stop(self, uid: str, timeout_seconds: float = DEFAULT_SHUTDOWN_TIMEOUT) -> None:
        with self._lock:
            self._enter("stop")
            guest = self._get(uid)
            if guest.state not in _STOPPED:
                guest.state = GuestState.SHUTOFF
                guest.unstarted = False

    def reboot(
        self, uid: str, hard: bool = False, timeout_seconds: float = DEFAULT_SHUTDOWN_TIMEOUT
    ) -> None:
        with self._lock:
            self._enter("reboot")
            guest = self._get(uid)
            if not hard and guest.state != GuestState.RUNNING:
                raise InvalidGuestState(uid=uid, state=guest.state.value, action="soft reboot")
            guest.boot()

    def suspend(self, uid: str) -> None:
        with self._lock:
            self._enter("suspend")
            guest = self._get(uid)
            if guest.state in _STOPPED:
                raise InvalidGuestState(uid=uid, state=guest.state.value, action="suspend")
            guest.state = GuestState.PAUSED

    def resume(self, uid: str) -> None:
        with self._lock:
            self._enter("resume")
            guest = self._get(uid)
            if guest.state in _STOPPED:
                raise InvalidGuestState(
                    uid=uid, state=guest.state.value, action="resume (use start)"
                )
            if guest.unstarted:
                guest.boot()
            guest.state = GuestState.RUNNING

    def state(self, uid: str) -> GuestState:
        with self._lock:
            self._enter("state")
            guest = self._guests.get(uid)
            return GuestState.ABSENT if guest is None else guest.state

    def list_guests(self) -> dict[str, GuestState]:
        with self._lock:
            self._enter("list_guests")
            return {uid: guest.state for uid, guest in self._guests.items()}

    def _nic_change(self, uid: str, action: str) -> _Guest:
        guest = self._get(uid)
        if guest.state not in (GuestState.RUNNING, GuestState.SHUTOFF):
            raise InvalidGuestState(uid=uid, state=guest.state.value, action=action)
        return guest

    def attached_nics(self, uid: str) -> set[str]:
        with self._lock:
            return set(self._get(uid).nics)

    def attach_nic(self, uid: str, nic: GuestNic) -> None:
        with self._lock:
            guest = self._nic_change(uid, "attach a NIC to")
            if any(n.tap == nic.tap for n in guest.nics.values() if n != nic):
                raise DriverError(reason=f"{uid} already has a NIC on {nic.tap}")
            guest.nics.setdefault(nic.mac_address, nic)

    def detach_nic(self, uid: str, mac_address: str) -> None:
        with self._lock:
            self._nic_change(uid, "detach a NIC from").nics.pop(mac_address, None)

    def attached_volumes(self, uid: str) -> set[str]:
        with self._lock:
            return set(self._get(uid).volumes)

    def attach_volume(self, uid: str, disk: VolumeDisk) -> None:
        with self._lock:
            guest = self._get(uid)
            if guest.state is not GuestState.RUNNING:
                raise InvalidGuestState(uid=uid, state=guest.state.value, action="attach")
            guest.volumes.setdefault(disk.serial, disk)

    def detach_volume(self, uid: str, serial: str) -> None:
        with self._lock:
            self._get(uid).volumes.pop(serial, None)

    def resize_volume(self, uid: str, serial: str, size_bytes: int) -> None:
        with self._lock:
            guest = self._get(uid)
            root = guest.spec.root_volume
            if serial not in guest.volumes and (root is None or root.serial != serial):
                raise DriverError(reason=f"no volume {serial} attached to {uid}")
            guest.volume_sizes[serial] = max(guest.volume_sizes.get(serial, 0), size_bytes)

    def read_console(self, uid: str, offset: int = 0, max_bytes: int = CONSOLE_CHUNK) -> bytes:
        if offset < 0:
            raise ValueError("offset must be >= 0")
        with self._lock:
            self._enter("read_console")
            console = self._get(uid).console
            return bytes(console[offset : offset + max(0, min(max_bytes, CONSOLE_CHUNK))])

    def rebuild(self, uid: str, spec: GuestSpec) -> None:
        if spec.uid != uid:
            raise ValueError(f"spec.uid {spec.uid!r} is not {uid!r}")
        with self._lock:
            self._enter("rebuild")
            guest = self._get(uid)
            check_image(spec)
            guest.spec = spec
            guest.fingerprint = spec.fingerprint()
            guest.take_nics_of(spec)
            if guest.state in _ACTIVE:
                guest.boot()
            else:
                guest.state = GuestState.SHUTOFF

    def resize(self, uid: str, spec: GuestSpec) -> None:
        if spec.uid != uid:
            raise ValueError(f"spec.uid {spec.uid!r} is not {uid!r}")
        with self._lock:
            self._enter("resize")
            guest = self._get(uid)
            if guest.state in _ACTIVE:
                raise InvalidGuestState(uid=uid, state=guest.state.value, action="resize")
            guest.spec = spec
            guest.fingerprint = spec.fingerprint()
            guest.take_nics_of(spec)

    # ---- live migration ----------------------------------------------------------------------

    def prepare_incoming(self, spec: GuestSpec) -> MigrationTarget:
        with self._lock:
            self._enter("prepare_incoming")
            if spec.uid in self._guests:
                raise GuestAlreadyExists(uid=spec.uid)
            check_image(spec)
            self._incoming[spec.uid] = spec
            return MigrationTarget(uid=spec.uid, uri=self.migration_uri)

    def migrate_live(
        self,
        uid: str,
        target: MigrationTarget,
        options: MigrationOptions | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> MigrationResult:
        return self._move(uid, target, options, on_progress, live=True)

    def migrate_cold(
        self,
        uid: str,
        target: MigrationTarget,
        options: MigrationOptions | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> MigrationResult:
        return self._move(uid, target, options, on_progress, live=False)

    def _move(
        self,
        uid: str,
        target: MigrationTarget,
        options: MigrationOptions | None,
        on_progress: ProgressCallback | None,
        live: bool,
    ) -> MigrationResult:
        """Sends the memory in steps, then hands the guest to the destination's driver:
        in its state (live), or PAUSED (cold)."""
        options = options or MigrationOptions()
        started = time.monotonic()
        action = "migrate live" if live else "migrate cold"
        with self._lock:
            self._enter(action.replace(" ", "_"))
            guest = self._get(uid)
            if guest.state not in (_ACTIVE if live else _STOPPED):
                raise InvalidGuestState(uid=uid, state=guest.state.value, action=action)
            if uid in self._migrating:
                raise MigrationFailed(uid=uid, reason="a migration of this guest is running")
            aborted = self._migrating[uid] = threading.Event()
        memory = guest.spec.memory_mib * 1024 * 1024
        try:
            for step in range(self._migration_steps + 1):
                if aborted.is_set():
                    raise MigrationCancelled(uid=uid)
                destination = self._destination(uid, target)
                if options.timeout_seconds is not None and (
                    time.monotonic() - started > options.timeout_seconds
                ):
                    raise MigrationFailed(uid=uid, reason="timed out")
                if step == self._migration_steps:
                    break
                sent = memory * (step + 1) // self._migration_steps
                sample = MigrationProgress(
                    elapsed_ms=int((time.monotonic() - started) * 1000),
                    memory_total_bytes=memory,
                    memory_processed_bytes=sent,
                    memory_remaining_bytes=memory - sent,
                    dirty_rate_bytes_per_second=0,
                    iteration=1,
                )
                try:
                    if on_progress is not None:
                        on_progress(sample)
                except Exception as err:
                    reason = f"progress callback failed: {err!r}"
                    raise MigrationFailed(uid=uid, reason=reason) from err
                aborted.wait(self._migration_step_seconds)
                while not (self._migrations_go.is_set() or aborted.is_set()):
                    aborted.wait(0.05)
            first, second = sorted((self, destination), key=id)  # one lock order for all
            with first._lock, second._lock:
                if destination._incoming.get(uid) is None:
                    raise MigrationFailed(uid=uid, reason="the destination is not prepared")
                if uid not in self._guests:
                    raise GuestNotFound(uid=uid)
                spec = destination._incoming.pop(uid)
                moved = _Guest(spec=spec, fingerprint=spec.fingerprint(), state=guest.state)
                if not live:
                    moved.state, moved.unstarted = GuestState.PAUSED, True
                destination._guests[uid] = moved
                del self._guests[uid]
        finally:
            with self._lock:
                self._migrating.pop(uid, None)
        return MigrationResult(
            downtime_ms=0.0, total_ms=(time.monotonic() - started) * 1000, memory_bytes=memory
        )

    def _destination(self, uid: str, target: MigrationTarget) -> FakeDriver:
        with _registry_lock:
            destination = _BY_MIGRATION_URI.get(target.uri)
        if destination is None or destination is self:
            raise MigrationFailed(uid=uid, reason=f"cannot reach destination {target.uri}")
        if not destination._available:
            raise MigrationFailed(uid=uid, reason=f"lost connection to {target.uri}")
        return destination

    def abort_migration(self, uid: str) -> None:
        with self._lock:
            self._enter("abort_migration")
            aborted = self._migrating.get(uid)
            if aborted is not None:
                aborted.set()
            elif uid not in self._guests:
                raise GuestNotFound(uid=uid)

    def cleanup_incoming(self, uid: str) -> None:
        with self._lock:
            self._enter("cleanup_incoming")
            if uid in self._guests:
                state = self._guests[uid].state.value
                raise InvalidGuestState(uid=uid, state=state, action="clean up incoming")
            self._incoming.pop(uid, None)

    def incoming(self) -> list[str]:
        """Uids prepared by `prepare_incoming` that have not arrived (test hook: what a
        failed migration leaves until `cleanup_incoming`)."""
        with self._lock:
            return sorted(self._incoming)

    # ---- snapshot ----------------------------------------------------------------------------

    def snapshot(self, uid: str, dest: Path) -> None:
        with self._lock:
            self._enter("snapshot")
            spec = self._get(uid).spec
        dest = Path(dest).absolute()
        if not dest.parent.is_dir():
            raise ImageError(path=dest, reason="directory does not exist")
        if spec.image_path is None:
            raise ImageError(path=dest, reason=f"guest {uid} boots from a volume: no image disk")
        tmp = dest.parent / f".{dest.name}.{uuidlib.uuid4().hex[:8]}.tmp"
        try:
            if spec.image_format == "qcow2":
                shutil.copyfile(spec.image_path, tmp)
            else:
                raw_to_qcow2(spec.image_path, tmp)
            os.replace(tmp, dest)
        except OSError as err:
            raise ImageError(path=dest, reason=f"cannot write snapshot: {err}") from err
        finally:
            tmp.unlink(missing_ok=True)


# ---- images without qemu-img ------------------------------------------------------------------


def check_image(spec: GuestSpec) -> None:
    """Raises ImageError unless the image exists, is readable, is in its declared format,
    has no backing file and fits in `spec.disk_gib` (what the libvirt driver asks of
    `qemu-img info`), reading only the file's header; none to check without one."""
    path = spec.image_path
    if path is None:
        return
    if not path.is_absolute():
        raise ImageError(path=path, reason="image path must be absolute")
    try:
        with open(path, "rb") as image:
            header = image.read(72)
            length = os.fstat(image.fileno()).st_size
    except FileNotFoundError as err:
        raise ImageError(path=path, reason="no such file") from err
    except OSError as err:
        raise ImageError(path=path, reason=f"not readable: {err.strerror}") from err
    is_qcow2 = header[:4] == QCOW2_MAGIC
    detected = "qcow2" if is_qcow2 else "raw"
    if detected != spec.image_format:
        raise ImageError(path=path, reason=f"is {detected}, not {spec.image_format} as declared")
    if is_qcow2:
        if len(header) < 32:
            raise ImageError(path=path, reason="truncated qcow2 header")
        (backing_offset,) = struct.unpack(">Q", header[8:16])
        (virtual_size,) = struct.unpack(">Q", header[24:32])
        if backing_offset:
            raise ImageError(path=path, reason="has a backing file: images must be standalone")
    else:
        virtual_size = length
    if virtual_size > spec.disk_gib * GIB:
        raise ImageError(
            path=path, reason=f"virtual size {virtual_size} bytes exceeds {spec.disk_gib} GiB"
        )


def raw_to_qcow2(src: Path, dest: Path, cluster_bits: int = 16) -> None:
    """Writes the raw image `src` as a standalone qcow2 (version 3) at `dest`, leaving
    all-zero clusters unallocated. Layout: header, L1 table, L2 tables, data, refcounts."""
    cluster = 1 << cluster_bits
    size = -(-src.stat().st_size // 512) * 512  # QEMU sizes disks in 512-byte sectors
    l2_entries = cluster // 8
    total = _clusters(size, cluster)
    used = _data_clusters(src, cluster, total)
    l1_size = max(1, -(-total // l2_entries))
    l1_clusters = _clusters(l1_size * 8, cluster)
    l2_tables = sorted({i // l2_entries for i in used})
    # Cluster indexes: 0 header, then L1, L2 tables, data, refcount table and blocks.
    l1_at = 1
    l2_at = {t: l1_at + l1_clusters + n for n, t in enumerate(l2_tables)}
    data_at = l1_at + l1_clusters + len(l2_tables)
    data = {i: data_at + n for n, i in enumerate(used)}
    first_ref = data_at + len(used)
    per_block = cluster // 2  # 16-bit refcounts
    blocks, table = 1, 1
    while True:  # refcount structures count themselves
        count = first_ref + table + blocks
        need_blocks = -(-count // per_block)
        need_table = _clusters(need_blocks * 8, cluster)
        if (need_blocks, need_table) == (blocks, table):
            break
        blocks, table = need_blocks, need_table
    table_at, blocks_at = first_ref, first_ref + table
    count = first_ref + table + blocks
    copied = 1 << 63
    with open(dest, "wb") as out, open(src, "rb") as raw:
        out.write(
            struct.pack(
                ">4sIQIIQIIQQIIQQQQII",
                QCOW2_MAGIC,
                3,  # version
                0,  # backing file offset
                0,  # backing file name length
                cluster_bits,
                size,
                0,  # no encryption
                l1_size,
                l1_at * cluster,
                table_at * cluster,
                table,
                0,  # snapshots
                0,  # snapshots offset
                0,  # incompatible features
                0,  # compatible features
                0,  # autoclear features
                4,  # refcount order: 16 bits
                104,  # header length
            )
        )
        l1 = bytearray(l1_clusters * cluster)
        for t, at in l2_at.items():
            struct.pack_into(">Q", l1, t * 8, (at * cluster) | copied)
        out.seek(l1_at * cluster)
        out.write(l1)
        for t, at in l2_at.items():
            l2 = bytearray(cluster)
            for i in used:
                if i // l2_entries == t:
                    struct.pack_into(">Q", l2, (i % l2_entries) * 8, (data[i] * cluster) | copied)
            out.seek(at * cluster)
            out.write(l2)
        for i, at in data.items():
            raw.seek(i * cluster)
            chunk = raw.read(cluster)
            out.seek(at * cluster)
            out.write(chunk.ljust(cluster, b"\0"))
        ref_table = bytearray(table * cluster)
        for b in range(blocks):
            struct.pack_into(">Q", ref_table, b * 8, (blocks_at + b) * cluster)
        out.seek(table_at * cluster)
        out.write(ref_table)
        refs = bytearray(blocks * cluster)
        for c in range(count):
            struct.pack_into(">H", refs, c * 2, 1)
        out.seek(blocks_at * cluster)
        out.write(refs)


def _data_clusters(path: Path, cluster: int, total: int) -> list[int]:
    """Indexes of the clusters of `path` that hold a non-zero byte (holes skipped)."""
    used: list[int] = []
    with open(path, "rb") as raw:
        index = 0
        while index < total:
            try:
                data = os.lseek(raw.fileno(), index * cluster, os.SEEK_DATA)
                hole = os.lseek(raw.fileno(), data, os.SEEK_HOLE)
            except OSError as err:
                if err.errno == errno.ENXIO:
                    break  # nothing but a hole past here
                data, hole = index * cluster, total * cluster  # no SEEK_DATA: read it all
            start, end = data // cluster, min(total, _clusters(hole, cluster))
            used.extend(i for i in range(start, end) if _nonzero(raw, i * cluster, cluster))
            index = max(end, start + 1)
    return used


def _nonzero(raw: BinaryIO, offset: int, length: int) -> bool:
    raw.seek(offset)
    return bool(raw.read(length).lstrip(b"\0"))


def _clusters(n_bytes: int, cluster: int) -> int:
    return -(-n_bytes // cluster)
