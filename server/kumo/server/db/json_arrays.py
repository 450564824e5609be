"""Conditions on a JSON column holding an array of strings: `JsonArrayHas(column, value)`,
it has `value`; `JsonArrayMatches(column, pattern)`, an element holds a match of the
regular expression.

Written for each database Kumo runs on (SQLite's json_each, PostgreSQL's jsonb `?` and
jsonb_array_elements_text), so that list filters on repeated string fields (`tags:"x"`,
`key_pairs ~ "x"`) run in the database.
"""

from __future__ import annotations

from typing import Any

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

    def __init__(self, column: Any, value: str) -> None:
        self.column = column
        self.value = literal(value, String())


class JsonArrayMatches(JsonArrayHas):
    """True where an element of the JSON array in `column` holds a match of the regular
    expression `value` (checked by the caller: filtering.check_pattern)."""

    inherit_cache = True


@compiles(JsonArrayHas, "sqlite")
def _sqlite(element: JsonArrayHas, compiler: Any, **kw: Any) -> str:
    column, value = compiler.process(element.column, **kw), compiler.process(element.value, **kw)
    return f"EXISTS (SELECT 1 FROM json_each({column}) WHERE json_each.value = {value})"


@compiles(JsonArrayHas, "postgresql")
def _postgresql(element: JsonArrayHas, compiler: Any, **kw: Any) -> str:
    column, value = compiler.process(element.column, **kw), compiler.process(element.value, **kw)
    return f"(CAST({column} AS JSONB) ? {value})"


@compiles(JsonArrayMatches, "sqlite")
def _sqlite_matches(element: JsonArrayMatches, compiler: Any, **kw: Any) -> str:
    column, value = compiler.process(element.column, **kw), compiler.process(element.value, **kw)
    return f"EXISTS (SELECT 1 FROM json_each({column}) WHERE json_each.value REGEXP {value})"


@compiles(JsonArrayMatches, "postgresql")
def _postgresql_matches(element: JsonArrayMatches, compiler: Any, **kw: Any) -> str:
    column, value = compiler.process(element.column, **kw), compiler.process(element.value, **kw)
    elements = f"jsonb_array_elements_text(CAST({column} AS JSONB))"
    return f"EXISTS (SELECT 1 FROM {elements} AS element WHERE element ~ {value})"
