"""A throwaway single-node Ceph cluster for tests: one mon and one memstore OSD on 127.0.0.1
(or another local address).

`CephCluster.start()` writes a ceph.conf with cephx on, random free ports (new ones if the
mon's port is taken before it binds) and everything (data, sockets, logs, keyrings) under its
own temp dir, starts `ceph-mon` and `ceph-osd` and waits until the OSD is up (about 5 s).
It makes a `client.kumo` user with the `profile rbd` caps Kumo's drivers need, and a conf
file for QEMU with a short `client mount timeout` (a wrong key would otherwise hang an attach
for 300 s). `stop()` kills exactly the pids it started and removes the dir.
No mgr: RBD does not need one.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

BINARIES = ("ceph-mon", "ceph-osd", "ceph", "ceph-authtool", "monmaptool")


def ceph_missing() -> str | None:
    """Why Ceph cannot run here (a missing binary or Python binding), or None."""
    for binary in BINARIES:
        if shutil.which(binary) is None:
            return f"{binary} is not installed (scripts/install.sh --test installs Ceph)"
    try:
        import rados  # noqa: F401
        import rbd  # noqa: F401
    except ImportError:
        return "python rados/rbd bindings are not in the venv (scripts/install.sh --test)"
    return None


#: Ports below the kernel's ephemeral range (net.ipv4.ip_local_port_range starts at 32768),
#: so no outgoing connection takes the mon's port between the probe and the mon's bind.
_PORTS = range(20000, 32000)


def _free_port_range(address: str, width: int = 100) -> int:
    """A port on `address` whose next `width` ports are free right now (the mon's and the
    OSD's), taken at random outside the ephemeral range."""
    for _ in range(50):
        base = _PORTS.start + secrets.randbelow(len(_PORTS) - width)
        try:
            for port in (base, base + 1, base + width // 2, base + width - 1):
                with socket.socket() as s:
                    s.bind((address, port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free port range for Ceph")


class _MonCannotBind(RuntimeError):
    """The mon's port was taken between the probe and its bind (another start tries again)."""


@dataclass
class CephCluster:
    """One cluster; `conf` and `admin_keyring` are for the admin, `user`/`key` for Kumo."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="kumo-ceph-")))
    port: int = 0
    #: Where the mon and the OSD listen (another local address, e.g. a test bridge's, lets
    #: guests in network namespaces reach the cluster).
    address: str = "127.0.0.1"
    user: str = "kumo"
    key: str = ""
    pids: list[int] = field(default_factory=list)

    @property
    def conf(self) -> Path:
        return self.root / "ceph.conf"

    @property
    def admin_keyring(self) -> Path:
        return self.root / "keyring"

    @property
    def user_keyring(self) -> Path:
        return self.root / f"ceph.client.{self.user}.keyring"

    def _run(self, *args: str, timeout: float = 60) -> str:
        result = subprocess.run(
            args, capture_output=True, text=True, timeout=timeout, check=False, cwd=self.root
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {result.stderr.strip()[-2000:]}")
        return result.stdout

    def ceph(self, *args: str) -> str:
        """Runs the `ceph` CLI as client.admin; RuntimeError on failure."""
        return self._run("ceph", "-c", str(self.conf), "--connect-timeout", "20", *args)

    def used_bytes(self, pool: str, image: str) -> int:
        """What the RBD image itself holds (`rbd du`: its own objects, not its parent's)."""
        out = self._run("rbd", "-c", str(self.conf), "du", "--format", "json", f"{pool}/{image}")
        return sum(int(entry["used_size"]) for entry in json.loads(out)["images"])

    def _write_conf(self, fsid: str) -> None:
        root = self.root
        self.conf.write_text(
            f"""[global]
fsid = {fsid}
mon host = v2:{self.address}:{self.port}
public addr = {self.address}
ms bind port min = {self.port + 1}
ms bind port max = {self.port + 99}
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
run dir = {root}/run
admin socket = {root}/run/$name.asok
pid file = {root}/run/$name.pid
log file = {root}/log/$name.log
keyring = {root}/keyring
crash dir = {root}/crash
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 2
mon data avail crit = 1
mon cluster log file = {root}/log/cluster.log
mon data = {root}/mon.$id
client mount timeout = 10
rados osd op timeout = 30
rados mon op timeout = 30
[mon]
mon initial members = a
[osd]
osd data = {root}/osd$id
keyring = {root}/osd$id/keyring
osd objectstore = memstore
memstore device bytes = 2147483648
osd memory target = 939524096
"""
        )

    def start(self, timeout: float = 120, attempts: int = 3) -> None:
        """Creates and starts the cluster; RuntimeError (with the logs' tail) if it fails.
        A mon that cannot bind its port (someone took it after the probe) is started again
        from scratch on other ports, up to `attempts` times."""
        for attempt in range(attempts):
            try:
                self._start(timeout)
                return
            except _MonCannotBind:
                self.stop(keep_root=True)
                for entry in self.root.iterdir():
                    shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
                if attempt == attempts - 1:
                    raise

    def _start(self, timeout: float) -> None:
        for sub in ("run", "log", "mon.a", "crash"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.port = _free_port_range(self.address)
        fsid = str(uuid.uuid4())
        self._write_conf(fsid)
        mon_keyring = self.root / "mon.keyring"
        self._run(
            "ceph-authtool", "--create-keyring", str(mon_keyring), "--gen-key", "-n", "mon.",
            "--cap", "mon", "allow *",
        )  # fmt: skip
        self._run(
            "ceph-authtool", "--create-keyring", str(self.admin_keyring), "--gen-key",
            "-n", "client.admin", "--cap", "mon", "allow *", "--cap", "osd", "allow *",
            "--cap", "mgr", "allow *",
        )  # fmt: skip
        self._run("ceph-authtool", str(mon_keyring), "--import-keyring", str(self.admin_keyring))
        monmap = self.root / "monmap"
        self._run(
            "monmaptool", "--create", "--addv", "a", f"[v2:{self.address}:{self.port}]",
            "--fsid", fsid, str(monmap),
        )  # fmt: skip
        conf = str(self.conf)
        self._run(
            "ceph-mon", "-c", conf, "--mkfs", "-i", "a", "--monmap", str(monmap),
            "--keyring", str(mon_keyring),
        )  # fmt: skip
        self._daemon("ceph-mon", "-c", conf, "-i", "a")
        osd_uuid = str(uuid.uuid4())
        osd_key = self._run("ceph-authtool", "--gen-print-key").strip()
        secret = self.root / "osd-secret.json"
        secret.write_text(f'{{"cephx_secret": "{osd_key}"}}')
        osd_id = self.ceph("osd", "new", osd_uuid, "-i", str(secret)).strip()
        osd_dir = self.root / f"osd{osd_id}"
        osd_dir.mkdir(exist_ok=True)
        self._run(
            "ceph-osd", "-c", conf, "-i", osd_id, "--mkfs", "--key", osd_key,
            "--osd-uuid", osd_uuid,
        )  # fmt: skip
        # `--mkfs --key` does not write the OSD's keyring: write it ourselves.
        (osd_dir / "keyring").write_text(f"[osd.{osd_id}]\n\tkey = {osd_key}\n")
        self._daemon("ceph-osd", "-c", conf, "-i", osd_id)
        deadline = time.monotonic() + timeout
        while "1 up" not in self.ceph("osd", "stat"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"OSD not up after {timeout}s: {self.log_tail()}")
            time.sleep(0.25)
        self.ceph(
            "auth", "get-or-create", f"client.{self.user}", "mon", "profile rbd",
            "osd", "profile rbd", "-o", str(self.user_keyring),
        )  # fmt: skip
        self.key = self.ceph("auth", "print-key", f"client.{self.user}").strip()

    def _daemon(self, *args: str) -> None:
        """Starts a Ceph daemon (it forks into the background) and records its pid;
        _MonCannotBind if the mon's port is taken, RuntimeError with the logs' tail if the
        daemon fails otherwise."""
        try:
            self._run(*args)
        except RuntimeError as error:
            logs = self.log_tail()
            if args[0] == "ceph-mon" and "unable to bind monitor" in logs:
                raise _MonCannotBind(f"{error}\n{logs}") from error
            raise RuntimeError(f"{error}\n{logs}") from error
        name = "mon.a" if args[0] == "ceph-mon" else f"osd.{args[-1]}"
        pid_file = self.root / "run" / f"{name}.pid"
        deadline = time.monotonic() + 20
        while not pid_file.exists() or not pid_file.read_text().strip():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{args[0]} wrote no pid file: {self.log_tail()}")
            time.sleep(0.05)
        self.pids.append(int(pid_file.read_text().strip()))

    def create_pool(self, pool: str) -> None:
        """Creates an RBD pool (as admin). Idempotent."""
        self.ceph("osd", "pool", "create", pool, "8", "8")
        self.ceph("osd", "pool", "application", "enable", pool, "rbd")

    def log_tail(self, lines: int = 30) -> str:
        """The end of every daemon log, for error messages."""
        out = []
        for log in sorted((self.root / "log").glob("*.log")):
            out.append(f"--- {log.name}\n" + "\n".join(log.read_text().splitlines()[-lines:]))
        return "\n".join(out)

    def stop(self, keep_root: bool = False) -> None:
        """Kills the daemons it started (by pid) and removes the temp dir (unless
        `keep_root`). Idempotent."""
        for pid in reversed(self.pids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for pid in self.pids:
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.05)
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.pids.clear()
        if not keep_root:
            shutil.rmtree(self.root, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(ChildProcessError):
        # A daemon that is our own child (not the case after its fork) would be a zombie.
        os.waitpid(pid, os.WNOHANG)
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
