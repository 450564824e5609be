"""Helpers shared by the operation handlers: tags ↔ labels, filters, time."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from kumo.gateway.aws.errors import Ec2Error

Params = dict[str, Any]
_LABEL_KEY = re.compile(r"[A-Za-z0-9_.-]+")


def tags_of(labels: Mapping[str, str]) -> list[dict[str, str]]:
    """EC2 tags of Kumo labels."""
    return [{"Key": k, "Value": v} for k, v in sorted(labels.items())]


def tag_map(tags: list[dict[str, str]], parameter: str) -> dict[str, str]:
    """Request tags as key → value; MissingParameter for a tag without a Key."""
    result = {}
    for index, tag in enumerate(tags, 1):
        if not tag.get("Key"):
            raise Ec2Error(
                "MissingParameter",
                f"The request must contain the parameter {parameter}.{index}.Key",
            )
        result[tag["Key"]] = tag.get("Value", "")
    return result


def time_of(stamp: Timestamp) -> datetime:
    """A protobuf timestamp as an aware datetime."""
    moment: datetime = stamp.ToDatetime(tzinfo=UTC)
    return moment


def filters_of(params: Params) -> dict[str, list[str]]:
    """The request's `Filters` as name → values."""
    result: dict[str, list[str]] = {}
    for item in params.get("Filters") or []:
        name = item.get("Name")
        if not name:
            raise Ec2Error("InvalidParameterValue", "A filter must have a Name.")
        result.setdefault(name, []).extend(item.get("Values") or [])
    return result


def label_term(key: str, value: str) -> str | None:
    """A Kumo list filter term matching label `key` = `value`, or None when the key or
    value cannot be expressed in the filter language (then the gateway filters)."""
    if not _LABEL_KEY.fullmatch(key) or " AND " in value:
        return None
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'labels.{key} = "{escaped}"'


def _wildcard(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


Matcher = Callable[[dict[str, Any]], Iterable[str]]


def matches(
    item: dict[str, Any], filters: dict[str, list[str]], fields: Mapping[str, Matcher]
) -> bool:
    """Whether a rendered item passes every filter (values OR-ed, `*` a wildcard).
    `tag:KEY`, `tag-key` and `tag-value` work over the item's `Tags`; other filter names
    must be in `fields`, else InvalidParameterValue."""
    for name, values in filters.items():
        tags = {t["Key"]: t["Value"] for t in item.get("Tags", [])}
        if name.startswith("tag:"):
            have: Iterable[str] = [tags[name[4:]]] if name[4:] in tags else []
        elif name == "tag-key":
            have = tags.keys()
        elif name == "tag-value":
            have = tags.values()
        elif name in fields:
            have = fields[name](item)
        else:
            raise Ec2Error("InvalidParameterValue", f"The filter '{name}' is invalid")
        patterns = [_wildcard(v) for v in values]
        if not any(p.fullmatch(h) for p in patterns for h in have):
            return False
    return True
