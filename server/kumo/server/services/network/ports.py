"""CreatePort, GetPort, ListPorts, UpdatePort, DeletePort.

A port is on a network of its own project. Its addresses come from Kumo's
IPAM in the same transaction (ipam.py: no two ports ever share one); a given
address must be a host address of a subnet of the port's network and free. A
MAC is unique per network. Ports with port security get the project's
`default` security group when none is named. Router interface ports
(`network:` device owners) are made and removed by the router methods only.
"""

from __future__ import annotations

import random
import re

from google.protobuf import empty_pb2
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kumo.network.v1 import network_service_pb2 as api
from kumo.network.v1 import resources_pb2 as pb
from kumo.server.api.convert import check_etag
from kumo.server.api.fields import check_required, update_paths
from kumo.server.api.idempotency import idempotent
from kumo.server.api.names import check_id
from kumo.server.api.resources import apply_common
from kumo.server.auth.principal import Principal, current_principal
from kumo.server.db.models import FloatingIpRow, InstanceRow, NetworkRow, PortRow
from kumo.server.db.models.common import new_uid
from kumo.server.errors import AlreadyExists, FailedPrecondition, InvalidArgument
from kumo.server.interceptors.base import Context
from kumo.server.network import ipam
from kumo.server.quota import charge
from kumo.server.services.network.common import (
    PORTS,
    SUBNETS,
    NetworkPart,
    bump,
    own_project,
    owned,
    port_to_proto,
    subnets_of,
    usable_network,
)
from kumo.server.services.network.security_groups import ensure_default_group, group_ids

_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
MAX_ADDRESS_PAIRS = 10
RESERVED_OWNER_PREFIX = "network:"
#: The owner of an instance's interface ports (device_id: the instance's name).
INSTANCE_OWNER = "compute:instance"


def random_mac() -> str:
    """A locally administered unicast MAC with Kumo's prefix 02:4b."""
    return "02:4b:" + ":".join(f"{random.randrange(256):02x}" for _ in range(4))


def check_mac(field: str, text: str) -> str:
    """A normalised unicast MAC; InvalidArgument naming `field`."""
    mac = text.lower().replace("-", ":")
    if not _MAC.match(mac) or int(mac[:2], 16) & 1:
        raise InvalidArgument.field(field, "not a unicast MAC address")
    return mac


def _address_pairs(pairs: list[pb.AllowedAddressPair]) -> list[dict[str, str]]:
    if len(pairs) > MAX_ADDRESS_PAIRS:
        raise InvalidArgument.field("port.allowed_address_pairs", f"at most {MAX_ADDRESS_PAIRS}")
    result = []
    for pair in pairs:
        field = "port.allowed_address_pairs"
        text = pair.ip_address
        try:
            net = ipam.parse_cidr(f"{field}.ip_address", text) if "/" in text else None
            address = str(net) if net else str(ipam.parse_address(f"{field}.ip_address", text))
        except InvalidArgument:
            raise
        mac = check_mac(f"{field}.mac_address", pair.mac_address) if pair.mac_address else ""
        result.append({"ip_address": address, "mac_address": mac})
    return result


def _check_owner(owner: str) -> None:
    if owner.startswith(RESERVED_OWNER_PREFIX):
        raise InvalidArgument.field(
            "port.device_owner", f"owners starting {RESERVED_OWNER_PREFIX!r} are reserved"
        )


def assign_addresses(
    session: Session, network: NetworkRow, port_uid: str, fixed_ips: list[pb.FixedIp]
) -> None:
    """Gives the port its addresses: the requested ones, or one per subnet."""
    subnets = subnets_of(session, network)
    if not fixed_ips:
        for subnet in subnets:
            ipam.allocate(session, subnet, port_uid, "port.fixed_ips")
        return
    by_name = {SUBNETS.name_of_row(s): s for s in subnets}
    for i, fixed in enumerate(fixed_ips):
        field = f"port.fixed_ips[{i}]"
        if fixed.subnet:
            found = by_name.get(fixed.subnet)
            if found is None:
                raise InvalidArgument.field(f"{field}.subnet", "not a subnet of the port's network")
            subnet = found
        elif fixed.ip_address:
            address = ipam.parse_address(f"{field}.ip_address", fixed.ip_address)
            matches = [s for s in subnets if address in ipam.parse_cidr("cidr", s.cidr)]
            if not matches:
                raise InvalidArgument.field(
                    f"{field}.ip_address", f"{address} is in no subnet of the port's network"
                )
            subnet = matches[0]
        else:
            raise InvalidArgument.field(field, "needs a subnet or an address")
        if fixed.ip_address:
            ipam.claim(session, subnet, fixed.ip_address, port_uid, f"{field}.ip_address")
        else:
            ipam.allocate(session, subnet, port_uid, field)


def instance_interface(session: Session, project_id: str, owner: str, device_id: str) -> bool:
    """Whether `owner`/`device_id` make a port of `project_id` an interface of one of its
    existing instances: such ports are made and deleted with the instance only."""
    parts = device_id.split("/")
    if owner != INSTANCE_OWNER or len(parts) != 6 or parts[1] != project_id:
        return False
    if (parts[0], parts[2], parts[4]) != ("projects", "zones", "instances"):
        return False
    key = (parts[1], parts[3], parts[5])
    return session.get(InstanceRow, key) is not None


def _refuse_instance_interface(name: str) -> None:
    raise FailedPrecondition(
        f"{name} is an instance's interface: it goes with the instance",
        type="PORT_OWNED",
        subject=name,
    )


def insert_port(session: Session, row: PortRow, port_id: str) -> None:
    """Adds a port row; AlreadyExists if the id is taken, FailedPrecondition if its MAC is
    in use on the network."""
    check_id("port_id", port_id)
    row.id = port_id
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError as exc:
        if session.get(PortRow, (row.project_id, port_id)) is not None:
            raise AlreadyExists(PORTS.type_name, PORTS.name_of_row(row)) from exc
        raise FailedPrecondition(
            f"MAC {row.mac_address} is already in use on the network",
            type="MAC_IN_USE",
            subject=row.mac_address,
        ) from exc


def add_port(
    session: Session, caller: Principal, project_id: str, port_id: str, spec: pb.Port
) -> PortRow:
    """Makes a port of `project_id` on one of its networks (quota `ports` charged, addresses
    from IPAM, the `default` security group when port security is on and none is named).
    Raises InvalidArgument for malformed fields, NotFound for a network or group the
    project may not use, AlreadyExists, FailedPrecondition (MAC in use, no free address)
    and QuotaExceeded. The caller commits and wakes the network reconciler."""
    _check_owner(spec.device_owner)
    mac = check_mac("port.mac_address", spec.mac_address) if spec.mac_address else ""
    pairs = _address_pairs(list(spec.allowed_address_pairs))
    security = spec.port_security_enabled if spec.HasField("port_security_enabled") else True
    if not security and (spec.security_groups or pairs):
        raise InvalidArgument.field(
            "port.security_groups", "security groups and address pairs need port security"
        )
    network = usable_network(session, caller, spec.network, "port.network", project_id)
    charge(session, project_id, {"ports": 1})
    groups = group_ids(session, project_id, list(spec.security_groups))
    if security and not groups:
        groups = [ensure_default_group(session, project_id)]
    row = PortRow(
        project_id=project_id,
        uid=new_uid(),
        network_project_id=network.project_id,
        network_id=network.id,
        mac_address=mac or random_mac(),
        security_groups=groups,
        port_security_enabled=security,
        allowed_address_pairs=pairs,
        device_owner=spec.device_owner,
        device_id=spec.device_id,
        host_id=spec.host.removeprefix("hosts/"),
    )
    apply_common(row, spec, {"display_name", "description", "labels"}, "port")
    insert_port(session, row, port_id)
    assign_addresses(session, network, row.uid, list(spec.fixed_ips))
    session.flush()
    return row


class PortMethods(NetworkPart):
    """Ports: attachment points on networks."""

    async def CreatePort(self, request: api.CreatePortRequest, context: Context) -> pb.Port:
        caller = current_principal()
        project_id = own_project(caller, request.parent)
        check_required(request.port, "port.")

        def create(session: Session) -> pb.Port:
            spec = request.port
            if instance_interface(session, project_id, spec.device_owner, spec.device_id):
                _refuse_instance_interface(PORTS.name_of(project_id, request.port_id))
            row = add_port(session, caller, project_id, request.port_id, spec)
            return port_to_proto(session, row)

        result = await idempotent(self.runtime.db, "CreatePort", request, pb.Port, create)
        self.changed()
        return result

    async def GetPort(self, request: api.GetPortRequest, context: Context) -> pb.Port:
        caller = current_principal()
        return await self.runtime.db.run(
            lambda s: port_to_proto(s, owned(s, caller, PORTS, request.name))
        )

    async def ListPorts(
        self, request: api.ListPortsRequest, context: Context
    ) -> api.ListPortsResponse:
        project_id = own_project(current_principal(), request.parent)

        def page(session: Session) -> api.ListPortsResponse:
            result = PORTS.list(
                session,
                self.runtime.pager,
                request,
                [PortRow.project_id == project_id],
                binding=request.parent,
            )
            return api.ListPortsResponse(
                ports=[port_to_proto(session, r) for r in result.rows],
                next_page_token=result.next_page_token,
            )

        return await self.runtime.db.run(page)

    async def UpdatePort(self, request: api.UpdatePortRequest, context: Context) -> pb.Port:
        caller = current_principal()
        spec = request.port
        paths = update_paths(spec, request.update_mask, "port")
        if "device_owner" in paths:
            _check_owner(spec.device_owner)
        pairs = _address_pairs(list(spec.allowed_address_pairs))

        def update(session: Session) -> pb.Port:
            row = owned(session, caller, PORTS, spec.name, "port.name")
            check_etag(spec.etag, row.version, spec.name)
            if row.device_owner.startswith(RESERVED_OWNER_PREFIX):
                raise FailedPrecondition(
                    f"{spec.name} belongs to a router", type="PORT_OWNED", subject=spec.name
                )
            if {"device_owner", "device_id"} & paths and (
                instance_interface(session, row.project_id, row.device_owner, row.device_id)
                or instance_interface(
                    session,
                    row.project_id,
                    spec.device_owner if "device_owner" in paths else row.device_owner,
                    spec.device_id if "device_id" in paths else row.device_id,
                )
            ):
                _refuse_instance_interface(spec.name)
            apply_common(row, spec, paths, "port")
            if "port_security_enabled" in paths:
                row.port_security_enabled = (
                    spec.port_security_enabled if spec.HasField("port_security_enabled") else True
                )
            if "security_groups" in paths:
                row.security_groups = group_ids(session, row.project_id, list(spec.security_groups))
            if "allowed_address_pairs" in paths:
                row.allowed_address_pairs = pairs
            if "device_owner" in paths:
                row.device_owner = spec.device_owner
            if "device_id" in paths:
                row.device_id = spec.device_id
            if "host" in paths:
                row.host_id = spec.host.removeprefix("hosts/")
            if not row.port_security_enabled and (row.security_groups or row.allowed_address_pairs):
                raise InvalidArgument.field(
                    "port.port_security_enabled",
                    "security groups and address pairs need port security",
                )
            bump(row)
            session.flush()
            return port_to_proto(session, row)

        result = await idempotent(self.runtime.db, "UpdatePort", request, pb.Port, update)
        self.changed()
        return result

    async def DeletePort(self, request: api.DeletePortRequest, context: Context) -> empty_pb2.Empty:
        caller = current_principal()

        def remove(session: Session) -> empty_pb2.Empty:
            row = owned(session, caller, PORTS, request.name)
            check_etag(request.etag, row.version, request.name)
            if row.device_owner.startswith(RESERVED_OWNER_PREFIX):
                raise FailedPrecondition(
                    f"{request.name} belongs to a router; use RemoveRouterInterface",
                    type="PORT_OWNED",
                    subject=request.name,
                )
            if instance_interface(session, row.project_id, row.device_owner, row.device_id):
                _refuse_instance_interface(request.name)
            delete_port_row(session, row)
            charge(session, row.project_id, {"ports": -1})
            return empty_pb2.Empty()

        result = await idempotent(self.runtime.db, "DeletePort", request, empty_pb2.Empty, remove)
        self.changed()
        return result


def delete_port_row(session: Session, row: PortRow) -> None:
    """Deletes a port: frees its addresses and disassociates its floating IPs."""
    ipam.release(session, row.uid)
    session.execute(
        sql_update(FloatingIpRow)
        .where(FloatingIpRow.project_id == row.project_id, FloatingIpRow.port_id == row.id)
        .values(
            port_id=None,
            fixed_ip="",
            router_id=None,
            version=FloatingIpRow.version + 1,
            state=pb.SYNC_STATE_PROVISIONING,
        )
    )
    session.delete(row)
