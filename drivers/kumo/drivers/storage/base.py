"""The volume driver contract: what the control plane asks of a block storage backend.

The API server drives storage centrally (Ceph pools and images have one control point): its
operation handlers call one `VolumeDriver` per backend to create, clone, snapshot, resize and
delete volumes. Guests reach a volume through `disk_source()`, which says how a hypervisor
opens it (an RBD network disk with cephx credentials, or a local qcow2 file).

Names. Every object a driver makes starts with `PREFIX` (`kumo-`): volumes are named by the
caller (`kumo-vol-<uid>`), snapshots are children of a volume, and image bases
(`ensure_image_base`) are `kumo-img-<image uid>` with one snapshot `base` that volumes are
cloned from copy-on-write. `list_volumes` reports only names with the prefix, so a
reconciler can compare a pool with the database without touching foreign objects.

Sizes are in bytes, a positive multiple of `BLOCK` (1 MiB), at most `MAX_SIZE_BYTES`.

Every method may raise `StorageUnavailable` (retry later) and `DriverError` (anything
unexpected, with the cause chained); the docstrings name the others and say which calls are
idempotent. Implementations are entry points in the `kumo.drivers.volume` group; one
contract suite, tests/contract/test_volume_driver.py, runs over all of them.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

from kumo.drivers.errors import InvalidVolumeSize

PREFIX = "kumo-"
#: Sizes are whole multiples of this.
BLOCK = 1 << 20
#: The largest volume any driver accepts: 16 TiB.
MAX_SIZE_BYTES = 16 << 40
#: Names drivers accept for pools, volumes and snapshots.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}")
#: The snapshot of an image base that volumes are cloned from.
IMAGE_BASE_SNAPSHOT = "base"


def image_base_name(image_uid: str) -> str:
    """The name of an image's base volume in a pool."""
    return f"{PREFIX}img-{image_uid}"


def check_name(kind: str, name: str) -> None:
    """ValueError unless `name` is a valid pool, volume or snapshot name."""
    if not isinstance(name, str) or NAME_PATTERN.fullmatch(name) is None:
        raise ValueError(f"invalid {kind} name {name!r}")


def check_size(pool: str, name: str, size_bytes: int) -> None:
    """InvalidVolumeSize unless `size_bytes` is a positive multiple of BLOCK up to the max."""
    if not isinstance(size_bytes, int) or size_bytes <= 0:
        reason = "must be positive"
    elif size_bytes % BLOCK:
        reason = f"must be a multiple of {BLOCK} bytes"
    elif size_bytes > MAX_SIZE_BYTES:
        reason = f"at most {MAX_SIZE_BYTES} bytes"
    else:
        return
    raise InvalidVolumeSize(pool=pool, name=name, size_bytes=size_bytes, reason=reason)


@dataclass(frozen=True)
class SnapshotRef:
    """A snapshot of a volume, the source of a copy-on-write clone."""

    pool: str
    volume: str
    snapshot: str


@dataclass(frozen=True)
class VolumeInfo:
    """What a driver observes of one volume."""

    pool: str
    name: str
    size_bytes: int
    snapshots: tuple[str, ...]
    """Its snapshots' names, oldest first."""
    parent: SnapshotRef | None
    """The snapshot it is a copy-on-write clone of, until flattened."""


@dataclass(frozen=True)
class DiskSource:
    """How a hypervisor opens a volume.

    `kind` "rbd": `path` is `pool/image`, `hosts` the monitors (host, port), `user` and `key`
    the cephx identity (the key goes into a libvirt secret), `conf_path` a ceph.conf for
    QEMU's librbd. `kind` "file": `path` is the file and `format` its format.
    """

    kind: str
    path: str
    format: str = "raw"
    hosts: tuple[tuple[str, int], ...] = ()
    user: str = ""
    key: str = field(default="", repr=False)
    conf_path: str = ""


@dataclass(frozen=True)
class IoLimits:
    """QoS limits of a volume type (0 = unlimited), applied where the guest opens it."""

    total_iops_sec: int = 0
    read_bytes_sec: int = 0
    write_bytes_sec: int = 0


@dataclass(frozen=True)
class VolumeDisk:
    """A volume as a guest gets it: the serial it sees, where the host opens it, how."""

    serial: str
    source: DiskSource
    read_only: bool = False
    limits: IoLimits = IoLimits()


class VolumeDriver(ABC):
    """One block storage backend."""

    #: The backend name the volume types use (`rbd`, `qcow2`, `fake`).
    backend: str = ""

    @abstractmethod
    def validate(self) -> None:
        """Checks that the backend is reachable and usable. Idempotent.
        Raises StorageUnavailable with the reason."""

    @abstractmethod
    def ensure_pool(self, pool: str) -> None:
        """Makes the pool if missing. Idempotent."""

    @abstractmethod
    def create_volume(self, pool: str, name: str, size_bytes: int) -> None:
        """Makes an empty (zero-filled) volume. Idempotent: a volume of that name and size
        already there is success. Raises VolumeAlreadyExists (other size), InvalidVolumeSize,
        VolumeNotFound (no such pool)."""

    @abstractmethod
    def clone_volume(self, source: SnapshotRef, pool: str, name: str, size_bytes: int) -> None:
        """Makes a copy-on-write clone of a snapshot, grown to `size_bytes`. Idempotent as
        create_volume. Raises VolumeNotFound (no such snapshot), InvalidVolumeSize (smaller
        than the snapshot), VolumeAlreadyExists."""

    @abstractmethod
    def delete_volume(self, pool: str, name: str) -> None:
        """Deletes a volume. Idempotent: a missing volume is success. Raises VolumeBusy if it
        still has snapshots."""

    @abstractmethod
    def resize_volume(self, pool: str, name: str, size_bytes: int) -> None:
        """Grows a volume. Idempotent: the same size is success. Raises InvalidVolumeSize
        (smaller than now, or out of range), VolumeNotFound."""

    @abstractmethod
    def flatten_volume(self, pool: str, name: str) -> None:
        """Copies the parent's data into a clone so it no longer depends on its snapshot.
        Idempotent: a volume without parent is success. Raises VolumeNotFound."""

    @abstractmethod
    def create_snapshot(self, pool: str, volume: str, snapshot: str) -> SnapshotRef:
        """Takes a read-only point-in-time snapshot that clones can be made from.
        Idempotent: an existing snapshot of that name is success. Raises VolumeNotFound."""

    @abstractmethod
    def delete_snapshot(self, pool: str, volume: str, snapshot: str) -> None:
        """Deletes a snapshot, flattening the clones made from it first (a clone deleted
        meanwhile is skipped). Idempotent: a missing snapshot (or volume) is success."""

    @abstractmethod
    def ensure_image_base(
        self, pool: str, image_uid: str, image_path: Path, fmt: str
    ) -> SnapshotRef:
        """Imports an image file (`qcow2` or `raw`) once as `image_base_name(uid)` with the
        snapshot IMAGE_BASE_SNAPSHOT, the source that volumes and root disks are cloned from
        without copying. Idempotent: an existing complete base is returned as is (a partial
        one from a crash is replaced). Raises FileNotFoundError, ValueError (bad format)."""

    @abstractmethod
    def copy_volume(self, source: SnapshotRef, since: str | None, pool: str, name: str) -> None:
        """Makes `pool/name` hold the data of the snapshot `source` (created at its size if
        missing, grown if smaller), as backups and restores need. With `since`, an older
        snapshot of the same volume whose data `pool/name` already holds, only what changed
        after it is copied (RBD: the snapshot diff); a driver without change tracking copies
        everything. Idempotent. Raises VolumeNotFound (source or `since` missing)."""

    @abstractmethod
    def volume_info(self, pool: str, name: str) -> VolumeInfo:
        """Size, snapshots and parent of a volume. Raises VolumeNotFound."""

    @abstractmethod
    def list_volumes(self, pool: str) -> list[str]:
        """Names of the volumes in the pool that start with PREFIX (image bases included),
        sorted. A missing pool has none."""

    @abstractmethod
    def read(self, pool: str, name: str, offset: int, length: int) -> bytes:
        """Reads `length` bytes at `offset` (past the end: fewer). Raises VolumeNotFound."""

    @abstractmethod
    def write(self, pool: str, name: str, offset: int, data: bytes) -> None:
        """Writes `data` at `offset`. Raises VolumeNotFound, InvalidVolumeSize (past the end)."""

    @abstractmethod
    def disk_source(self, pool: str, name: str) -> DiskSource:
        """How a hypervisor on this machine opens the volume. Raises VolumeNotFound."""
