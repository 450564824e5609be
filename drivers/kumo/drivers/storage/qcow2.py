"""The local qcow2 volume driver: volumes are qcow2 files made with qemu-img (the all-in-one
default, no cluster needed).

Layout under `root`: a pool is a directory; a volume is `<pool>/<name>.qcow2`; a snapshot is
a read-only, self-contained qcow2 copy `<pool>/.snapshots/<volume>/<snapshot>.qcow2` taken
with `qemu-img convert`; a clone is a qcow2 overlay whose backing file is the snapshot (the
copy-on-write clone, as instance root disks over the image cache), flattened with
`qemu-img rebase -b ""` when its snapshot is deleted. Every file is written under a temporary
name and renamed into place, so a crash never leaves a half-made volume under its real name.
Guests open volumes as files (`disk_source` kind "file").
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from kumo.drivers.errors import (
    DriverError,
    InvalidVolumeSize,
    StorageUnavailable,
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

_SNAPSHOTS = ".snapshots"


def _run(*args: str) -> str:
    try:
        result = subprocess.run(args, capture_output=True, text=True, check=False)
    except FileNotFoundError as err:
        raise StorageUnavailable(reason=f"{args[0]} is not installed") from err
    if result.returncode != 0:
        raise DriverError(reason=f"{' '.join(args[:2])} failed: {result.stderr.strip()}")
    return result.stdout


class Qcow2Driver(VolumeDriver):
    """Volumes as qcow2 files under `root` (one directory per pool)."""

    backend = "qcow2"

    def __init__(self, root: str) -> None:
        self.root = Path(root)

    # ---- paths ------------------------------------------------------------------------------

    def _pool(self, pool: str) -> Path:
        check_name("pool", pool)
        path = self.root / pool
        if not path.is_dir():
            raise VolumeNotFound(pool=pool, name="", reason="no such pool")
        return path

    def _volume(self, pool: str, name: str) -> Path:
        check_name("volume", name)
        return self._pool(pool) / f"{name}.qcow2"

    def _existing(self, pool: str, name: str) -> Path:
        path = self._volume(pool, name)
        if not path.is_file():
            raise VolumeNotFound(pool=pool, name=name)
        return path

    def _snapshot(self, pool: str, volume: str, snapshot: str) -> Path:
        check_name("volume", volume)
        check_name("snapshot", snapshot)
        return self._pool(pool) / _SNAPSHOTS / volume / f"{snapshot}.qcow2"

    def _ref_of(self, backing: str) -> SnapshotRef | None:
        """The snapshot a backing file path is, if it is one of ours."""
        path = Path(backing)
        try:
            relative = path.relative_to(self.root)
        except ValueError:
            return None
        parts = relative.parts
        if len(parts) == 4 and parts[1] == _SNAPSHOTS and parts[3].endswith(".qcow2"):
            return SnapshotRef(parts[0], parts[2], parts[3].removesuffix(".qcow2"))
        return None

    @staticmethod
    def _info(path: Path) -> dict[str, object]:
        info: dict[str, object] = json.loads(
            _run("qemu-img", "info", "-U", "--output=json", str(path))
        )
        return info

    @staticmethod
    @contextlib.contextmanager
    def _gone_is_not_found(path: Path, pool: str, name: str) -> Iterator[None]:
        """VolumeNotFound instead of the DriverError of a qemu-img run on volume `path` that
        was deleted while it ran (a DeleteVolume beside, say, a DeleteSnapshot flattening
        its clones)."""
        try:
            yield
        except DriverError:
            if not path.is_file():
                raise VolumeNotFound(pool=pool, name=name) from None
            raise

    @staticmethod
    def _temp(target: Path) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        os.close(handle)
        return Path(name)

    # ---- contract ---------------------------------------------------------------------------

    def validate(self) -> None:
        if shutil.which("qemu-img") is None or shutil.which("qemu-io") is None:
            raise StorageUnavailable(reason="qemu-img/qemu-io are not installed (qemu-utils)")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StorageUnavailable(reason=f"cannot use {self.root}: {err}") from err

    def ensure_pool(self, pool: str) -> None:
        check_name("pool", pool)
        (self.root / pool).mkdir(parents=True, exist_ok=True)

    def create_volume(self, pool: str, name: str, size_bytes: int) -> None:
        check_size(pool, name, size_bytes)
        path = self._volume(pool, name)
        if path.exists():
            if self.volume_info(pool, name).size_bytes != size_bytes:
                raise VolumeAlreadyExists(pool=pool, name=name)
            return
        temp = self._temp(path)
        try:
            _run("qemu-img", "create", "-q", "-f", "qcow2", str(temp), str(size_bytes))
            temp.rename(path)
        finally:
            temp.unlink(missing_ok=True)

    def clone_volume(self, source: SnapshotRef, pool: str, name: str, size_bytes: int) -> None:
        check_size(pool, name, size_bytes)
        backing = self._snapshot(source.pool, source.volume, source.snapshot)
        if not backing.is_file():
            raise VolumeNotFound(pool=source.pool, name=f"{source.volume}@{source.snapshot}")
        if size_bytes < int(str(self._info(backing)["virtual-size"])):
            raise InvalidVolumeSize(
                pool=pool, name=name, size_bytes=size_bytes, reason="smaller than its source"
            )
        path = self._volume(pool, name)
        if path.exists():
            info = self.volume_info(pool, name)
            if info.parent != source or info.size_bytes != size_bytes:
                raise VolumeAlreadyExists(pool=pool, name=name)
            return
        temp = self._temp(path)
        try:
            _run(
                "qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(backing),
                str(temp), str(size_bytes),
            )  # fmt: skip
            temp.rename(path)
        finally:
            temp.unlink(missing_ok=True)

    def delete_volume(self, pool: str, name: str) -> None:
        path = self._volume(pool, name)
        if not path.exists():
            return
        if snapshots := self.volume_info(pool, name).snapshots:
            raise VolumeBusy(pool=pool, name=name, reason=f"it has snapshots {list(snapshots)}")
        path.unlink(missing_ok=True)
        shutil.rmtree(self._pool(pool) / _SNAPSHOTS / name, ignore_errors=True)

    def resize_volume(self, pool: str, name: str, size_bytes: int) -> None:
        check_size(pool, name, size_bytes)
        path = self._existing(pool, name)
        current = self.volume_info(pool, name).size_bytes
        if size_bytes < current:
            raise InvalidVolumeSize(
                pool=pool, name=name, size_bytes=size_bytes, reason="volumes only grow"
            )
        if size_bytes > current:
            _run("qemu-img", "resize", "-q", "-f", "qcow2", str(path), str(size_bytes))

    def flatten_volume(self, pool: str, name: str) -> None:
        path = self._existing(pool, name)
        if self.volume_info(pool, name).parent is not None:
            with self._gone_is_not_found(path, pool, name):
                _run("qemu-img", "rebase", "-q", "-f", "qcow2", "-b", "", str(path))

    def create_snapshot(self, pool: str, volume: str, snapshot: str) -> SnapshotRef:
        source = self._existing(pool, volume)
        path = self._snapshot(pool, volume, snapshot)
        if not path.exists():
            temp = self._temp(path)
            try:
                _run(
                    "qemu-img",
                    "convert",
                    "-U",
                    "-f",
                    "qcow2",
                    "-O",
                    "qcow2",
                    str(source),
                    str(temp),
                )
                temp.chmod(0o444)
                temp.rename(path)
            finally:
                temp.unlink(missing_ok=True)
        return SnapshotRef(pool, volume, snapshot)

    def delete_snapshot(self, pool: str, volume: str, snapshot: str) -> None:
        try:
            path = self._snapshot(pool, volume, snapshot)
        except VolumeNotFound:
            return
        if not path.exists():
            return
        ref = SnapshotRef(pool, volume, snapshot)
        for child_pool in sorted(p.name for p in self.root.iterdir() if p.is_dir()):
            for child in self.list_volumes(child_pool):
                # (a clone deleted meanwhile, listed and then gone, needs nothing)
                with contextlib.suppress(VolumeNotFound):
                    if self.volume_info(child_pool, child).parent == ref:
                        self.flatten_volume(child_pool, child)
        path.unlink(missing_ok=True)

    def ensure_image_base(
        self, pool: str, image_uid: str, image_path: Path, fmt: str
    ) -> SnapshotRef:
        if fmt not in ("qcow2", "raw"):
            raise ValueError(f"unsupported image format {fmt!r}")
        if not image_path.is_file():
            raise FileNotFoundError(image_path)
        name = image_base_name(image_uid)
        snapshot = self._snapshot(pool, name, IMAGE_BASE_SNAPSHOT)
        if not snapshot.exists():
            path = self._volume(pool, name)
            temp = self._temp(path)
            try:
                _run("qemu-img", "convert", "-f", fmt, "-O", "qcow2", str(image_path), str(temp))
                temp.rename(path)
            finally:
                temp.unlink(missing_ok=True)
            self.create_snapshot(pool, name, IMAGE_BASE_SNAPSHOT)
        return SnapshotRef(pool, name, IMAGE_BASE_SNAPSHOT)

    def copy_volume(self, source: SnapshotRef, since: str | None, pool: str, name: str) -> None:
        """qcow2 has no change tracking here: always a full copy (`since` is only checked)."""
        snapshot = self._snapshot(source.pool, source.volume, source.snapshot)
        if not snapshot.is_file():
            raise VolumeNotFound(pool=source.pool, name=f"{source.volume}@{source.snapshot}")
        if since is not None and not self._snapshot(source.pool, source.volume, since).is_file():
            raise VolumeNotFound(pool=source.pool, name=f"{source.volume}@{since}")
        path = self._volume(pool, name)
        temp = self._temp(path)
        try:
            _run("qemu-img", "convert", "-f", "qcow2", "-O", "qcow2", str(snapshot), str(temp))
            temp.rename(path)
        finally:
            temp.unlink(missing_ok=True)

    def volume_info(self, pool: str, name: str) -> VolumeInfo:
        path = self._existing(pool, name)
        with self._gone_is_not_found(path, pool, name):
            info = self._info(path)
        backing = info.get("full-backing-filename") or info.get("backing-filename")
        parent = self._ref_of(str(backing)) if backing else None
        snapshot_dir = self._pool(pool) / _SNAPSHOTS / name
        snapshots = sorted(snapshot_dir.glob("*.qcow2"), key=lambda p: p.stat().st_mtime_ns)
        return VolumeInfo(
            pool,
            name,
            int(str(info["virtual-size"])),
            tuple(p.name.removesuffix(".qcow2") for p in snapshots),
            parent,
        )

    def list_volumes(self, pool: str) -> list[str]:
        try:
            directory = self._pool(pool)
        except VolumeNotFound:
            return []
        return sorted(
            p.name.removesuffix(".qcow2") for p in directory.glob(f"{PREFIX}*.qcow2") if p.is_file()
        )

    def read(self, pool: str, name: str, offset: int, length: int) -> bytes:
        path = self._existing(pool, name)
        length = max(0, min(length, self.volume_info(pool, name).size_bytes - offset))
        if length == 0:
            return b""
        out = _run(
            "qemu-io", "-r", "-U", "-f", "qcow2", "-c", f"read -v {offset} {length}", str(path)
        )
        data = bytearray()
        for line in out.splitlines():
            head, sep, rest = line.partition(":  ")
            if not sep or not all(c in "0123456789abcdef" for c in head):
                continue
            data.extend(bytes.fromhex(rest.split("  ", 1)[0]))
        return bytes(data[:length])

    def write(self, pool: str, name: str, offset: int, data: bytes) -> None:
        path = self._existing(pool, name)
        if offset < 0 or offset + len(data) > self.volume_info(pool, name).size_bytes:
            raise InvalidVolumeSize(
                pool=pool, name=name, size_bytes=offset + len(data), reason="past the end"
            )
        with tempfile.NamedTemporaryFile(prefix="kumo-qcow2-write-") as source:
            source.write(data)
            source.flush()
            _run(
                "qemu-io", "-f", "qcow2", "-c", f"write -s {source.name} {offset} {len(data)}",
                str(path),
            )  # fmt: skip

    def disk_source(self, pool: str, name: str) -> DiskSource:
        return DiskSource(kind="file", path=str(self._existing(pool, name)), format="qcow2")
