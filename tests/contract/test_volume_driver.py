"""The volume driver contract, run over every driver registered in `kumo.drivers.volume`.

Each registered driver gets a harness from `HARNESSES`; a registered driver without one, or
one that leaves a VolumeDriver method unimplemented, fails the suite. The fake runs in
memory, qcow2 on qemu-img files in a temp dir, rbd against the session's real single-node
Ceph cluster (`ceph` fixture: mon + memstore OSD, cephx) as the `client.kumo` user. Tests
isolate by volume name (a fresh uid each); every driver's pool is made once.
"""

from __future__ import annotations

import inspect
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kumo.drivers.errors import (
    InvalidVolumeSize,
    VolumeAlreadyExists,
    VolumeBusy,
    VolumeNotFound,
)
from kumo.drivers.storage.base import (
    BLOCK,
    IMAGE_BASE_SNAPSHOT,
    MAX_SIZE_BYTES,
    PREFIX,
    SnapshotRef,
    VolumeDriver,
    image_base_name,
)
from kumo.drivers.storage.loader import GROUP, load_volume_driver
from kumo.drivers.storage.qcow2 import Qcow2Driver
from tests.support.ceph import CephCluster

MiB = 1 << 20
POOL = "kumo-contract"


def _fake(request: pytest.FixtureRequest) -> VolumeDriver:
    return load_volume_driver("fake")


def _qcow2(request: pytest.FixtureRequest) -> VolumeDriver:
    return load_volume_driver("qcow2", root=tempfile.mkdtemp(prefix="kumo-qcow2-"))


def _rbd(request: pytest.FixtureRequest) -> VolumeDriver:
    cluster: CephCluster = request.getfixturevalue("ceph")
    cluster.create_pool(POOL)  # pools are an administrator's job: client.kumo cannot make them
    return load_volume_driver(
        "rbd", conf=str(cluster.conf), user=cluster.user, keyring=str(cluster.user_keyring)
    )


HARNESSES: dict[str, Callable[[pytest.FixtureRequest], VolumeDriver]] = {
    "fake": _fake,
    "qcow2": _qcow2,
    "rbd": _rbd,
}


def test_every_registered_driver_has_a_harness() -> None:
    from importlib.metadata import entry_points

    registered = {ep.name for ep in entry_points(group=GROUP)}
    assert registered == set(HARNESSES)


@pytest.mark.parametrize("name", sorted(HARNESSES))
def test_every_method_is_implemented(name: str) -> None:
    from importlib.metadata import entry_points

    cls = next(ep for ep in entry_points(group=GROUP) if ep.name == name).load()
    assert not inspect.isabstract(cls), cls.__abstractmethods__


@pytest.fixture(scope="module", params=sorted(HARNESSES))
def driver(request: pytest.FixtureRequest) -> Iterator[VolumeDriver]:
    """Each driver, validated, with POOL present."""
    instance = HARNESSES[request.param](request)
    instance.validate()
    instance.ensure_pool(POOL)
    yield instance
    close = getattr(instance, "close", None)
    if close is not None:
        close()


def vol() -> str:
    return f"{PREFIX}vol-{uuid.uuid4().hex[:12]}"


def test_create_write_read_delete(driver: VolumeDriver) -> None:
    name = vol()
    driver.create_volume(POOL, name, 4 * MiB)
    driver.create_volume(POOL, name, 4 * MiB)  # idempotent
    assert name in driver.list_volumes(POOL)
    info = driver.volume_info(POOL, name)
    assert (info.size_bytes, info.snapshots, info.parent) == (4 * MiB, (), None)
    assert driver.read(POOL, name, 0, 16) == bytes(16)
    driver.write(POOL, name, MiB + 3, b"kumo volume data")
    assert driver.read(POOL, name, MiB, 19) == b"\0\0\0kumo volume data"
    assert driver.read(POOL, name, 4 * MiB - 4, 100) == bytes(4)  # short at the end
    with pytest.raises(VolumeAlreadyExists):
        driver.create_volume(POOL, name, 8 * MiB)
    driver.delete_volume(POOL, name)
    driver.delete_volume(POOL, name)  # idempotent
    assert name not in driver.list_volumes(POOL)
    with pytest.raises(VolumeNotFound):
        driver.volume_info(POOL, name)


@pytest.mark.parametrize("size", [0, -MiB, MiB + 1, MAX_SIZE_BYTES + BLOCK])
def test_bad_sizes_are_refused_and_change_nothing(driver: VolumeDriver, size: int) -> None:
    name = vol()
    with pytest.raises(InvalidVolumeSize):
        driver.create_volume(POOL, name, size)
    assert name not in driver.list_volumes(POOL)


def test_extend_and_refuse_shrink(driver: VolumeDriver) -> None:
    name = vol()
    driver.create_volume(POOL, name, 2 * MiB)
    driver.write(POOL, name, 0, b"before")
    driver.resize_volume(POOL, name, 6 * MiB)
    driver.resize_volume(POOL, name, 6 * MiB)  # idempotent
    assert driver.volume_info(POOL, name).size_bytes == 6 * MiB
    driver.write(POOL, name, 5 * MiB, b"after")
    with pytest.raises(InvalidVolumeSize):
        driver.resize_volume(POOL, name, 4 * MiB)
    assert driver.volume_info(POOL, name).size_bytes == 6 * MiB
    assert driver.read(POOL, name, 0, 6) == b"before"
    with pytest.raises(InvalidVolumeSize):
        driver.write(POOL, name, 6 * MiB - 2, b"past")
    driver.delete_volume(POOL, name)


def test_missing_objects_are_typed_errors(driver: VolumeDriver) -> None:
    name = vol()
    with pytest.raises(VolumeNotFound):
        driver.resize_volume(POOL, name, 2 * MiB)
    with pytest.raises(VolumeNotFound):
        driver.create_snapshot(POOL, name, "s1")
    with pytest.raises(VolumeNotFound):
        driver.clone_volume(SnapshotRef(POOL, name, "s1"), POOL, vol(), 2 * MiB)
    with pytest.raises(VolumeNotFound):
        driver.create_volume("kumo-no-such-pool", name, 2 * MiB)
    assert driver.list_volumes("kumo-no-such-pool") == []
    driver.delete_snapshot(POOL, name, "s1")  # idempotent on nothing


def test_snapshot_clone_isolation_and_flatten_on_snapshot_delete(driver: VolumeDriver) -> None:
    source, clone = vol(), vol()
    driver.create_volume(POOL, source, 4 * MiB)
    driver.write(POOL, source, 0, b"original")
    ref = driver.create_snapshot(POOL, source, "s1")
    assert driver.create_snapshot(POOL, source, "s1") == ref  # idempotent
    driver.write(POOL, source, 0, b"changed!")  # after the snapshot: not in the clone
    with pytest.raises(InvalidVolumeSize):
        driver.clone_volume(ref, POOL, clone, 2 * MiB)
    driver.clone_volume(ref, POOL, clone, 8 * MiB)
    driver.clone_volume(ref, POOL, clone, 8 * MiB)  # idempotent
    info = driver.volume_info(POOL, clone)
    assert (info.size_bytes, info.parent) == (8 * MiB, ref)
    assert driver.read(POOL, clone, 0, 8) == b"original"
    driver.write(POOL, clone, 0, b"clone wr")  # written through the clone: only there
    assert driver.read(POOL, clone, 0, 8) == b"clone wr"
    assert driver.read(POOL, source, 0, 8) == b"changed!"
    assert driver.volume_info(POOL, source).snapshots == ("s1",)
    with pytest.raises(VolumeBusy):
        driver.delete_volume(POOL, source)  # it has a snapshot
    assert source in driver.list_volumes(POOL)
    driver.delete_snapshot(POOL, source, "s1")  # flattens the clone first
    assert driver.volume_info(POOL, clone).parent is None
    assert driver.read(POOL, clone, 0, 8) == b"clone wr"
    driver.delete_volume(POOL, source)
    assert driver.read(POOL, clone, 0, 8) == b"clone wr"
    driver.delete_volume(POOL, clone)


def test_snapshot_delete_skips_a_clone_deleted_meanwhile(
    driver: VolumeDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clone found under the snapshot but deleted before it is flattened (a DeleteVolume
    of the clone running beside the DeleteSnapshot) fails nothing, and the snapshot goes."""
    source, clone = vol(), vol()
    driver.create_volume(POOL, source, 2 * MiB)
    ref = driver.create_snapshot(POOL, source, "s")
    driver.clone_volume(ref, POOL, clone, 2 * MiB)
    flatten = driver.flatten_volume

    def deleted_first(pool: str, name: str) -> None:
        driver.delete_volume(pool, name)
        flatten(pool, name)

    monkeypatch.setattr(driver, "flatten_volume", deleted_first)
    driver.delete_snapshot(POOL, source, "s")
    assert driver.volume_info(POOL, source).snapshots == ()
    driver.delete_volume(POOL, source)
    driver.delete_volume(POOL, clone)  # (the fake driver flattens without the call)


def test_qcow2_skips_a_clone_deleted_while_qemu_img_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """qcow2: a clone whose file goes after the existence check, while `qemu-img info` is
    about to read it (a DeleteVolume of the clone beside the DeleteSnapshot), is skipped
    as gone (VolumeNotFound), not a driver error that fails the snapshot's deletion."""
    driver = load_volume_driver("qcow2", root=str(tmp_path))
    driver.ensure_pool(POOL)
    source, clone = vol(), vol()
    driver.create_volume(POOL, source, 2 * MiB)
    ref = driver.create_snapshot(POOL, source, "s")
    driver.clone_volume(ref, POOL, clone, 2 * MiB)
    info = Qcow2Driver._info

    def vanishing(path: Path) -> dict[str, object]:
        if path.name.startswith(clone):
            path.unlink()
        return info(path)

    monkeypatch.setattr(Qcow2Driver, "_info", staticmethod(vanishing))
    with pytest.raises(VolumeNotFound):
        driver.volume_info(POOL, clone)
    driver.clone_volume(ref, POOL, clone, 2 * MiB)
    driver.delete_snapshot(POOL, source, "s")
    monkeypatch.undo()
    assert driver.volume_info(POOL, source).snapshots == ()


def test_flatten_keeps_data(driver: VolumeDriver) -> None:
    source, clone = vol(), vol()
    driver.create_volume(POOL, source, 2 * MiB)
    driver.write(POOL, source, 100, b"parent data")
    ref = driver.create_snapshot(POOL, source, "s")
    driver.clone_volume(ref, POOL, clone, 2 * MiB)
    driver.flatten_volume(POOL, clone)
    driver.flatten_volume(POOL, clone)  # idempotent
    assert driver.volume_info(POOL, clone).parent is None
    assert driver.read(POOL, clone, 100, 11) == b"parent data"
    driver.delete_snapshot(POOL, source, "s")
    driver.delete_volume(POOL, source)
    driver.delete_volume(POOL, clone)


def test_image_base_is_imported_once_and_cloned(driver: VolumeDriver, tmp_path: Path) -> None:
    image = tmp_path / "image.raw"
    image.write_bytes(b"BOOT" + bytes(MiB - 4) + b"tail")
    uid = uuid.uuid4().hex
    ref = driver.ensure_image_base(POOL, uid, image, "raw")
    assert ref == SnapshotRef(POOL, image_base_name(uid), IMAGE_BASE_SNAPSHOT)
    assert driver.ensure_image_base(POOL, uid, image, "raw") == ref  # idempotent
    root = vol()
    driver.clone_volume(ref, POOL, root, 4 * MiB)
    assert driver.read(POOL, root, 0, 4) == b"BOOT"
    assert driver.read(POOL, root, MiB, 4) == b"tail"
    assert driver.volume_info(POOL, root).parent == ref
    with pytest.raises(ValueError):
        driver.ensure_image_base(POOL, uuid.uuid4().hex, image, "vmdk")
    with pytest.raises(FileNotFoundError):
        driver.ensure_image_base(POOL, uuid.uuid4().hex, tmp_path / "missing", "raw")
    driver.delete_volume(POOL, root)
    driver.delete_snapshot(POOL, ref.volume, ref.snapshot)
    driver.delete_volume(POOL, ref.volume)


def test_disk_source_names_the_volume(driver: VolumeDriver) -> None:
    name = vol()
    with pytest.raises(VolumeNotFound):
        driver.disk_source(POOL, name)
    driver.create_volume(POOL, name, MiB)
    source = driver.disk_source(POOL, name)
    assert name in source.path
    if source.kind == "rbd":
        assert source.path == f"{POOL}/{name}" and source.hosts and source.key and source.user
    elif source.kind == "file":
        assert Path(source.path).is_file() and source.format == "qcow2"
    else:
        assert source.kind == "fake"
    driver.delete_volume(POOL, name)


def test_list_reports_only_prefixed_names(driver: VolumeDriver) -> None:
    foreign = f"other-{uuid.uuid4().hex[:8]}"
    driver.create_volume(POOL, foreign, MiB)
    try:
        assert foreign not in driver.list_volumes(POOL)
        assert all(n.startswith(PREFIX) for n in driver.list_volumes(POOL))
    finally:
        driver.delete_volume(POOL, foreign)


def test_copy_volume_full_then_incremental(driver: VolumeDriver) -> None:
    """A copy holds the snapshot's data; a later copy `since` the first snapshot brings the
    changes (and only needs them: RBD copies the snapshot diff)."""
    source, backup = vol(), vol()
    driver.create_volume(POOL, source, 4 * MiB)
    driver.write(POOL, source, 0, b"first")
    first = driver.create_snapshot(POOL, source, "b1")
    driver.copy_volume(first, None, POOL, backup)
    driver.copy_volume(first, None, POOL, backup)  # idempotent
    assert driver.read(POOL, backup, 0, 5) == b"first"
    assert driver.volume_info(POOL, backup).size_bytes == 4 * MiB
    driver.resize_volume(POOL, source, 6 * MiB)
    driver.write(POOL, source, 5 * MiB, b"second")
    second = driver.create_snapshot(POOL, source, "b2")
    driver.copy_volume(second, "b1", POOL, backup)
    assert driver.read(POOL, backup, 0, 5) == b"first"
    assert driver.read(POOL, backup, 5 * MiB, 6) == b"second"
    assert driver.volume_info(POOL, backup).size_bytes == 6 * MiB
    with pytest.raises(VolumeNotFound):
        driver.copy_volume(second, "no-such-snapshot", POOL, backup)
    for snapshot in ("b1", "b2"):
        driver.delete_snapshot(POOL, source, snapshot)
    driver.delete_volume(POOL, source)
    driver.delete_volume(POOL, backup)
