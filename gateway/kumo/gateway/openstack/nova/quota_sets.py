"""Nova's os-quota-sets: a project's compute quota, with usage (`/detail`), the defaults a
new project gets (`/defaults`), and its update and revert to the defaults (cloud
administrators). Before 2.36 the set also shows the network quotas Nova proxied.

Key pairs, server groups and their members have no limit in Kumo (-1); metadata items are
fixed at 64 (Kumo's labels) and injected files are not offered (0, as GET /limits says; from
2.57, with file injection gone, not shown).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from kumo.gateway.dialect import invalid, json_member
from kumo.gateway.grpc_backend import Backend
from kumo.gateway.openstack.common import Scopes
from kumo.gateway.openstack.lookup import ImageIndex
from kumo.gateway.openstack.microversions import Version
from kumo.gateway.openstack.nova.base import MAX_METADATA_ITEMS, NovaBase
from kumo.gateway.openstack.quotas import UNLIMITED, QuotaKeys, Quotas

_COMPUTE = {"instances": "instances", "cores": "vcpus", "ram": "ram_mib"}
_FIXED = {
    "key_pairs": UNLIMITED,
    "metadata_items": MAX_METADATA_ITEMS,
    "server_groups": UNLIMITED,
    "server_group_members": UNLIMITED,
    "injected_files": 0,
    "injected_file_content_bytes": 0,
    "injected_file_path_bytes": 0,
}
_INJECTED_FILES = ("injected_files", "injected_file_content_bytes", "injected_file_path_bytes")
KEYS = QuotaKeys(_COMPUTE, _FIXED)
# From 2.57 (file injection gone): no injected file keys.
KEYS_FROM_2_57 = QuotaKeys(_COMPUTE, {k: v for k, v in _FIXED.items() if k not in _INJECTED_FILES})
# Before 2.36: the network quotas too.
KEYS_BEFORE_2_36 = QuotaKeys(
    {
        **_COMPUTE,
        "floating_ips": "floating_ips",
        "security_groups": "security_groups",
        "networks": "networks",
    },
    {**_FIXED, "fixed_ips": UNLIMITED, "security_group_rules": UNLIMITED},
)
_V2_36, _V2_57 = Version(2, 36), Version(2, 57)


def keys_at(version: Version) -> QuotaKeys:
    """The quota keys Nova shows at this microversion."""
    if version >= _V2_57:
        return KEYS_FROM_2_57
    return KEYS if version >= _V2_36 else KEYS_BEFORE_2_36


class QuotaSets(NovaBase):
    """GET/PUT/DELETE /os-quota-sets/{project_id}, GET .../detail and .../defaults."""

    def __init__(self, backend: Backend, scopes: Scopes, images: ImageIndex, public_url: str):
        super().__init__(backend, scopes, images, public_url)
        self.quotas = Quotas(backend)

    @staticmethod
    def _project(request: Request) -> str:
        if request.query_params.get("user_id"):
            raise invalid("Kumo has no per-user quotas; leave out user_id.")
        return str(request.path_params["project_id"])

    async def show(self, request: Request) -> Response:
        """GET /os-quota-sets/{project_id}: the limits (members of the project, admins)."""
        scope, version = await self.begin(request)
        project_id = self._project(request)
        quota = await self.quotas.read(scope, project_id)
        return self.reply(
            version, {"quota_set": {"id": project_id, **keys_at(version).limits(quota)}}
        )

    async def defaults(self, request: Request) -> Response:
        """GET /os-quota-sets/{project_id}/defaults: the limits a new project starts with."""
        scope, version = await self.begin(request)
        project_id = self._project(request)
        quota = await self.quotas.read(scope, project_id)
        limits = keys_at(version).limits(quota, defaults=True)
        return self.reply(version, {"quota_set": {"id": project_id, **limits}})

    async def revert(self, request: Request) -> Response:
        """DELETE /os-quota-sets/{project_id} (cloud administrators): 202; the compute
        limits go back to the defaults."""
        scope, version = await self.begin(request)
        await self.quotas.reset(scope, self._project(request), keys_at(version))
        return self.reply(version, status=202)

    async def detail(self, request: Request) -> Response:
        """GET /os-quota-sets/{project_id}/detail: limit, in_use and reserved per key."""
        scope, version = await self.begin(request)
        project_id = self._project(request)
        quota = await self.quotas.read(scope, project_id)
        usage = keys_at(version).usage(quota, used="in_use")
        return self.reply(version, {"quota_set": {"id": project_id, **usage}})

    async def update(self, request: Request) -> Response:
        """PUT /os-quota-sets/{project_id} (cloud administrators): sets the given limits.
        A limit under current usage is 400 unless `force` is true, as in Nova."""
        scope, version = await self.begin(request)
        project_id = self._project(request)
        body = await json_member(request, "quota_set", "the body needs a 'quota_set' object")
        force = body.get("force", False)
        if not isinstance(force, bool):
            raise invalid(f"Invalid input for field/attribute force. Value: {force!r}.")
        keys = keys_at(version)
        changes = keys.wanted(body, ignored=("force",))
        quota = await self.quotas.update(scope, project_id, keys, changes, check_usage=not force)
        return self.reply(version, {"quota_set": keys.limits(quota)})
