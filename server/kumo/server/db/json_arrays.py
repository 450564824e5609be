"""Conditions on a JSON column holding an array of strings: `JsonArrayHas(column, value)`,
it has `value`; `JsonArrayMatches(column, pattern)`, an element holds a match of the
regular expression.

Written for each database Kumo runs on (SQLite's json_each, PostgreSQL's jsonb `?` and
jsonb_array_elements_text), so that list filters on repeated string fields (`tags:"x"`,
`key_pairs ~ "x"`) run in the database.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import Boolean, ColumnElement, String, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.visitors import InternalTraversal


class JsonArrayHas(ColumnElement[bool]):
    """True where the JSON array in `column` has the string `value` as an element."""

    type = Boolean()
    inherit_cache = True
    # What SQLAlchemy's cache key is made of (a list: its base class declares one).
    _traverse_internals: list[tuple[str, InternalTraversal]] = [  # noqa: RUF012
        ("column", InternalTraversal.dp_clauseelement),
        ("value", InternalTraversal.dp_clauseelement),
    ]
    # The SQL of each database, of `{column}` and `{value}`.
    SQL: ClassVar[dict[str, str]] = {
        "sqlite": "EXISTS (SELECT 1 FROM json_each({column}) WHERE json_each.value = {value})",
        "postgresql": "(CAST({column} AS JSONB) ? {value})",
    }

    def __init__(self, column: Any, value: str) -> None:
        self.column = column
        self.value = literal(value, String())


class JsonArrayMatches(JsonArrayHas):
    """True where an element of the JSON array in `column` holds a match of the regular
    expression `value` (checked by the caller: filtering.check_pattern)."""

    inherit_cache = True
    SQL: ClassVar[dict[str, str]] = {
        "sqlite": "EXISTS (SELECT 1 FROM json_each({column}) WHERE json_each.value REGEXP {value})",
        "postgresql": (
            "EXISTS (SELECT 1 FROM jsonb_array_elements_text(CAST({column} AS JSONB)) AS element"
            " WHERE element ~ {value})"
        ),
    }


@compiles(JsonArrayHas, "sqlite")
@compiles(JsonArrayHas, "postgresql")
@compiles(JsonArrayMatches, "sqlite")
@compiles(JsonArrayMatches, "postgresql")
def _compile(element: JsonArrayHas, compiler: Any, **kw: Any) -> str:
    return element.SQL[compiler.dialect.name].format(
        column=compiler.process(element.column, **kw), value=compiler.process(element.value, **kw)
    )
