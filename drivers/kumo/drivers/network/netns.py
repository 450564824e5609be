"""Commands in a named network namespace (one `ip netns add` made, under /run/netns).

`in_netns(name)` is the argv prefix that runs a command there: `nsenter --net=/run/netns/<name>`.
It enters the network namespace and nothing else. `ip netns exec` and `ip -n` do more: they
also unshare a mount namespace, make / a slave and mount a sysfs of the namespace on /sys.
That needs / to be a mount point, which it is not in a chroot (`"mount --make-rslave /"
failed: Invalid argument`), so Kumo never uses them.

The difference: a command run this way sees the machine's /sys (/sys/class/net lists the
machine's interfaces, not the namespace's). Everything Kumo runs in a namespace reaches the
kernel through netlink, ioctls, /dev/net/tun and sockets, which all follow the network
namespace, as do /proc/net and /proc/sys/net: `ip` (link, addr, route, tuntap add), ethtool,
ovs-vswitchd (netdev datapath: taps and packet sockets; from /sys it reads only a device's
NUMA node, which virtual devices lack), ovn-controller, libvirtd and QEMU (taps opened by
name), busybox (udhcpc, ping, nc) and Python sockets. A program that enumerates interfaces
through /sys would need its namespace's sysfs mounted in a mount namespace of its own.
"""

from __future__ import annotations

from pathlib import Path

#: Where `ip netns add` pins named network namespaces.
NETNS_DIR = Path("/run/netns")


def netns_path(name: str) -> Path:
    """The file that pins network namespace `name`."""
    return NETNS_DIR / name


def in_netns(name: str | None) -> list[str]:
    """The argv prefix that runs a command in network namespace `name`: nsenter's, or none
    when `name` is empty or None (the caller's own namespace). nsenter execs the command,
    so a Popen's pid is the command's own."""
    return ["nsenter", f"--net={netns_path(name)}"] if name else []
