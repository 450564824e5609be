"""The network driver interface: desired state of virtual networks pushed to a backend.

Kumo's database is the source of truth; the network reconciler hands the driver
one object at a time as a frozen *spec* and asks for the backend's inventory to
find strays. Every object is identified by its Kumo uid (a port's uid is also the
`iface-id` a host binds). All `ensure_*` calls are idempotent: they create the
object or bring an existing one to the spec (including objects changed or partly
removed behind Kumo's back); all `delete_*` calls are idempotent and succeed if
the object is already gone. Ordering is the caller's: a network before its
subnets and ports, security groups before the ports that use them, routers after
their interface ports, floating IPs after their router.

Every method raises NetworkBackendUnavailable when the backend cannot be reached
(retryable) and DriverError for anything else the backend refused.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from enum import StrEnum


class Kind(StrEnum):
    """The kinds of objects a driver manages."""

    NETWORK = "network"
    SUBNET = "subnet"
    PORT = "port"
    ROUTER = "router"
    FLOATING_IP = "floating_ip"
    SECURITY_GROUP = "security_group"


@dataclass(frozen=True)
class NetworkSpec:
    """A layer-2 network. `physical_network` empty: overlay; `vlan_id` 0: flat/overlay."""

    uid: str
    name: str  # Kumo resource name, for people reading the backend
    mtu: int = 0
    physical_network: str = ""
    vlan_id: int = 0


@dataclass(frozen=True)
class Route:
    """Traffic to `destination` (CIDR) goes to `next_hop`."""

    destination: str
    next_hop: str


@dataclass(frozen=True)
class SubnetSpec:
    """A subnet's DHCP service (the driver serves DHCP only when `dhcp_enabled`)."""

    uid: str
    network_uid: str
    cidr: str
    gateway_ip: str
    dhcp_enabled: bool = True
    dns_servers: tuple[str, ...] = ()
    host_routes: tuple[Route, ...] = ()
    mtu: int = 0


@dataclass(frozen=True)
class AddressPair:
    """An extra address (or CIDR) a port may send from, with its MAC ("" = the port's)."""

    ip_address: str
    mac_address: str = ""


@dataclass(frozen=True)
class PortSpec:
    """A port. `router_interface` ports are the switch side of a router's interface (no
    security, no DHCP); `dhcp_subnet_uid` / `dhcpv6_subnet_uid` name the IPv4 / IPv6
    subnets whose DHCP serves it."""

    uid: str
    network_uid: str
    mac_address: str
    ip_addresses: tuple[str, ...] = ()
    port_security: bool = True
    security_group_uids: tuple[str, ...] = ()
    allowed_address_pairs: tuple[AddressPair, ...] = ()
    dhcp_subnet_uid: str = ""
    dhcpv6_subnet_uid: str = ""
    router_interface: bool = False
    name: str = ""


@dataclass(frozen=True)
class RouterInterface:
    """A router's leg on a subnet: its port (uid), MAC and address with prefix."""

    port_uid: str
    mac_address: str
    address_cidr: str  # e.g. "10.0.0.1/24"


@dataclass(frozen=True)
class Gateway:
    """A router's leg on an external network, with SNAT for `snat_cidrs`."""

    network_uid: str
    mac_address: str
    address_cidr: str  # e.g. "172.24.4.2/24"
    next_hop: str  # the external subnet's gateway: the default route
    snat_cidrs: tuple[str, ...] = ()


@dataclass(frozen=True)
class RouterSpec:
    """A router with its interfaces, optional external gateway and static routes."""

    uid: str
    name: str = ""
    interfaces: tuple[RouterInterface, ...] = ()
    gateway: Gateway | None = None
    routes: tuple[Route, ...] = ()


@dataclass(frozen=True)
class FloatingIpSpec:
    """One-to-one NAT of `external_ip` to `fixed_ip` on router `router_uid`."""

    uid: str
    router_uid: str
    external_ip: str
    fixed_ip: str


@dataclass(frozen=True)
class RuleSpec:
    """One allow rule. `direction` is "ingress" or "egress"; `protocol` "" (any), "tcp",
    "udp" or "icmp"; ports 0 = any; the other end is `remote_cidr`, the members of
    `remote_group_uid`, or anywhere."""

    direction: str
    ip_version: int = 4
    protocol: str = ""
    port_min: int = 0
    port_max: int = 0
    remote_cidr: str = ""
    remote_group_uid: str = ""


@dataclass(frozen=True)
class SecurityGroupSpec:
    """A security group: the ports in it drop what no rule allows (stateful)."""

    uid: str
    name: str = ""
    rules: tuple[RuleSpec, ...] = ()


@dataclass
class Inventory:
    """Uids of the Kumo objects present in the backend, by kind."""

    uids: dict[Kind, set[str]] = field(default_factory=lambda: {k: set() for k in Kind})


class NetworkDriver(abc.ABC):
    """A backend that carries Kumo's virtual networks (OVN northbound, or a fake)."""

    @abc.abstractmethod
    def start(self) -> None:
        """Connects and makes the driver's own fixed objects (e.g. the drop-everything
        port group of port security). Idempotent; raises NetworkBackendUnavailable."""

    @abc.abstractmethod
    def close(self) -> None:
        """Disconnects. Idempotent; never raises."""

    @abc.abstractmethod
    def inventory(self) -> Inventory:
        """Every Kumo object present in the backend, by kind."""

    @abc.abstractmethod
    def ensure_network(self, spec: NetworkSpec) -> None:
        """Creates or updates a network (and its provider uplink)."""

    @abc.abstractmethod
    def delete_network(self, uid: str) -> None:
        """Deletes a network and whatever ports are left on it."""

    @abc.abstractmethod
    def ensure_subnet(self, spec: SubnetSpec) -> None:
        """Creates or updates a subnet's DHCP service (removes it if DHCP is off)."""

    @abc.abstractmethod
    def delete_subnet(self, uid: str) -> None:
        """Deletes a subnet's DHCP service."""

    @abc.abstractmethod
    def ensure_port(self, spec: PortSpec) -> None:
        """Creates or updates a port: addresses, port security, DHCP, security groups.
        Raises DriverError if its network is missing."""

    @abc.abstractmethod
    def delete_port(self, uid: str) -> None:
        """Deletes a port."""

    @abc.abstractmethod
    def port_up(self, uid: str) -> bool:
        """Whether the backend reports the port bound and up on some host (False if
        the port is unknown)."""

    @abc.abstractmethod
    def ensure_router(self, spec: RouterSpec) -> None:
        """Creates or updates a router: interfaces, gateway (with SNAT and the default
        route), static routes; removes legs and routes not in the spec."""

    @abc.abstractmethod
    def delete_router(self, uid: str) -> None:
        """Deletes a router, its legs and its NAT rules."""

    @abc.abstractmethod
    def ensure_floating_ip(self, spec: FloatingIpSpec) -> None:
        """Creates or moves a floating IP's NAT rule. Raises DriverError if the router is
        missing."""

    @abc.abstractmethod
    def delete_floating_ip(self, uid: str) -> None:
        """Deletes a floating IP's NAT rule."""

    @abc.abstractmethod
    def ensure_security_group(self, spec: SecurityGroupSpec) -> None:
        """Creates a security group or replaces its rules (membership is the ports')."""

    @abc.abstractmethod
    def delete_security_group(self, uid: str) -> None:
        """Deletes a security group and its rules."""

    def delete(self, kind: Kind, uid: str) -> None:
        """Deletes an object of `kind` by uid (dispatches to the delete_* methods)."""
        {
            Kind.NETWORK: self.delete_network,
            Kind.SUBNET: self.delete_subnet,
            Kind.PORT: self.delete_port,
            Kind.ROUTER: self.delete_router,
            Kind.FLOATING_IP: self.delete_floating_ip,
            Kind.SECURITY_GROUP: self.delete_security_group,
        }[kind](uid)
