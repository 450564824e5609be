"""Compute fixtures: a real libvirtd (QEMU driver, TCG) and the tiny guest image.

Import them into a conftest (`from tests.support.fixtures_compute import guest_image,
libvirtd`). Both are session-scoped: the daemon's first QEMU probe takes about 10 s.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kumo.drivers.compute.libvirtd import LibvirtDaemon, unavailable_reason

REPO = Path(__file__).resolve().parents[2]
BUILD_IMAGE = REPO / "scripts" / "build-image"
IMAGE_DIR = REPO / "build" / "images"
IMAGE_TOOLS = ("apt-get", "dpkg-deb", "mkfs.vfat", "mcopy", "syslinux", "qemu-img", "cpio")


@pytest.fixture(scope="session")
def libvirtd() -> Iterator[LibvirtDaemon]:
    """A libvirtd of the session's own; `libvirtd.uri` connects to it."""
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    daemon = LibvirtDaemon()
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="session")
def guest_image() -> Path:
    """build/images/kumo-tiny.qcow2 (scripts/build-image; built here if missing). Use it as a
    read-only backing file: give each guest a qcow2 overlay."""
    image = IMAGE_DIR / "kumo-tiny.qcow2"
    if not image.exists():
        missing = [tool for tool in IMAGE_TOOLS if shutil.which(tool) is None]
        if missing:
            pytest.skip(
                f"cannot build the guest image, missing {', '.join(missing)} "
                "(scripts/install.sh installs them)"
            )
        result = subprocess.run(
            [str(BUILD_IMAGE), str(IMAGE_DIR)], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            pytest.fail(f"scripts/build-image failed:\n{result.stdout}{result.stderr}")
    return image
