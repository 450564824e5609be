"""A server's hostname as Nova makes it: from the server's name unless given (2.90).

Nova derives the guest's hostname from the display name (lower case; spaces, underscores
and dots become hyphens; other characters are dropped; at most 63 characters). Kumo's
hostnames are DNS labels, so the derived one keeps only letters, digits and hyphens; a
name with none gives '' (CreateInstance then uses the instance id). From 2.90 `hostname`
may be given at create, update and rebuild (lower-cased; CreateInstance, UpdateInstance
and RebuildInstance refuse anything but a DNS label: 400).
"""

from __future__ import annotations

import re
from typing import Any

from kumo.gateway.dialect import invalid
from kumo.gateway.openstack.microversions import Version

V2_90 = Version(2, 90)
_SEPARATORS = re.compile(r"[ _.]")
_OTHERS = re.compile(r"[^a-z0-9-]+")
MAX_LABEL = 63


def derived(name: str) -> str:
    """The hostname Nova would make of a server `name` (see the module's notes)."""
    label = _OTHERS.sub("", _SEPARATORS.sub("-", name.lower()))
    return label[:MAX_LABEL].strip("-")


def given(body: dict[str, Any], version: Version) -> str | None:
    """The `hostname` of a create, update or rebuild body (None when absent); 400 before
    2.90 (Nova's schemas had no such key) or when it is not a string."""
    if "hostname" not in body:
        return None
    value = body["hostname"]
    if version < V2_90 or not isinstance(value, str):
        raise invalid(f"Invalid input for field/attribute hostname. Value: {value}")
    return value.lower()
