"""Neutron routers (interfaces, external gateway, routes) and floating IPs.

A router interface is added and removed by subnet (`subnet_id`); Kumo makes the
interface's port. Adding one by `port_id` alone is not offered (400).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from kumo.gateway.dialect import invalid, json_body
from kumo.gateway.openstack.common import with_uid
from kumo.gateway.openstack.neutron import views
from kumo.gateway.openstack.neutron.base import NeutronBase, mask, new_id
from kumo.gateway.openstack.neutron.index import Index
from kumo.gateway.openstack.neutron.networks import routes_of
from kumo.network.v1 import network_service_pb2 as api
from kumo.network.v1 import resources_pb2 as pb

_KINDS = ("networks", "subnets", "ports", "routers")


async def _gateway(index: Index, info: Any) -> pb.ExternalGateway | None:
    """The Kumo gateway of `external_gateway_info` (None when it is empty or null)."""
    if not info:
        return None
    if not isinstance(info, dict):
        raise invalid("external_gateway_info must be an object")
    network = with_uid(await index.networks(), str(info.get("network_id") or ""), "Network")
    gateway = pb.ExternalGateway(network=network.name)
    if "enable_snat" in info:
        gateway.snat_enabled = bool(info["enable_snat"])
    return gateway


class Routers(NeutronBase):
    """`/v2.0/routers` and `/v2.0/floatingips`."""

    async def _view(self, index: Index, item: pb.Router) -> dict[str, Any]:
        uids = await index.uids("networks", "subnets")
        first_subnet: dict[str, str] = {}
        for subnet in await index.subnets():
            first_subnet.setdefault(subnet.name.split("/subnets/")[0], subnet.uid)
        return views.router(item, uids, first_subnet)

    async def list_routers(self, request: Request) -> Response:
        """GET /routers."""
        _, index = await self.begin(request)
        items = [await self._view(index, r) for r in await index.routers()]
        return self.listing(request, "routers", items)

    async def show(self, request: Request) -> Response:
        """GET /routers/{id}."""
        _, index = await self.begin(request)
        found = with_uid(await index.routers(), request.path_params["id"], "Router")
        return self.one(request, "router", await self._view(index, found))

    async def create(self, request: Request) -> Response:
        """POST /routers: 201."""
        scope, index = await self.begin(request)
        body = await self.body_of(request, "router")
        router = pb.Router(
            display_name=str(body.get("name") or ""),
            description=str(body.get("description") or ""),
        )
        gateway = await _gateway(index, body.get("external_gateway_info"))
        if gateway is not None:
            router.external_gateway.CopyFrom(gateway)
        created = await self.call(
            self.network.CreateRouter,
            api.CreateRouterRequest(
                parent=self.parent_of(scope, body), router_id=new_id("rtr"), router=router
            ),
            scope,
        )
        return self.one(request, "router", await self._view(index, created), 201)

    async def update(self, request: Request) -> Response:
        """PUT /routers/{id}: name, description, external_gateway_info, routes."""
        scope, index = await self.begin(request)
        body = await self.body_of(request, "router")
        found = with_uid(await index.routers(), request.path_params["id"], "Router")
        change = pb.Router(name=found.name)
        paths = []
        for key, path in (("name", "display_name"), ("description", "description")):
            if key in body:
                setattr(change, path, str(body[key] or ""))
                paths.append(path)
        if "external_gateway_info" in body:
            gateway = await _gateway(index, body["external_gateway_info"])
            if gateway is not None:
                change.external_gateway.CopyFrom(gateway)
            paths.append("external_gateway")
        if "routes" in body:
            change.routes.extend(routes_of(body["routes"] or []))
            paths.append("routes")
        updated = found
        if paths:
            updated = await self.call(
                self.network.UpdateRouter,
                api.UpdateRouterRequest(router=change, update_mask=mask(*paths)),
                scope,
            )
        return self.one(request, "router", await self._view(index, updated))

    async def delete(self, request: Request) -> Response:
        """DELETE /routers/{id}: 204."""
        scope, index = await self.begin(request)
        found = with_uid(await index.routers(), request.path_params["id"], "Router")
        await self.call(self.network.DeleteRouter, api.DeleteRouterRequest(name=found.name), scope)
        return self.gone()

    async def _interface(self, request: Request, add: bool) -> Response:
        scope, index = await self.begin(request)
        body = await json_body(request)
        found = with_uid(await index.routers(), request.path_params["id"], "Router")
        subnet_id = body.get("subnet_id")
        if not subnet_id and body.get("port_id"):
            port = with_uid(await index.ports(), str(body["port_id"]), "Port")
            if not add and port.fixed_ips:
                subnet_id = (await index.uids("subnets")).get(port.fixed_ips[0].subnet)
            else:
                raise invalid("Kumo adds router interfaces by subnet_id")
        if not subnet_id:
            raise invalid("Either subnet_id or port_id must be specified")
        subnet = with_uid(await index.subnets(), str(subnet_id), "Subnet")
        network = subnet.name.split("/subnets/")[0]
        before = {i.subnet: i.port for i in found.interfaces}
        method = self.network.AddRouterInterface if add else self.network.RemoveRouterInterface
        request_type = api.AddRouterInterfaceRequest if add else api.RemoveRouterInterfaceRequest
        after = await self.call(method, request_type(router=found.name, subnet=subnet.name), scope)
        port_name = {i.subnet: i.port for i in after.interfaces}.get(subnet.name) or before.get(
            subnet.name, ""
        )
        index.forget()
        uids = await index.uids("networks", "ports")
        return JSONResponse(
            {
                "id": found.uid,
                "tenant_id": scope.project,
                "project_id": scope.project,
                "subnet_id": subnet.uid,
                "subnet_ids": [subnet.uid],
                "port_id": uids.get(port_name),
                "network_id": uids.get(network),
            }
        )

    async def add_interface(self, request: Request) -> Response:
        """PUT /routers/{id}/add_router_interface."""
        return await self._interface(request, add=True)

    async def remove_interface(self, request: Request) -> Response:
        """PUT /routers/{id}/remove_router_interface."""
        return await self._interface(request, add=False)

    # --- floating IPs --------------------------------------------------------------

    async def _fip_view(self, index: Index, item: pb.FloatingIp) -> dict[str, Any]:
        return views.floating_ip(item, await index.uids(*_KINDS))

    async def list_floating_ips(self, request: Request) -> Response:
        """GET /floatingips."""
        _, index = await self.begin(request)
        uids = await index.uids(*_KINDS)
        items = [views.floating_ip(f, uids) for f in await index.floating_ips()]
        return self.listing(request, "floatingips", items)

    async def show_floating_ip(self, request: Request) -> Response:
        """GET /floatingips/{id}."""
        _, index = await self.begin(request)
        found = with_uid(await index.floating_ips(), request.path_params["id"], "Floating IP")
        return self.one(request, "floatingip", await self._fip_view(index, found))

    async def _port_of(self, index: Index, body: dict[str, Any], fip: pb.FloatingIp) -> list[str]:
        """Sets the port and fixed IP of `fip` from the body; the update paths."""
        paths = []
        if "port_id" in body:
            port_id = body["port_id"]
            fip.port = with_uid(await index.ports(), str(port_id), "Port").name if port_id else ""
            paths.append("port")
        if "fixed_ip_address" in body:
            fip.fixed_ip = str(body["fixed_ip_address"] or "")
            paths.append("fixed_ip")
        return paths

    async def create_floating_ip(self, request: Request) -> Response:
        """POST /floatingips: 201."""
        scope, index = await self.begin(request)
        body = await self.body_of(request, "floatingip")
        network = with_uid(
            await index.networks(), str(body.get("floating_network_id") or ""), "Network"
        )
        fip = pb.FloatingIp(network=network.name, description=str(body.get("description") or ""))
        await self._port_of(index, body, fip)
        if body.get("floating_ip_address"):
            raise invalid("Kumo picks the floating IP address (floating_ip_address)")
        created = await self.call(
            self.network.CreateFloatingIp,
            api.CreateFloatingIpRequest(
                parent=self.parent_of(scope, body), floating_ip_id=new_id("fip"), floating_ip=fip
            ),
            scope,
        )
        return self.one(request, "floatingip", await self._fip_view(index, created), 201)

    async def update_floating_ip(self, request: Request) -> Response:
        """PUT /floatingips/{id}: associate (port_id) or disassociate (null)."""
        scope, index = await self.begin(request)
        body = await self.body_of(request, "floatingip")
        found = with_uid(await index.floating_ips(), request.path_params["id"], "Floating IP")
        change = pb.FloatingIp(name=found.name)
        paths = await self._port_of(index, body, change)
        if "description" in body:
            change.description = str(body["description"] or "")
            paths.append("description")
        updated = found
        if paths:
            updated = await self.call(
                self.network.UpdateFloatingIp,
                api.UpdateFloatingIpRequest(floating_ip=change, update_mask=mask(*paths)),
                scope,
            )
        return self.one(request, "floatingip", await self._fip_view(index, updated))

    async def delete_floating_ip(self, request: Request) -> Response:
        """DELETE /floatingips/{id}: 204."""
        scope, index = await self.begin(request)
        found = with_uid(await index.floating_ips(), request.path_params["id"], "Floating IP")
        await self.call(
            self.network.DeleteFloatingIp, api.DeleteFloatingIpRequest(name=found.name), scope
        )
        return self.gone()
