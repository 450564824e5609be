"""An in-memory volume driver: a real driver chosen by configuration, for scale tests.

It keeps the contract's semantics exactly (names, sizes, snapshots that clones depend on,
flatten on snapshot delete, typed errors) but holds everything in one process's memory:
data is stored only up to the highest byte written, so a "1 TiB" volume costs nothing.
Several instances share nothing. Thread-safe. `disk_source` returns kind "fake" (no
hypervisor can open it).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from kumo.drivers.errors import (
    InvalidVolumeSize,
    VolumeAlreadyExists,
    VolumeBusy,
    VolumeNotFound,
)
from kumo.drivers.storage.base import (
    IMAGE_BASE_SNAPSHOT,
    PREFIX,
    DiskSource,
    SnapshotRef,
    VolumeDriver,
    VolumeInfo,
    check_name,
    check_size,
    image_base_name,
)


@dataclass
class _Volume:
    size: int
    data: bytearray = field(default_factory=bytearray)
    snapshots: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    parent: SnapshotRef | None = None


class FakeVolumeDriver(VolumeDriver):
    """Volumes in memory."""

    backend = "fake"

    def __init__(self) -> None:
        self._pools: dict[str, dict[str, _Volume]] = {}
        self._lock = threading.RLock()

    def _pool(self, pool: str) -> dict[str, _Volume]:
        check_name("pool", pool)
        if pool not in self._pools:
            raise VolumeNotFound(pool=pool, name="", reason="no such pool")
        return self._pools[pool]

    def _get(self, pool: str, name: str) -> _Volume:
        check_name("volume", name)
        volume = self._pool(pool).get(name)
        if volume is None:
            raise VolumeNotFound(pool=pool, name=name)
        return volume

    def validate(self) -> None:
        return None

    def ensure_pool(self, pool: str) -> None:
        check_name("pool", pool)
        with self._lock:
            self._pools.setdefault(pool, {})

    def create_volume(self, pool: str, name: str, size_bytes: int) -> None:
        check_name("volume", name)
        check_size(pool, name, size_bytes)
        with self._lock:
            volumes = self._pool(pool)
            if name in volumes:
                if volumes[name].size != size_bytes or volumes[name].parent is not None:
                    raise VolumeAlreadyExists(pool=pool, name=name)
                return
            volumes[name] = _Volume(size_bytes)

    def clone_volume(self, source: SnapshotRef, pool: str, name: str, size_bytes: int) -> None:
        check_name("volume", name)
        check_size(pool, name, size_bytes)
        with self._lock:
            parent = self._get(source.pool, source.volume)
            if source.snapshot not in parent.snapshots:
                raise VolumeNotFound(pool=source.pool, name=f"{source.volume}@{source.snapshot}")
            snap_size, snap_data = parent.snapshots[source.snapshot]
            if size_bytes < snap_size:
                raise InvalidVolumeSize(
                    pool=pool, name=name, size_bytes=size_bytes, reason="smaller than its source"
                )
            volumes = self._pool(pool)
            if name in volumes:
                if volumes[name].parent != source:
                    raise VolumeAlreadyExists(pool=pool, name=name)
                return
            volumes[name] = _Volume(size_bytes, bytearray(snap_data), parent=source)

    def delete_volume(self, pool: str, name: str) -> None:
        check_name("volume", name)
        with self._lock:
            volume = self._pools.get(pool, {}).get(name)
            if volume is None:
                return
            if volume.snapshots:
                raise VolumeBusy(
                    pool=pool, name=name, reason=f"it has snapshots {list(volume.snapshots)}"
                )
            del self._pools[pool][name]

    def resize_volume(self, pool: str, name: str, size_bytes: int) -> None:
        check_size(pool, name, size_bytes)
        with self._lock:
            volume = self._get(pool, name)
            if size_bytes < volume.size:
                raise InvalidVolumeSize(
                    pool=pool, name=name, size_bytes=size_bytes, reason="volumes only grow"
                )
            volume.size = size_bytes

    def flatten_volume(self, pool: str, name: str) -> None:
        with self._lock:
            self._get(pool, name).parent = None

    def create_snapshot(self, pool: str, volume: str, snapshot: str) -> SnapshotRef:
        check_name("snapshot", snapshot)
        with self._lock:
            target = self._get(pool, volume)
            target.snapshots.setdefault(snapshot, (target.size, bytes(target.data)))
        return SnapshotRef(pool, volume, snapshot)

    def delete_snapshot(self, pool: str, volume: str, snapshot: str) -> None:
        check_name("snapshot", snapshot)
        ref = SnapshotRef(pool, volume, snapshot)
        with self._lock:
            target = self._pools.get(pool, {}).get(volume)
            if target is None or snapshot not in target.snapshots:
                return
            for volumes in self._pools.values():
                for child in volumes.values():
                    if child.parent == ref:
                        child.parent = None
            del target.snapshots[snapshot]

    def ensure_image_base(
        self, pool: str, image_uid: str, image_path: Path, fmt: str
    ) -> SnapshotRef:
        if fmt not in ("qcow2", "raw"):
            raise ValueError(f"unsupported image format {fmt!r}")
        if not image_path.is_file():
            raise FileNotFoundError(image_path)
        name = image_base_name(image_uid)
        with self._lock:
            volumes = self._pool(pool)
            if name not in volumes or IMAGE_BASE_SNAPSHOT not in volumes[name].snapshots:
                size = max(1 << 20, -(-image_path.stat().st_size // (1 << 20)) << 20)
                volumes[name] = _Volume(size, bytearray(image_path.read_bytes()))
                self.create_snapshot(pool, name, IMAGE_BASE_SNAPSHOT)
        return SnapshotRef(pool, name, IMAGE_BASE_SNAPSHOT)

    def copy_volume(self, source: SnapshotRef, since: str | None, pool: str, name: str) -> None:
        """A full copy (the fake tracks no changes; `since` is only checked)."""
        check_name("volume", name)
        with self._lock:
            origin = self._get(source.pool, source.volume)
            if source.snapshot not in origin.snapshots or (
                since is not None and since not in origin.snapshots
            ):
                raise VolumeNotFound(pool=source.pool, name=f"{source.volume}@{source.snapshot}")
            size, data = origin.snapshots[source.snapshot]
            volumes = self._pool(pool)
            target = volumes.setdefault(name, _Volume(size))
            target.size = max(target.size, size)
            target.data = bytearray(data)

    def volume_info(self, pool: str, name: str) -> VolumeInfo:
        with self._lock:
            volume = self._get(pool, name)
            return VolumeInfo(pool, name, volume.size, tuple(volume.snapshots), volume.parent)

    def list_volumes(self, pool: str) -> list[str]:
        with self._lock:
            return sorted(n for n in self._pools.get(pool, {}) if n.startswith(PREFIX))

    def read(self, pool: str, name: str, offset: int, length: int) -> bytes:
        with self._lock:
            volume = self._get(pool, name)
            length = max(0, min(length, volume.size - offset))
            chunk = bytes(volume.data[offset : offset + length])
            return chunk + bytes(length - len(chunk))

    def write(self, pool: str, name: str, offset: int, data: bytes) -> None:
        with self._lock:
            volume = self._get(pool, name)
            end = offset + len(data)
            if offset < 0 or end > volume.size:
                raise InvalidVolumeSize(pool=pool, name=name, size_bytes=end, reason="past the end")
            if len(volume.data) < end:
                volume.data.extend(bytes(end - len(volume.data)))
            volume.data[offset:end] = data

    def disk_source(self, pool: str, name: str) -> DiskSource:
        with self._lock:
            self._get(pool, name)
        return DiskSource(kind="fake", path=f"{pool}/{name}")
