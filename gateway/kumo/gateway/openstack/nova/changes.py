"""Nova's `changes-since` and `changes-before` query times (servers, instance actions)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from kumo.gateway.dialect import invalid
from kumo.gateway.openstack.microversions import Version

V2_66 = Version(2, 66)  # changes-before


@dataclass(frozen=True)
class Changes:
    """The window a list asks for: changed at or after `since`, at or before `before`
    (None: open on that side)."""

    since: datetime | None
    before: datetime | None

    @property
    def asked(self) -> bool:
        """Whether either bound was given."""
        return self.since is not None or self.before is not None

    def filter_terms(self, field: str) -> list[str]:
        """Kumo filter terms over `field` (a time) for this window."""
        terms = []
        if self.since is not None:
            terms.append(f'{field} >= "{self.since.isoformat()}"')
        if self.before is not None:
            terms.append(f'{field} <= "{self.before.isoformat()}"')
        return terms


def _time(query: Mapping[str, str], key: str) -> datetime | None:
    text = query.get(key)
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise invalid(f"Invalid input for query parameters {key}. Value: {text}.") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def changes(query: Mapping[str, str], version: Version) -> Changes:
    """A query's `changes-since` and (from 2.66) `changes-before`, as Nova reads them
    (ISO 8601; without an offset, UTC). 400 for a time that is not one, or for a window
    that ends before it starts. Before 2.66 `changes-before` is ignored, as Nova does."""
    window = Changes(
        _time(query, "changes-since"),
        _time(query, "changes-before") if version >= V2_66 else None,
    )
    if window.since and window.before and window.before < window.since:
        raise invalid("The value of changes-since must be less than or equal to changes-before.")
    return window
