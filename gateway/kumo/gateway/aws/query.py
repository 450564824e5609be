"""The EC2 query protocol, request side: form fields → typed parameters, driven by the model.

A request is `Action=...&Version=...` plus the operation's input shape serialized the way
botocore's EC2Serializer does it: a member's wire name is its `queryName`, else its
capitalized `locationName`, else its own name; a list element is `Name.N` (N from 1); a
map entry is `Name.entry.N.key` / `.value` (or `Name.N.key` when flattened); booleans are
`true`/`false`, timestamps ISO 8601 (or epoch seconds), blobs base64.

`parse(form, shape)` returns the parameters as botocore's client would have built them
(member names, Python types). It raises Ec2Error: MissingParameter (a required member is
absent), UnknownParameter (a field the shape does not have), InvalidParameterValue (a
value of the wrong type). It never returns partial results.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from botocore.model import ListShape, MapShape, Shape, StructureShape

from kumo.gateway.aws.errors import Ec2Error, invalid, missing

# Fields of the envelope and of presigned URLs: not part of any input shape.
ENVELOPE_PREFIXES = ("X-Amz-",)
ENVELOPE_FIELDS = frozenset({"Action", "Version"})


class _Node:
    """One dotted path segment of the form: its value (if given) and its children."""

    __slots__ = ("children", "value")

    def __init__(self) -> None:
        self.value: str | None = None
        self.children: dict[str, _Node] = {}


def _tree(fields: Iterable[tuple[str, str]]) -> _Node:
    root = _Node()
    for key, value in fields:
        if key in ENVELOPE_FIELDS or key.startswith(ENVELOPE_PREFIXES):
            continue
        node = root
        for part in key.split("."):
            child = node.children.get(part)
            if child is None:
                child = node.children[part] = _Node()
            node = child
        node.value = value
    return root


def wire_name(shape: Shape, member: str) -> str:
    """The name botocore's EC2Serializer gives member `member` (of shape `shape`)."""
    serialization = shape.serialization
    if "queryName" in serialization:
        return str(serialization["queryName"])
    if "name" in serialization:
        name = str(serialization["name"])
        return name[0].upper() + name[1:]
    return member


def _wire_names(shape: StructureShape) -> dict[str, tuple[str, Shape]]:
    cached: dict[str, tuple[str, Shape]] | None = getattr(shape, "_kumo_wire_names", None)
    if cached is None:
        cached = {wire_name(m, name): (name, m) for name, m in shape.members.items()}
        shape._kumo_wire_names = cached  # per-shape cache
    return cached


def parse(fields: Iterable[tuple[str, str]], shape: StructureShape | None) -> dict[str, Any]:
    """The parameters of one request (see the module docstring). Raises Ec2Error."""
    root = _tree(fields)
    if shape is None:
        if root.children:
            raise _unknown(next(iter(root.children)))
        return {}
    return _structure(shape, root, "")


def _unknown(path: str) -> Ec2Error:
    return Ec2Error("UnknownParameter", f"The parameter {path} is not recognized")


def _structure(shape: StructureShape, node: _Node, prefix: str) -> dict[str, Any]:
    names = _wire_names(shape)
    result: dict[str, Any] = {}
    for key, child in node.children.items():
        known = names.get(key)
        if known is None:
            raise _unknown(prefix + key)
        member, member_shape = known
        result[member] = _value(member_shape, child, prefix + key)
    for member in shape.required_members:
        if member not in result:
            raise missing(prefix + wire_name(shape.members[member], member))
    return result


def _indexed(node: _Node, path: str) -> list[tuple[int, _Node]]:
    items = []
    for key, child in node.children.items():
        if not key.isdigit() or int(key) < 1:
            raise _unknown(f"{path}.{key}")
        items.append((int(key), child))
    return sorted(items, key=lambda item: item[0])


def _value(shape: Shape, node: _Node, path: str) -> Any:
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        return _structure(shape, node, path + ".")
    if kind == "list":
        assert isinstance(shape, ListShape)
        return [_value(shape.member, c, f"{path}.{i}") for i, c in _indexed(node, path)]
    if kind == "map":
        assert isinstance(shape, MapShape)
        return _map(shape, node, path)
    if node.children:
        raise _unknown(f"{path}.{next(iter(node.children))}")
    return _scalar(kind, node.value or "", path)


def _map(shape: MapShape, node: _Node, path: str) -> dict[str, Any]:
    if not shape.serialization.get("flattened"):
        entries = node.children.get("entry")
        if entries is None:
            if node.children:
                raise _unknown(f"{path}.{next(iter(node.children))}")
            return {}
        node, path = entries, f"{path}.entry"
    key_name = wire_name(shape.key, "key")
    value_name = wire_name(shape.value, "value")
    result: dict[str, Any] = {}
    for index, entry in _indexed(node, path):
        key_node = entry.children.get(key_name)
        if key_node is None:
            raise missing(f"{path}.{index}.{key_name}")
        value_node = entry.children.get(value_name, _Node())
        result[str(key_node.value or "")] = _value(
            shape.value, value_node, f"{path}.{index}.{value_name}"
        )
    return result


def _scalar(kind: str, text: str, path: str) -> Any:
    if kind == "string":
        return text
    if kind in ("integer", "long"):
        try:
            return int(text)
        except ValueError:
            raise invalid(path, text, "Expected an integer.") from None
    if kind == "boolean":
        lowered = text.lower()
        if lowered not in ("true", "false"):
            raise invalid(path, text, "Expected true or false.")
        return lowered == "true"
    if kind in ("float", "double"):
        try:
            return float(text)
        except ValueError:
            raise invalid(path, text, "Expected a number.") from None
    if kind == "timestamp":
        return _timestamp(text, path)
    if kind == "blob":
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise invalid(path, text, "Expected base64.") from None
    raise invalid(path, text)  # a type this model does not use


def _timestamp(text: str, path: str) -> datetime:
    try:
        if text.replace(".", "", 1).isdigit():
            return datetime.fromtimestamp(float(text), UTC)
        value = datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        raise invalid(path, text, "Expected an ISO 8601 time.") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
