"""Small conversions between rows and messages: timestamps, etags, common fields."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf import timestamp_pb2

from kumo.server.errors import Aborted

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    """A Timestamp for an aware `value`, or None (computed directly: this is on every read)."""
    if value is None:
        return None
    delta = value - _EPOCH
    return timestamp_pb2.Timestamp(
        seconds=delta.days * 86400 + delta.seconds, nanos=delta.microseconds * 1000
    )


def etag(version: int) -> str:
    """The opaque etag of a row version."""
    return f'"v{version}"'


def check_etag(given: str, version: int, name: str) -> None:
    """Raises Aborted if `given` is set and is not the current etag of the resource."""
    if given and given != etag(version):
        raise Aborted(f"{name} has changed since it was read (etag {given}, now {etag(version)})")


def common_fields(row: Any, name: str) -> dict[str, Any]:
    """Keyword arguments for the fields every resource message shares."""
    return {
        "name": name,
        "uid": row.uid,
        "display_name": row.display_name,
        "labels": row.labels,
        "create_time": timestamp(row.create_time),
        "update_time": timestamp(row.update_time),
        "etag": etag(row.version),
    }
