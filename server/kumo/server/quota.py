"""Per-project quotas, charged atomically in the transaction that creates.

`charge` raises usage with one conditional UPDATE over the resources' rows
(`in_use + n <= limit` for each), so concurrent creates can never take a project over
its limit, on SQLite and PostgreSQL alike; a refused charge raises
QuotaExceeded and the caller's transaction rolls back everything it did.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, case, or_, select, true, update
from sqlalchemy.orm import Session

from kumo.server.db.models import QuotaRow
from kumo.server.errors import InvalidArgument, QuotaExceeded


def create_project_quota(session: Session, project_id: str, defaults: Mapping[str, int]) -> None:
    """Adds a quota row per counted resource for a new project."""
    session.add_all(
        QuotaRow(project_id=project_id, resource=resource, limit=limit, in_use=0)
        for resource, limit in defaults.items()
    )


def charge(session: Session, project_id: str, amounts: Mapping[str, int]) -> None:
    """Adds `amounts` to the project's usage, or raises QuotaExceeded changing nothing.

    Negative amounts release usage (never below zero). The raises are one conditional
    UPDATE over their rows, the releases another. A resource the project has no quota row
    for is InvalidArgument (a programming error upstream). Quota rows already loaded in
    the session are not refreshed.
    """
    raises = {resource: amount for resource, amount in amounts.items() if amount > 0}
    releases = {resource: amount for resource, amount in amounts.items() if amount < 0}
    if raises:
        delta = case(raises, value=QuotaRow.resource)
        _apply(
            session,
            project_id,
            raises,
            or_(QuotaRow.limit < 0, QuotaRow.in_use + delta <= QuotaRow.limit),
            QuotaRow.in_use + delta,
        )
    if releases:
        released = QuotaRow.in_use + case(releases, value=QuotaRow.resource)
        _apply(session, project_id, releases, true(), case((released < 0, 0), else_=released))


def _apply(
    session: Session,
    project_id: str,
    amounts: Mapping[str, int],
    condition: ColumnElement[bool],
    in_use: ColumnElement[Any],
) -> None:
    """Sets `in_use` on the rows of `amounts` where `condition` holds; raises what refused
    the first (by name) that did not change: InvalidArgument if it has no quota row, else
    QuotaExceeded. The caller's transaction then rolls back the rows that did change."""
    statement = (
        update(QuotaRow)
        .where(QuotaRow.project_id == project_id, QuotaRow.resource.in_(amounts), condition)
        .values(in_use=in_use)
        .returning(QuotaRow.resource)
        .execution_options(synchronize_session=False)
    )
    refused = sorted(set(amounts) - set(session.scalars(statement)))
    if not refused:
        return
    resource = refused[0]
    row = session.scalar(
        select(QuotaRow).where(QuotaRow.project_id == project_id, QuotaRow.resource == resource)
    )
    if row is None:
        raise InvalidArgument.field("quota", f"no quota for {resource!r}")
    amount = amounts[resource]
    raise QuotaExceeded(f"projects/{project_id}", resource, row.limit, row.in_use, amount)
