"""Several libvirt "hosts" on one machine, for live migration tests and development.

Each host is a `LibvirtDaemon` in a network namespace of its own, with its own address on a
private /24: the namespaces' veths hang on one Linux bridge in the root namespace, which has
no address of its own (so nothing is routed to or from the machine's real networks, and
parallel runs may reuse the subnet). Names (bridge, namespaces, veths) carry a random tag, so
several `HostCluster`s (parallel test sessions, a developer's `scripts/dev-hosts`) never
collide. Every daemon listens on TCP (auth none) on its address, for peers, and on its unix
socket, for the local agent; QEMU receives migrations on the host's address.

    with HostCluster(3) as cluster:
        for host in cluster.hosts:
            print(host.name, host.uri, host.migration_uri)

`stop` kills what it started by pid (the daemons and their QEMU processes) and removes the
namespaces, the veths and the bridge. Needs root, iproute2 and nsenter (util-linux).

Run as a module for a developer's cluster (`scripts/dev-hosts` is the documented wrapper):
`python -m tests.support.multihost --hosts 2` prints each host and waits for Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from kumo.drivers.compute.libvirtd import LibvirtDaemon, unavailable_reason

#: Default private subnet of the hosts (the bridge has no address: never routed).
DEFAULT_SUBNET = "10.213.0.0/24"


def multihost_unavailable_reason() -> str | None:
    """Why a HostCluster cannot run here, or None if it can."""
    reason = unavailable_reason()
    if reason is not None:
        return reason
    for tool in ("ip", "nsenter"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (iproute2, util-linux)"
    return None


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")


@dataclass
class Host:
    """One host of a cluster: its daemon and how to reach it."""

    name: str
    """e.g. `host-1`: a short name for humans and agents (unique in the cluster)."""
    address: str
    """The host's address on the cluster's subnet (its namespace's veth)."""
    netns: str
    """Its network namespace (under /run/netns)."""
    daemon: LibvirtDaemon
    instances_dir: Path
    """Where this host's guests' files go (a directory of its own: storage is not shared)."""

    @property
    def uri(self) -> str:
        """The libvirt URI of the host's own agent (the daemon's unix socket)."""
        return self.daemon.uri

    @property
    def migration_uri(self) -> str:
        """The URI peers send migrations to (`qemu+tcp://<address>:16509/system`)."""
        uri = self.daemon.tcp_uri
        assert uri is not None
        return uri

    def describe(self) -> dict[str, str]:
        """What a developer (or an agent's configuration) needs, as plain strings."""
        return {
            "name": self.name,
            "address": self.address,
            "netns": self.netns,
            "uri": self.uri,
            "migration_uri": self.migration_uri,
            "instances_dir": str(self.instances_dir),
            "dir": str(self.daemon.dir),
        }


class HostCluster:
    """`count` libvirt hosts on one bridge (see the module docstring). `start` brings them
    up (about 10 s: each daemon probes QEMU once, in parallel), `stop` removes everything;
    both are idempotent. Usable as a context manager."""

    def __init__(
        self, count: int = 2, *, subnet: str = DEFAULT_SUBNET, directory: Path | None = None
    ) -> None:
        network = ipaddress.ip_network(subnet)
        if count < 1 or count > network.num_addresses - 3:
            raise ValueError(f"count must be between 1 and {network.num_addresses - 3}")
        self.tag = secrets.token_hex(3)
        self.bridge = f"kbr{self.tag}"
        self.prefix = network.prefixlen
        self.temporary = directory is None
        self.dir = directory or Path(tempfile.mkdtemp(prefix=f"kumo-hosts-{self.tag}-"))
        addresses = list(network.hosts())
        self.hosts: list[Host] = []
        for index in range(1, count + 1):
            address = str(addresses[index])  # .1 stays free (a gateway, if one is ever added)
            netns = f"kumo-{self.tag}-h{index}"
            host_dir = self.dir / f"host-{index}"
            daemon = LibvirtDaemon(host_dir / "libvirt", netns=netns, listen_address=address)
            self.hosts.append(
                Host(
                    name=f"host-{index}",
                    address=address,
                    netns=netns,
                    daemon=daemon,
                    instances_dir=host_dir / "instances",
                )
            )
        self._plumbed: list[tuple[str, str]] = []  # what to undo: ("link"|"netns", name)

    def __enter__(self) -> HostCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def host(self, name: str) -> Host:
        """The host called `name`; raises KeyError."""
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    def start(self, timeout: float = 120.0) -> None:
        """Makes the bridge, a namespace and veth per host, and starts the daemons. On
        failure everything made is removed before the error is raised."""
        try:
            self._plumb()
            errors: list[BaseException] = []

            def run(daemon: LibvirtDaemon) -> None:
                try:
                    daemon.start(timeout)
                except BaseException as err:
                    errors.append(err)

            threads = [threading.Thread(target=run, args=(h.daemon,)) for h in self.hosts]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if errors:
                raise errors[0]
            for host in self.hosts:
                host.instances_dir.mkdir(parents=True, exist_ok=True)
        except BaseException:
            self.stop()
            raise

    def _plumb(self) -> None:
        if self._plumbed:
            return
        _ip("link", "add", self.bridge, "type", "bridge")
        self._plumbed.append(("link", self.bridge))
        _ip("link", "set", self.bridge, "up")
        for index, host in enumerate(self.hosts, start=1):
            outer, inner = f"kv{self.tag}h{index}", f"kv{self.tag}g{index}"
            _ip("netns", "add", host.netns)
            self._plumbed.append(("netns", host.netns))
            _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
            self._plumbed.append(("link", outer))  # deleting one end deletes both
            _ip("link", "set", inner, "netns", host.netns)
            _ip("link", "set", outer, "master", self.bridge, "up")
            ns = ("-n", host.netns)
            _ip(*ns, "link", "set", "lo", "up")
            _ip(*ns, "addr", "add", f"{host.address}/{self.prefix}", "dev", inner)
            _ip(*ns, "link", "set", inner, "up")

    def stop(self) -> None:
        """Stops every daemon (their guests too), removes namespaces (their veths go with
        them) and the bridge, and the cluster's files if they were temporary. Idempotent."""
        for host in self.hosts:
            with contextlib.suppress(Exception):
                host.daemon.stop()
        for kind, name in reversed(self._plumbed):  # a veth may be gone with its namespace
            subprocess.run(["ip", kind, "del", name], capture_output=True, check=False)
        self._plumbed.clear()
        if self.temporary:
            shutil.rmtree(self.dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """`scripts/dev-hosts`: bring up N hosts, print them (JSON lines with --json), wait for
    Ctrl-C or SIGTERM, and remove everything."""
    parser = argparse.ArgumentParser(prog="dev-hosts", description=main.__doc__)
    parser.add_argument("--hosts", type=int, default=2, help="how many hosts (default 2)")
    parser.add_argument("--subnet", default=DEFAULT_SUBNET, help=f"default {DEFAULT_SUBNET}")
    parser.add_argument("--dir", type=Path, help="keep the hosts' files here (default: temp)")
    parser.add_argument("--json", action="store_true", help="one JSON object per host")
    args = parser.parse_args(argv)
    reason = multihost_unavailable_reason()
    if reason is not None:
        print(f"dev-hosts: {reason}", file=sys.stderr)
        return 1
    cluster = HostCluster(args.hosts, subnet=args.subnet, directory=args.dir)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    cluster.start()
    try:
        for host in cluster.hosts:
            info = host.describe()
            if args.json:
                print(json.dumps(info), flush=True)
            else:
                print("  ".join(f"{k}={v}" for k, v in info.items()), flush=True)
        print("dev-hosts: up; Ctrl-C stops and removes them", file=sys.stderr, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            done.wait()
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
