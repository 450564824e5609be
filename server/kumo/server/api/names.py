"""Resource ids and names (AIP-122).

An id is 1-63 characters of lower-case letters, digits and hyphens, starting
with a letter and not ending with a hyphen. A name is a pattern such as
`projects/{project}/roleAssignments/{role_assignment}` with ids filled in.
"""

from __future__ import annotations

import re
from functools import lru_cache

from kumo.server.errors import InvalidArgument

ID_PATTERN = r"[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?"
_ID = re.compile(ID_PATTERN)
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def check_id(field: str, value: str) -> str:
    """Returns `value` if it is a valid resource id; raises InvalidArgument otherwise."""
    if not _ID.fullmatch(value):
        raise InvalidArgument.field(
            field,
            f"{value!r} is not a valid id: use 1-63 lower-case letters, digits and hyphens, "
            "starting with a letter and not ending with a hyphen",
        )
    return value


@lru_cache(maxsize=256)
def _compile(pattern: str, overrides: tuple[tuple[str, str], ...]) -> re.Pattern[str]:
    special = dict(overrides)
    regex, last = [], 0
    for match in _PLACEHOLDER.finditer(pattern):
        regex.append(re.escape(pattern[last : match.start()]))
        regex.append(f"({special.get(match.group(1), ID_PATTERN)})")
        last = match.end()
    regex.append(re.escape(pattern[last:]))
    return re.compile("".join(regex))


def parse(field: str, name: str, pattern: str, **segments: str) -> tuple[str, ...]:
    """Splits `name` by `pattern` into its ids, outermost first.

    `segments` gives a regular expression (without capturing groups) for a
    placeholder whose ids are not ordinary ids. Raises InvalidArgument naming
    `field` if `name` does not fit the pattern.
    """
    match = _compile(pattern, tuple(sorted(segments.items()))).fullmatch(name)
    if match is None:
        raise InvalidArgument.field(field, f"{name!r} does not match {pattern!r}")
    return match.groups()


def parse_one(field: str, name: str, pattern: str, **segments: str) -> str:
    """Like `parse`; returns the last (innermost) id."""
    return parse(field, name, pattern, **segments)[-1]
