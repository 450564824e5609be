"""How this host plugs its guests' network interfaces into OVN.

Each assignment lists the guest's NICs (kumo.agent.v1.NicAssignment: port uid, MAC, tap
name). Before the guest runs, `plug` makes each tap (a persistent tap in the namespace of
the host's OVS stack, which libvirt opens with `managed='no'`) and binds it on the
integration bridge with `iface-id` = the port uid (OvsPortBinder), marked with the guest's
uid. ovn-controller then claims the port for this chassis and OVN reports it up, which the
network reconciler turns into the port's ACTIVE status. When the guest stops or goes,
`unplug` unbinds and removes its taps, found by that mark, so nothing needs remembering.

All methods block (run them on the driver runner) and are idempotent. They raise
DriverError when the host has no OVS configured or OVS refuses a change, and
NetworkBackendUnavailable when its database cannot be reached.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Sequence
from typing import Any

from kumo.agent.config import NetworkConfig
from kumo.drivers.errors import DriverError
from kumo.drivers.network.netns import in_netns
from kumo.drivers.network.ovs_host import OvsPortBinder

log = logging.getLogger(__name__)

Nic = Any  # kumo.agent.v1.NicAssignment (generated, untyped)


class HostNics:
    """Plugs and unplugs guests' taps on this host's OVS (see the module docstring)."""

    def __init__(self, config: NetworkConfig) -> None:
        self.config = config
        self._binder: OvsPortBinder | None = None
        self._lock = threading.Lock()

    def _ovs(self) -> OvsPortBinder:
        with self._lock:
            if self._binder is None:
                if not self.config.ovs_db_remote:
                    raise DriverError(reason="this host has no OVS for guest networks")
                binder = OvsPortBinder(
                    self.config.ovs_db_remote, datapath_type=self.config.datapath_type
                )
                binder.ensure_bridge()
                self._binder = binder
            return self._binder

    def _ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*in_netns(self.config.netns), "ip", *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if check and result.returncode != 0:
            raise DriverError(reason=f"ip {' '.join(args)}: {result.stderr.strip()}")
        return result

    def _ensure_tap(self, tap: str) -> None:
        if self._ip("link", "show", "dev", tap, check=False).returncode != 0:
            self._ip("tuntap", "add", "dev", tap, "mode", "tap")
        self._ip("link", "set", "dev", tap, "up")

    def plug(self, uid: str, nics: Sequence[Nic]) -> bool:
        """Makes and binds the guest's taps, unplugs taps of the guest no longer listed, and
        waits (up to the configured time) for OVN to report the ports up; returns whether
        all came up."""
        ovs = self._ovs()
        wanted = {nic.tap for nic in nics}
        for stale in set(ovs.devices_of(uid)) - wanted:
            self._remove(ovs, stale)
        for nic in nics:
            self._ensure_tap(nic.tap)
            ovs.bind(nic.port_uid, nic.tap, nic.mac_address, vm_uuid=uid)
        up = all(ovs.wait_up(nic.tap, self.config.up_timeout_seconds) for nic in nics)
        if not up:
            log.warning("guest %s: not every port came up in OVN in time", uid)
        return up

    def unplug(self, uid: str) -> None:
        """Unbinds and removes every tap bound for the guest (none: nothing to do)."""
        ovs = self._ovs()
        for tap in ovs.devices_of(uid):
            self._remove(ovs, tap)

    def _remove(self, ovs: OvsPortBinder, tap: str) -> None:
        log.info("unplugging %s", tap)
        ovs.unbind(tap)
        self._ip("link", "del", "dev", tap, check=False)

    def close(self) -> None:
        """Disconnects from OVS. Idempotent."""
        with self._lock:
            if self._binder is not None:
                self._binder.close()
                self._binder = None
