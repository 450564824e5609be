"""Floating IPs: CRUD; associate and disassociate through UpdateFloatingIp (`port`).

A floating IP is allocated from an external network's first IPv4 subnet. It
can point at a port of the same project whose subnet is an interface of a
router of that project with its gateway on the same external network
(FAILED_PRECONDITION otherwise); that router does the translation.
"""

from __future__ import annotations

from google.protobuf import empty_pb2
from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.network.v1 import network_service_pb2 as api
from kumo.network.v1 import resources_pb2 as pb
from kumo.server.api.convert import check_etag
from kumo.server.api.fields import check_required, update_paths
from kumo.server.api.idempotency import idempotent
from kumo.server.api.resources import apply_common
from kumo.server.auth.principal import Principal, current_principal
from kumo.server.db.models import FloatingIpRow, RouterRow
from kumo.server.db.models.common import new_uid
from kumo.server.errors import FailedPrecondition, InvalidArgument, NotFound
from kumo.server.interceptors.base import Context
from kumo.server.network import ipam
from kumo.server.quota import charge
from kumo.server.services.identity.common import PROJECTS, require_active
from kumo.server.services.network.common import (
    FLOATING_IPS,
    PORTS,
    NetworkPart,
    bump,
    external_network,
    first_ipv4_subnet,
    floating_ip_to_proto,
    own_project,
    owned,
    router_interfaces,
)


def _associate(
    session: Session, caller: Principal, row: FloatingIpRow, port_name: str, fixed_ip: str
) -> None:
    """Points the floating IP at a port's address (empty `port_name`: disassociates)."""
    row.port_id, row.fixed_ip, row.router_id = None, "", None
    if not port_name:
        return
    port = owned(session, caller, PORTS, port_name, "floating_ip.port")
    if port.project_id != row.project_id:
        raise NotFound(PORTS.type_name, port_name)
    held = ipam.held_by(session, port.uid)
    v4 = [(s, a) for s, a in held if ipam.parse_address("fixed_ip", a).version == 4]
    chosen = [(s, a) for s, a in v4 if not fixed_ip or a == fixed_ip]
    if not chosen:
        raise InvalidArgument.field(
            "floating_ip.fixed_ip",
            "not an IPv4 address of the port" if fixed_ip else "the port has no IPv4 address",
        )
    subnet_uid, address = chosen[0]
    for router in session.scalars(
        select(RouterRow).where(
            RouterRow.project_id == row.project_id,
            RouterRow.gateway_network_project_id == row.network_project_id,
            RouterRow.gateway_network_id == row.network_id,
        )
    ):
        for interface in router_interfaces(session, router):
            if any(s == subnet_uid for s, _ in ipam.held_by(session, interface.uid)):
                row.port_id, row.fixed_ip, row.router_id = port.id, address, router.id
                return
    raise FailedPrecondition(
        f"{port_name} cannot reach the external network: no router of the project joins "
        "its subnet to it",
        type="EXTERNAL_UNREACHABLE",
        subject=port_name,
    )


class FloatingIpMethods(NetworkPart):
    """Floating IPs: external addresses mapped one-to-one onto ports."""

    async def CreateFloatingIp(
        self, request: api.CreateFloatingIpRequest, context: Context
    ) -> pb.FloatingIp:
        caller = current_principal()
        project_id = own_project(caller, request.parent)
        check_required(request.floating_ip, "floating_ip.")
        spec = request.floating_ip

        def create(session: Session) -> pb.FloatingIp:
            require_active(PROJECTS.get(session, request.parent, "parent"))
            charge(session, project_id, {"floating_ips": 1})
            network = external_network(session, spec.network, "floating_ip.network")
            subnet = first_ipv4_subnet(session, network, "floating_ip.network")
            row = FloatingIpRow(
                project_id=project_id,
                uid=new_uid(),
                network_project_id=network.project_id,
                network_id=network.id,
            )
            row.ip_address = ipam.allocate(session, subnet, row.uid, "floating_ip.network")
            apply_common(row, spec, {"display_name", "description", "labels"}, "floating_ip")
            FLOATING_IPS.insert(session, request.floating_ip_id, "floating_ip_id", row)
            _associate(session, caller, row, spec.port, spec.fixed_ip)
            session.flush()
            return floating_ip_to_proto(row)

        result = await idempotent(
            self.runtime.db, "CreateFloatingIp", request, pb.FloatingIp, create
        )
        self.changed()
        return result

    async def GetFloatingIp(
        self, request: api.GetFloatingIpRequest, context: Context
    ) -> pb.FloatingIp:
        caller = current_principal()
        return await self.runtime.db.run(
            lambda s: floating_ip_to_proto(owned(s, caller, FLOATING_IPS, request.name))
        )

    async def ListFloatingIps(
        self, request: api.ListFloatingIpsRequest, context: Context
    ) -> api.ListFloatingIpsResponse:
        project_id = own_project(current_principal(), request.parent)

        def page(session: Session) -> api.ListFloatingIpsResponse:
            result = FLOATING_IPS.list(
                session,
                self.runtime.pager,
                request,
                [FloatingIpRow.project_id == project_id],
                binding=request.parent,
            )
            return api.ListFloatingIpsResponse(
                floating_ips=[floating_ip_to_proto(r) for r in result.rows],
                next_page_token=result.next_page_token,
            )

        return await self.runtime.db.run(page)

    async def UpdateFloatingIp(
        self, request: api.UpdateFloatingIpRequest, context: Context
    ) -> pb.FloatingIp:
        caller = current_principal()
        spec = request.floating_ip
        paths = update_paths(spec, request.update_mask, "floating_ip")

        def update(session: Session) -> pb.FloatingIp:
            row = owned(session, caller, FLOATING_IPS, spec.name, "floating_ip.name")
            check_etag(spec.etag, row.version, spec.name)
            apply_common(row, spec, paths, "floating_ip")
            if "port" in paths or "fixed_ip" in paths:
                _associate(session, caller, row, spec.port, spec.fixed_ip)
            bump(row)
            session.flush()
            return floating_ip_to_proto(row)

        result = await idempotent(
            self.runtime.db, "UpdateFloatingIp", request, pb.FloatingIp, update
        )
        self.changed()
        return result

    async def DeleteFloatingIp(
        self, request: api.DeleteFloatingIpRequest, context: Context
    ) -> empty_pb2.Empty:
        caller = current_principal()

        def remove(session: Session) -> empty_pb2.Empty:
            row = owned(session, caller, FLOATING_IPS, request.name)
            check_etag(request.etag, row.version, request.name)
            ipam.release(session, row.uid)
            charge(session, row.project_id, {"floating_ips": -1})
            session.delete(row)
            return empty_pb2.Empty()

        result = await idempotent(
            self.runtime.db, "DeleteFloatingIp", request, empty_pb2.Empty, remove
        )
        self.changed()
        return result
