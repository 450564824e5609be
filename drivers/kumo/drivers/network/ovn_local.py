"""A private OVN stack on this machine, for `kumo up` and the tests.

`OvnCentral(dir)` runs the northbound and southbound ovsdb-servers and ovn-northd
with their databases, logs, pid files and unix sockets all under `dir` (ready in
about 0.1 s). `OvsChassis(dir, central, system_id, netns)` runs an Open vSwitch
(userspace `netdev` datapath: no kernel module needed) and ovn-controller as one
OVN chassis, optionally inside a network namespace (netdev opens its taps in the
namespace it runs in). Every daemon is detached and stopped by its control socket
(`exit`), then by its pid; `stop()` is idempotent.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from kumo.drivers.network.netns import in_netns

NB_SCHEMA = Path("/usr/share/ovn/ovn-nb.ovsschema")
SB_SCHEMA = Path("/usr/share/ovn/ovn-sb.ovsschema")
OVS_SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")


def _run(args: Sequence[str], env: dict[str, str] | None = None, timeout: float = 30) -> str:
    result = subprocess.run(
        list(args), capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def _stop_daemon(ctl: Path, pidfile: Path, appctl: str = "ovs-appctl") -> None:
    """Asks a daemon to exit by its control socket, then kills its pid if still alive."""
    if ctl.exists():
        subprocess.run(
            [appctl, "-t", str(ctl), "exit"], capture_output=True, timeout=10, check=False
        )
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


class OvnCentral:
    """NB + SB databases and northd under `directory`."""

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self.nb_remote = f"unix:{self.dir / 'nb.sock'}"
        self.sb_remote = f"unix:{self.dir / 'sb.sock'}"

    def start(self) -> None:
        """Creates the databases if missing and starts the daemons. Not idempotent: call
        once per `stop()`. Raises RuntimeError if a daemon fails to start."""
        self.dir.mkdir(parents=True, exist_ok=True)
        for name, schema, db_name, table in (
            ("nb", NB_SCHEMA, "OVN_Northbound", "NB_Global"),
            ("sb", SB_SCHEMA, "OVN_Southbound", "SB_Global"),
        ):
            db = self.dir / f"{name}.db"
            if not db.exists():
                _run(["ovsdb-tool", "create", str(db), str(schema)])
            _run(
                [
                    "ovsdb-server",
                    "--detach",
                    "--no-chdir",
                    f"--pidfile={self.dir / f'{name}.pid'}",
                    f"--log-file={self.dir / f'{name}.log'}",
                    f"--unixctl={self.dir / f'{name}.ctl'}",
                    f"--remote=punix:{self.dir / f'{name}.sock'}",
                    f"--remote=db:{db_name},{table},connections",
                    str(db),
                ]
            )
        _run(["ovn-nbctl", f"--db={self.nb_remote}", "init"])
        _run(
            [
                "ovn-northd",
                "--detach",
                "--no-chdir",
                f"--pidfile={self.dir / 'northd.pid'}",
                f"--log-file={self.dir / 'northd.log'}",
                f"--unixctl={self.dir / 'northd.ctl'}",
                f"--ovnnb-db={self.nb_remote}",
                f"--ovnsb-db={self.sb_remote}",
            ]
        )

    def stop(self) -> None:
        """Stops northd and both databases. Idempotent."""
        _stop_daemon(self.dir / "northd.ctl", self.dir / "northd.pid", "ovn-appctl")
        for name in ("nb", "sb"):
            _stop_daemon(self.dir / f"{name}.ctl", self.dir / f"{name}.pid")

    def nbctl(self, *args: str) -> str:
        """Runs ovn-nbctl against the northbound database; returns its output."""
        return _run(["ovn-nbctl", f"--db={self.nb_remote}", *args])

    def sbctl(self, *args: str) -> str:
        """Runs ovn-sbctl against the southbound database; returns its output."""
        return _run(["ovn-sbctl", f"--db={self.sb_remote}", *args])


class OvsChassis:
    """ovsdb-server + ovs-vswitchd (netdev) + ovn-controller as chassis `system_id`."""

    def __init__(
        self,
        directory: Path,
        central: OvnCentral,
        system_id: str,
        netns: str = "",
        encap_ip: str = "127.0.0.1",
        bridge_mappings: str = "",
    ) -> None:
        self.dir = Path(directory)
        self.central = central
        self.system_id = system_id
        self.netns = netns
        self.encap_ip = encap_ip
        self.bridge_mappings = bridge_mappings
        self.db_remote = f"unix:{self.dir / 'db.sock'}"

    def _prefix(self) -> list[str]:
        return in_netns(self.netns)

    def _env(self) -> dict[str, str]:
        return {**os.environ, "OVS_RUNDIR": str(self.dir), "OVN_RUNDIR": str(self.dir)}

    def start(self) -> None:
        """Starts the daemons and registers the chassis. Raises RuntimeError on failure."""
        self.dir.mkdir(parents=True, exist_ok=True)
        db = self.dir / "conf.db"
        if not db.exists():
            _run(["ovsdb-tool", "create", str(db), str(OVS_SCHEMA)])
        _run(
            [
                "ovsdb-server",
                "--detach",
                "--no-chdir",
                f"--pidfile={self.dir / 'ovsdb.pid'}",
                f"--log-file={self.dir / 'ovsdb.log'}",
                f"--unixctl={self.dir / 'ovsdb.ctl'}",
                f"--remote=punix:{self.dir / 'db.sock'}",
                str(db),
            ]
        )
        ids = [
            f"external_ids:system-id={self.system_id}",
            f"external_ids:ovn-remote={self.central.sb_remote}",
            "external_ids:ovn-encap-type=geneve",
            f"external_ids:ovn-encap-ip={self.encap_ip}",
            "external_ids:ovn-bridge-datapath-type=netdev",
        ]
        if self.bridge_mappings:
            ids.append(f"external_ids:ovn-bridge-mappings={self.bridge_mappings}")
        self.vsctl("--no-wait", "init", "--", "set", "open_vswitch", ".", *ids)
        env = self._env()
        _run(
            [
                *self._prefix(),
                "ovs-vswitchd",
                self.db_remote,
                "--detach",
                "--monitor",
                "--no-chdir",
                f"--pidfile={self.dir / 'vswitchd.pid'}",
                f"--log-file={self.dir / 'vswitchd.log'}",
                f"--unixctl={self.dir / 'vswitchd.ctl'}",
            ],
            env=env,
        )
        _run(
            [
                *self._prefix(),
                "ovn-controller",
                self.db_remote,
                "--detach",
                "--no-chdir",
                f"--pidfile={self.dir / 'ovn-controller.pid'}",
                f"--log-file={self.dir / 'ovn-controller.log'}",
            ],
            env=env,
        )

    def stop(self) -> None:
        """Stops ovn-controller, vswitchd and the database. Idempotent."""
        pid = self.dir / "ovn-controller.pid"
        ctl = self.dir / "ovn-controller.ctl"
        if pid.exists():  # ovn-controller names its socket by pid in OVN_RUNDIR
            ctl = self.dir / f"ovn-controller.{pid.read_text().strip()}.ctl"
        _stop_daemon(ctl, self.dir / "ovn-controller.pid", "ovn-appctl")
        _stop_daemon(self.dir / "vswitchd.ctl", self.dir / "vswitchd.pid")
        _stop_daemon(self.dir / "ovsdb.ctl", self.dir / "ovsdb.pid")

    def vsctl(self, *args: str) -> str:
        """Runs ovs-vsctl against this chassis' database; returns its output."""
        return _run(["ovs-vsctl", f"--db={self.db_remote}", "--timeout=20", *args])
