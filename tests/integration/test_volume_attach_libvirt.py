"""Volumes in real guests: RBD network disks (cephx) and qcow2 files hot-plugged into
running QEMU guests on a real libvirtd, and a guest booting from an RBD clone of the image.

Driver level: the volume drivers make the volumes, kumo.drivers.compute.libvirt_disks plugs
them in. The tiny guest reports each hot-plugged disk by serial and marks blank ones with its
hostname, so data written by one guest is read back by the host and by a second guest.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from kumo.drivers.compute.libvirt import LibvirtDriver
from kumo.drivers.compute.libvirt_disks import attach, attached, ceph_secret, detach
from kumo.drivers.compute.libvirtd import LibvirtDaemon
from kumo.drivers.storage.qcow2 import Qcow2Driver
from kumo.drivers.storage.rbd import RbdDriver
from tests.support.ceph import CephCluster
from tests.support.cloud import unique
from tests.support.volume_guests import boot_from_volume, spec, wait_console

pytestmark = pytest.mark.slow
MiB = 1 << 20
BOOTED = r"KUMO_BOOT_OK\r?\nhostname={}"


@pytest.fixture
def rbd(ceph: CephCluster) -> Iterator[tuple[RbdDriver, str]]:
    """The RBD driver as client.kumo, and a fresh pool."""
    pool = unique("kumo-guests")
    ceph.create_pool(pool)
    driver = RbdDriver(conf=str(ceph.conf), user=ceph.user, keyring=str(ceph.user_keyring))
    yield driver, pool
    driver.close()


def test_hot_plug_write_detach_and_read_in_a_second_guest(
    libvirtd: LibvirtDaemon,
    guest_image: Path,
    ceph: CephCluster,
    rbd: tuple[RbdDriver, str],
    tmp_path: Path,
) -> None:
    """Guest A boots from the image; guest B boots from an RBD copy-on-write clone of it.
    An RBD volume hot-plugged into A is written by A, detached, attached to B: B reads A's
    data, and so does the host. A qcow2 volume goes the same way as a file disk."""
    volumes, pool = rbd
    base = volumes.ensure_image_base(pool, uuid.uuid4().hex, guest_image, "qcow2")
    started = time.monotonic()
    volumes.clone_volume(base, pool, "kumo-vol-root-b", 1 << 30)
    clone_ms = (time.monotonic() - started) * 1000
    volumes.create_volume(pool, "kumo-vol-data", 64 * MiB)
    local = Qcow2Driver(str(tmp_path / "volumes"))
    local.ensure_pool("local")
    local.create_volume("local", "kumo-vol-file", 16 * MiB)

    driver = LibvirtDriver(uri=libvirtd.uri, instances_dir=tmp_path / "instances")
    conn = libvirt.open(libvirtd.uri)
    a, b = (
        spec(unique("va"), "vol-guest-a", guest_image),
        spec(unique("vb"), "vol-guest-b", guest_image),
    )
    try:
        secret = ceph_secret(conn, ceph.user, ceph.key)
        assert ceph_secret(conn, ceph.user, ceph.key) == secret  # idempotent
        driver.spawn(a)
        dom_b = boot_from_volume(
            driver, conn, b, volumes.disk_source(pool, "kumo-vol-root-b"), secret
        )
        wait_console(driver, a.uid, BOOTED.format(a.hostname))
        wait_console(driver, b.uid, BOOTED.format(b.hostname))  # booted from the RBD clone
        dom_a = conn.lookupByName(f"kumo-{a.uid}")

        data = volumes.disk_source(pool, "kumo-vol-data")
        target = attach(dom_a, data, "kumovoldata", secret_uuid=secret)
        assert attach(dom_a, data, "kumovoldata", secret_uuid=secret) == target  # idempotent
        wait_console(driver, a.uid, r"disk serial=kumovoldata found=\r?\n", 30)
        wait_console(driver, a.uid, r"disk serial=kumovoldata wrote=written-by=vol-guest-a", 30)
        assert volumes.read(pool, "kumo-vol-data", 0, 22) == b"written-by=vol-guest-a"
        detach(dom_a, "kumovoldata")
        assert "kumovoldata" not in attached(dom_a)
        detach(dom_a, "kumovoldata")  # idempotent

        attach(dom_b, data, "kumovoldata", secret_uuid=secret, read_only=True)
        wait_console(driver, b.uid, r"disk serial=kumovoldata found=written-by=vol-guest-a", 30)
        detach(dom_b, "kumovoldata")

        attach(dom_b, local.disk_source("local", "kumo-vol-file"), "kumovolfile")
        wait_console(driver, b.uid, r"disk serial=kumovolfile wrote=written-by=vol-guest-b", 30)
        detach(dom_b, "kumovolfile")
        assert local.read("local", "kumo-vol-file", 0, 22) == b"written-by=vol-guest-b"
        print(f"clone of the image for the boot volume: {clone_ms:.0f} ms")
    finally:
        for guest in (a, b):
            driver.destroy(guest.uid)
        conn.close()
        driver.close()
        for name in ("kumo-vol-root-b", "kumo-vol-data"):
            volumes.delete_volume(pool, name)
