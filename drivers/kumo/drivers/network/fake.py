"""A real, in-memory NetworkDriver for scale tests (`fake` in kumo.drivers.network).

It keeps the specs it was given, by kind and uid, and checks the same ordering
rules as OVN (a port's network and security groups, a floating IP's router must
exist). Ports are reported up as soon as they exist, as if a host bound them at
once. Nothing is carried: traffic tests use the OVN driver.
"""

from __future__ import annotations

import threading
from typing import Any

from kumo.drivers.errors import DriverError
from kumo.drivers.network.base import (
    FloatingIpSpec,
    Inventory,
    Kind,
    NetworkDriver,
    NetworkSpec,
    PortSpec,
    RouterSpec,
    SecurityGroupSpec,
    SubnetSpec,
)


class FakeNetworkDriver(NetworkDriver):
    """Specs in dictionaries; thread-safe."""

    def __init__(self) -> None:
        self.objects: dict[Kind, dict[str, Any]] = {k: {} for k in Kind}
        self._lock = threading.Lock()

    def start(self) -> None:
        """Nothing to connect to."""

    def close(self) -> None:
        """Nothing to close."""

    def inventory(self) -> Inventory:
        with self._lock:
            found = Inventory()
            for kind, objects in self.objects.items():
                found.uids[kind] = set(objects)
            return found

    def _put(self, kind: Kind, uid: str, spec: Any) -> None:
        with self._lock:
            self.objects[kind][uid] = spec

    def _drop(self, kind: Kind, uid: str) -> None:
        with self._lock:
            self.objects[kind].pop(uid, None)

    def _require(self, kind: Kind, uid: str, what: str) -> None:
        if uid not in self.objects[kind]:
            raise DriverError(reason=f"{kind.value} {uid} of {what} is missing")

    def ensure_network(self, spec: NetworkSpec) -> None:
        self._put(Kind.NETWORK, spec.uid, spec)

    def delete_network(self, uid: str) -> None:
        self._drop(Kind.NETWORK, uid)
        with self._lock:
            for port_uid, port in list(self.objects[Kind.PORT].items()):
                if port.network_uid == uid:
                    del self.objects[Kind.PORT][port_uid]

    def ensure_subnet(self, spec: SubnetSpec) -> None:
        self._require(Kind.NETWORK, spec.network_uid, f"subnet {spec.uid}")
        if spec.dhcp_enabled:
            self._put(Kind.SUBNET, spec.uid, spec)
        else:
            self._drop(Kind.SUBNET, spec.uid)

    def delete_subnet(self, uid: str) -> None:
        self._drop(Kind.SUBNET, uid)

    def ensure_port(self, spec: PortSpec) -> None:
        self._require(Kind.NETWORK, spec.network_uid, f"port {spec.uid}")
        for group in spec.security_group_uids:
            self._require(Kind.SECURITY_GROUP, group, f"port {spec.uid}")
        self._put(Kind.PORT, spec.uid, spec)

    def delete_port(self, uid: str) -> None:
        self._drop(Kind.PORT, uid)

    def port_up(self, uid: str) -> bool:
        return uid in self.objects[Kind.PORT]

    def ensure_router(self, spec: RouterSpec) -> None:
        if spec.gateway is not None:
            self._require(Kind.NETWORK, spec.gateway.network_uid, f"router {spec.uid}")
        self._put(Kind.ROUTER, spec.uid, spec)

    def delete_router(self, uid: str) -> None:
        self._drop(Kind.ROUTER, uid)
        with self._lock:
            for fip_uid, fip in list(self.objects[Kind.FLOATING_IP].items()):
                if fip.router_uid == uid:
                    del self.objects[Kind.FLOATING_IP][fip_uid]

    def ensure_floating_ip(self, spec: FloatingIpSpec) -> None:
        self._require(Kind.ROUTER, spec.router_uid, f"floating IP {spec.uid}")
        self._put(Kind.FLOATING_IP, spec.uid, spec)

    def delete_floating_ip(self, uid: str) -> None:
        self._drop(Kind.FLOATING_IP, uid)

    def ensure_security_group(self, spec: SecurityGroupSpec) -> None:
        self._put(Kind.SECURITY_GROUP, spec.uid, spec)

    def delete_security_group(self, uid: str) -> None:
        self._drop(Kind.SECURITY_GROUP, uid)
