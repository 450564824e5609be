"""Checks every request must pass before a service sees it.

Unknown fields (sent by a newer or a confused client) are rejected rather than
silently dropped, enum values must be defined ones, and REQUIRED fields must be
set. REQUIRED fields inside a resource message apply to creation only, so
services check those themselves.
"""

from __future__ import annotations

from functools import cache

from google.api import resource_pb2
from google.protobuf import unknown_fields
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from kumo.server.api.fields import missing_required
from kumo.server.errors import FieldViolation, InvalidArgument


@cache
def _is_resource(descriptor: Descriptor) -> bool:
    return bool(descriptor.GetOptions().HasExtension(resource_pb2.resource))


def _walk(message: Message, prefix: str, out: list[FieldViolation]) -> None:
    for number in sorted({f.field_number for f in unknown_fields.UnknownFieldSet(message)}):
        out.append(
            FieldViolation(prefix.rstrip(".") or "request", f"unknown field number {number}")
        )
    if not _is_resource(message.DESCRIPTOR):
        out.extend(missing_required(message, prefix))
    for field, value in message.ListFields():
        if field.type == FieldDescriptor.TYPE_ENUM:
            known = field.enum_type.values_by_number
            for number in value if field.is_repeated else [value]:
                if number not in known:
                    out.append(FieldViolation(prefix + field.name, f"unknown value {number}"))
            continue
        if field.type != FieldDescriptor.TYPE_MESSAGE or field.message_type.GetOptions().map_entry:
            continue
        if field.is_repeated:
            for index, item in enumerate(value):
                _walk(item, f"{prefix}{field.name}[{index}].", out)
        else:
            _walk(value, f"{prefix}{field.name}.", out)


def validate_request(request: Message) -> None:
    """Raises InvalidArgument for unknown fields anywhere, or unset REQUIRED fields
    outside resource messages."""
    violations: list[FieldViolation] = []
    _walk(request, "", violations)
    if violations:
        raise InvalidArgument(violations)
