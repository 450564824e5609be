"""Host-side port binding on Open vSwitch, for the host agent.

OVN finds a port's host by the OVS interface whose `external_ids:iface-id` is the
port's uid (the Kumo port's `uid`, which is its OVN logical switch port name).
`OvsPortBinder` adds an instance's interface (a tap or veth that already exists
on the host) to the integration bridge with that iface-id, and reports the port
up only when ovn-controller has installed its flows (it then sets
`external_ids:ovn-installed=true` on the interface).

Binding API for the agent (all idempotent):

    binder = OvsPortBinder("unix:/run/openvswitch/db.sock")
    binder.ensure_bridge()                           # br-int, netdev if no kernel datapath
    binder.bind(port_uid, "tap1234", mac="02:4b:...")  # add-port + iface-id + attached-mac
    binder.wait_up("tap1234", timeout=10)            # True once OVN installed the port
    binder.unbind("tap1234")                         # del-port (succeeds if absent)

Raises NetworkBackendUnavailable if the OVS database cannot be reached, DriverError if
OVS refuses a change (e.g. the device does not exist: OVS reports it on the interface's
`error` column, which bind() checks).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from ovsdbapp.backend.ovs_idl import connection
from ovsdbapp.schema.open_vswitch import impl_idl

from kumo.drivers.errors import DriverError, NetworkBackendUnavailable

INTEGRATION_BRIDGE = "br-int"


class OvsPortBinder:
    """Binds ports on one host's Open vSwitch (`remote`: its OVSDB socket)."""

    def __init__(
        self, remote: str, bridge: str = INTEGRATION_BRIDGE, datapath_type: str = "netdev"
    ) -> None:
        self.remote = remote
        self.bridge = bridge
        self.datapath_type = datapath_type
        self._api: Any = None
        self._connection: Any = None

    @property
    def api(self) -> Any:
        """The ovsdbapp Open_vSwitch API (connects on first use)."""
        if self._api is None:
            try:
                idl = connection.OvsdbIdl.from_server(self.remote, "Open_vSwitch")
                self._connection = connection.Connection(idl=idl, timeout=10)
                # (ovsdbapp keeps the connection on the API class: one class per binder)
                api_class = type("OvsApi", (impl_idl.OvsdbIdl,), {"_ovsdb_connection": None})
                self._api = api_class(self._connection)
            except Exception as exc:
                self._connection = None
                raise NetworkBackendUnavailable(reason=f"{self.remote}: {exc}") from exc
        return self._api

    def _run(self, *commands: Any) -> None:
        try:
            with self.api.transaction(check_error=True) as txn:
                for command in commands:
                    txn.add(command)
        except NetworkBackendUnavailable:
            raise
        except Exception as exc:
            raise DriverError(reason=f"OVS transaction failed: {exc}") from exc

    def close(self) -> None:
        """Disconnects. Idempotent."""
        if self._connection is not None:
            with contextlib.suppress(Exception):  # closing must not raise
                self._connection.stop()
        self._api = self._connection = None

    def ensure_bridge(self) -> None:
        """Makes the integration bridge (with the configured datapath type) if missing."""
        self._run(self.api.add_br(self.bridge, may_exist=True, datapath_type=self.datapath_type))

    def _interface(self, device: str) -> Any | None:
        for row in self.api.tables["Interface"].rows.values():
            if row.name == device:
                return row
        return None

    def bind(
        self, port_uid: str, device: str, mac: str = "", timeout: float = 5.0, vm_uuid: str = ""
    ) -> None:
        """Adds `device` to the bridge as the OVN port `port_uid` (of the guest `vm_uuid`,
        if given: `devices_of` finds it by that). DriverError if OVS cannot open the device
        within `timeout` seconds."""
        ids = {"iface-id": port_uid, "iface-status": "active"}
        if mac:
            ids["attached-mac"] = mac
        if vm_uuid:
            ids["vm-uuid"] = vm_uuid
        self._run(
            self.api.add_port(self.bridge, device, may_exist=True),
            self.api.db_set("Interface", device, ("external_ids", ids)),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = self._interface(device)
            if row is not None and row.ofport and row.ofport[0] > 0:
                return
            if row is not None and row.error:
                raise DriverError(reason=f"OVS cannot use {device}: {row.error[0]}")
            time.sleep(0.05)
        raise DriverError(reason=f"OVS did not open {device} within {timeout} s")

    def devices_of(self, vm_uuid: str) -> list[str]:
        """The devices bound for the guest `vm_uuid` (see `bind`)."""
        rows = self.api.tables["Interface"].rows.values()
        return sorted(r.name for r in rows if r.external_ids.get("vm-uuid") == vm_uuid)

    def is_up(self, device: str) -> bool:
        """Whether ovn-controller has installed the port on `device`."""
        row = self._interface(device)
        return bool(row is not None and row.external_ids.get("ovn-installed") == "true")

    def wait_up(self, device: str, timeout: float = 10.0) -> bool:
        """Waits until the port on `device` is up in OVN; returns whether it came up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.is_up(device):
                return True
            time.sleep(0.05)
        return False

    def unbind(self, device: str) -> None:
        """Removes `device` from the bridge (no error if it is not there)."""
        self._run(self.api.del_port(device, if_exists=True))
