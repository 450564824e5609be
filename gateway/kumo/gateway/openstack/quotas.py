"""A project's quota in the OpenStack dialects: Nova's and Cinder's quota sets, Neutron's
quotas. Each dialect names Kumo's quota resources its own way (`QuotaKeys`); what a dialect
shows that Kumo does not count is shown as a fixed limit and cannot be set.

The project in the path is a Kumo project id (Keystone ids are Kumo's). Reading goes
through GetQuota (members of the project, cloud administrators), setting through
UpdateQuota (cloud administrators only), so each dialect answers 403/404 as those calls do.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kumo.gateway.dialect import invalid
from kumo.gateway.errors import RpcFailure
from kumo.gateway.grpc_backend import Backend
from kumo.gateway.openstack.common import Scope
from kumo.identity.v1 import identity_service_pb2 as iapi
from kumo.identity.v1 import identity_service_pb2_grpc as irpc
from kumo.identity.v1 import resources_pb2 as ipb

UNLIMITED = -1
_INT64_MAX = 2**63 - 1  # QuotaLimit.limit (the API's own bound is lower)
_INTEGER = re.compile(r"^\s*-?[0-9]+\s*$")


@dataclass(frozen=True)
class QuotaKeys:
    """One dialect's quota keys: `counted` maps each to a Kumo quota resource; `fixed` are
    keys the dialect always shows, with the value Kumo effectively applies."""

    counted: Mapping[str, str]
    fixed: Mapping[str, int]

    def limits(self, quota: ipb.Quota, defaults: bool = False) -> dict[str, int]:
        """{key: limit} for every key: the project's limits, or with `defaults` the ones a
        new project starts with."""
        by_resource = {q.resource: q for q in quota.limits}
        shown = dict(self.fixed)
        for key, resource in self.counted.items():
            found = by_resource.get(resource)
            if found is None:
                shown[key] = UNLIMITED
            else:
                shown[key] = int(found.default_limit if defaults else found.limit)
        return dict(sorted(shown.items()))

    def usage(self, quota: ipb.Quota, used: str) -> dict[str, dict[str, int]]:
        """{key: {"limit", `used`, "reserved"}} for every key (Kumo reserves nothing)."""
        by_resource = {q.resource: q for q in quota.limits}
        return {
            key: {
                "limit": limit,
                used: int(by_resource[self.counted[key]].in_use)
                if self.counted.get(key) in by_resource
                else 0,
                "reserved": 0,
            }
            for key, limit in self.limits(quota).items()
        }

    def wanted(self, body: Mapping[str, Any], ignored: tuple[str, ...]) -> dict[str, int]:
        """The limits a PUT body sets, {Kumo resource: limit}; keys in `ignored` (the
        dialect's flags and read-only fields) are skipped. Raises INVALID_ARGUMENT for an
        unknown or fixed key, or a value that is not an integer from -1 to 2^63-1."""
        changes: dict[str, int] = {}
        for key, value in body.items():
            if key in ignored:
                continue
            if key in self.fixed:
                raise invalid(f"Quota {key} is fixed at {self.fixed[key]} in Kumo.")
            if key not in self.counted:
                raise invalid(f"Bad key(s) {key!r} in quota_set; known: {sorted(self.counted)}")
            limit = _integer(value)
            if limit is None or not UNLIMITED <= limit <= _INT64_MAX:
                raise invalid(f"Invalid input for field/attribute {key}. Value: {value!r}.")
            changes[self.counted[key]] = limit
        return changes


def _integer(value: Any) -> int | None:
    """An integer, or a string of one; None for anything else (booleans included)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INTEGER.match(value):
        return int(value)
    return None


def below_usage(keys: QuotaKeys, quota: ipb.Quota, changes: Mapping[str, int]) -> str | None:
    """Why `changes` would put a limit under what is in use (None if none would)."""
    in_use = {q.resource: int(q.in_use) for q in quota.limits}
    for key, resource in keys.counted.items():
        limit = changes.get(resource)
        if limit is not None and limit != UNLIMITED and limit < in_use.get(resource, 0):
            return (
                f"Quota limit {limit} for {key} must be greater than or equal to already "
                f"used and reserved {in_use[resource]}."
            )
    return None


class Quotas:
    """Reads and sets a project's quota for the dialects."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.identity = backend.stub(irpc.IdentityServiceStub)

    async def read(self, scope: Scope, project_id: str) -> ipb.Quota:
        """The project's quota with usage. Raises RpcFailure as GetQuota does."""
        quota: ipb.Quota = await self.backend.call(
            self.identity.GetQuota,
            iapi.GetQuotaRequest(name=f"projects/{project_id}/quota"),
            scope.token,
        )
        return quota

    async def update(
        self,
        scope: Scope,
        project_id: str,
        keys: QuotaKeys,
        changes: Mapping[str, int],
        check_usage: bool,
    ) -> ipb.Quota:
        """Sets the given limits; the quota after. With `check_usage`, a limit under current
        usage is INVALID_ARGUMENT and nothing changes: the API checks it in the update
        itself (`validate_usage`: a create charging meanwhile cannot slip under the new
        limit); a refusal is read back once to word it in the dialect's keys. Raises
        RpcFailure as GetQuota and UpdateQuota do (PERMISSION_DENIED for anyone but a cloud
        administrator)."""
        try:
            return await self._set(scope, project_id, changes, validate_usage=check_usage)
        except RpcFailure as failure:
            if "QUOTA_BELOW_USAGE" not in failure.precondition_types():
                raise
            quota = await self.read(scope, project_id)
            raise invalid(below_usage(keys, quota, changes) or failure.message) from None

    async def reset(self, scope: Scope, project_id: str, keys: QuotaKeys) -> ipb.Quota:
        """Sets the limits of the dialect's `keys` back to the defaults a new project gets
        (the others stay); the quota after. Raises RpcFailure as `update` does."""
        counted = set(keys.counted.values())
        quota = await self.read(scope, project_id)
        defaults = {q.resource: int(q.default_limit) for q in quota.limits if q.resource in counted}
        return await self._set(scope, project_id, defaults)

    async def _set(
        self,
        scope: Scope,
        project_id: str,
        changes: Mapping[str, int],
        validate_usage: bool = False,
    ) -> ipb.Quota:
        limits = [ipb.QuotaLimit(resource=r, limit=v) for r, v in sorted(changes.items())]
        quota: ipb.Quota = await self.backend.call(
            self.identity.UpdateQuota,
            iapi.UpdateQuotaRequest(
                quota=ipb.Quota(name=f"projects/{project_id}/quota", limits=limits),
                validate_usage=validate_usage,
            ),
            scope.token,
        )
        return quota
