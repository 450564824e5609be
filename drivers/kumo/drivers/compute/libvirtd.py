"""A private libvirtd run as root without systemd, in a directory of its own.

`kumo up` runs one under its data dir (domain definitions survive restarts);
the tests run throwaway ones in temp dirs.

As root, libvirtd's paths are fixed (/etc/libvirt, /run/libvirt, /var/lib/libvirt,
/var/log/libvirt, /var/cache/libvirt). The daemon therefore runs in a private mount
namespace (`unshare -m`; see mount_isolation) where each of those is a bind mount of a
directory under its temp dir: its config, sockets, domain state, logs and capability cache
are its own, and several daemons can run side by side. QEMU processes inherit the
namespace. The qemu.conf makes it work without systemd, cgroups, virtlogd or
security drivers (see shared notes, "Compute: libvirt + QEMU (TCG)").

Nothing is left running: `stop` destroys the running domains (keeping their
definitions unless asked), then kills the daemon and every process still in
its mount namespace by pid.

A daemon can also play a separate host (live migration between "hosts" on one machine):
given `netns` (an existing network namespace, made by the caller) it runs inside it, and
given `listen_address` it accepts peers' connections on TCP (auth none, for tests and
development only) at `tcp_uri`, and QEMU takes incoming migrations on that address
(`migration_address`/`migration_host`: never 127.0.0.1 when daemons share loopback).
`kill` makes the daemon die as a crashed host's would (its QEMU processes stay), and
`start` brings it back on the same state.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from kumo.drivers.compute.mount_isolation import isolation as mount_isolation
from kumo.drivers.network.netns import in_netns

LIBVIRTD = Path("/usr/sbin/libvirtd")
# libvirt's root paths, each bind-mounted from a directory of the daemon's own.
MOUNTS = {
    "etc": "/etc/libvirt",
    "run": "/run/libvirt",
    "lib": "/var/lib/libvirt",
    "log": "/var/log/libvirt",
    "cache": "/var/cache/libvirt",
}

QEMU_CONF = """\
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
"""


def unavailable_reason() -> str | None:
    """Why a LibvirtDaemon cannot run here, or None if it can."""
    if os.geteuid() != 0:
        return "libvirtd runs as root here (no systemd, no session daemon): run tests as root"
    if not LIBVIRTD.exists():
        return f"{LIBVIRTD} is not installed (scripts/install.sh installs libvirt and QEMU)"
    if shutil.which("qemu-system-x86_64") is None:
        return "qemu-system-x86_64 is not installed (scripts/install.sh installs it)"
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    try:
        pwd.getpwnam("libvirt-qemu")
    except KeyError:
        return "user libvirt-qemu is missing: libvirtd will not start (scripts/install.sh adds it)"
    try:
        import libvirt  # noqa: F401
    except ImportError:
        return "the libvirt Python binding is not installed (pip install -e .)"
    return None


def _mount_namespace(pid: int) -> str | None:
    with contextlib.suppress(OSError):
        return os.readlink(f"/proc/{pid}/ns/mnt")
    return None


class LibvirtDaemon:
    """One libvirtd (QEMU driver) reachable at `uri`, in `directory` (a new temp dir if
    None, removed by `stop`).

    `qemu_conf` and `libvirtd_conf` are appended to the generated configs; `dir` holds
    everything, `log_dir` the daemon's and each domain's QEMU log (qemu/<name>.log).

    As a separate host (see the module docstring): `netns` names the network namespace
    to run in (under /run/netns), `listen_address` the address peers reach it on (TCP
    port `tcp_port`, auth none), `migration_ports` QEMU's incoming migration (and NBD)
    port range. Without them the daemon listens on its unix socket only, as before.
    """

    def __init__(
        self,
        directory: Path | None = None,
        *,
        qemu_conf: str = "",
        libvirtd_conf: str = "",
        netns: str | None = None,
        listen_address: str | None = None,
        tcp_port: int = 16509,
        migration_ports: tuple[int, int] = (49152, 49215),
    ) -> None:
        self.temporary = directory is None
        self.dir = (
            Path(tempfile.mkdtemp(prefix="kumo-libvirtd-")) if directory is None else directory
        )
        for sub in MOUNTS:
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self.log_dir = self.dir / "log"
        self.socket = self.dir / "run" / "libvirt-sock"
        self.uri = f"qemu+unix:///system?socket={self.socket}"
        self.host_uuid = str(uuid.uuid4())
        self.netns = netns
        self.listen_address = listen_address
        self.tcp_port = tcp_port
        listen = "listen_tcp = 0\n"
        if listen_address is not None:
            listen = (
                f'listen_tcp = 1\nlisten_addr = "{listen_address}"\n'
                f'tcp_port = "{tcp_port}"\nauth_tcp = "none"\n'
            )
            low, high = migration_ports
            qemu_conf = (
                f'migration_address = "{listen_address}"\n'
                f'migration_host = "{listen_address}"\n'
                f"migration_port_min = {low}\nmigration_port_max = {high}\n" + qemu_conf
            )
        (self.dir / "etc" / "libvirtd.conf").write_text(
            "listen_tls = 0\n" + listen + 'auth_unix_ro = "none"\n'
            'auth_unix_rw = "none"\n'
            'unix_sock_group = "root"\n'
            'unix_sock_rw_perms = "0770"\n'
            f'host_uuid = "{self.host_uuid}"\n'
            f'log_outputs = "3:file:{self.log_dir}/libvirtd.log"\n' + libvirtd_conf
        )
        (self.dir / "etc" / "qemu.conf").write_text(QEMU_CONF + qemu_conf)
        self._process: subprocess.Popen[bytes] | None = None
        self._namespace: str | None = None
        # Mount namespaces of earlier runs (before `kill`): QEMU may still run in them.
        self._old_namespaces: set[str] = set()

    @property
    def pid(self) -> int | None:
        """The daemon's pid while it runs."""
        return self._process.pid if self._process is not None else None

    @property
    def tcp_uri(self) -> str | None:
        """The URI peers (another host's libvirtd) reach this daemon at, e.g. the target of a
        peer-to-peer migration; None when it listens on its unix socket only."""
        if self.listen_address is None:
            return None
        return f"qemu+tcp://{self.listen_address}:{self.tcp_port}/system"

    def start(self, timeout: float = 60.0) -> None:
        """Starts the daemon and waits until it answers (the first start probes QEMU: ~10 s).
        No-op while it runs; after `kill`, starts it again on the same state."""
        # The bind mounts stay in the daemon's namespace (private propagation; in a chroot,
        # the shared mounts they land on made private first).
        isolation = mount_isolation(MOUNTS.values())
        steps = [f"mount --make-private {shlex.quote(point)}" for point in isolation.make_private]
        for sub, target in MOUNTS.items():
            steps.append(f"mkdir -p {target}")
            steps.append(f"mount --bind {shlex.quote(str(self.dir / sub))} {target}")
        # unshare and sh exec: the Popen pid is libvirtd's own. (Its default pid file is
        # /run/libvirtd.pid, outside the bind mounts: a second daemon would refuse to start.)
        pid_file = shlex.quote(str(self.dir / "libvirtd.pid"))
        listen = " --listen" if self.listen_address is not None else ""
        steps.append(f"exec {LIBVIRTD}{listen} -f /etc/libvirt/libvirtd.conf -p {pid_file}")
        # nsenter execs: the pid stays libvirtd's.
        prefix = in_netns(self.netns)
        if self._process is not None and self._process.poll() is not None:
            self._process = None  # killed: started again on the same state
        if self._process is not None:
            return
        if self._namespace is not None:
            self._old_namespaces.add(self._namespace)
            self._namespace = None
        with open(self.dir / "stdout.log", "ab") as out:
            self._process = subprocess.Popen(
                [
                    *prefix,
                    *("unshare", "-m", "--propagation", isolation.propagation),
                    *("sh", "-c", " && ".join(steps)),
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.dir,
            )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        import libvirt

        assert self._process is not None
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"libvirtd exited with {self._process.returncode}: {self.logs()}"
                )
            if self.socket.exists():
                # Bound by libvirtd itself, so unshare has run: note its namespace (never ours).
                namespace = _mount_namespace(self._process.pid)
                if namespace is not None and namespace != _mount_namespace(os.getpid()):
                    self._namespace = namespace
                try:
                    conn = libvirt.open(self.uri)
                except libvirt.libvirtError:
                    pass
                else:
                    try:
                        conn.getCapabilities()  # the QEMU driver is up
                        return
                    except libvirt.libvirtError:
                        pass
                    finally:
                        conn.close()
            if time.monotonic() > deadline:
                raise TimeoutError(f"libvirtd not ready after {timeout}s: {self.logs()}")
            time.sleep(0.1)

    def open(self) -> Any:
        """A new read-write connection (libvirt.virConnect); close it when done."""
        import libvirt

        return libvirt.open(self.uri)

    def logs(self, tail: int = 4000) -> str:
        """The end of the daemon's stdout and log file, for error messages."""
        text = ""
        for name in ("stdout.log", "log/libvirtd.log"):
            with contextlib.suppress(OSError):
                text += f"\n--- {name}\n" + (self.dir / name).read_text(errors="replace")[-tail:]
        return text

    def destroy_all_domains(self, undefine: bool = True) -> None:
        """Destroys every running domain and (if `undefine`) forgets every domain. Best effort."""
        import libvirt

        try:
            conn = libvirt.open(self.uri)
        except libvirt.libvirtError:
            return
        try:
            flags = (
                libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
                | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
            )
            for dom in conn.listAllDomains():
                with contextlib.suppress(libvirt.libvirtError):
                    if dom.isActive():
                        dom.destroy()
                if undefine:
                    with contextlib.suppress(libvirt.libvirtError):
                        dom.undefineFlags(flags)
        finally:
            conn.close()

    def kill(self) -> None:
        """Kills the daemon alone with SIGKILL, as a host's libvirtd dies: its QEMU processes
        keep running (until `stop`, or until the daemon is started again and reaps them).
        Idempotent."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)

    def _namespaces(self) -> set[str]:
        """The daemon's private mount namespaces, this run's and earlier runs' (never ours)."""
        found = set(self._old_namespaces)
        if self._namespace is not None:
            found.add(self._namespace)
        found.discard(_mount_namespace(os.getpid()) or "")
        return found

    def _namespace_pids(self) -> list[int]:
        """Pids in the daemon's private mount namespaces (none if they are unknown)."""
        namespaces = self._namespaces()
        if not namespaces:
            return []
        return [
            int(entry.name)
            for entry in Path("/proc").iterdir()
            if entry.name.isdigit() and _mount_namespace(int(entry.name)) in namespaces
        ]

    def _qemu_pids(self) -> set[int]:
        """Pids from the QEMU pid files the daemon keeps (its /run/libvirt/qemu)."""
        pids = set()
        for pid_file in (self.dir / "run" / "qemu").glob("*.pid"):
            with contextlib.suppress(OSError, ValueError):
                pids.add(int(pid_file.read_text().split()[0]))
        return pids

    def stop(self) -> None:
        """Destroys the running domains, kills libvirtd and whatever else runs in its
        namespace; a temporary daemon also forgets its domains and removes its files.
        Idempotent."""
        process, self._process = self._process, None
        if process is not None:
            # QEMU or helpers that would outlive the daemon: listed while the namespace surely
            # exists (the daemon runs), or from QEMU's pid files if the daemon died; killed
            # after the daemon, and only if still in one of its namespaces.
            leftovers = self._qemu_pids()
            if process.poll() is None:
                self.destroy_all_domains(undefine=self.temporary)
            leftovers |= set(self._namespace_pids()) - {process.pid}
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
            namespaces = self._namespaces()
            for pid in leftovers:
                if _mount_namespace(pid) in namespaces:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
        if self.temporary:
            shutil.rmtree(self.dir, ignore_errors=True)
