"""Key pair names as Nova and EC2 clients give them, and the Kumo ids they map to.

Nova and EC2 name key pairs freely (`Alice laptop`, `deploy_key@ci`); a Kumo id is a
lower-case DNS label. A name that is a valid id is its own id, so existing key pairs keep
their names; any other maps to `kp-` and 40 hex digits of its SHA-256, the name kept as
the key pair's display name (KeyPair.display_name). The mapping is a function: no lookup
to find a key pair by name, and a hashed id's name never changes (`KeyPairNames`).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Awaitable, Callable, Iterable

from kumo.compute.v1 import resources_pb2 as cpb

_ID = re.compile(r"[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?")
_HASHED = re.compile(r"kp-[0-9a-f]{40}")


def key_pair_id(name: str) -> str:
    """The Kumo id of the key pair a client calls `name`."""
    if _ID.fullmatch(name):
        return name
    return "kp-" + hashlib.sha256(name.encode()).hexdigest()[:40]


def key_pair_ref(project: str, name: str) -> str:
    """`projects/{project}/keyPairs/{id}` of the key pair `name` of `project` (an id)."""
    return f"projects/{project}/keyPairs/{key_pair_id(name)}"


class KeyPairNames:
    """Client names of key pairs by resource name, read (by the caller's `Fetch`) only for
    hashed ids and remembered: a hashed id is a function of its name, so the answer never
    changes."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._names: dict[str, str] = {}

    async def names(self, refs: Iterable[str], fetch: Fetch) -> dict[str, str]:
        """The client name of each key pair in `refs` (`projects/p/keyPairs/k`): its id
        unless hashed, else its display name read by `fetch` (a hashed one that is gone or
        hidden keeps its id)."""
        refs = list(refs)
        missing = {r for r in refs if _HASHED.fullmatch(last(r)) and r not in self._names}
        found = await asyncio.gather(*(fetch(r) for r in missing))
        for ref, key in zip(missing, found, strict=True):
            if key is not None and key.display_name and len(self._names) < self.size:
                self._names[ref] = key.display_name
        return {r: self._names.get(r) or last(r) for r in refs}


# Reads a key pair (GetKeyPair of its resource name) as the caller may; None when it is
# gone or hidden.
Fetch = Callable[[str], Awaitable[cpb.KeyPair | None]]


def last(ref: str) -> str:
    """The id at the end of a key pair's resource name."""
    return ref.rsplit("/", 1)[-1]
