"""Finds volume drivers by name among the `kumo.drivers.volume` entry points.

pyproject.toml registers the in-tree ones (`rbd`, `qcow2`, `fake`); the API server's
configuration names one per backend with its keyword arguments:

    driver = load_volume_driver("rbd", conf="/etc/ceph/ceph.conf", user="kumo")
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from kumo.drivers.storage.base import VolumeDriver

GROUP = "kumo.drivers.volume"


def load_volume_driver(name: str, **config: Any) -> VolumeDriver:
    """A new driver `name` configured with `config`. Raises LookupError (unknown name),
    TypeError (not a VolumeDriver, or configuration it does not take), ImportError (its
    module, e.g. the rbd bindings, cannot be imported)."""
    found = {ep.name: ep for ep in entry_points(group=GROUP)}
    if name not in found:
        known = ", ".join(sorted(found)) or "none"
        raise LookupError(f"no volume driver {name!r} in {GROUP} (registered: {known})")
    cls = found[name].load()
    if not (isinstance(cls, type) and issubclass(cls, VolumeDriver)):
        raise TypeError(f"{found[name].value} ({name}) is not a VolumeDriver subclass")
    driver: VolumeDriver = cls(**config)
    return driver
