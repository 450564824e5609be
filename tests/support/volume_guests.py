"""Real guests with volumes: boot the tiny image from a volume, wait for console lines.

The tiny guest (scripts/build-image) reports hot-plugged volumes on its console, by serial:
`disk serial=<s> found=<first bytes>`, and marks a blank one `wrote=written-by=<hostname>`;
a volume starting with `kumo-bench` gets 64 MiB written and `bench=<dd rate line>`.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from kumo.drivers.compute.base import GuestSpec
from kumo.drivers.compute.libvirt import LibvirtDriver
from kumo.drivers.compute.libvirt_disks import disk_xml, with_root_volume
from kumo.drivers.storage.base import DiskSource

BOOT_TIMEOUT = 90.0


def spec(uid: str, hostname: str, image: Path) -> GuestSpec:
    """A small guest of the tiny image."""
    return GuestSpec(
        uid=uid, name=uid, hostname=hostname, vcpus=1, memory_mib=128, disk_gib=1, image_path=image
    )


def boot_from_volume(
    driver: LibvirtDriver, conn: Any, guest: GuestSpec, root: DiskSource, secret_uuid: str
) -> Any:
    """Defines and starts the guest with the volume as its boot disk (the driver's own
    domain definition, its `vda` swapped for the volume); returns the domain. The driver's
    `destroy(uid)` removes it."""
    guest_dir = driver.instances_dir / guest.uid
    guest_dir.mkdir(parents=True, exist_ok=True)
    xml = driver._domain_xml(guest, "qemu", None)
    boot = disk_xml(root, "vda", "kumo-root", secret_uuid=secret_uuid)
    domain = conn.defineXML(with_root_volume(xml, boot))
    domain.create()
    return domain


def wait_console(
    driver: LibvirtDriver, uid: str, pattern: str, timeout: float = BOOT_TIMEOUT
) -> re.Match[str]:
    """The first match of `pattern` in the guest's console; AssertionError (with the console
    text) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = driver.read_console(uid, 0, 1 << 20).decode(errors="replace")
        if match := re.search(pattern, text):
            return match
        time.sleep(0.2)
    raise AssertionError(f"{pattern!r} not on {uid}'s console within {timeout}s:\n{text[-3000:]}")
