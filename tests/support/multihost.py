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
`python -m tests.support.multihost --hosts 2` prints each host and waits for Ctrl-C; with
`--api 127.0.0.1:7900` it also runs a kumo-agent per host against that API (`kumo up`'s),
signed in with kumo up's agent access key, registering the hosts in `racks/local-rack`.
"""

from __future__ import annotations

import argparse
import asyncio
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

from kumo.agent.config import AgentConfig, CredentialsConfig, DriverConfig
from kumo.agent.main import run_agent
from kumo.drivers.compute.libvirtd import LibvirtDaemon, unavailable_reason
from kumo.drivers.network.netns import in_netns

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


def _ip(*args: str, netns: str = "") -> None:
    result = subprocess.run(
        [*in_netns(netns), "ip", *args], capture_output=True, text=True, check=False
    )
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
        self,
        count: int = 2,
        *,
        subnet: str = DEFAULT_SUBNET,
        directory: Path | None = None,
        gateway: bool = False,
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
        #: With `gateway`, the bridge's own address in the root namespace (the subnet's
        #: first): the hosts (their guests' QEMU) reach services of the machine there, such
        #: as a test Ceph cluster. Give such a cluster a subnet of its own.
        self.gateway = str(addresses[0]) if gateway else None
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
        if self.gateway is not None:
            _ip("addr", "add", f"{self.gateway}/{self.prefix}", "dev", self.bridge)
        for index, host in enumerate(self.hosts, start=1):
            outer, inner = f"kv{self.tag}h{index}", f"kv{self.tag}g{index}"
            _ip("netns", "add", host.netns)
            self._plumbed.append(("netns", host.netns))
            _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
            self._plumbed.append(("link", outer))  # deleting one end deletes both
            _ip("link", "set", inner, "netns", host.netns)
            _ip("link", "set", outer, "master", self.bridge, "up")
            _ip("link", "set", "lo", "up", netns=host.netns)
            _ip("addr", "add", f"{host.address}/{self.prefix}", "dev", inner, netns=host.netns)
            _ip("link", "set", inner, "up", netns=host.netns)

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


def agent_config(host: Host, endpoint: str, credentials: dict[str, str], rack: str) -> AgentConfig:
    """A kumo-agent configuration for `host`: libvirt driver on the host's daemon, signed in
    with an access key (`{"id": ..., "secret": ...}`, as `kumo up` saves its own)."""
    return AgentConfig(
        api_endpoint=endpoint,
        host=host.name,
        rack=rack,
        credentials=CredentialsConfig(
            access_key_id=credentials["id"], secret_access_key=credentials["secret"]
        ),
        driver=DriverConfig(
            name="libvirt",
            options={
                "uri": host.uri,
                "instances_dir": str(host.instances_dir),
                "migration_uri": host.migration_uri,
            },
        ),
        state_dir=host.instances_dir.parent / "agent",
    )


def _run_agents(configs: list[AgentConfig], done: threading.Event) -> None:
    """Runs one agent per configuration in this thread's event loop until `done`."""

    async def run() -> None:
        agents = [await run_agent(config) for config in configs]
        try:
            while not done.is_set():
                await asyncio.sleep(0.5)
        finally:
            for agent in agents:
                await agent.stop()

    asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    """`scripts/dev-hosts`: bring up N hosts, print them (JSON lines with --json), wait for
    Ctrl-C or SIGTERM, and remove everything."""
    parser = argparse.ArgumentParser(prog="dev-hosts", description=main.__doc__)
    parser.add_argument("--hosts", type=int, default=2, help="how many hosts (default 2)")
    parser.add_argument("--subnet", default=DEFAULT_SUBNET, help=f"default {DEFAULT_SUBNET}")
    parser.add_argument("--dir", type=Path, help="keep the hosts' files here (default: temp)")
    parser.add_argument("--json", action="store_true", help="one JSON object per host")
    parser.add_argument(
        "--api",
        metavar="HOST:PORT",
        help="also run a kumo-agent per host against this API (e.g. kumo up's 127.0.0.1:7900)",
    )
    parser.add_argument(
        "--credentials",
        type=Path,
        default=Path.home() / ".local/share/kumo/agent-credentials.json",
        help="the agents' access key, as kumo up saves it (default: kumo up's own)",
    )
    parser.add_argument(
        "--rack", default="racks/local-rack", help="the rack the agents register their hosts in"
    )
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
        agents = None
        if args.api:
            credentials = json.loads(args.credentials.read_text())
            configs = [agent_config(h, args.api, credentials, args.rack) for h in cluster.hosts]
            agents = threading.Thread(target=_run_agents, args=(configs, done), daemon=True)
            agents.start()
            print(f"dev-hosts: one kumo-agent per host, on {args.api}", file=sys.stderr)
        print("dev-hosts: up; Ctrl-C stops and removes them", file=sys.stderr, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            done.wait()
        done.set()
        if agents is not None:
            agents.join(timeout=60)
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
