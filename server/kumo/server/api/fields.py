"""What the contract says about fields (google.api.field_behavior), applied.

Read once per message type from the descriptors, so that validation follows the
.proto files instead of being repeated by hand in every service.
"""

from __future__ import annotations

from functools import cache

from google.api import field_behavior_pb2
from google.protobuf import field_mask_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from kumo.server.errors import FieldViolation, InvalidArgument

_OUTPUT_ONLY = field_behavior_pb2.OUTPUT_ONLY
_IMMUTABLE = field_behavior_pb2.IMMUTABLE
_IDENTIFIER = field_behavior_pb2.IDENTIFIER
_REQUIRED = field_behavior_pb2.REQUIRED


def behaviors(field: FieldDescriptor) -> frozenset[int]:
    """The field_behavior values declared on `field`."""
    options = field.GetOptions()
    return frozenset(options.Extensions[field_behavior_pb2.field_behavior])


@cache
def writable_fields(descriptor: Descriptor) -> frozenset[str]:
    """Fields an Update may change: not output-only, immutable or the identifier."""
    blocked = {_OUTPUT_ONLY, _IMMUTABLE, _IDENTIFIER}
    return frozenset(
        f.name for f in descriptor.fields if not behaviors(f) & blocked and f.name != "etag"
    )


@cache
def required_fields(descriptor: Descriptor) -> tuple[FieldDescriptor, ...]:
    """Fields declared REQUIRED on `descriptor`."""
    return tuple(f for f in descriptor.fields if _REQUIRED in behaviors(f))


def _is_set(message: Message, field: FieldDescriptor) -> bool:
    if field.is_repeated:
        return len(getattr(message, field.name)) > 0
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return bool(message.HasField(field.name))
    return bool(getattr(message, field.name))


def missing_required(message: Message, prefix: str = "") -> list[FieldViolation]:
    """One violation per REQUIRED field of `message` left at its default."""
    return [
        FieldViolation(prefix + f.name, "is required")
        for f in required_fields(message.DESCRIPTOR)
        if not _is_set(message, f)
    ]


def check_required(message: Message, prefix: str = "") -> None:
    """Raises InvalidArgument listing every REQUIRED field of `message` left unset."""
    if violations := missing_required(message, prefix):
        raise InvalidArgument(violations)


def update_paths(resource: Message, mask: field_mask_pb2.FieldMask, prefix: str) -> set[str]:
    """The top-level fields an Update changes (AIP-134).

    An empty mask means every writable field set in `resource`; `*` means every
    writable field. A path naming an unknown or non-writable field is
    INVALID_ARGUMENT. `prefix` is the request field holding `resource`.
    """
    writable = writable_fields(resource.DESCRIPTOR)
    if not mask.paths:
        return {f.name for f, _ in resource.ListFields() if f.name in writable}
    if list(mask.paths) == ["*"]:
        return set(writable)
    paths: set[str] = set()
    violations = []
    for path in mask.paths:
        top = path.split(".", 1)[0]
        if top not in writable:
            violations.append(
                FieldViolation("update_mask", f"{path!r} is not a writable field of {prefix}")
            )
        paths.add(top)
    if violations:
        raise InvalidArgument(violations)
    return paths
