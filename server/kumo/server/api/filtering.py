"""List filters: a small subset of AIP-160.

A filter is a conjunction of clauses joined by `AND`. A clause is one term, or
terms in parentheses joined by `OR`; a term is `field = value` (`labels.KEY = "v"`
matches a label), on a repeated field `field:value` (has that element), or on an
ordered field (a time) `field < value` (also `<=`, `>`, `>=`), any one negated by a
leading `NOT`. A value is a double-quoted string or a bare word
(an enum name, a number, `true` or `false`). Each list method declares which fields
it accepts with which operator; anything else is INVALID_ARGUMENT.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, false, func, not_, or_

from kumo.server.errors import InvalidArgument

_TOKEN = re.compile(
    r"\s*(?:(?P<paren>[()])|(?P<word>AND|OR|NOT)(?=[\s(]|$)"
    r"|(?P<field>[a-z_][a-z0-9_]*(?:\.[A-Za-z0-9_.-]+)?)\s*(?P<op><=|>=|[=:<>~])\s*"
    r'(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<bare>[A-Za-z0-9_./:-]+)))\s*'
)


@dataclass(frozen=True)
class Term:
    """`field = value`, `field:value` (`has`) on a repeated field, `field <op> value`
    (`op` one of `COMPARISONS`) on an ordered field, or `field ~ pattern` (`op` MATCHES)
    on a matched field; `label` is set for `labels.KEY` terms; `negated` for those after
    NOT."""

    field: str
    value: str
    label: str | None = None
    has: bool = False
    negated: bool = False
    op: str = "="


COMPARISONS = ("<", "<=", ">", ">=")
MATCHES = "~"
# A pattern is read by Python's `re` on SQLite (SQLAlchemy's REGEXP function) and as a
# POSIX advanced regular expression by PostgreSQL (`~`): Python's named groups are refused
# here, what else PostgreSQL cannot read it refuses itself (interceptors/errors.py).
_PYTHON_ONLY = re.compile(r"\(\?P")
MAX_PATTERN = 255


#: Terms joined by OR (most clauses are one term).
Clause = tuple[Term, ...]


def enum_value(enum: Any, value: str, field: str = "filter") -> int:
    """The number of a protobuf enum value given by full (`STATE_ACTIVE`) or short
    (`active`) name; InvalidArgument naming `field` if there is no such value."""
    prefix = enum.DESCRIPTOR.values[0].name.removesuffix("UNSPECIFIED")
    for candidate in (value, prefix + value.upper()):
        if candidate in enum.DESCRIPTOR.values_by_name:
            return int(enum.Value(candidate))
    raise InvalidArgument.field(field, f"unknown value {value!r}")


def boolean_value(value: str, field: str = "filter") -> bool:
    """`true` or `false` (any case); InvalidArgument naming `field` otherwise."""
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise InvalidArgument.field(field, f"{value!r} is not true or false")
    return lowered == "true"


def _tokens(text: str) -> Iterator[re.Match[str]]:
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise InvalidArgument.field(
                "filter", f'cannot parse {text[position:]!r}: use field = "value"'
            )
        yield match
        position = match.end()


def check_pattern(pattern: str) -> None:
    """InvalidArgument (on `filter`) unless `pattern` is a regular expression Python reads,
    without named groups, of at most MAX_PATTERN characters."""
    if len(pattern) > MAX_PATTERN or _PYTHON_ONLY.search(pattern):
        raise InvalidArgument.field(
            "filter", f"{pattern!r}: at most {MAX_PATTERN} characters, no (?P"
        )
    try:
        re.compile(pattern)
    except re.error as error:
        raise InvalidArgument.field(
            "filter", f"{pattern!r} is not a regular expression: {error}"
        ) from None


def _term(
    match: re.Match[str],
    negated: bool,
    allowed: Collection[str],
    has: Collection[str],
    ordered: Collection[str],
    matched: Collection[str],
) -> Term:
    field, op = match.group("field"), match.group("op")
    raw = match.group("quoted")
    value = re.sub(r"\\(.)", r"\1", raw) if raw is not None else match.group("bare")
    if op == MATCHES:
        if field not in matched:
            works = ", ".join(sorted(matched)) or "no field here"
            raise InvalidArgument.field("filter", f"{field!r} takes '=', not '~' ({works} do)")
        check_pattern(value)
        return Term(field, value, negated=negated, op=op)
    if op in COMPARISONS:
        if field not in ordered:
            works = ", ".join(sorted(ordered)) or "no field here"
            raise InvalidArgument.field("filter", f"{field!r} takes '=', not {op!r} ({works} do)")
        return Term(field, value, negated=negated, op=op)
    if op == ":":
        if field not in has:
            works = ", ".join(sorted(has)) or "no field here"
            raise InvalidArgument.field("filter", f"{field!r} takes '=', not ':' ({works} do)")
        return Term(field, value, has=True, negated=negated)
    if field.startswith("labels."):
        return Term("labels", value, label=field.removeprefix("labels."), negated=negated)
    if field not in allowed:
        fields = sorted({*allowed, "labels.KEY"}) + [f"{f}:VALUE" for f in sorted(has)]
        fields += [f"{f} >= VALUE" for f in sorted(ordered)]
        fields += [f'{f} ~ "PATTERN"' for f in sorted(matched)]
        raise InvalidArgument.field(
            "filter", f"cannot filter on {field!r}; use {', '.join(fields)}"
        )
    return Term(field, value, negated=negated)


def parse_filter(
    text: str,
    allowed: Collection[str],
    has: Collection[str] = (),
    ordered: Collection[str] = (),
    matched: Collection[str] = (),
) -> list[Clause]:
    """Parses `text` into clauses over the `allowed` fields (plus labels), the `has`
    repeated fields, the `ordered` fields (compared with <, <=, >, >=) and the `matched`
    fields (`~` a regular expression, see `check_pattern`).

    Raises InvalidArgument on bad syntax or a field (or operator) not accepted.
    """
    clauses: list[Clause] = []
    tokens = list(_tokens(text.strip()))
    index = 0

    def word() -> str:
        """The token at `index` as text ('' at the end)."""
        if index >= len(tokens):
            return ""
        token = tokens[index]
        return token.group("paren") or token.group("word") or "TERM"

    def term() -> Term:
        nonlocal index
        negated = word() == "NOT"
        index += negated
        if word() != "TERM":
            raise InvalidArgument.field("filter", f"expected a term in {text!r}")
        index += 1
        return _term(tokens[index - 1], negated, allowed, has, ordered, matched)

    while index < len(tokens):
        if clauses:
            if word() != "AND":
                raise InvalidArgument.field("filter", f"expected AND in {text!r}")
            index += 1
        if word() == "(":
            index += 1
            group = [term()]
            while word() == "OR":
                index += 1
                group.append(term())
            if word() != ")":
                raise InvalidArgument.field("filter", f"expected OR or ')' in {text!r}")
            index += 1
            clauses.append(tuple(group))
        else:
            clauses.append((term(),))
    return clauses


def clause_condition(
    clause: Clause, build: Callable[[Term], ColumnElement[bool]]
) -> ColumnElement[bool]:
    """The SQL condition of `clause`, each term's condition made by `build`. A negated term
    holds where its condition does not, NULL included (a row without the label, an
    instance on no host)."""
    parts = [not_(func.coalesce(build(t), false())) if t.negated else build(t) for t in clause]
    return parts[0] if len(parts) == 1 else or_(*parts)
