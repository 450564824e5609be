"""Finds network drivers by name among the `kumo.drivers.network` entry points
(in tree: `ovn`, `fake`). The API server's configuration names one and gives its
keyword arguments:

    driver = load_network_driver("ovn", remote="unix:/run/ovn/ovnnb_db.sock")
"""

from __future__ import annotations

from typing import Any

from kumo.drivers.loading import driver_class
from kumo.drivers.network.base import NetworkDriver

GROUP = "kumo.drivers.network"


def load_network_driver(name: str, **config: Any) -> NetworkDriver:
    """A new driver `name` configured with `config` (the class's keyword arguments).
    Drivers connect on `start()`.

    Raises LookupError, TypeError (also for configuration keys the driver does not take),
    ValueError for bad configuration values.
    """
    return driver_class(GROUP, name, NetworkDriver)(**config)  # type: ignore[type-abstract]
