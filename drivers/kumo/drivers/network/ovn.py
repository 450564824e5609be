"""NetworkDriver over OVN's northbound database, through ovsdbapp.

Mapping (every row carries `external_ids:kumo:kind` and `kumo:uid`):

    network         Logical_Switch `kumo-<uid>`; provider networks get a localnet port
                    `ln-<uid>` (options:network_name, tag for VLAN)
    subnet          DHCP_Options for the CIDR (IPv4: router, lease, DNS, classless routes)
    port            Logical_Switch_Port `<uid>` (= the iface-id hosts bind): addresses,
                    port_security, dhcpv4_options; router interface ports are type
                    `router` peered with Logical_Router_Port `lrp-<uid>`
    router          Logical_Router `kumo-<uid>`; gateway leg `lrp-gw-<uid>` on the
                    external switch (LSP `gw-<uid>`) with gateway chassis, SNAT per
                    interface subnet and a default route
    floating IP     NAT dnat_and_snat on its router (`kumo:uid` in external_ids)
    security group  Port_Group `pg_<uid>` with allow-related ACLs at priority 1002;
                    every port with port security is also in `kumo_drop`, whose ACLs
                    drop all IP at 1001 (DHCP requests excepted). Remote-group rules
                    match northd's per-group address sets `$pg_<uid>_ip4/_ip6`.

ovsdbapp keeps an in-memory replica of the database (IDL): reads are local, each
`ensure_*` writes only in its own transaction(s). A router is committed before its
NAT rules (OVN wants it so).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from typing import Any

from ovsdbapp import exceptions as ovsdb_exceptions
from ovsdbapp.backend.ovs_idl import connection, idlutils
from ovsdbapp.schema.ovn_northbound import impl_idl

from kumo.drivers.errors import DriverError, NetworkBackendUnavailable
from kumo.drivers.network.base import (
    FloatingIpSpec,
    Inventory,
    Kind,
    NetworkDriver,
    NetworkSpec,
    PortSpec,
    RouterSpec,
    RuleSpec,
    SecurityGroupSpec,
    SubnetSpec,
)

log = logging.getLogger(__name__)

KIND = "kumo:kind"
UID = "kumo:uid"
NAME = "kumo:name"
# On a port: the port groups the driver put it in (space-separated).
GROUPS = "kumo:groups"
DROP_GROUP = "kumo_drop"
RULE_PRIORITY = 1002
DROP_PRIORITY = 1001
LEASE_SECONDS = 43200
# Where the DHCP server's MAC comes from: a fixed locally administered prefix.
DHCP_SERVER_MAC = "02:4b:00:00:00:01"


def switch_name(uid: str) -> str:
    """The Logical_Switch of a network."""
    return f"kumo-{uid}"


def router_name(uid: str) -> str:
    """The Logical_Router of a router."""
    return f"kumo-{uid}"


def group_name(uid: str) -> str:
    """The Port_Group of a security group (OVN names allow no dashes)."""
    return "pg_" + uid.replace("-", "_")


def _ids(kind: Kind | str, uid: str, name: str = "") -> dict[str, str]:
    ids = {KIND: str(kind.value if isinstance(kind, Kind) else kind), UID: uid}
    if name:
        ids[NAME] = name
    return ids


def rule_match(group: str, rule: RuleSpec) -> tuple[str, str]:
    """The ACL direction and match of one rule of the group named `group`."""
    ip = "ip4" if rule.ip_version == 4 else "ip6"
    ingress = rule.direction == "ingress"
    terms = [f"outport == @{group}" if ingress else f"inport == @{group}", ip]
    other = f"{ip}.src" if ingress else f"{ip}.dst"
    if rule.remote_cidr:
        terms.append(f"{other} == {rule.remote_cidr}")
    elif rule.remote_group_uid:
        terms.append(f"{other} == ${group_name(rule.remote_group_uid)}_{ip}")
    if rule.protocol == "icmp":
        terms.append("icmp4" if rule.ip_version == 4 else "icmp6")
    elif rule.protocol:
        terms.append(rule.protocol)
        if rule.port_min:
            high = rule.port_max or rule.port_min
            if high == rule.port_min:
                terms.append(f"{rule.protocol}.dst == {rule.port_min}")
            else:
                terms.append(
                    f"{rule.protocol}.dst >= {rule.port_min} && {rule.protocol}.dst <= {high}"
                )
    return ("to-lport" if ingress else "from-lport"), " && ".join(terms)


def _dhcp_options(spec: SubnetSpec, version: int) -> dict[str, str]:
    """DHCPv4 options, or stateful DHCPv6 ones (addresses, DNS) for an IPv6 subnet."""
    if version == 6:
        options = {"server_id": DHCP_SERVER_MAC}
    else:
        options = {
            "server_id": spec.gateway_ip,
            "server_mac": DHCP_SERVER_MAC,
            "lease_time": str(LEASE_SECONDS),
            "router": spec.gateway_ip,
        }
        if spec.mtu:
            options["mtu"] = str(spec.mtu)
    if spec.dns_servers:
        options["dns_server"] = "{" + ", ".join(spec.dns_servers) + "}"
    return options


class OvnDriver(NetworkDriver):
    """OVN northbound. `remote` is an OVSDB connection string (`unix:/run/ovn/nb.sock`,
    `tcp:10.0.0.5:6641`); `gateway_chassis` names the chassis (system-ids) that host
    router gateways, highest priority first."""

    def __init__(
        self, remote: str, gateway_chassis: Iterable[str] = (), timeout: float = 10.0
    ) -> None:
        if not remote:
            raise ValueError("remote is required")
        self.remote = remote
        self.gateway_chassis = tuple(gateway_chassis)
        self.timeout = timeout
        self._api: Any = None
        self._connection: Any = None

    # --- connection ---------------------------------------------------------------------

    @property
    def api(self) -> Any:
        """The ovsdbapp northbound API (connects on first use)."""
        if self._api is None:
            try:
                idl = connection.OvsdbIdl.from_server(self.remote, "OVN_Northbound")
                self._connection = connection.Connection(idl=idl, timeout=self.timeout)
                # ovsdbapp keeps the connection on the API class (first one wins, for
                # the whole process): give each driver a class of its own.
                api_class = type("NbApi", (impl_idl.OvnNbApiIdlImpl,), {"_ovsdb_connection": None})
                self._api = api_class(self._connection)
            except Exception as exc:
                self._connection = None
                raise NetworkBackendUnavailable(reason=f"{self.remote}: {exc}") from exc
        return self._api

    def _run(self, *commands: Any) -> None:
        """Runs commands in one transaction; raises DriverError if it fails."""
        if not commands:
            return
        try:
            with self.api.transaction(check_error=True) as txn:
                for command in commands:
                    txn.add(command)
        except NetworkBackendUnavailable:
            raise
        except ovsdb_exceptions.TimeoutException as exc:
            raise NetworkBackendUnavailable(reason=f"{self.remote}: {exc}") from exc
        except Exception as exc:
            raise DriverError(reason=f"OVN northbound transaction failed: {exc}") from exc

    def _rows(self, table: str) -> list[Any]:
        return list(self.api.tables[table].rows.values())

    def _find(self, table: str, kind: Kind | str, uid: str) -> Any | None:
        for row in self._rows(table):
            ids = row.external_ids
            if (
                ids.get(KIND) == (kind.value if isinstance(kind, Kind) else kind)
                and ids.get(UID) == uid
            ):
                return row
        return None

    def _targets(self, table: str, kind: Kind, uid: str, canonical: str) -> list[str]:
        """Names of the rows that are this object: the canonical one and any row marked
        with its uid (a copy made behind Kumo's back under another name)."""
        names = {canonical}
        names.update(
            row.name
            for row in self._rows(table)
            if row.external_ids.get(KIND) == kind.value and row.external_ids.get(UID) == uid
        )
        return sorted(names)

    def start(self) -> None:
        api = self.api
        self._run(api.pg_add(DROP_GROUP, may_exist=True, external_ids={KIND: "drop"}))
        acls = [
            api.pg_acl_add(
                DROP_GROUP,
                "from-lport",
                DROP_PRIORITY,
                f"inport == @{DROP_GROUP} && ip",
                "drop",
                may_exist=True,
            ),
            api.pg_acl_add(
                DROP_GROUP,
                "to-lport",
                DROP_PRIORITY,
                f"outport == @{DROP_GROUP} && ip",
                "drop",
                may_exist=True,
            ),
            api.pg_acl_add(
                DROP_GROUP,
                "from-lport",
                RULE_PRIORITY,
                f"inport == @{DROP_GROUP} && ip4 && udp.src == 68 && udp.dst == 67",
                "allow",
                may_exist=True,
            ),
        ]
        self._run(*acls)

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.stop()
            except Exception:  # closing must not raise
                log.debug("closing the OVN connection failed", exc_info=True)
        self._api = self._connection = None

    # --- inventory ----------------------------------------------------------------------

    def inventory(self) -> Inventory:
        if not self.api.idl._session.is_connected():
            # (the replica would be stale: stray and missing objects cannot be told)
            raise NetworkBackendUnavailable(reason=f"{self.remote}: not connected")
        found = Inventory()
        tables = {
            Kind.NETWORK: "Logical_Switch",
            Kind.SUBNET: "DHCP_Options",
            Kind.PORT: "Logical_Switch_Port",
            Kind.ROUTER: "Logical_Router",
            Kind.FLOATING_IP: "NAT",
            Kind.SECURITY_GROUP: "Port_Group",
        }
        for kind, table in tables.items():
            for row in self._rows(table):
                if row.external_ids.get(KIND) == kind.value and UID in row.external_ids:
                    found.uids[kind].add(row.external_ids[UID])
        return found

    # --- networks and subnets -----------------------------------------------------------

    def ensure_network(self, spec: NetworkSpec) -> None:
        api = self.api
        name = switch_name(spec.uid)
        other = {"mcast_snoop": "false"}
        if spec.mtu:
            other["mtu"] = str(spec.mtu)
        self._run(
            api.ls_add(name, may_exist=True),
            api.db_set(
                "Logical_Switch",
                name,
                ("external_ids", _ids(Kind.NETWORK, spec.uid, spec.name)),
                ("other_config", other),
            ),
        )
        localnet = f"ln-{spec.uid}"
        if not spec.physical_network:
            self._run(api.lsp_del(localnet, if_exists=True))
            return
        commands = [
            api.lsp_add(name, localnet, may_exist=True, external_ids={KIND: "localnet"}),
            api.lsp_set_type(localnet, "localnet"),
            api.lsp_set_addresses(localnet, ["unknown"]),
            api.lsp_set_options(localnet, network_name=spec.physical_network),
        ]
        if spec.vlan_id:
            commands.append(api.db_set("Logical_Switch_Port", localnet, ("tag", spec.vlan_id)))
        self._run(*commands)

    def delete_network(self, uid: str) -> None:
        self._run(
            *(
                self.api.ls_del(name, if_exists=True)
                for name in self._targets("Logical_Switch", Kind.NETWORK, uid, switch_name(uid))
            )
        )

    def ensure_subnet(self, spec: SubnetSpec) -> None:
        api = self.api
        row = self._find("DHCP_Options", Kind.SUBNET, spec.uid)
        network = ipaddress.ip_network(spec.cidr)
        if not spec.dhcp_enabled:
            if row is not None:
                self._run(api.dhcp_options_del(row.uuid))
            return
        if row is None or row.cidr != spec.cidr:
            if row is not None:
                self._run(api.dhcp_options_del(row.uuid))
            self._run(api.dhcp_options_add(spec.cidr, **_ids(Kind.SUBNET, spec.uid)))
            row = self._find("DHCP_Options", Kind.SUBNET, spec.uid)
            if row is None:
                raise DriverError(reason=f"DHCP options of subnet {spec.uid} vanished")
        options = _dhcp_options(spec, network.version)
        if network.version == 4 and spec.host_routes:
            routes = [f"{r.destination},{r.next_hop}" for r in spec.host_routes]
            routes.append(f"0.0.0.0/0,{spec.gateway_ip}")
            options["classless_static_route"] = "{" + ", ".join(routes) + "}"
        if dict(row.options) != options:
            # (db_set merges into a map: clear first, in the same transaction.)
            self._run(
                api.db_clear("DHCP_Options", row.uuid, "options"),
                api.db_set("DHCP_Options", row.uuid, ("options", options)),
            )

    def delete_subnet(self, uid: str) -> None:
        row = self._find("DHCP_Options", Kind.SUBNET, uid)
        if row is not None:
            self._run(self.api.dhcp_options_del(row.uuid))

    # --- ports --------------------------------------------------------------------------

    def ensure_port(self, spec: PortSpec) -> None:
        api = self.api
        switch = switch_name(spec.network_uid)
        if api.tables["Logical_Switch"].rows and not any(
            ls.name == switch for ls in self._rows("Logical_Switch")
        ):
            raise DriverError(reason=f"network {spec.network_uid} of port {spec.uid} is missing")
        existing = self._lsp(spec.uid)
        previous = set(existing.external_ids.get(GROUPS, "").split()) if existing else set()
        wanted = self._wanted_groups(spec)
        ids = {**_ids(Kind.PORT, spec.uid, spec.name), GROUPS: " ".join(sorted(wanted))}
        commands: list[Any] = [
            api.lsp_add(switch, spec.uid, may_exist=True),
            api.db_set("Logical_Switch_Port", spec.uid, ("external_ids", ids)),
        ]
        if spec.router_interface:
            commands += [
                api.lsp_set_type(spec.uid, "router"),
                api.lsp_set_addresses(spec.uid, ["router"]),
                api.lsp_set_options(spec.uid, **{"router-port": f"lrp-{spec.uid}"}),
                api.lsp_set_port_security(spec.uid, []),
            ]
        else:
            address = " ".join((spec.mac_address, *spec.ip_addresses))
            security: list[str] = []
            if spec.port_security:
                security = [address] + [
                    f"{p.mac_address or spec.mac_address} {p.ip_address}"
                    for p in spec.allowed_address_pairs
                ]
            commands += [
                api.lsp_set_type(spec.uid, ""),
                api.lsp_set_addresses(spec.uid, [address]),
                api.lsp_set_port_security(spec.uid, security),
            ]
            for column, subnet_uid in (
                ("dhcpv4_options", spec.dhcp_subnet_uid),
                ("dhcpv6_options", spec.dhcpv6_subnet_uid),
            ):
                dhcp = self._find("DHCP_Options", Kind.SUBNET, subnet_uid) if subnet_uid else None
                if dhcp is not None:
                    commands.append(
                        api.db_set("Logical_Switch_Port", spec.uid, (column, dhcp.uuid))
                    )
                elif self._lsp_dhcp(spec.uid, column):
                    commands.append(api.db_clear("Logical_Switch_Port", spec.uid, column))
        self._run(*commands)
        # Membership: added every time (idempotent, and repairs a group remade behind
        # Kumo's back); removed from the groups this driver put the port in before.
        self._run(
            *(api.pg_add_ports(g, [spec.uid]) for g in sorted(wanted)),
            *(
                api.pg_del_ports(g, [spec.uid], if_exists=True)
                for g in sorted(previous - wanted)
                if self._has_group(g)
            ),
        )

    def _wanted_groups(self, spec: PortSpec) -> set[str]:
        """The port groups a port belongs in; DriverError if one is missing."""
        if not spec.port_security or spec.router_interface:
            return set()
        wanted = {group_name(g) for g in spec.security_group_uids} | {DROP_GROUP}
        missing = {g for g in wanted if not self._has_group(g)}
        if missing:
            raise DriverError(reason=f"security groups of port {spec.uid} missing: {missing}")
        return wanted

    def _has_group(self, name: str) -> bool:
        try:
            self.api.lookup("Port_Group", name)
        except idlutils.RowNotFound:
            return False
        return True

    def _lsp_dhcp(self, name: str, column: str) -> bool:
        """Whether an existing port has DHCP options set in `column`."""
        row = self._lsp(name)
        return bool(row is not None and getattr(row, column))

    def delete_port(self, uid: str) -> None:
        self._run(
            *(
                self.api.lsp_del(name, if_exists=True)
                for name in self._targets("Logical_Switch_Port", Kind.PORT, uid, uid)
            )
        )

    def _lsp(self, name: str) -> Any | None:
        """A logical switch port by name (indexed lookup), or None."""
        try:
            return self.api.lookup("Logical_Switch_Port", name)
        except idlutils.RowNotFound:
            return None

    def port_up(self, uid: str) -> bool:
        row = self._lsp(uid)
        return bool(row is not None and row.up and row.up[0])

    # --- routers and floating IPs -------------------------------------------------------

    def ensure_router(self, spec: RouterSpec) -> None:
        api = self.api
        name = router_name(spec.uid)
        self._run(
            api.lr_add(name, may_exist=True),
            api.db_set(
                "Logical_Router", name, ("external_ids", _ids(Kind.ROUTER, spec.uid, spec.name))
            ),
        )
        router = api.lookup("Logical_Router", name)
        wanted_ports = {f"lrp-{i.port_uid}": i for i in spec.interfaces}
        gateway_port = f"lrp-gw-{spec.uid}"
        current_ports = {p.name: p for p in router.ports}
        commands: list[Any] = []
        for port_name, interface in wanted_ports.items():
            existing = current_ports.get(port_name)
            if existing is not None and (
                existing.mac != interface.mac_address
                or list(existing.networks) != [interface.address_cidr]
            ):
                commands.append(api.lrp_del(port_name, name, if_exists=True))
        for port_name in current_ports:
            if port_name not in wanted_ports and port_name != gateway_port:
                commands.append(api.lrp_del(port_name, name, if_exists=True))
        if spec.gateway is None and gateway_port in current_ports:
            commands.append(api.lrp_del(gateway_port, name, if_exists=True))
            commands.append(api.lsp_del(f"gw-{spec.uid}", if_exists=True))
        self._run(*commands)
        commands = [
            api.lrp_add(name, port_name, i.mac_address, [i.address_cidr], may_exist=True)
            for port_name, i in wanted_ports.items()
        ]
        if spec.gateway is not None:
            commands += self._gateway_commands(spec, name, gateway_port)
        self._run(*commands)
        self._sync_nat_and_routes(spec, name)

    def _gateway_commands(self, spec: RouterSpec, name: str, gateway_port: str) -> list[Any]:
        api = self.api
        gw = spec.gateway
        assert gw is not None
        existing = next(
            (p for p in api.lookup("Logical_Router", name).ports if p.name == gateway_port), None
        )
        commands: list[Any] = []
        if existing is not None and (
            existing.mac != gw.mac_address or list(existing.networks) != [gw.address_cidr]
        ):
            commands.append(api.lrp_del(gateway_port, name, if_exists=True))
        lsp = f"gw-{spec.uid}"
        commands += [
            api.lrp_add(name, gateway_port, gw.mac_address, [gw.address_cidr], may_exist=True),
            api.lsp_add(
                switch_name(gw.network_uid), lsp, may_exist=True, external_ids={KIND: "gateway"}
            ),
            api.lsp_set_type(lsp, "router"),
            api.lsp_set_addresses(lsp, ["router"]),
            api.lsp_set_options(lsp, **{"router-port": gateway_port}),
        ]
        for priority, chassis in enumerate(reversed(self.gateway_chassis), 1):
            commands.append(api.lrp_set_gateway_chassis(gateway_port, chassis, priority))
        return commands

    def _sync_nat_and_routes(self, spec: RouterSpec, name: str) -> None:
        api = self.api
        router = api.lookup("Logical_Router", name)
        gw = spec.gateway
        gateway_ip = gw.address_cidr.split("/")[0] if gw else ""
        wanted_snat = {(gateway_ip, c) for c in gw.snat_cidrs} if gw else set()
        commands: list[Any] = []
        have_snat = set()
        for nat in router.nat:
            if nat.type != "snat":
                continue
            key = (nat.external_ip, nat.logical_ip)
            if key in wanted_snat:
                have_snat.add(key)
            else:
                commands.append(api.db_remove("Logical_Router", name, "nat", nat.uuid))
        routes = {(r.destination, r.next_hop) for r in spec.routes}
        if gw is not None:
            routes.add(("0.0.0.0/0", gw.next_hop))
        have_routes = set()
        for route in router.static_routes:
            key = (route.ip_prefix, route.nexthop)
            if key in routes:
                have_routes.add(key)
            else:
                commands.append(api.db_remove("Logical_Router", name, "static_routes", route.uuid))
        self._run(*commands)
        self._run(
            *(
                api.lr_nat_add(name, "snat", ext, cidr, may_exist=True)
                for ext, cidr in sorted(wanted_snat - have_snat)
            ),
            *(
                api.lr_route_add(name, dest, hop, may_exist=True)
                for dest, hop in sorted(routes - have_routes)
            ),
        )

    def delete_router(self, uid: str) -> None:
        self._run(
            *(
                self.api.lr_del(name, if_exists=True)
                for name in self._targets("Logical_Router", Kind.ROUTER, uid, router_name(uid))
            ),
            self.api.lsp_del(f"gw-{uid}", if_exists=True),
        )

    def _fip_rows(self, uid: str) -> list[tuple[Any, Any]]:
        return [
            (router, nat)
            for router in self._rows("Logical_Router")
            for nat in router.nat
            if nat.external_ids.get(KIND) == Kind.FLOATING_IP.value
            and nat.external_ids.get(UID) == uid
        ]

    def ensure_floating_ip(self, spec: FloatingIpSpec) -> None:
        api = self.api
        name = router_name(spec.router_uid)
        found = self._fip_rows(spec.uid)
        stale = [
            (router, nat)
            for router, nat in found
            if router.name != name
            or nat.external_ip != spec.external_ip
            or nat.logical_ip != spec.fixed_ip
        ]
        self._run(*(api.db_remove("Logical_Router", r.uuid, "nat", n.uuid) for r, n in stale))
        if len(stale) < len(found):
            return
        if not any(r.name == name for r in self._rows("Logical_Router")):
            raise DriverError(reason=f"router {spec.router_uid} of floating IP {spec.uid} missing")
        self._run(
            api.lr_nat_add(name, "dnat_and_snat", spec.external_ip, spec.fixed_ip, may_exist=True)
        )
        router = api.lookup("Logical_Router", name)
        for nat in router.nat:
            if nat.type == "dnat_and_snat" and nat.external_ip == spec.external_ip:
                self._run(
                    api.db_set("NAT", nat.uuid, ("external_ids", _ids(Kind.FLOATING_IP, spec.uid)))
                )

    def delete_floating_ip(self, uid: str) -> None:
        self._run(
            *(
                self.api.db_remove("Logical_Router", r.uuid, "nat", n.uuid)
                for r, n in self._fip_rows(uid)
            )
        )

    # --- security groups ----------------------------------------------------------------

    def ensure_security_group(self, spec: SecurityGroupSpec) -> None:
        api = self.api
        name = group_name(spec.uid)
        self._run(
            api.pg_add(name, may_exist=True),
            api.db_set(
                "Port_Group", name, ("external_ids", _ids(Kind.SECURITY_GROUP, spec.uid, spec.name))
            ),
        )
        wanted = {rule_match(name, r) for r in spec.rules}
        group = api.lookup("Port_Group", name)
        current = {(acl.direction, acl.match): acl for acl in group.acls}
        self._run(
            *(
                api.db_remove("Port_Group", name, "acls", acl.uuid)
                for key, acl in current.items()
                if key not in wanted
            ),
            *(
                api.pg_acl_add(
                    name, direction, RULE_PRIORITY, match, "allow-related", may_exist=True
                )
                for direction, match in sorted(wanted - set(current))
            ),
        )

    def delete_security_group(self, uid: str) -> None:
        self._run(
            *(
                self.api.pg_del(name, if_exists=True)
                for name in self._targets("Port_Group", Kind.SECURITY_GROUP, uid, group_name(uid))
            )
        )
