"""Instances' network interfaces: one port per interface.

CreateInstance gives each interface its port in its own transaction, so an instance is
never accepted without its addresses and a refused create leaves no port behind: a new
port on the interface's network, made through the network service's code path
(`ports.add_port`: tenancy, IPAM, the `ports` quota, security groups), with id
`nic<index>-<instance uid>`; or an existing port of the project that no device uses, which
the instance adopts. Either way the port gets device_owner `compute:instance`, device_id =
the instance's name, and the columns only Kumo sets: `instance_uid`, `interface_index`
(the interfaces' order) and `delete_with_instance` (whether Kumo made it). Attach and
detach (AttachNetworkInterface, DetachNetworkInterface) do the same for one interface
later. The scheduler's placement sets each port's `host`; DeleteInstance's operation, in
the transaction that forgets the instance, deletes the ports Kumo made and frees the
adopted ones, as a detach does. The host agent binds each port's tap (`tap_name`) on its
host; the network reconciler reports a port ACTIVE when OVN says it is up there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, select, update
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from kumo.agent.v1 import agent_service_pb2 as agent_api
from kumo.compute.v1 import resources_pb2 as pb
from kumo.network.v1 import resources_pb2 as npb
from kumo.server.auth.principal import Principal
from kumo.server.db.engine import core
from kumo.server.db.models import FloatingIpRow, InstanceRow, IpAllocationRow, PortRow
from kumo.server.db.value_lists import OneOf, on_postgres
from kumo.server.errors import FailedPrecondition, InvalidArgument, NotFound
from kumo.server.quota import charge
from kumo.server.services.compute.common import INSTANCES
from kumo.server.services.network.common import NETWORKS, PORTS, bump, owned, usable_network
from kumo.server.services.network.ports import INSTANCE_OWNER, add_port, delete_port_row

MAX_INTERFACES = 8


def tap_name(port_uid: str, adopted_by: str = "") -> str:
    """The host device of an interface's port, `tap` + 11 hex digits (15 characters): the
    start of the port's uid for a port Kumo made, which lives and dies with its instance;
    for a port the instance `adopted_by` (its uid) took, of a hash of both uids, so that a
    port moved from one guest to another gets a device of its own on the host while the
    first guest may still hold its old one."""
    if adopted_by:
        return "tap" + hashlib.sha256(f"{port_uid}/{adopted_by}".encode()).hexdigest()[:11]
    return "tap" + port_uid.replace("-", "")[:11]


def create_ports(
    session: Session,
    caller: Principal,
    project_id: str,
    instance_name: str,
    instance_uid: str,
    interfaces: Sequence[pb.NetworkInterface],
) -> None:
    """Gives each requested interface its port: a new one on its network, or the existing
    port it names (`_adopt`). InvalidArgument for a malformed or empty network or too many
    interfaces; NotFound for a network or port of another project (or none); whatever
    `add_port` and `_adopt` raise otherwise (quota, no free address, a port in use, ...)."""
    if len(interfaces) > MAX_INTERFACES:
        raise InvalidArgument.field(
            "instance.network_interfaces", f"at most {MAX_INTERFACES} interfaces"
        )
    for index, interface in enumerate(interfaces):
        _interface_port(
            session,
            caller,
            (project_id, instance_name, instance_uid),
            index,
            interface,
            f"instance.network_interfaces[{index}]",
        )


def _interface_port(
    session: Session,
    caller: Principal,
    instance: tuple[str, str, str],
    index: int,
    interface: pb.NetworkInterface,
    field: str,
) -> PortRow:
    """The port of interface `index` of `instance` (project id, name, uid): the port the
    interface names, or a new one on its network (`field`: where the interface is in the
    request)."""
    project_id, instance_name, instance_uid = instance
    if interface.port:
        row = _adopt(session, caller, project_id, instance_name, interface, field)
    else:
        if not interface.network:
            raise InvalidArgument.field(f"{field}.network", "name the network to join or a port")
        NETWORKS.key(interface.network, f"{field}.network")  # InvalidArgument if malformed
        usable_network(session, caller, interface.network, f"{field}.network", project_id)
        fixed = []
        if interface.subnet or interface.ip_address:
            fixed.append(npb.FixedIp(subnet=interface.subnet, ip_address=interface.ip_address))
        row = add_port(
            session,
            caller,
            project_id,
            f"nic{index}-{instance_uid}",
            npb.Port(
                network=interface.network,
                fixed_ips=fixed,
                security_groups=list(interface.security_groups),
                device_owner=INSTANCE_OWNER,
                device_id=instance_name,
                description=f"interface {index} of {instance_name}"[:255],
            ),
        )
        row.delete_with_instance = True
    row.instance_uid, row.interface_index = instance_uid, index
    return row


def _adopt(
    session: Session,
    caller: Principal,
    project_id: str,
    instance_name: str,
    interface: pb.NetworkInterface,
    field: str,
) -> PortRow:
    """The existing port `interface.port` made the instance's: it must be of the
    instance's project, on a network the project may use, and used by no device. Its
    network, addresses and security groups stay its own, so the interface names none
    (InvalidArgument otherwise). NotFound for a port of another project (or none),
    FailedPrecondition (PORT_IN_USE) for a port a device has."""
    if interface.network or interface.subnet or interface.ip_address:
        raise InvalidArgument.field(
            f"{field}.port", "an existing port keeps its network and addresses: name only it"
        )
    if interface.security_groups:
        raise InvalidArgument.field(
            f"{field}.security_groups", "an existing port keeps its own security groups"
        )
    row = owned(session, caller, PORTS, interface.port, f"{field}.port")
    if row.project_id != project_id:
        raise NotFound(PORTS.type_name, interface.port)
    network = NETWORKS.name_of(row.network_project_id, row.network_id)
    usable_network(session, caller, network, f"{field}.port", project_id)
    if row.device_owner or row.device_id:
        raise FailedPrecondition(
            f"{interface.port} is in use by {row.device_id or row.device_owner}",
            type="PORT_IN_USE",
            subject=interface.port,
        )
    row.device_owner, row.device_id = INSTANCE_OWNER, instance_name
    row.delete_with_instance = False
    bump(row)
    return row


def attach_interface(
    session: Session, caller: Principal, instance: InstanceRow, interface: pb.NetworkInterface
) -> PortRow:
    """The port of a new interface of an instance (`_interface_port`), bound on its host:
    the lowest interface index free (an index a detach freed is taken again, so the
    interfaces keep their order). InvalidArgument when the instance has MAX_INTERFACES
    already, and whatever `create_ports` raises for an interface."""
    taken = {row.interface_index for row in _ports(session, instance)}
    index = next((i for i in range(MAX_INTERFACES) if i not in taken), None)
    if index is None:
        raise InvalidArgument.field(
            "network_interface", f"the instance has {MAX_INTERFACES} interfaces, the most it can"
        )
    name = INSTANCES.name_of_row(instance)
    key = (instance.project_id, name, instance.uid)
    port = _interface_port(session, caller, key, index, interface, "network_interface")
    port.host_id = instance.host_id or ""
    return port


def detach_interface(session: Session, instance: InstanceRow, port: str) -> None:
    """Takes the interface port `port` (its name) from the instance (`_let_go`). NotFound
    when it is not one of the instance's interfaces."""
    for row in _ports(session, instance):
        if PORTS.name_of(row.project_id, row.id) == port:
            _let_go(session, row, charge_quota=True)
            return
    raise NotFound(PORTS.type_name, port)


def _let_go(session: Session, row: PortRow, charge_quota: bool) -> None:
    """A port the instance no longer has: deleted, its quota given back unless the whole
    project goes, when Kumo made it for the interface; free for any device again when it
    was adopted."""
    if row.delete_with_instance:
        delete_port_row(session, row)
        if charge_quota:
            charge(session, row.project_id, {"ports": -1})
        return
    row.device_owner = row.device_id = row.host_id = ""
    row.instance_uid, row.interface_index = None, None
    bump(row)


def _ports(session: Session, instance: InstanceRow) -> list[PortRow]:
    """The instance's interface ports, in order."""
    return list(
        session.scalars(
            select(PortRow)
            .where(*_of(instance.project_id, INSTANCES.name_of_row(instance), instance.uid))
            .order_by(PortRow.interface_index)
        )
    )


def _of(
    project_id: str | ColumnElement[str],
    instance_name: str | ColumnElement[str],
    instance_uid: str | ColumnElement[str],
) -> tuple[Any, ...]:
    return (
        PortRow.project_id == project_id,
        PortRow.device_owner == INSTANCE_OWNER,
        PortRow.device_id == instance_name,
        PortRow.instance_uid == instance_uid,
    )


def delete_ports(session: Session, instance: InstanceRow, charge_quota: bool = True) -> None:
    """Takes every interface port from the instance (`_let_go`): those Kumo made are
    deleted (their quota given back unless the whole project goes), adopted ones freed."""
    for row in _ports(session, instance):
        _let_go(session, row, charge_quota)


# `_of` over parameters, for the statements built once below (docs/decisions.md, "Statements
# built once": every placement, every report of an instance's state runs one); `_owner` gives
# the values.
_OWNED = _of(bindparam("owner_project"), bindparam("owner_name"), bindparam("owner_uid"))
_PLACE_PORTS = (
    update(PortRow)
    .where(*_OWNED, PortRow.host_id != bindparam("new_host"))
    .values(host_id=bindparam("new_host"), version=PortRow.version + 1)
)
_PORT_STATES = select(PortRow.status).where(*_OWNED)


def _owner(instance: InstanceRow | Row[Any]) -> dict[str, str]:
    return {
        "owner_project": instance.project_id,
        "owner_name": INSTANCES.name_of_row(instance),
        "owner_uid": instance.uid,
    }


def place_ports(session: Session, instance: InstanceRow, host_id: str) -> None:
    """Records the host the instance's ports are bound on (the scheduler's placement)."""
    core(session).execute(_PLACE_PORTS, {**_owner(instance), "new_host": host_id})


def ports_behind(session: Session, instance: InstanceRow | Row[Any], running: bool) -> bool:
    """Whether a port of the instance shows ACTIVE while its guest is not running, or not
    ACTIVE while it runs: OVN may have changed its mind since the last look."""
    active = npb.Port.STATUS_ACTIVE
    states = core(session).execute(_PORT_STATES, _owner(instance)).scalars()
    return any((status == active) != running for status in states)


def nic_assignments(
    session: Session, instances: Sequence[InstanceRow]
) -> dict[str, list[agent_api.NicAssignment]]:
    """What the host agent plugs for each instance (by uid), in interface order; one query
    for the whole list."""
    result: dict[str, list[agent_api.NicAssignment]] = {row.uid: [] for row in instances}
    if not instances:
        return result
    by_name = {INSTANCES.name_of_row(row): row for row in instances}
    ports = session.execute(
        select(
            PortRow.project_id,
            PortRow.uid,
            PortRow.mac_address,
            PortRow.device_id,
            PortRow.instance_uid,
            PortRow.delete_with_instance,
        )
        .where(PortRow.device_owner == INSTANCE_OWNER, PortRow.device_id.in_(list(by_name)))
        .order_by(PortRow.interface_index)
    )
    for port in ports:
        instance = by_name[port.device_id]
        if port.project_id != instance.project_id or port.instance_uid != instance.uid:
            continue  # only ports Kumo gave the instance are its interfaces
        result[instance.uid].append(
            agent_api.NicAssignment(
                port_uid=port.uid,
                mac_address=port.mac_address,
                tap=tap_name(port.uid, "" if port.delete_with_instance else instance.uid),
            )
        )
    return result


def _ports_of(names: ColumnElement[bool]) -> Select[*tuple[Any, ...]]:
    """The interface ports of instances (`names`: a condition on the instance names the
    ports' device_id holds) joined with their addresses and the floating IPs mapped to
    them, one row per address and floating IP (nulls where there are none), in port id
    order."""
    return (
        select(
            PortRow.project_id,
            PortRow.id,
            PortRow.uid,
            PortRow.device_id,
            PortRow.instance_uid,
            PortRow.network_project_id,
            PortRow.network_id,
            PortRow.mac_address,
            PortRow.security_groups,
            IpAllocationRow.ip_address,
            FloatingIpRow.ip_address.label("floating_ip"),
        )
        .outerjoin(IpAllocationRow, IpAllocationRow.owner_uid == PortRow.uid)
        .outerjoin(
            FloatingIpRow,
            (FloatingIpRow.project_id == PortRow.project_id)
            & (FloatingIpRow.port_id == PortRow.id),
        )
        .where(PortRow.device_owner == INSTANCE_OWNER, names)
        .order_by(PortRow.device_id, PortRow.interface_index)
    )


# Made once (on every read of instances), with the names one parameter (db/value_lists.py),
# for PostgreSQL (True) and for SQLite (False).
_NAMES = OneOf(PortRow.device_id, "names")
_PORTS_OF = {postgres: _ports_of(_NAMES.condition(postgres)) for postgres in (True, False)}


def fill_interfaces(executor: Any, instances: Sequence[pb.Instance]) -> None:
    """Sets each instance's output `network_interfaces` from its ports (`executor`: a
    Session or a Connection; one query for the whole list)."""
    if not instances:
        return
    postgres = on_postgres(executor)
    names = _NAMES.bind(postgres, [i.name for i in instances])
    rows = executor.execute(_PORTS_OF[postgres], {"names": names}).all()
    if not rows:
        return
    ports: dict[str, Any] = {}  # by uid, in id order
    addresses: dict[str, dict[str, None]] = {}  # (dicts: ordered sets)
    floating: dict[str, dict[str, None]] = {}
    for row in rows:
        ports.setdefault(row.uid, row)
        found = addresses.setdefault(row.uid, {})
        if row.ip_address is not None:
            found[row.ip_address] = None
        mapped = floating.setdefault(row.uid, {})
        if row.floating_ip is not None:
            mapped[row.floating_ip] = None
    by_name = {i.name: i for i in instances}
    for uid, port in ports.items():
        instance = by_name[port.device_id]
        if port.project_id != instance.name.split("/")[1] or port.instance_uid != instance.uid:
            continue  # only ports Kumo gave the instance are its interfaces
        instance.network_interfaces.append(
            pb.NetworkInterface(
                network=NETWORKS.name_of(port.network_project_id, port.network_id),
                security_groups=[
                    f"projects/{port.project_id}/securityGroups/{g}" for g in port.security_groups
                ],
                port=PORTS.name_of(port.project_id, port.id),
                mac_address=port.mac_address,
                ip_addresses=sorted(addresses[uid], key=lambda a: (":" in a, a)),
                floating_ip_addresses=sorted(floating[uid]),
            )
        )
