"""Cinder's os-quota-sets: a project's block storage quota (`?usage=true` adds usage), the
defaults a new project gets (`/defaults`), and its update and revert to the defaults
(cloud administrators). Backups and groups are not offered by Kumo: no limit
(-1), and they cannot be set.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from kumo.gateway.dialect import invalid, json_body
from kumo.gateway.grpc_backend import Backend
from kumo.gateway.openstack.cinder.base import CinderBase
from kumo.gateway.openstack.common import Scopes
from kumo.gateway.openstack.quotas import UNLIMITED, QuotaKeys, Quotas

KEYS = QuotaKeys(
    {"volumes": "volumes", "snapshots": "snapshots", "gigabytes": "gigabytes"},
    {
        "backups": UNLIMITED,
        "backup_gigabytes": UNLIMITED,
        "groups": UNLIMITED,
        "per_volume_gigabytes": UNLIMITED,
    },
)
_TRUE = {"true", "1", "yes", "on"}


class QuotaSets(CinderBase):
    """GET/PUT/DELETE /os-quota-sets/{project_id}, GET .../defaults."""

    def __init__(self, backend: Backend, scopes: Scopes, public_url: str) -> None:
        super().__init__(backend, scopes, public_url)
        self.quotas = Quotas(backend)

    async def show(self, request: Request) -> Response:
        """GET /os-quota-sets/{project_id}[?usage=true] (members of the project, admins)."""
        scope, version = await self.begin(request)
        project_id = str(request.path_params["project_id"])
        quota = await self.quotas.read(scope, project_id)
        if request.query_params.get("usage", "").lower() in _TRUE:
            shown: dict[str, object] = {
                key: {**value, "allocated": 0}
                for key, value in KEYS.usage(quota, used="in_use").items()
            }
        else:
            shown = {**KEYS.limits(quota)}
        return self.reply(version, {"quota_set": {"id": project_id, **shown}})

    async def defaults(self, request: Request) -> Response:
        """GET /os-quota-sets/{project_id}/defaults: the limits a new project starts with."""
        scope, version = await self.begin(request)
        project_id = str(request.path_params["project_id"])
        quota = await self.quotas.read(scope, project_id)
        shown = KEYS.limits(quota, defaults=True)
        return self.reply(version, {"quota_set": {"id": project_id, **shown}})

    async def revert(self, request: Request) -> Response:
        """DELETE /os-quota-sets/{project_id} (cloud administrators): the block storage
        limits go back to the defaults."""
        scope, version = await self.begin(request)
        await self.quotas.reset(scope, str(request.path_params["project_id"]), KEYS)
        return self.reply(version, status=200)

    async def update(self, request: Request) -> Response:
        """PUT /os-quota-sets/{project_id} (cloud administrators): sets the given limits;
        like Cinder, a limit may go under current usage (new creates then fail)."""
        scope, version = await self.begin(request)
        project_id = str(request.path_params["project_id"])
        body = (await json_body(request)).get("quota_set")
        if not isinstance(body, dict):
            raise invalid("Missing required element 'quota_set' in request body.")
        changes = KEYS.wanted(body, ignored=("id",))
        quota = await self.quotas.update(scope, project_id, KEYS, changes, check_usage=False)
        return self.reply(version, {"quota_set": KEYS.limits(quota)})
