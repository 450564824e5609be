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


def _members(out: list[str], shape: StructureShape, value: dict[str, Any]) -> None:
    # Over the value's keys, not the shape's members: EC2 structures have dozens of
    # members of which a result sets a few. Keys the shape lacks are not rendered.
    members = shape.members
    for member, item in value.items():
        member_shape = members.get(member)
        if item is None or member_shape is None:
            continue
        _element(out, member_shape.serialization.get("name", member), member_shape, item)


def _element(out: list[str], tag: str, shape: Shape, value: Any) -> None:
    kind = shape.type_name
    if kind == "list":
        assert isinstance(shape, ListShape)
        item_tag = shape.member.serialization.get("name", "member")
        if shape.serialization.get("flattened"):
            for item in value:
                _element(out, tag, shape.member, item)
            return
        out.append(f"<{tag}>")
        for item in value:
            _element(out, item_tag, shape.member, item)
        out.append(f"</{tag}>")
        return
    out.append(f"<{tag}>")
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        _members(out, shape, value)
    elif kind == "map":
        assert isinstance(shape, MapShape)
        key_tag = shape.key.serialization.get("name", "key")
        value_tag = shape.value.serialization.get("name", "value")
        for key, item in value.items():
            out.append("<entry>")
            _element(out, key_tag, shape.key, key)
            _element(out, value_tag, shape.value, item)
            out.append("</entry>")
    else:
        out.append(_scalar(kind, value))
    out.append(f"</{tag}>")


def _scalar(kind: str, value: Any) -> str:
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "timestamp":
        moment = value if isinstance(value, datetime) else datetime.fromtimestamp(value, UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
            f"{moment.microsecond // 1000:03d}Z"
        )
    if kind == "blob":
        raw = value if isinstance(value, bytes) else str(value).encode()
        return base64.b64encode(raw).decode()
    return escape(str(value))
