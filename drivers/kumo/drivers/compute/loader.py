"""Finds compute drivers by name among the `kumo.drivers.compute` entry points.

pyproject.toml registers the in-tree ones (`libvirt`, `fake`); another distribution can add
its own under the same group. The host agent's configuration names one and gives its
keyword arguments:

    driver = load_compute_driver("libvirt", uri="qemu:///system", instances_dir="/srv/kumo")
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any

from kumo.drivers.compute.base import ComputeDriver

GROUP = "kumo.drivers.compute"


def compute_driver_entry_points() -> dict[str, EntryPoint]:
    """The registered compute drivers by name (the first registration of a name wins)."""
    found: dict[str, EntryPoint] = {}
    for entry_point in entry_points(group=GROUP):
        found.setdefault(entry_point.name, entry_point)
    return found


def compute_driver_class(name: str) -> type[ComputeDriver]:
    """The class registered as `name`.

    Raises LookupError if no driver has that name, TypeError if the entry point is not a
    ComputeDriver subclass (ImportError if its module cannot be imported).
    """
    entry_point = compute_driver_entry_points().get(name)
    if entry_point is None:
        known = ", ".join(sorted(compute_driver_entry_points())) or "none"
        raise LookupError(f"no compute driver {name!r} in {GROUP} (registered: {known})")
    cls = entry_point.load()
    if not (isinstance(cls, type) and issubclass(cls, ComputeDriver)):
        raise TypeError(f"{entry_point.value} ({name}) is not a ComputeDriver subclass")
    return cls


def load_compute_driver(name: str, **config: Any) -> ComputeDriver:
    """A new driver `name` configured with `config` (the class's keyword arguments).
    Drivers connect lazily: call `validate()` to check that it can work.

    Raises LookupError, TypeError (also for configuration keys the driver does not take),
    ValueError for bad configuration values.
    """
    return compute_driver_class(name)(**config)
