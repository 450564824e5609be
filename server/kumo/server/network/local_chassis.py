"""`kumo up`'s chassis: this machine as an OVN chassis, so its guests get networking.

Beside its private OVN central, `kumo up` runs OVS (userspace `netdev` datapath: no kernel
module needed) and ovn-controller, registered as chassis `<host id>`, with their state
under `<data_dir>/chassis`. They run in a network namespace of their own,
`kumo-<8 hex of the data dir>`, made if missing and deleted at stop: the netdev datapath
makes its bridges and taps in the namespace it runs in, so they never touch the machine's
own interfaces. The private libvirtd runs in the same namespace (QEMU opens the guests'
taps, which the agent makes there) and the agent binds ports through the chassis' OVS
database socket. The namespace has no route out: guests reach each other and OVN's
services (DHCP, routers between Kumo networks), not the machine's networks.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
from pathlib import Path

from kumo.drivers.network.netns import in_netns, netns_path
from kumo.drivers.network.ovn_local import OvnCentral, OvsChassis

log = logging.getLogger(__name__)

BINARIES = ("ovs-vswitchd", "ovn-controller", "ovsdb-server", "ovs-vsctl", "ip", "nsenter")


class LocalChassis:
    """OVS + ovn-controller in a namespace of their own (see the module docstring)."""

    def __init__(self, data_dir: Path, central: OvnCentral, system_id: str) -> None:
        digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:8]
        self.netns = f"kumo-{digest}"
        self.ovs = OvsChassis(data_dir / "chassis", central, system_id, netns=self.netns)

    @property
    def db_remote(self) -> str:
        """The chassis' OVS database, where the agent binds ports."""
        return self.ovs.db_remote

    def start(self) -> None:
        """Makes the namespace (if missing) and starts the daemons. Raises RuntimeError
        (or CalledProcessError) on failure, after stopping what it started."""
        if not netns_path(self.netns).exists():
            subprocess.run(["ip", "netns", "add", self.netns], check=True, capture_output=True)
        subprocess.run(
            [*in_netns(self.netns), "ip", "link", "set", "lo", "up"],
            check=True,
            capture_output=True,
        )
        try:
            self.ovs.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stops the daemons and deletes the namespace. Idempotent."""
        self.ovs.stop()
        subprocess.run(["ip", "netns", "del", self.netns], check=False, capture_output=True)


def start_local_chassis(
    data_dir: Path, central: OvnCentral | None, system_id: str
) -> LocalChassis | None:
    """Starts this machine's chassis if `kumo up` runs its own OVN central and OVS and
    ovn-controller are installed; returns it (the caller stops it) or None. A chassis that
    cannot start is logged and skipped: guests then run without networking."""
    if central is None:
        return None
    missing = [b for b in BINARIES if shutil.which(b) is None]
    if missing:
        log.warning("no chassis (missing %s): guests get no networking", ", ".join(missing))
        return None
    chassis = LocalChassis(data_dir, central, system_id)
    try:
        chassis.start()
    except (RuntimeError, OSError, subprocess.CalledProcessError) as error:
        log.warning("the chassis did not start (%s): guests get no networking", error)
        return None
    return chassis
