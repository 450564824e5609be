"""Network namespaces as test guests: each "VM" is a namespace whose eth0 is one end of a
veth pair; the other end lives in the OVS chassis' namespace and is bound to an OVN
port by iface-id. Checksum offload is off on both ends (the userspace datapath would
forward TCP with unfinished checksums otherwise)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

from kumo.drivers.network.netns import in_netns

DHCP_SCRIPT = """#!/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
    ip addr add "$ip/$subnet" dev "$interface"
    [ -n "$router" ] && ip route replace default via "$router" dev "$interface"
    ;;
esac
exit 0
"""


def sh(*args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Runs a command; CalledProcessError (with its output) if `check` and it fails."""
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)}: {result.returncode} {result.stderr}{result.stdout}"
        )
    return result


def add_netns(prefix: str) -> str:
    """A new network namespace with loopback up; returns its name."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    sh("ip", "netns", "add", name)
    sh(*in_netns(name), "ip", "link", "set", "lo", "up")
    return name


def del_netns(name: str) -> None:
    """Deletes a namespace (and the veth ends in it). Idempotent."""
    sh("ip", "netns", "del", name, check=False)


class Guest:
    """A namespace plugged into the chassis namespace by a veth pair."""

    def __init__(self, chassis_netns: str, workdir: Path, mac: str = "") -> None:
        self.netns = add_netns("kvm")
        self.host_dev = "h" + uuid.uuid4().hex[:10]
        self.chassis_netns = chassis_netns
        self.workdir = workdir
        sh(
            *in_netns(chassis_netns),
            "ip",
            "link",
            "add",
            self.host_dev,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            self.netns,
        )
        if mac:
            self.run("ip", "link", "set", "eth0", "address", mac)
        sh(*in_netns(chassis_netns), "ip", "link", "set", self.host_dev, "up")
        self.run("ip", "link", "set", "eth0", "up")
        sh(*in_netns(chassis_netns), "ethtool", "-K", self.host_dev, "tx", "off")
        self.run("ethtool", "-K", "eth0", "tx", "off")

    def run(
        self, *args: str, check: bool = True, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        """Runs a command inside the guest."""
        return sh(*in_netns(self.netns), *args, check=check, timeout=timeout)

    def dhcp(self) -> str:
        """Gets a lease with busybox udhcpc and configures it; returns the address."""
        script = self.workdir / "udhcpc.sh"
        script.write_text(DHCP_SCRIPT)
        script.chmod(0o755)
        self.run(
            "busybox",
            "udhcpc",
            "-i",
            "eth0",
            "-n",
            "-q",
            "-f",
            "-t",
            "8",
            "-T",
            "1",
            "-s",
            str(script),
            timeout=30,
        )
        out = self.run("ip", "-4", "-o", "addr", "show", "dev", "eth0").stdout
        return out.split()[3].split("/")[0]

    def set_address(self, cidr: str, gateway: str = "") -> None:
        """Configures a static address (and default route)."""
        self.run("ip", "addr", "add", cidr, "dev", "eth0")
        if gateway:
            self.run("ip", "route", "replace", "default", "via", gateway)

    def ping(self, address: str, count: int = 1) -> bool:
        """Whether `address` answers ping (up to 3 tries of `count` packets)."""
        for _ in range(3):
            if (
                self.run(
                    "busybox", "ping", "-c", str(count), "-W", "1", address, check=False
                ).returncode
                == 0
            ):
                return True
        return False

    def serve_tcp(self, port: int) -> subprocess.Popen[str]:
        """A TCP server answering each connection with the peer's address."""
        code = (
            "import socket\n"
            "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            f"s.bind(('0.0.0.0', {port})); s.listen(8)\n"
            "print('ready', flush=True)\n"
            "while True:\n"
            "    c, a = s.accept(); c.sendall(a[0].encode()); c.close()\n"
        )
        server = subprocess.Popen(
            [*in_netns(self.netns), sys.executable, "-c", code],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert server.stdout is not None
        if server.stdout.readline().strip() != "ready":  # listening before we return
            server.kill()
            raise AssertionError(f"TCP server on port {port} did not start")
        return server

    def tcp(self, address: str, port: int, timeout: float = 3) -> str | None:
        """Connects to address:port; returns what the server said, None if unreachable."""
        code = (
            "import socket, sys\n"
            "try:\n"
            f"    s = socket.create_connection(('{address}', {port}), timeout={timeout})\n"
            "    print(s.recv(64).decode())\n"
            "except OSError:\n"
            "    sys.exit(1)\n"
        )
        result = self.run(sys.executable, "-c", code, check=False, timeout=timeout + 10)
        return result.stdout.strip() if result.returncode == 0 else None

    def close(self) -> None:
        """Deletes the namespace (its veth pair goes with it)."""
        del_netns(self.netns)
