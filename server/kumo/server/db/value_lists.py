"""A column among a list of values, bound as one parameter, for statements made once.

`OneOf(column, name)` holds two conditions: on PostgreSQL `column = ANY(string_to_array(
:name, ','))`, whose text is the same for any number of values (the statement is prepared
once) and whose one text parameter costs nothing to send (psycopg dumps a Python list as
an array in Python: ~2 µs a value); elsewhere an expanding IN list. `condition(postgres)`
picks the one for the database (`on_postgres(executor)` tells which) and
`bind(postgres, values)` makes the value to bind. The values must not hold a comma
(ValueError): names and ids of Kumo resources never do.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, String, any_, bindparam, func
from sqlalchemy.orm import InstrumentedAttribute, Session


def on_postgres(executor: Any) -> bool:
    """Whether `executor` (a Session or a Connection) talks to PostgreSQL."""
    bind = executor.get_bind() if isinstance(executor, Session) else executor
    return bool(bind.dialect.name == "postgresql")


@dataclass(frozen=True)
class OneOf:
    """`column` is one of the values bound to the parameter `name` (see the module)."""

    column: ColumnElement[str] | InstrumentedAttribute[str]
    name: str
    _any: ColumnElement[bool] = field(init=False)
    _in: ColumnElement[bool] = field(init=False)

    def __post_init__(self) -> None:
        joined = func.string_to_array(bindparam(self.name, type_=String), ",")
        object.__setattr__(self, "_any", self.column == any_(joined))
        object.__setattr__(self, "_in", self.column.in_(bindparam(self.name, expanding=True)))

    def condition(self, postgres: bool) -> ColumnElement[bool]:
        """The condition for PostgreSQL (`postgres`) or for another database."""
        return self._any if postgres else self._in

    def bind(self, postgres: bool, values: Collection[str]) -> Any:
        """The parameter's value for `values`. Raises ValueError (a value with a comma)."""
        if not postgres:
            return list(values)
        if any("," in value for value in values):
            raise ValueError("a value of a one-of list holds a comma")
        return ",".join(values)
