"""Helpers shared by the operation handlers: tags ↔ labels, filters, time."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from kumo.gateway.aws import ids
from kumo.gateway.aws.backend import Caller, invoke
from kumo.gateway.aws.errors import Ec2Error
from kumo.gateway.reserved_labels import RESERVED

Params = dict[str, Any]
_LABEL_KEY = re.compile(r"[A-Za-z0-9_.-]+")
MAX_TAG_TEXT = 63  # Kumo's label key and value limit (EC2: 128 and 256)
MAX_TAGS = 50  # per resource, as EC2
#: The root device of every AMI (DescribeImages' RootDeviceName): the guest's first disk.
ROOT_DEVICE = "/dev/vda"


def tags_of(labels: Mapping[str, str]) -> list[dict[str, str]]:
    """EC2 tags of Kumo labels (reserved `kumo:` labels left out)."""
    return [{"Key": k, "Value": v} for k, v in sorted(labels.items()) if not k.startswith(RESERVED)]


def tag_map(tags: list[dict[str, str]], parameter: str) -> dict[str, str]:
    """Request tags as key → value. MissingParameter for a tag without a Key;
    InvalidParameterValue for a reserved prefix (`aws:`, `kumo:`) or a key or value
    longer than Kumo's labels allow; TagLimitExceeded past 50 tags."""
    result = {}
    for index, tag in enumerate(tags, 1):
        key = tag.get("Key")
        if not key:
            raise Ec2Error(
                "MissingParameter",
                f"The request must contain the parameter {parameter}.{index}.Key",
            )
        if key.startswith(("aws:", RESERVED)):
            raise Ec2Error(
                "InvalidParameterValue", f"Tag keys starting with '{key[:5]}' are reserved."
            )
        value = tag.get("Value", "")
        if len(key) > MAX_TAG_TEXT or len(value) > MAX_TAG_TEXT:
            raise Ec2Error(
                "InvalidParameterValue",
                f"Tag {parameter}.{index}: keys and values are at most {MAX_TAG_TEXT} "
                "characters in Kumo.",
            )
        result[key] = value
    if len(result) > MAX_TAGS:
        raise Ec2Error("TagLimitExceeded", f"At most {MAX_TAGS} tags per resource.")
    return result


def spec_tags(params: Params, resource_type: str) -> dict[str, str]:
    """The tags a create call's TagSpecifications give resources of `resource_type`."""
    result: dict[str, str] = {}
    for spec in params.get("TagSpecifications") or []:
        if spec.get("ResourceType") not in (None, resource_type):
            raise invalid_tag_spec(spec.get("ResourceType"))
        result.update(tag_map(spec.get("Tags") or [], "TagSpecification.Tag"))
    return result


def invalid_tag_spec(kind: object) -> Ec2Error:
    """InvalidParameterValue for a TagSpecification of a resource type the call does not make."""
    return Ec2Error(
        "InvalidParameterValue", f"'{kind}' is not a valid taggable resource type for this call."
    )


async def list_all(method: Any, request: Any, field: str, caller: Caller) -> list[Any]:
    """Every item of a Kumo List method, page by page (`request.page_size` set by the caller)."""
    found: list[Any] = []
    while True:
        response = await invoke(method, request, caller)
        found += getattr(response, field)
        if not response.next_page_token:
            return found
        request.page_token = response.next_page_token


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def time_of(stamp: Timestamp) -> datetime:
    """A protobuf timestamp as an aware datetime (to the microsecond)."""
    return _EPOCH + timedelta(seconds=stamp.seconds, microseconds=stamp.nanos // 1000)


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
    tags = {t["Key"]: t["Value"] for t in item.get("Tags", ())} if filters else {}
    for name, values in filters.items():
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


def described(
    views: list[dict[str, Any]],
    params: Params,
    ids_member: str,
    id_field: str,
    not_found: str,
    fields: Mapping[str, Matcher],
) -> list[dict[str, Any]]:
    """The views a Describe call asks for: those named by `ids_member` (each must exist,
    else `not_found`) that pass the request's Filters."""
    wanted = params.get(ids_member) or []
    if wanted:
        have = {v[id_field] for v in views}
        missing_ids = [w for w in wanted if w not in have]
        if missing_ids:
            raise Ec2Error(not_found, f"The ID '{missing_ids[0]}' does not exist")
        views = [v for v in views if v[id_field] in wanted]
    filters = filters_of(params)
    for name in filters:
        if name not in fields and not name.startswith("tag:") and name not in _TAG_FILTERS:
            raise Ec2Error("InvalidParameterValue", f"The filter '{name}' is invalid")
    return [v for v in views if matches(v, filters, fields)]


_TAG_FILTERS = ("tag-key", "tag-value")


def kumo_id_of(prefix: str, ec2_id: str, malformed: str) -> str:
    """The Kumo id named by an EC2 id; `malformed` (an EC2 code) if it cannot name one."""
    found = ids.kumo_id(prefix, ec2_id)
    if found is None or not _KUMO_ID.fullmatch(found):
        raise Ec2Error(malformed, f'Invalid id: "{ec2_id}"')
    return found


_KUMO_ID = re.compile(r"[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?")
