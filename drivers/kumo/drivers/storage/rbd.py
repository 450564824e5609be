"""The Ceph RBD volume driver, over Debian's `rados`/`rbd` Python bindings.

Volumes are RBD images (format 2, layering) in the pool of their volume type; snapshots are
RBD snapshots, protected while clones depend on them; clones are copy-on-write children;
image bases are imported once per pool and cloned from their protected `base` snapshot, as
Ceph deployments of OpenStack do. The driver connects with one cephx identity (`user`, its
keyring) and keeps one cluster connection; guests reach volumes as QEMU network disks
through `disk_source()` (monitors, user and key), never as kernel block devices.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import rados
import rbd

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

_FEATURES = rbd.RBD_FEATURE_LAYERING
_COPY_CHUNK = 4 << 20


class RbdDriver(VolumeDriver):
    """Volumes as RBD images. `conf` is a ceph.conf naming the monitors; `user` the cephx
    client (without `client.`), `keyring` its keyring file (default: the conf's);
    `busy_timeout` how long a delete waits for the watchers of a dead client to expire."""

    backend = "rbd"

    def __init__(
        self,
        conf: str,
        user: str = "admin",
        keyring: str = "",
        connect_timeout: int = 10,
        busy_timeout: float = 45.0,
    ) -> None:
        self.conf = conf
        self.busy_timeout = busy_timeout
        self.user = user
        self.keyring = keyring
        self.connect_timeout = connect_timeout
        self._cluster: rados.Rados | None = None
        self._lock = threading.Lock()

    # ---- connection -------------------------------------------------------------------------

    def _connect(self) -> rados.Rados:
        with self._lock:
            if self._cluster is None:
                options: dict[str, str] = {"keyring": self.keyring} if self.keyring else {}
                cluster = rados.Rados(conffile=self.conf, name=f"client.{self.user}", conf=options)
                try:
                    cluster.connect(timeout=self.connect_timeout)
                except rados.Error as err:
                    raise StorageUnavailable(reason=f"cannot connect to Ceph: {err}") from err
                self._cluster = cluster
            return self._cluster

    def close(self) -> None:
        """Drops the cluster connection (the next call connects again). Idempotent."""
        with self._lock:
            if self._cluster is not None:
                self._cluster.shutdown()
                self._cluster = None

    @contextlib.contextmanager
    def _ioctx(self, pool: str) -> Iterator[rados.Ioctx]:
        check_name("pool", pool)
        try:
            ioctx = self._connect().open_ioctx(pool)
        except rados.ObjectNotFound as err:
            raise VolumeNotFound(pool=pool, name="", reason="no such pool") from err
        except rados.Error as err:
            raise StorageUnavailable(reason=str(err)) from err
        try:
            yield ioctx
        finally:
            ioctx.close()

    @contextlib.contextmanager
    def _image(self, pool: str, name: str, snapshot: str | None = None) -> Iterator[rbd.Image]:
        check_name("volume", name)
        with self._ioctx(pool) as ioctx:
            try:
                image = rbd.Image(ioctx, name, snapshot=snapshot)
            except rbd.ImageNotFound as err:
                raise VolumeNotFound(pool=pool, name=name) from err
            try:
                yield image
            finally:
                image.close()

    # ---- contract ---------------------------------------------------------------------------

    def validate(self) -> None:
        try:
            self._connect().get_fsid()
        except rados.Error as err:
            raise StorageUnavailable(reason=str(err)) from err

    def ensure_pool(self, pool: str) -> None:
        check_name("pool", pool)
        cluster = self._connect()
        try:
            if cluster.pool_exists(pool):
                return
            cluster.create_pool(pool)
            with self._ioctx(pool) as ioctx:
                ioctx.application_enable("rbd")
        except rados.Error as err:
            raise DriverError(reason=f"cannot create pool {pool}: {err}") from err

    def create_volume(self, pool: str, name: str, size_bytes: int) -> None:
        check_name("volume", name)
        check_size(pool, name, size_bytes)
        with self._ioctx(pool) as ioctx:
            try:
                rbd.RBD().create(ioctx, name, size_bytes, old_format=False, features=_FEATURES)
            except rbd.ImageExists as err:
                try:
                    size = self._size(ioctx, name)
                except rbd.ImageNotFound:
                    # Listed but unopenable: a create or remove a crash cut short. Finish
                    # removing it and create it afresh.
                    _remove(ioctx, name)
                    rbd.RBD().create(ioctx, name, size_bytes, old_format=False, features=_FEATURES)
                    return
                if size != size_bytes:
                    raise VolumeAlreadyExists(pool=pool, name=name) from err

    def clone_volume(self, source: SnapshotRef, pool: str, name: str, size_bytes: int) -> None:
        check_name("volume", name)
        check_size(pool, name, size_bytes)
        with self._image(source.pool, source.volume, source.snapshot) as parent:
            parent_size = parent.size()
        if size_bytes < parent_size:
            raise InvalidVolumeSize(
                pool=pool, name=name, size_bytes=size_bytes, reason="smaller than its source"
            )
        self._protect(source)
        with self._ioctx(source.pool) as parent_io, self._ioctx(pool) as ioctx:
            try:
                rbd.RBD().clone(
                    parent_io, source.volume, source.snapshot, ioctx, name, features=_FEATURES
                )
            except rbd.ImageExists as err:
                info = self.volume_info(pool, name)
                if info.parent != source and info.parent is not None:
                    raise VolumeAlreadyExists(pool=pool, name=name) from err
        with self._image(pool, name) as image:
            if image.size() < size_bytes:
                image.resize(size_bytes)

    def delete_volume(self, pool: str, name: str) -> None:
        check_name("volume", name)
        with self._ioctx(pool) as ioctx:
            try:
                with contextlib.closing(rbd.Image(ioctx, name)) as image:
                    if snapshots := [s["name"] for s in image.list_snaps()]:
                        raise VolumeBusy(
                            pool=pool, name=name, reason=f"it has snapshots {snapshots}"
                        )
            except rbd.ImageNotFound:
                pass  # absent, or half-removed by a crash: remove() finishes it
            # A client that died with the image open keeps a watch on it until the OSD times
            # the watch out (about 30 s): wait that long before calling the image busy.
            deadline = time.monotonic() + self.busy_timeout
            while True:
                try:
                    _remove(ioctx, name)
                    return
                except rbd.ImageBusy as err:
                    if time.monotonic() > deadline:
                        raise VolumeBusy(
                            pool=pool, name=name, reason="a client has it open"
                        ) from err
                    time.sleep(1.0)

    def resize_volume(self, pool: str, name: str, size_bytes: int) -> None:
        check_size(pool, name, size_bytes)
        with self._image(pool, name) as image:
            current = image.size()
            if size_bytes < current:
                raise InvalidVolumeSize(
                    pool=pool, name=name, size_bytes=size_bytes, reason="volumes only grow"
                )
            if size_bytes > current:
                image.resize(size_bytes, allow_shrink=False)

    def flatten_volume(self, pool: str, name: str) -> None:
        with self._image(pool, name) as image:
            try:
                image.parent_id()
            except rbd.ImageNotFound:
                return
            image.flatten()

    def create_snapshot(self, pool: str, volume: str, snapshot: str) -> SnapshotRef:
        check_name("snapshot", snapshot)
        with self._image(pool, volume) as image:
            if snapshot not in {s["name"] for s in image.list_snaps()}:
                image.create_snap(snapshot)
        return SnapshotRef(pool, volume, snapshot)

    def delete_snapshot(self, pool: str, volume: str, snapshot: str) -> None:
        check_name("snapshot", snapshot)
        try:
            with self._image(pool, volume) as image:
                if snapshot not in {s["name"] for s in image.list_snaps()}:
                    return
                if image.is_protected_snap(snapshot):
                    image.set_snap(snapshot)
                    children = image.list_children()
                    image.set_snap(None)
                    for child_pool, child in children:
                        # (a clone deleted meanwhile, listed and then gone, needs nothing;
                        # without this its NotFound ended the loop as if the source were)
                        with contextlib.suppress(VolumeNotFound):
                            self.flatten_volume(child_pool, child)
                    image.unprotect_snap(snapshot)
                image.remove_snap(snapshot)
        except VolumeNotFound:
            return

    def ensure_image_base(
        self, pool: str, image_uid: str, image_path: Path, fmt: str
    ) -> SnapshotRef:
        if fmt not in ("qcow2", "raw"):
            raise ValueError(f"unsupported image format {fmt!r}")
        if not image_path.is_file():
            raise FileNotFoundError(image_path)
        name = image_base_name(image_uid)
        ref = SnapshotRef(pool, name, IMAGE_BASE_SNAPSHOT)
        with contextlib.suppress(VolumeNotFound), self._image(pool, name) as image:
            snaps = {s["name"] for s in image.list_snaps()}
            if IMAGE_BASE_SNAPSHOT in snaps and image.is_protected_snap(IMAGE_BASE_SNAPSHOT):
                return ref
        # Absent or partial (a crash before the protected snapshot): import it again.
        self.delete_snapshot(pool, name, IMAGE_BASE_SNAPSHOT)
        self.delete_volume(pool, name)
        with tempfile.TemporaryDirectory(prefix="kumo-rbd-import-") as tmp:
            raw = image_path
            if fmt == "qcow2":
                raw = Path(tmp) / "image.raw"
                _qemu_img("convert", "-f", "qcow2", "-O", "raw", str(image_path), str(raw))
            size = -(-raw.stat().st_size // (1 << 20)) << 20
            self.create_volume(pool, name, max(size, 1 << 20))
            self._copy_in(pool, name, raw)
        self.create_snapshot(pool, name, IMAGE_BASE_SNAPSHOT)
        self._protect(ref)
        return ref

    def copy_volume(self, source: SnapshotRef, since: str | None, pool: str, name: str) -> None:
        check_name("volume", name)
        with self._image(source.pool, source.volume, source.snapshot) as image:
            size = image.size()
            if since is not None and since not in {s["name"] for s in image.list_snaps()}:
                raise VolumeNotFound(pool=source.pool, name=f"{source.volume}@{since}")
            try:
                self.create_volume(pool, name, size)
            except VolumeAlreadyExists:
                with self._image(pool, name) as target:
                    if target.size() < size:
                        target.resize(size)
            with self._image(pool, name) as target:
                extents: list[tuple[int, int, bool]] = []
                image.diff_iterate(
                    0,
                    size,
                    since,
                    lambda offset, length, exists: extents.append((offset, length, exists)),
                )
                for offset, length, exists in extents:
                    if not exists:
                        target.discard(offset, length)
                        continue
                    for start in range(offset, offset + length, _COPY_CHUNK):
                        chunk = min(_COPY_CHUNK, offset + length - start)
                        target.write(image.read(start, chunk), start)

    def volume_info(self, pool: str, name: str) -> VolumeInfo:
        with self._image(pool, name) as image:
            snaps = tuple(s["name"] for s in sorted(image.list_snaps(), key=lambda s: s["id"]))
            try:
                parent_pool, parent_image, parent_snap = image.parent_info()
                parent: SnapshotRef | None = SnapshotRef(parent_pool, parent_image, parent_snap)
            except rbd.ImageNotFound:
                parent = None
            return VolumeInfo(pool, name, image.size(), snaps, parent)

    def list_volumes(self, pool: str) -> list[str]:
        try:
            with self._ioctx(pool) as ioctx:
                return sorted(n for n in rbd.RBD().list(ioctx) if n.startswith(PREFIX))
        except VolumeNotFound:
            return []

    def read(self, pool: str, name: str, offset: int, length: int) -> bytes:
        with self._image(pool, name) as image:
            length = max(0, min(length, image.size() - offset))
            return bytes(image.read(offset, length)) if length else b""

    def write(self, pool: str, name: str, offset: int, data: bytes) -> None:
        with self._image(pool, name) as image:
            if offset < 0 or offset + len(data) > image.size():
                raise InvalidVolumeSize(
                    pool=pool, name=name, size_bytes=offset + len(data), reason="past the end"
                )
            image.write(data, offset)

    def disk_source(self, pool: str, name: str) -> DiskSource:
        with self._image(pool, name):
            pass
        cluster = self._connect()
        key = self._key(cluster)
        hosts = _monitors(cluster.conf_get("mon_host") or "")
        return DiskSource(
            kind="rbd",
            path=f"{pool}/{name}",
            hosts=hosts,
            user=self.user,
            key=key,
            conf_path=self.conf,
        )

    # ---- helpers ----------------------------------------------------------------------------

    @staticmethod
    def _size(ioctx: rados.Ioctx, name: str) -> int:
        with contextlib.closing(rbd.Image(ioctx, name)) as image:
            return int(image.size())

    def _protect(self, ref: SnapshotRef) -> None:
        with self._image(ref.pool, ref.volume) as image:
            try:
                if not image.is_protected_snap(ref.snapshot):
                    image.protect_snap(ref.snapshot)
            except rbd.ImageNotFound as err:
                raise VolumeNotFound(pool=ref.pool, name=f"{ref.volume}@{ref.snapshot}") from err

    def _copy_in(self, pool: str, name: str, source: Path) -> None:
        with self._image(pool, name) as image, source.open("rb") as data:
            offset = 0
            while chunk := data.read(_COPY_CHUNK):
                if chunk.count(0) != len(chunk):  # leave holes unwritten: thin images
                    image.write(chunk, offset)
                offset += len(chunk)

    def _key(self, cluster: rados.Rados) -> str:
        """This client's cephx key, from its keyring (QEMU gets it through a libvirt secret)."""
        keyring = self.keyring or cluster.conf_get("keyring") or ""
        for path in keyring.split(","):
            with contextlib.suppress(OSError):
                section = ""
                for line in Path(path.strip()).read_text().splitlines():
                    line = line.strip()
                    if line.startswith("["):
                        section = line.strip("[]")
                    elif section == f"client.{self.user}" and line.startswith("key"):
                        return line.split("=", 1)[1].strip()
        raise DriverError(reason=f"no key for client.{self.user} in {keyring!r}")


def _remove(ioctx: rados.Ioctx, name: str) -> None:
    """Removes an image, also one a crash left half-made or half-removed. Idempotent."""
    try:
        rbd.RBD().remove(ioctx, name)
    except rbd.ImageNotFound:
        return


def _monitors(mon_host: str) -> tuple[tuple[str, int], ...]:
    """(host, port) pairs from a `mon host` value such as `v2:127.0.0.1:3300,[v2:...]`."""
    hosts: list[tuple[str, int]] = []
    for entry in mon_host.replace("[", " ").replace("]", " ").replace(",", " ").split():
        parts = entry.split(":")
        if parts[0] in ("v1", "v2"):
            parts = parts[1:]
        host = parts[0]
        port = int(parts[1]) if len(parts) > 1 else 6789
        if (host, port) not in hosts:
            hosts.append((host, port))
    return tuple(hosts)


def _qemu_img(*args: str) -> None:
    result = subprocess.run(["qemu-img", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise DriverError(reason=f"qemu-img {args[0]} failed: {result.stderr.strip()}")
