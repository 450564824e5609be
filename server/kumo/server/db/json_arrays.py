"""`JsonArrayHas(column, value)`: a JSON column holding an array of strings has `value`.

Written for each database Kumo runs on (SQLite's json_each, PostgreSQL's jsonb `?`), so
that list filters on repeated string fields (`tags:"x"`) run in the database.
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


@compiles(JsonArrayHas, "sqlite")
def _sqlite(element: JsonArrayHas, compiler: Any, **kw: Any) -> str:
    column, value = compiler.process(element.column, **kw), compiler.process(element.value, **kw)
    return f"EXISTS (SELECT 1 FROM json_each({column}) WHERE json_each.value = {value})"


@compiles(JsonArrayHas, "postgresql")
def _postgresql(element: JsonArrayHas, compiler: Any, **kw: Any) -> str:
    column, value = compiler.process(element.column, **kw), compiler.process(element.value, **kw)
    return f"(CAST({column} AS JSONB) ? {value})"
