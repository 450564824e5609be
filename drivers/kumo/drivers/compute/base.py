"""The compute driver contract: what the host agent asks of a hypervisor.

The agent receives `InstanceAssignment`s (proto/kumo/agent/v1/agent_service.proto) and makes
them real through one `ComputeDriver`: it turns an assignment into a `GuestSpec`, compares the
driver's `state()` with the assignment's power intent, and calls the method that converges
them. Every method is safe to call again after a failure or a crash of the agent; the
docstrings say which are idempotent (a repeat changes nothing) and what each raises.

A guest is known by its `uid` (the instance's uid): the driver keeps every trace of it (its
definition, disks, console log) under that uid, and `list_guests()` reports exactly the guests
the driver made, never foreign ones that share the hypervisor.

Every method may also raise `HypervisorUnavailable` (the hypervisor cannot be reached; retry)
and `DriverError` (anything unexpected, with the cause chained); the lists below name the
others. Implementations are registered as entry points in the `kumo.drivers.compute` group
and loaded with `kumo.drivers.compute.loader.load_compute_driver`. One contract suite,
tests/contract/test_compute_driver.py, runs over all of them.

States (`GuestState`) and the calls that move between them:

    (none) --spawn--> RUNNING <--suspend/resume--> PAUSED
                      RUNNING --stop--> SHUTOFF --start--> RUNNING
                      any --reboot(hard)--> RUNNING;   RUNNING --reboot(soft)--> RUNNING
                      any --rebuild--> RUNNING (SHUTOFF stays SHUTOFF)
                      any --destroy--> ABSENT
    CRASHED (the guest died on its own) behaves as SHUTOFF.

Live migration moves a RUNNING (or PAUSED) guest to another host of the same driver while
it runs. The control plane calls, in order:

    destination  prepare_incoming(spec)          -> MigrationTarget (disks and files made)
    source       migrate_live(uid, target, ...)  -> MigrationResult (guest gone from source)
    on failure:  destination cleanup_incoming(uid); the guest still runs on the source
    to cancel:   source abort_migration(uid) (migrate_live then raises MigrationCancelled)

`MigrationTarget` is opaque to the control plane: it carries it, as a JSON-able dict
(`to_dict`/`from_dict`), from the destination's agent to the source's. Hosts advertise the
URI peers migrate to in `HostInfo.migration_uri` (empty: the host cannot receive guests).
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kumo.drivers.errors import DriverError, MigrationFailed
from kumo.drivers.storage.base import VolumeDisk

#: What a uid may look like: it names directories and domains, so no separators or dots first.
UID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_HOSTNAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
IMAGE_FORMATS = ("qcow2", "raw")
#: The serial the guest sees on its root disk, whatever holds it (an overlay of the image, or
#: a clone in Ceph the control plane made: `GuestSpec.root_volume` with this serial). Not a
#: volume: `attached_volumes` never lists it.
ROOT_DISK_SERIAL = "kumo-root"
#: Default seconds a graceful (ACPI) shutdown may take before the guest is powered off.
DEFAULT_SHUTDOWN_TIMEOUT = 60.0
#: Default and largest number of console bytes one `read_console` call returns.
CONSOLE_CHUNK = 64 * 1024


def is_valid_uid(uid: str) -> bool:
    """Whether `uid` can name a guest (letters, digits, `_.-`, at most 63, no leading dot)."""
    return isinstance(uid, str) and UID_PATTERN.fullmatch(uid) is not None


class GuestState(enum.Enum):
    """What a guest is doing, as the driver observes it."""

    RUNNING = "running"
    """The guest runs (or is booting, or shutting down)."""
    PAUSED = "paused"
    """The guest is suspended in memory (`suspend`); `resume` continues it."""
    SHUTOFF = "shutoff"
    """The guest is defined but not running; its disks are kept."""
    CRASHED = "crashed"
    """The guest stopped on its own (guest panic, emulator died); `start` runs it again."""
    ABSENT = "absent"
    """No such guest on this host (only `state()` reports it)."""


_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
_DEVICE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,14}")


@dataclass(frozen=True)
class GuestNic:
    """One network interface of a guest: a host device (`tap`) that already exists and is
    plugged into the host's network (the agent binds it to its port first), and the MAC the
    guest uses on it. The driver neither makes nor removes the tap. Raises ValueError when
    a field is malformed."""

    tap: str
    mac_address: str

    def __post_init__(self) -> None:
        if not _DEVICE.fullmatch(self.tap):
            raise ValueError(f"tap {self.tap!r}: a device name of at most 15 characters")
        if not _MAC.fullmatch(self.mac_address):
            raise ValueError(f"mac_address {self.mac_address!r}: lower-case aa:bb:cc:dd:ee:ff")


@dataclass(frozen=True)
class GuestSpec:
    """Everything a driver needs to make one guest; the context of `spawn` and `rebuild`.

    `image_path` is a local file (the agent's image cache) in `image_format`; the driver
    uses it read-only, as the backing file of the guest's root disk, so it must stay in
    place while the guest exists. `disk_gib` must hold the image's virtual size. It is
    None for a guest with a `root_volume`: the driver then makes no disk from an image.
    `ssh_authorized_keys` (one key per entry, OpenSSH format) and `user_data` are handed
    to the guest with `hostname`. `root_volume` (boot from volume) is the guest's boot disk
    instead of one made from the image (with the serial ROOT_DISK_SERIAL: the instance's own
    root disk made by the control plane, e.g. a clone in Ceph). Raises ValueError when a
    field is out of range.
    """

    uid: str
    name: str
    hostname: str
    vcpus: int
    memory_mib: int
    disk_gib: int
    image_path: Path | None
    image_format: Literal["qcow2", "raw"] = "qcow2"
    ssh_authorized_keys: tuple[str, ...] = field(default=())
    user_data: bytes = b""
    nics: tuple[GuestNic, ...] = field(default=())
    root_volume: VolumeDisk | None = None

    def __post_init__(self) -> None:
        if not is_valid_uid(self.uid):
            raise ValueError(f"uid {self.uid!r}: letters, digits and _.- only, at most 63")
        if not _HOSTNAME.fullmatch(self.hostname):
            raise ValueError(f"hostname {self.hostname!r} is not a valid DNS name")
        for name, value, low in (
            ("vcpus", self.vcpus, 1),
            ("memory_mib", self.memory_mib, 16),
            ("disk_gib", self.disk_gib, 1),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, not {value!r}")
        if self.image_format not in IMAGE_FORMATS:
            raise ValueError(f"image_format must be one of {IMAGE_FORMATS}")
        if self.image_path is None and self.root_volume is None:
            raise ValueError("image_path is required unless the guest boots from root_volume")
        if self.image_path is not None and not isinstance(self.image_path, Path):
            object.__setattr__(self, "image_path", Path(self.image_path))
        if not isinstance(self.ssh_authorized_keys, tuple):
            object.__setattr__(self, "ssh_authorized_keys", tuple(self.ssh_authorized_keys))
        for key in self.ssh_authorized_keys:
            if not key.strip() or "\n" in key or "\r" in key:
                raise ValueError("each ssh key must be one non-empty line")
        if not isinstance(self.user_data, bytes):
            raise ValueError("user_data must be bytes")
        if not isinstance(self.nics, tuple):
            object.__setattr__(self, "nics", tuple(self.nics))
        if len({nic.tap for nic in self.nics}) != len(self.nics):
            raise ValueError("each nic needs a tap of its own")

    def fingerprint(self) -> str:
        """A stable digest of the whole spec: equal specs, equal fingerprints. Drivers store
        it with the guest to tell a repeated spawn from a conflicting one."""
        canonical = {
            "uid": self.uid,
            "name": self.name,
            "hostname": self.hostname,
            "vcpus": self.vcpus,
            "memory_mib": self.memory_mib,
            "disk_gib": self.disk_gib,
            "image_path": "" if self.image_path is None else str(self.image_path),
            "image_format": self.image_format,
            "ssh_authorized_keys": list(self.ssh_authorized_keys),
            "user_data_sha256": hashlib.sha256(self.user_data).hexdigest(),
        }
        if self.nics:  # (absent when empty: guests made before NICs keep their fingerprint)
            canonical["nics"] = [[nic.tap, nic.mac_address] for nic in self.nics]
        if self.root_volume is not None:
            source = self.root_volume.source
            canonical["root_volume"] = [self.root_volume.serial, source.kind, source.path]
        text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class HostInfo:
    """The host's capacity as the hypervisor reports it, a one-line description for
    operators (e.g. `QEMU 7.2.22 (TCG) via libvirt 9.0.0`), and the URI other hosts send
    live migrations to (empty when this host cannot receive them)."""

    vcpus: int
    memory_mib: int
    disk_gib: int
    description: str
    migration_uri: str = ""


@dataclass(frozen=True)
class MigrationTarget:
    """Where and how a source sends a guest: made by the destination's `prepare_incoming`,
    handed to the source's `migrate_live`. `uri` is the destination's migration URI;
    `shared_storage` says the destination sees the source's disks (only memory moves);
    `properties` are the destination driver's own details for the source driver (e.g. where
    the guest's files live there). Opaque to the control plane, which stores and carries it
    as `to_dict()`."""

    uid: str
    uri: str
    shared_storage: bool = False
    properties: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form; `from_dict` reads it back."""
        return {
            "uid": self.uid,
            "uri": self.uri,
            "shared_storage": self.shared_storage,
            "properties": dict(self.properties),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MigrationTarget:
        """The target `to_dict` wrote; raises ValueError for anything else."""
        try:
            properties = {str(k): str(v) for k, v in dict(data.get("properties", {})).items()}
            return cls(
                uid=str(data["uid"]),
                uri=str(data["uri"]),
                shared_storage=bool(data.get("shared_storage", False)),
                properties=properties,
            )
        except (KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"not a migration target: {err}") from err


@dataclass(frozen=True)
class MigrationOptions:
    """How to run a live migration. `max_downtime_ms`: the longest pause allowed at the
    switch-over, which the hypervisor uses to decide when to stop copying and pause
    (None: its default, 300 ms in QEMU); `bandwidth_mibps`: a cap
    on the transfer (None: unlimited); `auto_converge`: throttle the guest's vCPUs when its
    memory is dirtied faster than it is sent; `post_copy`: switch to post-copy after the
    first pass (the guest runs on the destination while its remaining memory is fetched;
    if the destination or the link then dies, the guest is lost); `block_migration`: copy
    the local disks with the guest (None: when the target has no shared storage);
    `timeout_seconds`: cancel the migration when it runs longer (None: no limit).
    Raises ValueError when a field is out of range."""

    max_downtime_ms: int | None = None
    bandwidth_mibps: int | None = None
    auto_converge: bool = False
    post_copy: bool = False
    block_migration: bool | None = None
    timeout_seconds: float | None = None

    def __post_init__(self) -> None:
        for name, value in (
            ("max_downtime_ms", self.max_downtime_ms),
            ("bandwidth_mibps", self.bandwidth_mibps),
        ):
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value < 1
            ):
                raise ValueError(f"{name} must be a positive integer or None, not {value!r}")
        if self.timeout_seconds is not None and not self.timeout_seconds > 0:
            raise ValueError("timeout_seconds must be positive or None")


@dataclass(frozen=True)
class MigrationProgress:
    """One sample of a running migration (bytes; rates per second). Fields the hypervisor
    does not report are 0."""

    elapsed_ms: int
    memory_total_bytes: int
    memory_processed_bytes: int
    memory_remaining_bytes: int
    dirty_rate_bytes_per_second: int
    disk_total_bytes: int = 0
    disk_processed_bytes: int = 0
    disk_remaining_bytes: int = 0
    iteration: int = 0
    """Pass over the guest's memory (1: the first full copy)."""
    post_copy: bool = False
    """The guest already runs on the destination (post-copy phase)."""


@dataclass(frozen=True)
class MigrationResult:
    """What a completed migration took: `downtime_ms` the guest was paused at the
    switch-over (None if the hypervisor does not say), `total_ms` from start to end,
    and the bytes sent."""

    downtime_ms: float | None
    total_ms: float
    memory_bytes: int = 0
    disk_bytes: int = 0


#: Called with each progress sample while `migrate_live` runs (in the calling thread).
ProgressCallback = Callable[[MigrationProgress], None]


class ComputeDriver(ABC):
    """One hypervisor on one host. Instances are thread-safe: the agent may run calls for
    different guests at the same time; calls for the same guest are serialized.

    Drivers are configured by keyword arguments (see each implementation) and connect
    lazily: constructing one never fails because the hypervisor is down; `validate()` says.
    """

    @abstractmethod
    def validate(self) -> None:
        """Checks the configuration and the connection to the hypervisor (e.g. at agent
        start, before registering the host). Idempotent, changes nothing.

        Raises HypervisorUnavailable with the reason when the driver cannot work.
        """

    @abstractmethod
    def host_info(self) -> HostInfo:
        """The host's capacity (what the agent registers). Idempotent, changes nothing."""

    @abstractmethod
    def spawn(self, spec: GuestSpec) -> None:
        """Creates the guest and starts it: a root disk of `spec.disk_gib` as a qcow2
        overlay whose backing file is `spec.image_path` (none with `spec.root_volume` and
        no image: the guest boots from that volume), a definition that survives a
        hypervisor restart, and the hostname, ssh keys and user data injected as metadata.
        Returns once the guest is started (not booted: watch `read_console`).

        Idempotent: if the guest exists with an equal spec, nothing is changed (not even
        its power state). On any failure, everything this call made is removed before the
        error is raised (a guest that existed before is never touched), so a retry starts
        clean.

        Raises GuestAlreadyExists (the uid is taken with another spec), ImageError (the
        image is missing, unreadable, not in `spec.image_format`, has a backing file of
        its own, or is larger than `disk_gib`).
        """

    @abstractmethod
    def destroy(self, uid: str) -> None:
        """Powers the guest off at once, removes its definition, disks and console log.

        Idempotent: succeeds if the guest (or any part of it) is already gone, and cleans
        up what a crashed `spawn` left.
        """

    @abstractmethod
    def start(self, uid: str) -> None:
        """Powers on a SHUTOFF or CRASHED guest. Idempotent: no-op if it is RUNNING.

        Raises GuestNotFound, InvalidGuestState (PAUSED: use `resume`).
        """

    @abstractmethod
    def stop(self, uid: str, timeout_seconds: float = DEFAULT_SHUTDOWN_TIMEOUT) -> None:
        """Shuts the guest down: asks it (ACPI power button) and waits up to
        `timeout_seconds`, then powers it off. A PAUSED guest is powered off at once, as is
        any guest when `timeout_seconds` is 0. Ends SHUTOFF. Idempotent: no-op if SHUTOFF
        or CRASHED.

        Raises GuestNotFound.
        """

    @abstractmethod
    def reboot(
        self, uid: str, hard: bool = False, timeout_seconds: float = DEFAULT_SHUTDOWN_TIMEOUT
    ) -> None:
        """Restarts the guest; it boots again (a new boot on the console).

        Soft (`hard=False`): the guest must be RUNNING; it is asked to shut down (ACPI) and
        started again, or, when it has not shut down within `timeout_seconds`, rebooted
        hard (as Nova does). Hard: the guest is powered off, whatever its state (RUNNING,
        PAUSED, SHUTOFF, CRASHED), and started again from its definition. Ends RUNNING.
        Not idempotent (each call is one more boot): the agent counts reboots.

        Raises GuestNotFound, InvalidGuestState (soft reboot of a guest not RUNNING).
        """

    @abstractmethod
    def suspend(self, uid: str) -> None:
        """Pauses a RUNNING guest in memory (PAUSED). Idempotent: no-op if PAUSED.

        Raises GuestNotFound, InvalidGuestState (SHUTOFF or CRASHED).
        """

    @abstractmethod
    def resume(self, uid: str) -> None:
        """Continues a PAUSED guest (RUNNING). Idempotent: no-op if RUNNING.

        Raises GuestNotFound, InvalidGuestState (SHUTOFF or CRASHED: use `start`).
        """

    @abstractmethod
    def state(self, uid: str) -> GuestState:
        """The guest's state now; ABSENT if there is no such guest (this query never
        raises GuestNotFound). Idempotent, changes nothing."""

    @abstractmethod
    def list_guests(self) -> dict[str, GuestState]:
        """Every guest this driver manages on the host, by uid, with its state (never
        ABSENT). Guests of other tools on the same hypervisor are not listed. Idempotent."""

    @abstractmethod
    def read_console(self, uid: str, offset: int = 0, max_bytes: int = CONSOLE_CHUNK) -> bytes:
        """Serial console output of the guest from byte `offset` of its console stream,
        at most `max_bytes` (capped at CONSOLE_CHUNK); empty when there is nothing past
        `offset`. The stream starts when the guest is spawned and only grows: it spans
        reboots, stops and rebuilds, and ends with `destroy`. Idempotent.

        Raises GuestNotFound; ValueError for a negative offset.
        """

    @abstractmethod
    def rebuild(self, uid: str, spec: GuestSpec) -> None:
        """Replaces the root disk with a fresh overlay of `spec.image_path` (all data on it
        is lost; with `spec.root_volume` and no image, that volume, which the caller
        replaced) and applies `spec` (image, hostname, keys, user data) to the guest, which
        keeps its uid and console stream. A RUNNING or PAUSED guest is powered off, rebuilt
        and started again (RUNNING); a SHUTOFF or CRASHED one stays SHUTOFF. The new disk
        is made before the old one is touched: on ImageError the guest is unchanged.
        Not idempotent in effect (each call wipes the disk again); safe to repeat.

        Raises GuestNotFound, ImageError, ValueError (`spec.uid` is not `uid`).
        """

    @abstractmethod
    def resize(self, uid: str, spec: GuestSpec) -> None:
        """Gives a SHUTOFF (or CRASHED) guest `spec.vcpus`, `spec.memory_mib` and
        `spec.disk_gib`; the root disk grows or shrinks to the new size (shrinking drops
        what lies beyond it: callers shrink only to undo a grow; a `root_volume` is grown
        by its owner, not here). The guest stays off and
        keeps its disk content, uid and console stream. Idempotent.

        Raises GuestNotFound, InvalidGuestState (the guest is running or paused),
        ImageError (the disk cannot be resized), ValueError (`spec.uid` is not `uid`).
        """

    @abstractmethod
    def snapshot(self, uid: str, dest: Path) -> None:
        """Writes the root disk's current content to `dest` as a standalone qcow2 (no
        backing file), whatever the guest's state; a running guest keeps running (it may be
        paused briefly). `dest` appears complete or not at all; an existing file is
        replaced. Idempotent (a repeat writes the content of that moment again).

        Raises GuestNotFound, ImageError (`dest` cannot be written).
        """

    # ---- live migration (optional: drivers that cannot raise MigrationFailed) -------------------

    def prepare_incoming(self, spec: GuestSpec) -> MigrationTarget:
        """Destination side: readies this host to receive guest `spec.uid` by live migration
        and says where the source must send it. Makes the guest's files here (a root disk
        as a fresh qcow2 overlay of the local `spec.image_path`, of `spec.disk_gib`, so a
        block migration copies only what the guest wrote, unless it boots from
        `spec.root_volume` without an image; its metadata files), unless the
        storage is shared with the source (the disk is already here): then nothing is made
        and the target says `shared_storage`. No guest is defined or started.

        Idempotent: a repeat returns an equal target and changes nothing. On failure,
        what this call made is removed before raising.

        Raises GuestAlreadyExists (the guest is already defined on this host),
        ImageError (as `spawn`), MigrationFailed (this host cannot receive migrations,
        e.g. no migration URI configured).
        """
        raise MigrationFailed(uid=spec.uid, reason=f"{type(self).__name__} cannot migrate")

    def migrate_live(
        self,
        uid: str,
        target: MigrationTarget,
        options: MigrationOptions | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> MigrationResult:
        """Source side: moves the RUNNING or PAUSED guest `uid` to `target` (from the
        destination's `prepare_incoming`) while it runs, calling `on_progress` about every
        half second with a sample. On return the guest runs on the destination (defined
        there, same state, same uid) and nothing of it is left here: no definition, and no
        files unless the storage is shared. The console stream on the destination starts
        at the switch-over (the guest's output continues there).

        Not idempotent (one call, one migration); a guest that is no longer here raises
        GuestNotFound. On any failure (the destination dies or becomes unreachable, the
        transfer fails, `options.timeout_seconds` passes) the guest keeps running here as it
        was and MigrationFailed is raised with the reason; the destination's leftovers are
        for its `cleanup_incoming`.

        Raises GuestNotFound, InvalidGuestState (SHUTOFF or CRASHED: nothing to migrate
        live), MigrationFailed, MigrationCancelled (`abort_migration` was called).
        """
        raise MigrationFailed(uid=uid, reason=f"{type(self).__name__} cannot migrate")

    def migrate_cold(
        self,
        uid: str,
        target: MigrationTarget,
        options: MigrationOptions | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> MigrationResult:
        """Source side: moves the SHUTOFF (or CRASHED) guest `uid` to `target` (from the
        destination's `prepare_incoming`): its definition and, unless the storage is
        shared, its disk. On return the guest is on the destination, PAUSED before its
        first instruction (`resume` boots it, `stop` powers it off at once), and nothing
        of it is left here, as after `migrate_live`. Only `bandwidth_mibps`,
        `block_migration` and `timeout_seconds` of the options apply.

        Not idempotent (one call, one migration); a guest that is no longer here raises
        GuestNotFound. On any failure the guest is SHUTOFF here as it was and
        MigrationFailed (or MigrationCancelled, after `abort_migration`) is raised.

        Raises GuestNotFound, InvalidGuestState (RUNNING or PAUSED: stop it first),
        MigrationFailed, MigrationCancelled.
        """
        raise MigrationFailed(uid=uid, reason=f"{type(self).__name__} cannot migrate")

    def abort_migration(self, uid: str) -> None:
        """Source side: cancels the migration of `uid` that `migrate_live` or `migrate_cold`
        runs (in another thread); that call then raises MigrationCancelled and the guest
        stays here as it was. Returns at once. Idempotent: no-op when no migration runs (also
        when it has already completed: then the guest is on the destination).

        Raises GuestNotFound (no such guest here and no migration of it running).
        """
        raise MigrationFailed(uid=uid, reason=f"{type(self).__name__} cannot migrate")

    def cleanup_incoming(self, uid: str) -> None:
        """Destination side, after a failed or cancelled migration: removes what
        `prepare_incoming` and the incoming migration left (an incoming definition, the
        guest's files unless they are the shared storage's). Idempotent: no-op when there
        is nothing.

        Raises InvalidGuestState when the guest has arrived (it is defined and runs here):
        then the migration completed and only `destroy` may remove it.
        """
        raise MigrationFailed(uid=uid, reason=f"{type(self).__name__} cannot migrate")

    def close(self) -> None:  # noqa: B027 - optional hook, not abstract on purpose
        """Releases connections; the driver reconnects if used again. Idempotent."""

    # ---- NICs and volumes (not abstract: a driver without them refuses with DriverError) --

    def attached_nics(self, uid: str) -> set[str]:
        """MAC addresses of the guest's network interfaces (those of its definition; a
        running guest's are the same once a hot-plug has finished). Raises GuestNotFound."""
        raise DriverError(reason=f"{type(self).__name__} does not change network interfaces")

    def attach_nic(self, uid: str, nic: GuestNic) -> None:
        """Adds a network interface to a RUNNING or SHUTOFF guest: hot-plugged into a
        running one, and kept in its definition (a stopped guest has it at its next start).
        The tap must exist. Idempotent (a NIC with that MAC is success). Raises
        GuestNotFound, InvalidGuestState (paused or crashed), DriverError."""
        raise DriverError(reason=f"{type(self).__name__} does not change network interfaces")

    def detach_nic(self, uid: str, mac_address: str) -> None:
        """Removes the network interface with `mac_address` from the guest's definition
        and, from a running guest, unplugs it and waits until the guest released it.
        Idempotent (no such NIC is success). Raises GuestNotFound, InvalidGuestState
        (paused or crashed), DriverError (also when the guest has not let it go in time)."""
        raise DriverError(reason=f"{type(self).__name__} does not change network interfaces")

    def attached_volumes(self, uid: str) -> set[str]:
        """Serials of the volumes attached to the running guest. Raises GuestNotFound."""
        raise DriverError(reason=f"{type(self).__name__} does not attach volumes")

    def attach_volume(self, uid: str, disk: VolumeDisk) -> None:
        """Hot-plugs a volume into the running guest. Idempotent (a volume with that serial
        already attached is success). Raises GuestNotFound, InvalidGuestState (not running)."""
        raise DriverError(reason=f"{type(self).__name__} does not attach volumes")

    def detach_volume(self, uid: str, serial: str) -> None:
        """Unplugs the volume with `serial` and waits until the guest released it.
        Idempotent (nothing with that serial is success). Raises GuestNotFound."""
        raise DriverError(reason=f"{type(self).__name__} does not attach volumes")

    def resize_volume(self, uid: str, serial: str, size_bytes: int) -> None:
        """Tells the running guest that the attached volume `serial` grew to `size_bytes`.
        Idempotent (a guest that already sees that size or more is left alone).
        Raises GuestNotFound, DriverError (no such volume attached)."""
        raise DriverError(reason=f"{type(self).__name__} does not attach volumes")
