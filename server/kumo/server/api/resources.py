"""How a kind of resource maps onto its table, and the standard methods over it.

A `Collection` knows a resource's name pattern, row class, list filters and
sort fields; services build Get/List/Create/Update/Delete from it instead of
repeating the same queries for every kind.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Generic, TypeVar

from google.protobuf.message import Message
from sqlalchemy import ColumnElement, Row, Select, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kumo.server.api.filtering import (
    COMPARISONS,
    MATCHES,
    Term,
    clause_condition,
    parse_filter,
)
from kumo.server.api.names import check_id, parse, parse_one
from kumo.server.api.paging import Page, Pager, parse_order_by
from kumo.server.db.json_arrays import JsonArrayHas, JsonArrayMatches
from kumo.server.errors import AlreadyExists, FieldViolation, InvalidArgument, NotFound

R = TypeVar("R")

MAX_DISPLAY_NAME = 63
MAX_DESCRIPTION = 1024
MAX_LABELS = 64
MAX_LABEL_TEXT = 63
MAX_TAGS = 64
MAX_TAG_TEXT = 255

Filter = Callable[[str], ColumnElement[bool]]
OrderedFilter = Callable[[str, str], ColumnElement[bool]]  # (operator, value)
_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


@dataclass(frozen=True)
class Collection(Generic[R]):
    """One kind of resource stored in one table.

    The table's primary key is `key_columns`, in the order of the ids in the
    name pattern (`("project_id", "id")` for `projects/{project}/images/{image}`).
    """

    type_name: str
    pattern: str
    row: type[R]
    filters: Mapping[str, Filter] = field(default_factory=dict)
    order_fields: tuple[str, ...] = ("name", "create_time")
    key_columns: tuple[str, ...] = ("id",)
    # Filters of `field:value` terms (a repeated field has that element).
    has_filters: Mapping[str, Filter] = field(default_factory=dict)
    # Filters of `field < value` terms (and <=, >, >=) on ordered fields (times).
    ordered_filters: Mapping[str, OrderedFilter] = field(default_factory=dict)
    # Filters of `field ~ "pattern"` terms (a regular expression, see `matches`).
    matched_filters: Mapping[str, Filter] = field(default_factory=dict)
    # The column of an order field not named as one (the row's id for `name`; otherwise
    # the row's attribute of the field's name unless given here).
    order_columns: Mapping[str, Any] = field(default_factory=dict)

    @cached_property
    def _template(self) -> str:
        """The pattern as a `str.format` template, one `{}` per id."""
        pieces = _PLACEHOLDER.split(self.pattern)
        escaped = (p.replace("{", "{{").replace("}", "}}") for p in pieces)
        return "{}".join(escaped)

    def _term_condition(self, term: Term) -> ColumnElement[bool]:
        """The SQL condition of one filter term over this collection's rows."""
        if term.label is not None:
            labels = self.row.labels  # type: ignore[attr-defined]
            return labels[term.label].as_string() == term.value  # type: ignore[no-any-return]
        if term.has:
            return self.has_filters[term.field](term.value)
        if term.op in COMPARISONS:
            return self.ordered_filters[term.field](term.op, term.value)
        if term.op == MATCHES:
            return self.matched_filters[term.field](term.value)
        return self.filters[term.field](term.value)

    def name_of(self, *ids: str) -> str:
        """The resource name with these ids, outermost first."""
        return self._template.format(*ids)

    def name_of_row(self, row: Any) -> str:
        """The resource name of a row."""
        return self.name_of(*(getattr(row, column) for column in self.key_columns))

    def key(self, name: str, field: str = "name") -> tuple[str, ...]:
        """Every id in `name`; InvalidArgument naming `field` if malformed."""
        return parse(field, name, self.pattern)

    def parse(self, name: str, field: str = "name") -> str:
        """The last id in `name`; InvalidArgument naming `field` if malformed."""
        return parse_one(field, name, self.pattern)

    def get(self, session: Session, name: str, field: str = "name", lock: bool = False) -> R:
        """The row named `name` (with `lock`, locked until the transaction ends: SELECT ...
        FOR UPDATE, on PostgreSQL); InvalidArgument if malformed, NotFound if absent."""
        key = self.key(name, field)
        row = session.get(self.row, key if len(key) > 1 else key[0], with_for_update=lock or None)
        if row is None:
            raise NotFound(self.type_name, name)
        return row

    def fetch(self, connection: Connection, name: str, field: str = "name") -> Row[Any]:
        """The named row as a plain Core row (columns as attributes, no relationships);
        InvalidArgument if malformed, NotFound if absent. For reads only."""
        table = self.row.__table__  # type: ignore[attr-defined]
        key = self.key(name, field)
        query = select(table).where(
            *(table.c[column] == value for column, value in zip(self.key_columns, key, strict=True))
        )
        row = connection.execute(query).one_or_none()
        if row is None:
            raise NotFound(self.type_name, name)
        return row

    def insert(self, session: Session, row_id: str, id_field: str, row: R) -> R:
        """Adds `row` under `row_id`; AlreadyExists if the id is taken, after which the
        transaction can only roll back (no savepoint: two round trips less per create, and
        every caller lets AlreadyExists end its transaction)."""
        check_id(id_field, row_id)
        row.id = row_id  # type: ignore[attr-defined]
        session.flush()  # what was added before is not this insert's to blame
        session.add(row)
        try:
            session.flush()
        except IntegrityError as exc:
            raise AlreadyExists(self.type_name, self.name_of_row(row)) from exc
        return row

    def list(
        self,
        session: Session | Connection,
        pager: Pager,
        request: Any,
        where: Iterable[ColumnElement[bool]] = (),
        binding: str = "",
        plain: bool = False,
        columns: Sequence[Any] = (),
    ) -> Page:
        """One page of rows matching `request.filter` (and `where`), in `request.order_by`;
        `plain`: as Core rows (columns as attributes, read only), several times cheaper to
        load than ORM objects on long pages, and `session` may then be a Connection (no
        ORM at all); `columns`: with `plain`, only these (they must include the key
        columns, `uid` and the `order_fields`' columns), else every column."""
        what = (columns or [self.row.__table__]) if plain else [self.row]  # type: ignore[attr-defined]
        query: Select[Any] = select(*what)
        for condition in where:
            query = query.where(condition)
        text = getattr(request, "filter", "")
        clauses = parse_filter(
            text,
            self.filters.keys(),
            self.has_filters.keys(),
            self.ordered_filters.keys(),
            self.matched_filters.keys(),
        )
        for clause in clauses:
            query = query.where(clause_condition(clause, self._term_condition))
        order = parse_order_by(getattr(request, "order_by", ""), self.order_fields)
        # A unique tie-breaker: the id where it is the whole key, else the uid.
        id_column = getattr(self.row, "id" if len(self.key_columns) == 1 else "uid")
        if order.field == "name":
            key = self.row.id  # type: ignore[attr-defined]
        else:
            key = self.order_columns.get(order.field) or getattr(self.row, order.field)
        return pager.page(
            session,
            query,
            key=key,
            id_column=id_column,
            order=order,
            page_size=request.page_size,
            page_token=request.page_token,
            binding=f"{self.type_name}|{binding}|{getattr(request, 'filter', '')}|{order}",
            plain=plain,
        )


def apply_common(row: Any, message: Message, paths: set[str], prefix: str) -> None:
    """Copies display_name, description, labels and tags from `message` for the given
    paths, checking their sizes (tags: repeats dropped); InvalidArgument on violations."""
    violations: list[FieldViolation] = []
    if "display_name" in paths:
        if len(message.display_name) > MAX_DISPLAY_NAME:
            violations.append(
                FieldViolation(f"{prefix}.display_name", f"at most {MAX_DISPLAY_NAME} characters")
            )
        row.display_name = message.display_name
    if "description" in paths:
        if len(message.description) > MAX_DESCRIPTION:
            violations.append(
                FieldViolation(f"{prefix}.description", f"at most {MAX_DESCRIPTION} characters")
            )
        row.description = message.description
    if "labels" in paths:
        labels = dict(message.labels)
        if len(labels) > MAX_LABELS or any(
            not k or len(k) > MAX_LABEL_TEXT or len(v) > MAX_LABEL_TEXT for k, v in labels.items()
        ):
            violations.append(
                FieldViolation(
                    f"{prefix}.labels",
                    f"at most {MAX_LABELS} labels, keys 1-{MAX_LABEL_TEXT} and values up to "
                    f"{MAX_LABEL_TEXT} characters",
                )
            )
        row.labels = labels
    if "tags" in paths:
        tags = list(dict.fromkeys(message.tags))
        if len(tags) > MAX_TAGS or not all(_good_tag(t) for t in tags):
            violations.append(
                FieldViolation(
                    f"{prefix}.tags",
                    f"at most {MAX_TAGS} tags of 1-{MAX_TAG_TEXT} characters, no control "
                    "characters",
                )
            )
        row.tags = tags
    if violations:
        raise InvalidArgument(violations)


def _good_tag(tag: str) -> bool:
    return 0 < len(tag) <= MAX_TAG_TEXT and tag.isprintable()


def has_element(column: Any) -> Filter:
    """A filter of `field:value` terms: the JSON array in `column` holds the value."""
    return lambda value: JsonArrayHas(column, value)


def element_matches(column: Any) -> Filter:
    """A filter of `field ~ "pattern"` terms on a JSON array of strings in `column`: an
    element holds a match of the regular expression."""
    return lambda pattern: JsonArrayMatches(column, pattern)


_COMPARE: Mapping[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def compared_time(column: Any) -> OrderedFilter:
    """A filter of `field < "time"` terms (and <=, >, >=) on a timestamp column; the time
    is RFC 3339 (UTC without an offset). INVALID_ARGUMENT for anything else."""

    def condition(op: str, value: str) -> ColumnElement[bool]:
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidArgument.field("filter", f"{value!r} is not an RFC 3339 time") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return _COMPARE[op](column, when.astimezone(UTC))

    return condition


def matches(column: Any) -> Filter:
    """A filter of `field ~ "pattern"` terms: the text in `column` holds a match of the
    regular expression (the pattern checked by `filtering.check_pattern`)."""
    return lambda pattern: column.regexp_match(pattern)


def equals(column: Any) -> Filter:
    """A filter comparing `column` to the term's value as text."""
    return lambda value: column == value


def reference(column: Any, pattern: str) -> Filter:
    """A filter on a column holding the id of a top-level resource (`hosts/{host}`),
    given its name or bare id."""
    prefix = pattern.split("{", 1)[0]
    return lambda value: column == value.removeprefix(prefix)
