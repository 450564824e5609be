"""Per-project quotas, charged atomically in the transaction that creates.

`charge` raises usage with one conditional UPDATE per resource
(`in_use + n <= limit`), so concurrent creates can never take a project over
its limit, on SQLite and PostgreSQL alike; a refused charge raises
QuotaExceeded and the caller's transaction rolls back everything it did.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import case, or_, select, update
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

    Negative amounts release usage (never below zero). A resource the project
    has no quota row for is InvalidArgument (a programming error upstream).
    """
    for resource, amount in sorted(amounts.items()):
        if amount == 0:
            continue
        query = update(QuotaRow).where(
            QuotaRow.project_id == project_id, QuotaRow.resource == resource
        )
        if amount > 0:
            query = query.where(or_(QuotaRow.limit < 0, QuotaRow.in_use + amount <= QuotaRow.limit))
            values = {"in_use": QuotaRow.in_use + amount}
        else:
            released = QuotaRow.in_use + amount
            values = {"in_use": case((released < 0, 0), else_=released)}
        if session.execute(query.values(**values)).rowcount:  # type: ignore[attr-defined]
            continue
        row = session.scalar(
            select(QuotaRow).where(QuotaRow.project_id == project_id, QuotaRow.resource == resource)
        )
        if row is None:
            raise InvalidArgument.field("quota", f"no quota for {resource!r}")
        raise QuotaExceeded(f"projects/{project_id}", resource, row.limit, row.in_use, amount)
