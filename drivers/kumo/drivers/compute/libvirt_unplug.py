"""Unplugging a device from a libvirt domain and waiting for the guest to let it go.

A live detach only asks the guest (PCI hot-unplug, acknowledged by its OS): the device stays
in the live definition until the guest has released it, which a paused or busy guest may
never do. Shared by disks (libvirt_disks) and network interfaces (libvirt_nics).
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

from kumo.drivers.errors import DriverError

DETACH_TIMEOUT = 30.0
"""How long a guest gets to let a device go (seconds)."""


def unplug(
    domain: Any,
    device: ET.Element,
    flags: int,
    still_there: Callable[[], bool],
    what: str,
    timeout: float,
) -> None:
    """Detaches `device` (an element of the domain's XML) with `flags`, then polls
    `still_there` until it answers False. Raises DriverError when `timeout` seconds pass
    first (naming `what`), and libvirt's libvirtError as it comes."""
    domain.detachDeviceFlags(ET.tostring(device, encoding="unicode"), flags)
    deadline = time.monotonic() + timeout
    while still_there():
        if time.monotonic() > deadline:
            raise DriverError(reason=f"{domain.name()} did not release {what} in {timeout}s")
        time.sleep(0.05)
