"""The EC2 query protocol, response side: results → XML, driven by the model's output shapes.

`render(operation, result, request_id)` writes `<{Action}Response xmlns=...>` with
`<requestId>` and the output shape's members present in `result` (member names as in
botocore's client results): a member's element is its `locationName` (else its name); a
list is a wrapper element holding one element per item named by the list member's
`locationName` (`item` in EC2), or repeated elements when the list is flattened; a map is
`<entry><key/><value/></entry>`; booleans `true`/`false`, timestamps ISO 8601 UTC with
milliseconds, blobs base64. botocore's EC2 parser reads it back as the client's result.

`render_error(code, message, request_id)` writes EC2's error envelope,
`<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>`.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape

from kumo.gateway.aws.model import XML_NAMESPACE

_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


def render(operation: OperationModel, result: dict[str, Any], request_id: str) -> bytes:
    """The XML body of a successful response."""
    name = f"{operation.name}Response"
    out = [_DECLARATION, f'<{name} xmlns="{XML_NAMESPACE}"><requestId>{request_id}</requestId>']
    shape = operation.output_shape
    if shape is not None:
        _members(out, shape, result)
    out.append(f"</{name}>")
    return "".join(out).encode()


def render_error(code: str, message: str, request_id: str) -> bytes:
    """The XML body of an error response."""
    return (
        f"{_DECLARATION}<Response><Errors><Error><Code>{escape(code)}</Code>"
        f"<Message>{escape(message)}</Message></Error></Errors>"
        f"<RequestID>{request_id}</RequestID></Response>"
    ).encode()


Writer = Callable[[list[str], str, Any], None]
_WRITERS: dict[str, Writer] = {}  # by shape name: one writer per shape of the model


def _members(out: list[str], shape: StructureShape, value: dict[str, Any]) -> None:
    _structure_writer(shape, with_element=False)(out, "", value)


def _writer(shape: Shape) -> Writer:
    """The function writing `<tag>value</tag>` for values of `shape`, made once per shape
    (rendering is on every Describe's hot path: 500 instances are ~10,000 elements)."""
    writer = _WRITERS.get(shape.name)
    if writer is None:
        kind = shape.type_name
        if kind == "structure":
            assert isinstance(shape, StructureShape)
            writer = _structure_writer(shape, with_element=True)
        elif kind == "list":
            assert isinstance(shape, ListShape)
            writer = _list_writer(shape)
        elif kind == "map":
            assert isinstance(shape, MapShape)
            writer = _map_writer(shape)
        else:
            writer = _scalar_writer(kind)
        _WRITERS[shape.name] = writer
    return writer


def _structure_writer(shape: StructureShape, with_element: bool) -> Writer:
    # Over the value's keys, not the shape's members: EC2 structures have dozens of
    # members of which a result sets a few. Keys the shape lacks are not rendered.
    # Member writers are looked up lazily: shapes may be recursive.
    tags = {m: s.serialization.get("name", m) for m, s in shape.members.items()}
    shapes = shape.members

    def write(out: list[str], tag: str, value: dict[str, Any]) -> None:
        if with_element:
            out.append(f"<{tag}>")
        for member, item in value.items():
            member_tag = tags.get(member)
            if item is not None and member_tag is not None:
                _writer(shapes[member])(out, member_tag, item)
        if with_element:
            out.append(f"</{tag}>")

    return write


def _list_writer(shape: ListShape) -> Writer:
    item_tag = shape.member.serialization.get("name", "member")
    flattened = bool(shape.serialization.get("flattened"))

    def write(out: list[str], tag: str, value: list[Any]) -> None:
        item_writer = _writer(shape.member)
        if flattened:
            for item in value:
                item_writer(out, tag, item)
            return
        out.append(f"<{tag}>")
        for item in value:
            item_writer(out, item_tag, item)
        out.append(f"</{tag}>")

    return write


def _map_writer(shape: MapShape) -> Writer:
    key_tag = shape.key.serialization.get("name", "key")
    value_tag = shape.value.serialization.get("name", "value")

    def write(out: list[str], tag: str, value: dict[str, Any]) -> None:
        key_writer, value_writer = _writer(shape.key), _writer(shape.value)
        out.append(f"<{tag}>")
        for key, item in value.items():
            out.append("<entry>")
            key_writer(out, key_tag, key)
            value_writer(out, value_tag, item)
            out.append("</entry>")
        out.append(f"</{tag}>")

    return write


def _text(value: Any) -> str:
    text = str(value)
    return escape(text) if ("&" in text or "<" in text or ">" in text) else text


def _timestamp(value: Any) -> str:
    moment = value if isinstance(value, datetime) else datetime.fromtimestamp(value, UTC)
    moment = moment.astimezone(UTC)
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:"
        f"{moment.minute:02d}:{moment.second:02d}.{moment.microsecond // 1000:03d}Z"
    )


def _boolean(value: Any) -> str:
    return "true" if value else "false"


def _blob(value: Any) -> str:
    raw = value if isinstance(value, bytes) else str(value).encode()
    return base64.b64encode(raw).decode()


def _scalar_writer(kind: str) -> Writer:
    convert: Callable[[Any], str]
    if kind == "boolean":
        convert = _boolean
    elif kind == "timestamp":
        convert = _timestamp
    elif kind == "blob":
        convert = _blob
    else:
        convert = _text

    def write(out: list[str], tag: str, value: Any) -> None:
        out.append(f"<{tag}>{convert(value)}</{tag}>")

    return write
