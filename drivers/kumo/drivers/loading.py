"""Finding a driver class by name among the entry points of one group.

Each driver interface has its group (`kumo.drivers.network`, ...); pyproject.toml
registers the in-tree drivers and other distributions may add theirs.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import TypeVar

T = TypeVar("T")


def registered(group: str) -> dict[str, EntryPoint]:
    """The drivers registered in `group` by name (the first registration of a name wins)."""
    found: dict[str, EntryPoint] = {}
    for entry_point in entry_points(group=group):
        found.setdefault(entry_point.name, entry_point)
    return found


def driver_class(group: str, name: str, base: type[T]) -> type[T]:
    """The class registered as `name` in `group`.

    Raises LookupError if no driver has that name, TypeError if it is not a `base`
    subclass (ImportError if its module cannot be imported).
    """
    entry_point = registered(group).get(name)
    if entry_point is None:
        known = ", ".join(sorted(registered(group))) or "none"
        raise LookupError(f"no driver {name!r} in {group} (registered: {known})")
    cls = entry_point.load()
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise TypeError(f"{entry_point.value} ({name}) is not a {base.__name__} subclass")
    return cls
