"""Routers: CRUD, AddRouterInterface, RemoveRouterInterface.

An interface is a port (device owner `network:router_interface`) holding the
subnet's gateway address, on a subnet of the router's project. An external
gateway takes an address of the external network's first IPv4 subnet (from
IPAM, owned by the router's uid). A router with interfaces or floating IPs
cannot be deleted, nor lose its gateway while floating IPs use it.
"""

from __future__ import annotations

import uuid

from google.protobuf import empty_pb2
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from kumo.network.v1 import network_service_pb2 as api
from kumo.network.v1 import resources_pb2 as pb
from kumo.server.api.convert import check_etag
from kumo.server.api.fields import update_paths
from kumo.server.api.idempotency import idempotent
from kumo.server.api.resources import apply_common
from kumo.server.auth.principal import Principal, current_principal
from kumo.server.db.models import FloatingIpRow, NetworkRow, PortRow, RouterRow, SubnetRow
from kumo.server.db.models.common import new_uid
from kumo.server.errors import FailedPrecondition, NotFound
from kumo.server.interceptors.base import Context
from kumo.server.network import ipam
from kumo.server.quota import charge
from kumo.server.services.identity.common import PROJECTS, require_active
from kumo.server.services.network.common import (
    ROUTER_INTERFACE,
    ROUTERS,
    SUBNETS,
    NetworkPart,
    bump,
    external_network,
    first_ipv4_subnet,
    own_project,
    owned,
    router_interfaces,
    router_to_proto,
)
from kumo.server.services.network.ports import delete_port_row, insert_port, random_mac
from kumo.server.services.network.subnets import check_routes


def _has_floating_ips(session: Session, row: RouterRow) -> bool:
    return bool(
        session.scalar(
            select(
                exists().where(
                    FloatingIpRow.project_id == row.project_id, FloatingIpRow.router_id == row.id
                )
            )
        )
    )


def _set_gateway(session: Session, row: RouterRow, gateway: pb.ExternalGateway | None) -> None:
    """Replaces the router's external gateway (None: removes it)."""
    if row.gateway_network_id is not None:
        if _has_floating_ips(session, row):
            name = ROUTERS.name_of_row(row)
            raise FailedPrecondition(
                f"{name} has floating IPs; disassociate them first",
                type="ROUTER_IN_USE",
                subject=name,
            )
        ipam.release(session, row.uid)
    row.gateway_network_project_id = row.gateway_network_id = None
    row.gateway_ip = ""
    if gateway is None or not gateway.network:
        return
    network = external_network(session, gateway.network, "router.external_gateway.network")
    subnet = first_ipv4_subnet(session, network, "router.external_gateway.network")
    row.gateway_ip = ipam.allocate(session, subnet, row.uid, "router.external_gateway")
    row.gateway_network_project_id = network.project_id
    row.gateway_network_id = network.id
    row.snat_enabled = gateway.snat_enabled if gateway.HasField("snat_enabled") else True


def _interface_subnet(
    session: Session, caller: Principal, router: RouterRow, name: str
) -> SubnetRow:
    """A subnet of the router's own project; NotFound otherwise."""
    subnet = owned(session, caller, SUBNETS, name, "subnet")
    if subnet.project_id != router.project_id:
        raise NotFound(SUBNETS.type_name, name)
    return subnet


class RouterMethods(NetworkPart):
    """Routers between a project's subnets and to external networks."""

    async def CreateRouter(self, request: api.CreateRouterRequest, context: Context) -> pb.Router:
        caller = current_principal()
        project_id = own_project(caller, request.parent)
        spec = request.router

        def create(session: Session) -> pb.Router:
            require_active(PROJECTS.get(session, request.parent, "parent"))
            charge(session, project_id, {"routers": 1})
            row = RouterRow(
                project_id=project_id,
                uid=new_uid(),
                routes=check_routes(list(spec.routes), "router.routes", None),
            )
            apply_common(row, spec, {"display_name", "description", "labels"}, "router")
            ROUTERS.insert(session, request.router_id, "router_id", row)
            if spec.HasField("external_gateway"):
                _set_gateway(session, row, spec.external_gateway)
            session.flush()
            return router_to_proto(session, row)

        result = await idempotent(self.runtime.db, "CreateRouter", request, pb.Router, create)
        self.changed()
        return result

    async def GetRouter(self, request: api.GetRouterRequest, context: Context) -> pb.Router:
        caller = current_principal()
        return await self.runtime.db.run(
            lambda s: router_to_proto(s, owned(s, caller, ROUTERS, request.name))
        )

    async def ListRouters(
        self, request: api.ListRoutersRequest, context: Context
    ) -> api.ListRoutersResponse:
        project_id = own_project(current_principal(), request.parent)

        def page(session: Session) -> api.ListRoutersResponse:
            result = ROUTERS.list(
                session,
                self.runtime.pager,
                request,
                [RouterRow.project_id == project_id],
                binding=request.parent,
            )
            return api.ListRoutersResponse(
                routers=[router_to_proto(session, r) for r in result.rows],
                next_page_token=result.next_page_token,
            )

        return await self.runtime.db.run(page)

    async def UpdateRouter(self, request: api.UpdateRouterRequest, context: Context) -> pb.Router:
        caller = current_principal()
        spec = request.router
        paths = update_paths(spec, request.update_mask, "router")

        def update(session: Session) -> pb.Router:
            row = owned(session, caller, ROUTERS, spec.name, "router.name")
            check_etag(spec.etag, row.version, spec.name)
            apply_common(row, spec, paths, "router")
            if "routes" in paths:
                row.routes = check_routes(list(spec.routes), "router.routes", None)
            if "external_gateway" in paths:
                _set_gateway(
                    session,
                    row,
                    spec.external_gateway if spec.HasField("external_gateway") else None,
                )
            bump(row)
            session.flush()
            return router_to_proto(session, row)

        result = await idempotent(self.runtime.db, "UpdateRouter", request, pb.Router, update)
        self.changed()
        return result

    async def DeleteRouter(
        self, request: api.DeleteRouterRequest, context: Context
    ) -> empty_pb2.Empty:
        caller = current_principal()

        def remove(session: Session) -> empty_pb2.Empty:
            row = owned(session, caller, ROUTERS, request.name)
            check_etag(request.etag, row.version, request.name)
            if router_interfaces(session, row) or _has_floating_ips(session, row):
                raise FailedPrecondition(
                    f"{request.name} still has interfaces or floating IPs",
                    type="ROUTER_IN_USE",
                    subject=request.name,
                )
            ipam.release(session, row.uid)
            charge(session, row.project_id, {"routers": -1})
            session.delete(row)
            return empty_pb2.Empty()

        result = await idempotent(self.runtime.db, "DeleteRouter", request, empty_pb2.Empty, remove)
        self.changed()
        return result

    async def AddRouterInterface(
        self, request: api.AddRouterInterfaceRequest, context: Context
    ) -> pb.Router:
        caller = current_principal()

        def add(session: Session) -> pb.Router:
            row = owned(session, caller, ROUTERS, request.router, "router")
            subnet = _interface_subnet(session, caller, row, request.subnet)
            for port in router_interfaces(session, row):
                if any(s == subnet.uid for s, _ in ipam.held_by(session, port.uid)):
                    raise FailedPrecondition(
                        f"{request.subnet} is already on {request.router}",
                        type="INTERFACE_EXISTS",
                        subject=request.subnet,
                    )
            network = session.get(NetworkRow, (subnet.project_id, subnet.network_id))
            assert network is not None
            port = PortRow(
                project_id=row.project_id,
                uid=new_uid(),
                network_project_id=network.project_id,
                network_id=network.id,
                mac_address=random_mac(),
                security_groups=[],
                port_security_enabled=False,
                allowed_address_pairs=[],
                device_owner=ROUTER_INTERFACE,
                device_id=ROUTERS.name_of_row(row),
            )
            insert_port(session, port, f"router-{uuid.uuid4().hex[:12]}")
            ipam.claim(session, subnet, subnet.gateway_ip, port.uid, "subnet")
            bump(row)
            session.flush()
            return router_to_proto(session, row)

        result = await idempotent(self.runtime.db, "AddRouterInterface", request, pb.Router, add)
        self.changed()
        return result

    async def RemoveRouterInterface(
        self, request: api.RemoveRouterInterfaceRequest, context: Context
    ) -> pb.Router:
        caller = current_principal()

        def remove(session: Session) -> pb.Router:
            row = owned(session, caller, ROUTERS, request.router, "router")
            subnet = _interface_subnet(session, caller, row, request.subnet)
            for port in router_interfaces(session, row):
                if any(s == subnet.uid for s, _ in ipam.held_by(session, port.uid)):
                    if _has_floating_ips(session, row):
                        raise FailedPrecondition(
                            f"{request.router} has floating IPs into its subnets",
                            type="ROUTER_IN_USE",
                            subject=request.router,
                        )
                    delete_port_row(session, port)
                    break
            else:
                raise NotFound("network.kumo.dev/RouterInterface", request.subnet)
            bump(row)
            session.flush()
            return router_to_proto(session, row)

        result = await idempotent(
            self.runtime.db, "RemoveRouterInterface", request, pb.Router, remove
        )
        self.changed()
        return result
