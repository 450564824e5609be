"""Per-project quotas, charged atomically in the transaction that creates.

`charge` raises usage with one conditional UPDATE over the resources' rows
(`in_use + n <= limit` for each), so concurrent creates can never take a project over
its limit, on SQLite and PostgreSQL alike; a refused charge raises
QuotaExceeded and the caller's transaction rolls back everything it did.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, Integer, Update, bindparam, case, or_, select, true, update
from sqlalchemy.orm import Session

from kumo.server.db.engine import core
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
    releases = {resource: -amount for resource, amount in amounts.items() if amount < 0}
    if raises:
        _apply(session, project_id, raises, raising=True)
    if releases:
        _apply(session, project_id, releases, raising=False)


@functools.cache
def _charging(resources: tuple[str, ...], raising: bool) -> Update:
    """The UPDATE that raises (under the limits) or releases (down to zero) the usage of
    `resources` by the parameters `amount_0`, `amount_1`... (in their order) for the
    project `project`: built once per set of resources (docs/decisions.md, "Statements
    built once"), as creates charge the same few sets all the time."""
    amounts = {r: bindparam(f"amount_{i}", type_=Integer) for i, r in enumerate(resources)}
    delta = case(amounts, value=QuotaRow.resource)
    if raising:
        condition = or_(QuotaRow.limit < 0, QuotaRow.in_use + delta <= QuotaRow.limit)
        in_use: ColumnElement[Any] = QuotaRow.in_use + delta
    else:
        released = QuotaRow.in_use - delta
        condition, in_use = true(), case((released < 0, 0), else_=released)
    return (
        update(QuotaRow)
        .where(
            QuotaRow.project_id == bindparam("project"),
            QuotaRow.resource.in_(resources),
            condition,
        )
        .values(in_use=in_use)
        .returning(QuotaRow.resource)
    )


def _apply(session: Session, project_id: str, amounts: Mapping[str, int], raising: bool) -> None:
    """Raises (under the limits) or releases the usage of `amounts` (`_charging`); raises
    what refused the first resource (by name) that did not change: InvalidArgument if it has
    no quota row, else QuotaExceeded. The caller's transaction then rolls back the rows that
    did change."""
    statement = _charging(tuple(amounts), raising)
    values: dict[str, object] = {f"amount_{i}": n for i, n in enumerate(amounts.values())}
    values["project"] = project_id
    changed = set(core(session).execute(statement, values).scalars())
    refused = sorted(set(amounts) - changed)
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
