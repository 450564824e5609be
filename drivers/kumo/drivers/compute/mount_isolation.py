"""Keeping a new mount namespace's bind mounts to itself, on a machine or in a chroot.

`LibvirtDaemon` bind-mounts its directories over libvirt's fixed paths in a mount namespace
of its own (`unshare -m`). A mount made there reaches other namespaces only if the mount
it lands on (the one holding its target) is *shared* (systemd makes / and everything under
it shared; `ip netns add` makes /run/netns shared). `isolation(targets)` says how to
prevent that:

- where / is a mount point (a machine, a container): unshare's `--propagation private`,
  which makes every mount of the new namespace private, whatever is shared;
- in a chroot, / is a directory, not a mount point, and unshare cannot change its
  propagation ("cannot change root filesystem propagation: Invalid argument"). There,
  propagation stays unchanged and each shared mount a target lands on is made private in
  the new namespace before the bind mounts (`mount --make-private <its mount point>`).
  Mounts elsewhere (e.g. /run/netns, shared) do not matter: nothing is mounted under them.
  A target on the mount that holds the chroot itself (absent from the chroot's
  /proc/self/mountinfo) is looked up in pid 1's mount table; if that mount is shared, or
  cannot be found there, nothing inside the chroot can make it private: RuntimeError.

Which mount holds a path is asked of the kernel (the `mnt_id` of an open descriptor), so
symbolic links and bind mounts need no guessing.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Mount:
    """One line of a mountinfo table."""

    id: int
    point: str
    """Where it is mounted, seen from the reading process' root."""
    shared: bool
    """Whether it is in a peer group (mounts under it propagate to its peers)."""


@dataclass(frozen=True)
class Isolation:
    """How to start the namespace: unshare's `--propagation`, then which mount points to make
    private in it (by mount point, before any bind mount)."""

    propagation: str
    make_private: list[str] = field(default_factory=list)


def parse_mountinfo(text: str) -> dict[int, Mount]:
    """The mounts of a /proc/<pid>/mountinfo text, by mount id."""
    mounts = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 7:
            continue
        optional = fields[6 : fields.index("-")] if "-" in fields else []
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[4])
        mounts[int(fields[0])] = Mount(
            int(fields[0]), point, any(tag.startswith("shared:") for tag in optional)
        )
    return mounts


def plan(
    holders: dict[str, int], own: dict[int, Mount], init: dict[int, Mount] | None
) -> Isolation:
    """The isolation for targets held by the given mounts (`holders`: target -> mount id),
    from this process' mount table (`own`) and pid 1's (`init`, None if unreadable).
    Raises RuntimeError if a target lands on a shared mount the chroot cannot make private
    (see the module docstring)."""
    if any(mount.point == "/" for mount in own.values()):
        return Isolation("private")
    make_private: list[str] = []
    for target, mount_id in sorted(holders.items()):
        mount = own.get(mount_id)
        if mount is not None:
            if mount.shared and mount.point not in make_private:
                make_private.append(mount.point)
            continue
        outer = (init or {}).get(mount_id)
        if outer is None or outer.shared:
            state = "shared" if outer is not None else "unknown (not in pid 1's mount table)"
            raise RuntimeError(
                f"{target} lands on the mount holding this chroot, whose propagation is "
                f"{state}: a private mount namespace cannot keep mounts there to itself "
                "(make the chroot's root a mount point: mount --bind DIR DIR, then chroot)"
            )
    return Isolation("unchanged", make_private)


def _mount_id(path: Path) -> int:
    """The id of the mount holding `path`, or its nearest existing parent (a target made
    later by `mkdir -p` lands on that parent's mount)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    fd = os.open(path, os.O_PATH)
    try:
        for line in Path(f"/proc/self/fdinfo/{fd}").read_text().splitlines():
            if line.startswith("mnt_id:"):
                return int(line.split()[1])
    finally:
        os.close(fd)
    raise RuntimeError(f"no mnt_id for {path} in /proc/self/fdinfo")


def _init_mounts() -> dict[int, Mount] | None:
    """pid 1's mount table (its root is the machine's: it lists the mount holding a chroot),
    or None if unreadable. Mount ids are unique machine-wide, so an id found there is the
    same mount; a chroot may not read /proc/1/ns/mnt, but it may read this."""
    with contextlib.suppress(OSError):
        return parse_mountinfo(Path("/proc/1/mountinfo").read_text())
    return None


def isolation(targets: Iterable[str]) -> Isolation:
    """How a new mount namespace keeps bind mounts on `targets` to itself, here (see the
    module docstring). Raises RuntimeError where it cannot."""
    own = parse_mountinfo(Path("/proc/self/mountinfo").read_text())
    holders = {target: _mount_id(Path(target)) for target in targets}
    return plan(holders, own, _init_mounts())
