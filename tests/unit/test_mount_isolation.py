"""How libvirtd's mount namespace keeps its bind mounts to itself: `private` where / is a
mount point; in a chroot (where unshare cannot change /'s propagation), the shared mounts
the targets land on made private one by one, and a refusal where the chroot cannot."""

from __future__ import annotations

from pathlib import Path

import pytest

from kumo.drivers.compute.mount_isolation import Isolation, _mount_id, parse_mountinfo, plan

# This machine's kind (/ a mount point; /run/netns shared once a namespace exists).
MACHINE = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
42 27 254:0 /run/netns /run/netns rw,relatime shared:1 - ext4 /dev/vda rw
"""
# Inside a chroot under /var/tmp/fresh.X: its own binds are listed, the mount holding the
# chroot (pid 1's mount 27) is not.
CHROOT = """\
60 27 0:21 / /proc rw,relatime - proc proc rw
61 27 254:0 /run /run rw,relatime - ext4 /dev/vda rw
62 27 254:0 /opt /opt\\040dir ro,relatime shared:7 - ext4 /dev/vda rw
70 61 254:0 /run/netns /run/netns rw,relatime shared:9 - ext4 /dev/vda rw
"""
# The same chroot on a systemd machine: every mount shared.
SHARED_CHROOT = CHROOT.replace(" rw,relatime - ", " rw,relatime shared:3 - ")
INIT = MACHINE
SHARED_INIT = MACHINE.replace(" / rw,relatime - ", " / rw,relatime shared:2 - ")


def test_parse_mountinfo_reads_ids_points_and_sharing() -> None:
    mounts = parse_mountinfo(CHROOT)
    assert {m.id: (m.point, m.shared) for m in mounts.values()} == {
        60: ("/proc", False),
        61: ("/run", False),
        62: ("/opt dir", True),  # octal escapes decoded
        70: ("/run/netns", True),
    }


def test_where_slash_is_a_mount_point_everything_is_made_private() -> None:
    own = parse_mountinfo(MACHINE)
    assert plan({"/etc/libvirt": 27, "/run/libvirt": 27}, own, own) == Isolation("private")


def test_a_chroot_with_its_targets_on_private_mounts_needs_nothing() -> None:
    # /run/netns is shared but nothing is mounted under it.
    holders = {"/etc/libvirt": 27, "/run/libvirt": 61, "/var/lib/libvirt": 27}
    result = plan(holders, parse_mountinfo(CHROOT), parse_mountinfo(INIT))
    assert result == Isolation("unchanged", [])


def test_a_chroot_makes_the_shared_mounts_its_targets_land_on_private() -> None:
    holders = {"/run/libvirt": 61, "/run/other": 61, "/etc/libvirt": 27}
    result = plan(holders, parse_mountinfo(SHARED_CHROOT), parse_mountinfo(INIT))
    assert result == Isolation("unchanged", ["/run"])


@pytest.mark.parametrize(("init", "state"), [(SHARED_INIT, "shared"), (None, "unknown")])
def test_a_chroot_on_a_shared_or_unknown_mount_is_refused(init: str | None, state: str) -> None:
    init_mounts = parse_mountinfo(init) if init is not None else None
    with pytest.raises(RuntimeError, match=f"/etc/libvirt lands on .* is {state}"):
        plan({"/etc/libvirt": 27}, parse_mountinfo(CHROOT), init_mounts)


def test_the_mount_holding_a_path_is_asked_of_the_kernel(tmp_path: Path) -> None:
    own = parse_mountinfo(Path("/proc/self/mountinfo").read_text())
    assert own[_mount_id(Path("/proc/self/status"))].point == "/proc"
    # Not made yet (mkdir -p comes later): the mount of its nearest existing parent.
    assert _mount_id(tmp_path / "not" / "yet") == _mount_id(tmp_path)
