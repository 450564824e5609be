"""Neutron networks and subnets over Kumo's networks and their subnets.

Provider attributes (`provider:*`), `router:external` and `shared` map to the network's
type, physical network, VLAN id and `external` and `shared` flags; the API refuses them
to members (403). A down `admin_state_up` has no Kumo equivalent (400).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from kumo.gateway.dialect import integer, invalid, list_at
from kumo.gateway.openstack.common import Scope, with_uid
from kumo.gateway.openstack.neutron import views
from kumo.gateway.openstack.neutron.base import NeutronBase, mask, new_id
from kumo.gateway.openstack.neutron.index import Index
from kumo.network.v1 import network_service_pb2 as api
from kumo.network.v1 import resources_pb2 as pb

_TYPES = {
    "geneve": pb.Network.TYPE_OVERLAY,
    "vxlan": pb.Network.TYPE_OVERLAY,
    "vlan": pb.Network.TYPE_VLAN,
    "flat": pb.Network.TYPE_FLAT,
}
_SEGMENT = "provider:segmentation_id"


def _flag(body: dict[str, Any], key: str) -> bool:
    """A Neutron boolean attribute (JSON true/false, or the words); 400 otherwise."""
    value = body.get(key, False)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise invalid(f"'{value}' cannot be converted to boolean ({key})")
    return value


def _refuse_unsupported(body: dict[str, Any]) -> None:
    if body.get("admin_state_up") is False:
        raise invalid("Kumo networks are always up (admin_state_up=false)")


def _pools(value: list[Any]) -> list[pb.AllocationPool]:
    """Neutron allocation pools (`start`, `end`); 400 unless each is an object."""
    if not all(isinstance(p, dict) for p in value):
        raise invalid("allocation_pools must be a list of objects")
    return [pb.AllocationPool(start=str(p.get("start")), end=str(p.get("end"))) for p in value]


def routes_of(value: Any) -> list[pb.Route]:
    """Neutron routes (`destination`, `nexthop`) as Kumo routes; 400 when not a list."""
    if not isinstance(value, list):
        raise invalid("routes must be a list")
    return [
        pb.Route(destination=str(r.get("destination", "")), next_hop=str(r.get("nexthop", "")))
        for r in value
        if isinstance(r, dict)
    ]


class Networks(NeutronBase):
    """`/v2.0/networks` and `/v2.0/subnets`."""

    async def _render_networks(self, scope: Scope, index: Index) -> list[dict[str, Any]]:
        by_network: dict[str, list[str]] = {}
        for item in await index.subnets():
            by_network.setdefault(item.name.split("/subnets/")[0], []).append(item.uid)
        return [
            views.network(n, by_network.get(n.name, []), scope.cloud_admin)
            for n in await index.networks()
        ]

    async def _network(self, request: Request, scope: Scope, index: Index) -> dict[str, Any]:
        wanted = request.path_params["id"]
        for item in await self._render_networks(scope, index):
            if item["id"] == wanted:
                return item
        raise with_uid([], wanted, "Network")

    async def list_networks(self, request: Request) -> Response:
        """GET /networks."""
        scope, index = await self.begin(request)
        return self.listing(request, "networks", await self._render_networks(scope, index))

    async def show_network(self, request: Request) -> Response:
        """GET /networks/{id}."""
        scope, index = await self.begin(request)
        return self.one(request, "network", await self._network(request, scope, index))

    async def create_network(self, request: Request) -> Response:
        """POST /networks: 201."""
        scope, _ = await self.begin(request)
        body = await self.body_of(request, "network")
        _refuse_unsupported(body)
        kind = str(body.get("provider:network_type") or "geneve").lower()
        if kind not in _TYPES:
            raise invalid(f"provider:network_type {kind} is not supported")
        created = await self.call(
            self.network.CreateNetwork,
            api.CreateNetworkRequest(
                parent=self.parent_of(scope, body),
                network_id=new_id("net"),
                network=pb.Network(
                    display_name=str(body.get("name") or ""),
                    description=str(body.get("description") or ""),
                    type=_TYPES[kind],
                    physical_network=str(body.get("provider:physical_network") or ""),
                    vlan_id=integer(body.get(_SEGMENT), _SEGMENT),
                    external=_flag(body, "router:external"),
                    shared=_flag(body, "shared"),
                    mtu=integer(body.get("mtu"), "mtu"),
                ),
            ),
            scope,
        )
        return self.one(request, "network", views.network(created, [], scope.cloud_admin), 201)

    async def update_network(self, request: Request) -> Response:
        """PUT /networks/{id}: name, description, mtu, shared."""
        scope, index = await self.begin(request)
        body = await self.body_of(request, "network")
        _refuse_unsupported(body)
        found = with_uid(await index.networks(), request.path_params["id"], "Network")
        change = pb.Network(name=found.name)
        paths = []
        for key, path in (("name", "display_name"), ("description", "description")):
            if key in body:
                setattr(change, path, str(body[key] or ""))
                paths.append(path)
        if "mtu" in body:
            change.mtu = integer(body["mtu"], "mtu")
            paths.append("mtu")
        if "shared" in body:
            change.shared = _flag(body, "shared")
            paths.append("shared")
        if paths:
            await self.call(
                self.network.UpdateNetwork,
                api.UpdateNetworkRequest(network=change, update_mask=mask(*paths)),
                scope,
            )
            index.forget()
        return self.one(request, "network", await self._network(request, scope, index))

    async def delete_network(self, request: Request) -> Response:
        """DELETE /networks/{id}: 204 (its subnets go with it)."""
        scope, index = await self.begin(request)
        found = with_uid(await index.networks(), request.path_params["id"], "Network")
        await self.call(
            self.network.DeleteNetwork, api.DeleteNetworkRequest(name=found.name), scope
        )
        return self.gone()

    # --- subnets -------------------------------------------------------------------

    async def _render_subnets(self, index: Index) -> list[dict[str, Any]]:
        uids = await index.uids("networks")
        return [views.subnet(s, uids) for s in await index.subnets()]

    async def list_subnets(self, request: Request) -> Response:
        """GET /subnets."""
        _, index = await self.begin(request)
        return self.listing(request, "subnets", await self._render_subnets(index))

    async def show_subnet(self, request: Request) -> Response:
        """GET /subnets/{id}."""
        _, index = await self.begin(request)
        found = with_uid(await index.subnets(), request.path_params["id"], "Subnet")
        return self.one(request, "subnet", views.subnet(found, await index.uids("networks")))

    async def create_subnet(self, request: Request) -> Response:
        """POST /subnets: 201."""
        scope, index = await self.begin(request)
        body = await self.body_of(request, "subnet")
        network = with_uid(await index.networks(), str(body.get("network_id") or ""), "Network")
        if not body.get("cidr"):
            raise invalid("cidr is required (subnet pools are not offered)")
        subnet = pb.Subnet(
            display_name=str(body.get("name") or ""),
            description=str(body.get("description") or ""),
            cidr=str(body["cidr"]),
            gateway_ip=str(body.get("gateway_ip") or ""),
            allocation_pools=_pools(list_at(body, "allocation_pools")),
            dns_servers=[str(s) for s in list_at(body, "dns_nameservers")],
            host_routes=routes_of(body.get("host_routes") or []),
        )
        if "enable_dhcp" in body:
            subnet.dhcp_enabled = bool(body["enable_dhcp"])
        created = await self.call(
            self.network.CreateSubnet,
            api.CreateSubnetRequest(parent=network.name, subnet_id=new_id("snet"), subnet=subnet),
            scope,
        )
        return self.one(request, "subnet", views.subnet(created, {network.name: network.uid}), 201)

    async def update_subnet(self, request: Request) -> Response:
        """PUT /subnets/{id}: name, description, dns_nameservers, host_routes, enable_dhcp."""
        scope, index = await self.begin(request)
        body = await self.body_of(request, "subnet")
        found = with_uid(await index.subnets(), request.path_params["id"], "Subnet")
        change = pb.Subnet(name=found.name)
        paths = []
        for key, path in (("name", "display_name"), ("description", "description")):
            if key in body:
                setattr(change, path, str(body[key] or ""))
                paths.append(path)
        if "dns_nameservers" in body:
            change.dns_servers.extend(str(s) for s in list_at(body, "dns_nameservers"))
            paths.append("dns_servers")
        if "host_routes" in body:
            change.host_routes.extend(routes_of(body["host_routes"] or []))
            paths.append("host_routes")
        if "enable_dhcp" in body:
            change.dhcp_enabled = bool(body["enable_dhcp"])
            paths.append("dhcp_enabled")
        updated = found
        if paths:
            updated = await self.call(
                self.network.UpdateSubnet,
                api.UpdateSubnetRequest(subnet=change, update_mask=mask(*paths)),
                scope,
            )
        return self.one(request, "subnet", views.subnet(updated, await index.uids("networks")))

    async def delete_subnet(self, request: Request) -> Response:
        """DELETE /subnets/{id}: 204."""
        scope, index = await self.begin(request)
        found = with_uid(await index.subnets(), request.path_params["id"], "Subnet")
        await self.call(self.network.DeleteSubnet, api.DeleteSubnetRequest(name=found.name), scope)
        return self.gone()
