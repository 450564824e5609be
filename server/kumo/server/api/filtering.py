"""List filters: a small subset of AIP-160.

A filter is a conjunction of equality terms, `field = value AND field = value`,
where a value is a double-quoted string or a bare word (an enum name, a number,
`true` or `false`). `labels.KEY = "v"` matches a label. Each list method
declares which fields it accepts; anything else is INVALID_ARGUMENT.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from kumo.server.errors import InvalidArgument

_TERM = re.compile(
    r"\s*(?P<field>[a-z_][a-z0-9_]*(?:\.[A-Za-z0-9_.-]+)?)\s*=\s*"
    r'(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<bare>[A-Za-z0-9_./:-]+))\s*'
)


@dataclass(frozen=True)
class Term:
    """`field = value`; `label` is set for `labels.KEY` terms."""

    field: str
    value: str
    label: str | None = None


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


def parse_filter(text: str, allowed: set[str]) -> list[Term]:
    """Parses `text` into terms over `allowed` fields (plus labels).

    Raises InvalidArgument on bad syntax or a field outside `allowed`.
    """
    terms: list[Term] = []
    if not text.strip():
        return terms
    for part in re.split(r"\s+AND\s+", text.strip()):
        match = _TERM.fullmatch(part)
        if match is None:
            raise InvalidArgument.field("filter", f'cannot parse {part!r}: use field = "value"')
        field = match.group("field")
        raw = match.group("quoted")
        value = re.sub(r"\\(.)", r"\1", raw) if raw is not None else match.group("bare")
        if field.startswith("labels."):
            terms.append(Term("labels", value, label=field.removeprefix("labels.")))
        elif field in allowed:
            terms.append(Term(field, value))
        else:
            raise InvalidArgument.field(
                "filter",
                f"cannot filter on {field!r}; use {', '.join(sorted(allowed | {'labels.KEY'}))}",
            )
    return terms
