"""One-of lists bound as one parameter (kumo.server.db.value_lists)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import column, select
from sqlalchemy.dialects import postgresql, sqlite

from kumo.server.db.value_lists import OneOf

NAMES = OneOf(column("name"), "names")


def test_postgres_binds_one_string_and_sqlite_a_list() -> None:
    assert NAMES.bind(True, ["a", "b/c"]) == "a,b/c"
    assert NAMES.bind(False, ("a", "b/c")) == ["a", "b/c"]
    with pytest.raises(ValueError, match="comma"):
        NAMES.bind(True, ["a,b"])


def test_postgres_splits_one_string_and_sqlite_expands_a_list() -> None:
    def text(postgres: bool, dialect: Any) -> str:
        return str(select(column("x")).where(NAMES.condition(postgres)).compile(dialect=dialect))

    assert "name = ANY (string_to_array(%(names)s" in text(True, postgresql.dialect())  # type: ignore[no-untyped-call]
    assert "IN (__[POSTCOMPILE_names])" in text(False, sqlite.dialect())
