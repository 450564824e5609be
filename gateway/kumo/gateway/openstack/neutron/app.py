"""Neutron's routes: `/network` (versions, unauthenticated) and `/network/v2.0/...`."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from kumo.gateway.grpc_backend import Backend
from kumo.gateway.openstack.common import Scopes, base_url, not_found
from kumo.gateway.openstack.neutron.base import DIALECT
from kumo.gateway.openstack.neutron.networks import Networks
from kumo.gateway.openstack.neutron.ports import Ports
from kumo.gateway.openstack.neutron.quotas import NetworkQuotas
from kumo.gateway.openstack.neutron.routers import Routers
from kumo.gateway.openstack.neutron.security_groups import SecurityGroups
from kumo.gateway.openstack.neutron.tags import Tags, tag_routes

# (alias, name): the API extensions this dialect renders.
EXTENSIONS = (
    ("external-net", "Neutron external network"),
    ("provider", "Provider Network"),
    ("router", "Neutron L3 Router"),
    ("extraroute", "Neutron Extra Route"),
    ("ext-gw-mode", "Neutron L3 Configurable external gateway mode"),
    ("security-group", "security-group"),
    ("port-security", "Port Security"),
    ("allowed-address-pairs", "Allowed Address Pairs"),
    ("binding", "Port Binding"),
    ("standard-attr-description", "standard-attr-description"),
    ("standard-attr-timestamp", "Resource timestamps"),
    ("standard-attr-revisions", "Resource revision numbers"),
    ("standard-attr-tag", "Tag support for resources with standard attribute"),
    ("project-id", "project_id field enabled"),
    ("pagination", "Pagination support"),
    ("net-mtu", "Network MTU"),
    ("quotas", "Quota management support"),
    ("quota_details", "Quota details extension"),
)
RESOURCES = ("networks", "subnets", "ports", "routers", "floatingips", "security-groups")


def create_neutron(backend: Backend, scopes: Scopes, public_url: str) -> Starlette:
    """The ASGI app to mount at `/network`."""
    networks = Networks(backend, scopes, public_url)
    ports = Ports(backend, scopes, public_url)
    routers = Routers(backend, scopes, public_url)
    groups = SecurityGroups(backend, scopes, public_url)
    quotas = NetworkQuotas(backend, scopes, public_url)

    async def versions(request: Request) -> Response:
        href = f"{base_url(request, public_url)}/network/v2.0/"
        return JSONResponse(
            {"versions": [{"id": "v2.0", "status": "CURRENT", "links": [
                {"rel": "self", "href": href}]}]}
        )  # fmt: skip

    async def resources(request: Request) -> Response:
        base = f"{base_url(request, public_url)}/network/v2.0"
        return JSONResponse(
            {"resources": [
                {"name": r.rstrip("s"), "collection": r,
                 "links": [{"rel": "self", "href": f"{base}/{r}"}]}
                for r in RESOURCES
            ]}
        )  # fmt: skip

    def extension(alias: str, name: str) -> dict[str, Any]:
        return {
            "alias": alias,
            "name": name,
            "description": name,
            "links": [],
            "updated": "2013-01-01T00:00:00-00:00",
        }

    async def extensions(request: Request) -> Response:
        await scopes.of(request)
        return JSONResponse({"extensions": [extension(a, n) for a, n in EXTENSIONS]})

    async def show_extension(request: Request) -> Response:
        await scopes.of(request)
        for alias, name in EXTENSIONS:
            if alias == request.path_params["alias"]:
                return JSONResponse({"extension": extension(alias, name)})
        raise not_found("Extension", request.path_params["alias"])

    r = DIALECT.route
    v = "/v2.0"
    crud: list[tuple[str, Any, Any, Any, Any, Any]] = [
        ("networks", networks.list_networks, networks.create_network, networks.show_network,
         networks.update_network, networks.delete_network),
        ("subnets", networks.list_subnets, networks.create_subnet, networks.show_subnet,
         networks.update_subnet, networks.delete_subnet),
        ("ports", ports.list, ports.create, ports.show, ports.update, ports.delete),
        ("routers", routers.list_routers, routers.create, routers.show, routers.update,
         routers.delete),
        ("floatingips", routers.list_floating_ips, routers.create_floating_ip,
         routers.show_floating_ip, routers.update_floating_ip, routers.delete_floating_ip),
        ("security-groups", groups.list_groups, groups.create, groups.show, groups.update,
         groups.delete),
    ]  # fmt: skip
    routes = [
        r("/", versions, ["GET"]),
        r(v, resources, ["GET"]),
        r(v + "/", resources, ["GET"]),
        r(v + "/extensions", extensions, ["GET"]),
        r(v + "/extensions/{alias}", show_extension, ["GET"]),
        r(v + "/routers/{id}/add_router_interface", routers.add_interface, ["PUT"]),
        r(v + "/routers/{id}/remove_router_interface", routers.remove_interface, ["PUT"]),
        r(v + "/security-group-rules", groups.list_rules, ["GET"]),
        r(v + "/security-group-rules", groups.create_rule, ["POST"]),
        r(v + "/security-group-rules/{id}", groups.show_rule, ["GET"]),
        r(v + "/security-group-rules/{id}", groups.delete_rule, ["DELETE"]),
        r(v + "/quotas/{project_id}", quotas.show, ["GET"]),
        r(v + "/quotas/{project_id}", quotas.update, ["PUT"]),
        r(v + "/quotas/{project_id}", quotas.revert, ["DELETE"]),
        r(v + "/quotas/{project_id}/default", quotas.default, ["GET"]),
        r(v + "/quotas/{project_id}/details", quotas.details, ["GET"]),
        r(v + "/quotas/{project_id}/details.json", quotas.details, ["GET"]),
        *tag_routes(Tags(backend, scopes, public_url), r, v),
    ]
    for plural, list_, create, show, update, delete in crud:
        routes += [
            r(f"{v}/{plural}", list_, ["GET"]),
            r(f"{v}/{plural}", create, ["POST"]),
            r(f"{v}/{plural}/{{id}}", show, ["GET"]),
            r(f"{v}/{plural}/{{id}}", update, ["PUT"]),
            r(f"{v}/{plural}/{{id}}", delete, ["DELETE"]),
        ]
    return DIALECT.app(routes)
