"""Neutron's quotas: a project's network quota, with usage (`/details`), the defaults a new
project gets (`/default`), and its update and revert to the defaults (cloud
administrators). Security group rules, RBAC policies and subnet pools have no limit
in Kumo (-1) and cannot be set.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from kumo.gateway.dialect import invalid
from kumo.gateway.grpc_backend import Backend
from kumo.gateway.openstack.common import Scopes
from kumo.gateway.openstack.neutron.base import NeutronBase
from kumo.gateway.openstack.quotas import UNLIMITED, QuotaKeys, Quotas

KEYS = QuotaKeys(
    {
        "network": "networks",
        "subnet": "subnets",
        "port": "ports",
        "router": "routers",
        "floatingip": "floating_ips",
        "security_group": "security_groups",
    },
    {"security_group_rule": UNLIMITED, "rbac_policy": UNLIMITED, "subnetpool": UNLIMITED},
)
_FLAGS = ("check_limit", "force", "project_id", "tenant_id")


class NetworkQuotas(NeutronBase):
    """GET/PUT/DELETE /quotas/{project_id}, GET .../details and .../default."""

    def __init__(self, backend: Backend, scopes: Scopes, public_url: str) -> None:
        super().__init__(backend, scopes, public_url)
        self.quotas = Quotas(backend)

    async def show(self, request: Request) -> Response:
        """GET /quotas/{project_id}: the limits (members of the project, admins)."""
        scope = await self.scopes.of(request)
        quota = await self.quotas.read(scope, str(request.path_params["project_id"]))
        return JSONResponse({"quota": KEYS.limits(quota)})

    async def details(self, request: Request) -> Response:
        """GET /quotas/{project_id}/details: limit, used and reserved per resource."""
        scope = await self.scopes.of(request)
        quota = await self.quotas.read(scope, str(request.path_params["project_id"]))
        return JSONResponse({"quota": KEYS.usage(quota, used="used")})

    async def default(self, request: Request) -> Response:
        """GET /quotas/{project_id}/default: the limits a new project starts with."""
        scope = await self.scopes.of(request)
        quota = await self.quotas.read(scope, str(request.path_params["project_id"]))
        return JSONResponse({"quota": KEYS.limits(quota, defaults=True)})

    async def revert(self, request: Request) -> Response:
        """DELETE /quotas/{project_id} (cloud administrators): 204; the network limits go
        back to the defaults."""
        scope = await self.scopes.of(request)
        await self.quotas.reset(scope, str(request.path_params["project_id"]), KEYS)
        return self.gone()

    async def update(self, request: Request) -> Response:
        """PUT /quotas/{project_id} (cloud administrators): sets the given limits; with
        `check_limit` true, a limit under current usage is 400 and nothing changes."""
        scope = await self.scopes.of(request)
        body = await self.body_of(request, "quota")
        check = body.get("check_limit", False)
        if not isinstance(check, bool):
            raise invalid(f"Invalid input for check_limit. Reason: '{check}' is not a boolean.")
        changes = KEYS.wanted(body, ignored=_FLAGS)
        quota = await self.quotas.update(
            scope, str(request.path_params["project_id"]), KEYS, changes, check_usage=check
        )
        return JSONResponse({"quota": KEYS.limits(quota)})
