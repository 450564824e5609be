"""Instances' network interfaces: one port per interface, made and deleted with the instance.

CreateInstance makes the ports in its own transaction, through the network service's code
path (`ports.add_port`: tenancy, IPAM, the `ports` quota, security groups), so an instance
is never accepted without its addresses and a refused create leaves no port behind. Each
port has device_owner `compute:instance` and device_id = the instance's name; its id is
`nic<index>-<instance uid>`, which orders an instance's ports as its interfaces. The
scheduler's placement sets each port's `host`; DeleteInstance's operation deletes the
ports in the transaction that forgets the instance. The host agent binds each port's tap
(`tap_name`) on its host; the network reconciler reports a port ACTIVE when OVN says it is
up there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, select, update
from sqlalchemy.orm import Session

from kumo.agent.v1 import agent_service_pb2 as agent_api
from kumo.compute.v1 import resources_pb2 as pb
from kumo.network.v1 import resources_pb2 as npb
from kumo.server.auth.principal import Principal
from kumo.server.db.models import FloatingIpRow, InstanceRow, IpAllocationRow, PortRow
from kumo.server.db.value_lists import OneOf, on_postgres
from kumo.server.errors import InvalidArgument, NotFound
from kumo.server.quota import charge
from kumo.server.services.compute.common import INSTANCES
from kumo.server.services.network.common import NETWORKS, PORTS, usable_network
from kumo.server.services.network.ports import INSTANCE_OWNER, add_port, delete_port_row

MAX_INTERFACES = 8


def tap_name(port_uid: str) -> str:
    """The host device of a port: `tap` + the start of its uid (15 characters at most)."""
    return "tap" + port_uid.replace("-", "")[:11]


def create_ports(
    session: Session,
    caller: Principal,
    project_id: str,
    instance_name: str,
    instance_uid: str,
    interfaces: Sequence[pb.NetworkInterface],
) -> None:
    """Makes one port per requested interface. InvalidArgument for a malformed or empty
    network or too many interfaces; NotFound for a network of another project (or none);
    whatever `add_port` raises otherwise (quota, no free address, ...)."""
    if len(interfaces) > MAX_INTERFACES:
        raise InvalidArgument.field(
            "instance.network_interfaces", f"at most {MAX_INTERFACES} interfaces"
        )
    for index, interface in enumerate(interfaces):
        _add_port(
            session,
            caller,
            (project_id, instance_name, instance_uid),
            index,
            interface,
            f"instance.network_interfaces[{index}]",
        )


def _add_port(
    session: Session,
    caller: Principal,
    instance: tuple[str, str, str],
    index: int,
    interface: pb.NetworkInterface,
    field: str,
) -> PortRow:
    """The port of interface `index` of `instance` (project id, name, uid), on the
    interface's network (`field`: where the interface is in the request)."""
    project_id, instance_name, instance_uid = instance
    if not interface.network:
        raise InvalidArgument.field(f"{field}.network", "name the network to join")
    NETWORKS.key(interface.network, f"{field}.network")  # InvalidArgument if malformed
    usable_network(session, caller, interface.network, f"{field}.network", project_id)
    fixed = []
    if interface.subnet or interface.ip_address:
        fixed.append(npb.FixedIp(subnet=interface.subnet, ip_address=interface.ip_address))
    return add_port(
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


def attach_interface(
    session: Session, caller: Principal, instance: InstanceRow, interface: pb.NetworkInterface
) -> PortRow:
    """Makes the port of a new interface of an instance, bound on its host: the
    lowest interface index free (an index a detach freed is taken again, so the
    interfaces keep their order). InvalidArgument when the instance has MAX_INTERFACES
    already, and whatever `create_ports` raises for an interface."""
    taken = {row.id.partition("-")[0] for row in _ports(session, instance)}
    index = next((i for i in range(MAX_INTERFACES) if f"nic{i}" not in taken), None)
    if index is None:
        raise InvalidArgument.field(
            "network_interface", f"the instance has {MAX_INTERFACES} interfaces, the most it can"
        )
    name = INSTANCES.name_of_row(instance)
    key = (instance.project_id, name, instance.uid)
    port = _add_port(session, caller, key, index, interface, "network_interface")
    port.host_id = instance.host_id or ""
    return port


def detach_interface(session: Session, instance: InstanceRow, port: str) -> None:
    """Deletes the interface port `port` (its name) of the instance and gives back its
    quota. NotFound when it is not one of the instance's interfaces."""
    for row in _ports(session, instance):
        if PORTS.name_of(row.project_id, row.id) == port:
            delete_port_row(session, row)
            charge(session, instance.project_id, {"ports": -1})
            return
    raise NotFound(PORTS.type_name, port)


def _ports(session: Session, instance: InstanceRow) -> list[PortRow]:
    """The instance's interface ports, in order (only those `create_ports` made)."""
    return list(
        session.scalars(
            select(PortRow)
            .where(*_of(instance.project_id, INSTANCES.name_of_row(instance), instance.uid))
            .order_by(PortRow.id)
        )
    )


def _of(project_id: str, instance_name: str, instance_uid: str) -> tuple[Any, ...]:
    return (
        PortRow.project_id == project_id,
        PortRow.device_owner == INSTANCE_OWNER,
        PortRow.device_id == instance_name,
        PortRow.id.endswith(f"-{instance_uid}"),
    )


def delete_ports(session: Session, instance: InstanceRow, charge_quota: bool = True) -> int:
    """Deletes the instance's ports and gives back their quota (unless the whole project
    goes); returns how many."""
    ports = _ports(session, instance)
    for row in ports:
        delete_port_row(session, row)
    if ports and charge_quota:
        charge(session, instance.project_id, {"ports": -len(ports)})
    return len(ports)


def place_ports(session: Session, instance: InstanceRow, host_id: str) -> None:
    """Records the host the instance's ports are bound on (the scheduler's placement)."""
    session.execute(
        update(PortRow)
        .where(
            *_of(instance.project_id, INSTANCES.name_of_row(instance), instance.uid),
            PortRow.host_id != host_id,
        )
        .values(host_id=host_id, version=PortRow.version + 1)
    )


def ports_behind(session: Session, instance: InstanceRow, running: bool) -> bool:
    """Whether a port of the instance shows ACTIVE while its guest is not running, or not
    ACTIVE while it runs: OVN may have changed its mind since the last look."""
    active = npb.Port.STATUS_ACTIVE
    return any((row.status == active) != running for row in _ports(session, instance))


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
        select(PortRow.project_id, PortRow.id, PortRow.uid, PortRow.mac_address, PortRow.device_id)
        .where(PortRow.device_owner == INSTANCE_OWNER, PortRow.device_id.in_(list(by_name)))
        .order_by(PortRow.id)
    )
    for port in ports:
        instance = by_name[port.device_id]
        if port.project_id != instance.project_id or not port.id.endswith(f"-{instance.uid}"):
            continue  # only the ports create_ports made are the instance's interfaces
        result[instance.uid].append(
            agent_api.NicAssignment(
                port_uid=port.uid, mac_address=port.mac_address, tap=tap_name(port.uid)
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
        .order_by(PortRow.id)
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
        if port.project_id != instance.name.split("/")[1] or not port.id.endswith(instance.uid):
            continue  # only the ports create_ports made are the instance's interfaces
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
