"""GetQuota and UpdateQuota.

UpdateQuota changes each limit with one conditional UPDATE; with `validate_usage` the
condition is that the project holds no more than the new limit, so a create charging the
quota at the same moment (quota.charge: itself a conditional UPDATE of the same row)
either lands before it and makes it refuse, or after it and is refused.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import ColumnElement, select, true, update
from sqlalchemy.orm import Session

from kumo.identity.v1 import identity_service_pb2 as api
from kumo.identity.v1 import resources_pb2 as pb
from kumo.server.api.convert import check_etag, etag
from kumo.server.api.idempotency import idempotent
from kumo.server.api.names import parse_one
from kumo.server.auth.principal import current_principal
from kumo.server.db.models import QuotaRow
from kumo.server.errors import FailedPrecondition, FieldViolation, InvalidArgument
from kumo.server.interceptors.base import Context
from kumo.server.services.identity.common import IdentityPart, visible_project

PATTERN = "projects/{project}/quota"
MAX_LIMIT = 2**53


def _rows(session: Session, project_id: str) -> list[QuotaRow]:
    return list(
        session.scalars(
            select(QuotaRow).where(QuotaRow.project_id == project_id).order_by(QuotaRow.resource)
        )
    )


def _set_limit(
    session: Session, project_id: str, resource: str, limit: int, validate_usage: bool
) -> None:
    """Sets one limit (a new version of the row). With `validate_usage`, a limit below what
    the project holds is FailedPrecondition QUOTA_BELOW_USAGE."""
    where = QuotaRow.project_id == project_id, QuotaRow.resource == resource
    fits: ColumnElement[bool] = true()
    if validate_usage and limit >= 0:
        fits = QuotaRow.in_use <= limit
    changed = session.execute(
        update(QuotaRow)
        .where(*where, fits)
        .values(limit=limit, version=QuotaRow.version + 1)
        .returning(QuotaRow.resource)
        .execution_options(synchronize_session=False)
    ).first()
    if changed is None:
        in_use = session.scalar(select(QuotaRow.in_use).where(*where))
        name = f"projects/{project_id}/quota"
        raise FailedPrecondition(
            f"{resource}: a limit of {limit} is below the {in_use} the project holds",
            type="QUOTA_BELOW_USAGE",
            subject=name,
        )


def _quota(project_id: str, rows: list[QuotaRow], defaults: Mapping[str, int]) -> pb.Quota:
    """The message of a project's quota rows; `defaults` are the configured limits a new
    project starts with (-1 for a resource they leave out)."""
    return pb.Quota(
        name=f"projects/{project_id}/quota",
        limits=[
            pb.QuotaLimit(
                resource=r.resource,
                limit=r.limit,
                in_use=r.in_use,
                default_limit=defaults.get(r.resource, -1),
            )
            for r in rows
        ],
        etag=etag(sum(r.version for r in rows)),
    )


class QuotaMethods(IdentityPart):
    """Per-project quotas."""

    async def GetQuota(self, request: api.GetQuotaRequest, context: Context) -> pb.Quota:
        caller = current_principal()
        project_id = parse_one("name", request.name, PATTERN)
        defaults = self.runtime.config.quota_defaults

        def get(session: Session) -> pb.Quota:
            visible_project(session, caller, f"projects/{project_id}", "name")
            return _quota(project_id, _rows(session, project_id), defaults)

        return await self.runtime.db.run(get)

    async def UpdateQuota(self, request: api.UpdateQuotaRequest, context: Context) -> pb.Quota:
        caller = current_principal()
        project_id = parse_one("quota.name", request.quota.name, PATTERN)
        defaults = self.runtime.config.quota_defaults
        wanted: dict[str, int] = {}
        violations = []
        for index, limit in enumerate(request.quota.limits):
            if limit.limit < -1 or limit.limit > MAX_LIMIT:
                violations.append(
                    FieldViolation(f"quota.limits[{index}].limit", "must be -1 or 0 to 2^53")
                )
            if limit.resource in wanted:
                violations.append(FieldViolation(f"quota.limits[{index}].resource", "given twice"))
            wanted[limit.resource] = limit.limit
        if violations:
            raise InvalidArgument(violations)

        def update(session: Session) -> pb.Quota:
            visible_project(session, caller, f"projects/{project_id}", "quota.name")
            rows = {r.resource: r for r in _rows(session, project_id)}
            check_etag(
                request.quota.etag, sum(r.version for r in rows.values()), request.quota.name
            )
            unknown = sorted(set(wanted) - set(rows))
            if unknown:
                raise InvalidArgument.field(
                    "quota.limits", f"unknown resources {unknown}; known: {sorted(rows)}"
                )
            for resource, value in sorted(wanted.items()):
                if rows[resource].limit != value:
                    _set_limit(session, project_id, resource, value, request.validate_usage)
            session.expire_all()
            return _quota(project_id, _rows(session, project_id), defaults)

        return await idempotent(self.runtime.db, "UpdateQuota", request, pb.Quota, update)
