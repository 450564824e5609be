"""The EC2 query protocol, response side: results → XML, driven by the model's output shapes.

`render(operation, result, request_id)` writes `<{Action}Response xmlns=...>` with
`<requestId>` and the output shape's members present in `result` (member names as in
botocore's client results): a member's element is its `locationName` (else its name); a
list is a wrapper element holding one element per item named by the list member's
`locationName` (`item` in EC2); booleans `true`/`false`, numbers as Python writes them,
timestamps ISO 8601 UTC with milliseconds, blobs base64. (EC2's model has no maps and no
flattened lists: compiling one raises TypeError.) Text is escaped (`&`, `<`, `>`; a
carriage return as `&#13;` so it survives XML's line-end normalization); characters XML
1.0 cannot carry (C0 controls other than tab and line ends, lone surrogates, U+FFFE and
U+FFFF) become U+FFFD. botocore's EC2 parser reads it back as the client's result.
Members the shape lacks, and members whose value is None, are not written. An item of
a list may be a `Fragment`, written earlier by `item_fragment`.

Each shape is compiled once, on first use (`compile_operation` does it for an operation's
whole output tree ahead of time), into a writer closure that knows its members' open and
close tags and how to write each: rendering walks the result, never the model (500
described instances are ~10,000 elements).

`render_error(code, message, request_id)` writes EC2's error envelope,
`<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>`.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from botocore.model import ListShape, OperationModel, Shape, StructureShape

from kumo.gateway.aws.model import XML_NAMESPACE

_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'

Convert = Callable[[Any], str]  # a scalar value → its escaped text
Writer = Callable[[list[str], str, str, Any], None]  # (out, open tag, close tag, value)
# A compiled shape: a scalar's converter, or a container's writer (the other is None).
Compiled = tuple[Convert | None, Writer | None]
_COMPILED: dict[str, Compiled] = {}  # by shape name


def render(operation: OperationModel, result: dict[str, Any], request_id: str) -> bytes:
    """The XML body of a successful response."""
    name = f"{operation.name}Response"
    out = [_DECLARATION, f'<{name} xmlns="{XML_NAMESPACE}"><requestId>{request_id}</requestId>']
    shape = operation.output_shape
    if shape is not None:
        write = _compiled(shape)[1]
        assert write is not None  # an output shape is a structure
        write(out, "", "", result)
    out.append(f"</{name}>")
    return "".join(out).encode()


def render_error(code: str, message: str, request_id: str) -> bytes:
    """The XML body of an error response."""
    return (
        f"{_DECLARATION}<Response><Errors><Error><Code>{text(code)}</Code>"
        f"<Message>{text(message)}</Message></Error></Errors>"
        f"<RequestID>{text(request_id)}</RequestID></Response>"
    ).encode()


class Fragment(str):
    """One item of a list of structures already written (by `item_fragment`), put in a
    result in place of the item's value: the list's writer copies it as is."""

    __slots__ = ()


def item_fragment(shape: ListShape, value: dict[str, Any]) -> Fragment:
    """The element an item `value` of a list of structures `shape` is written as
    (`<item>...</item>` in EC2), for a caller that keeps what it wrote."""
    writer = _compiled(shape.member)[1]
    if writer is None:
        raise TypeError(f"{shape.name}: only items of lists of structures are fragments")
    item_tag = shape.member.serialization.get("name", "member")
    out: list[str] = []
    writer(out, f"<{item_tag}>", f"</{item_tag}>", value)
    return Fragment("".join(out))


def compile_operation(operation: OperationModel) -> None:
    """Compiles the writers of an operation's output tree now rather than at its first
    response. Idempotent."""
    if operation.output_shape is not None:
        _compiled(operation.output_shape)


def _compiled(shape: Shape) -> Compiled:
    key = shape.name
    found = _COMPILED.get(key)
    if found is not None:
        return found
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        return _structure(shape, key)
    if kind == "list" and not shape.serialization.get("flattened"):
        assert isinstance(shape, ListShape)
        return _list(shape, key)
    if kind in ("list", "map"):  # flattened lists and maps: EC2's model has none
        raise TypeError(f"{shape.name}: {kind} shapes of this kind are not rendered")
    found = (_CONVERTERS.get(kind, text), None)
    _COMPILED[key] = found
    return found


def _structure(shape: StructureShape, key: str) -> Compiled:
    # Over the value's keys, not the shape's members: EC2 structures have dozens of
    # members of which a result sets a few.
    members: dict[str, tuple[str, str, Convert | None, Writer | None]] = {}

    def write(out: list[str], open_: str, close: str, value: dict[str, Any]) -> None:
        out.append(open_)
        for member, item in value.items():
            spec = members.get(member)
            if spec is None or item is None:
                continue
            member_open, member_close, convert, writer = spec
            if convert is not None:
                out.append(f"{member_open}{convert(item)}{member_close}")
            else:
                assert writer is not None
                writer(out, member_open, member_close, item)
        out.append(close)

    compiled: Compiled = (None, write)
    _COMPILED[key] = compiled  # before the members: shapes may be recursive
    for member, member_shape in shape.members.items():
        tag = member_shape.serialization.get("name", member)
        members[member] = (f"<{tag}>", f"</{tag}>", *_compiled(member_shape))
    return compiled


def _list(shape: ListShape, key: str) -> Compiled:
    item_tag = shape.member.serialization.get("name", "member")
    item_open, item_close = f"<{item_tag}>", f"</{item_tag}>"
    item: Compiled = (None, None)

    def write(out: list[str], open_: str, close: str, value: list[Any]) -> None:
        convert, writer = item
        out.append(open_)
        if convert is not None:
            out.extend(f"{item_open}{convert(v)}{item_close}" for v in value)
        else:
            assert writer is not None
            for v in value:
                if type(v) is Fragment:
                    out.append(v)
                else:
                    writer(out, item_open, item_close, v)
        out.append(close)

    compiled: Compiled = (None, write)
    _COMPILED[key] = compiled
    item = _compiled(shape.member)
    return compiled


# XML 1.0 cannot carry these at all, not even as character references.
_UNWRITABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def text(value: Any) -> str:
    """A scalar's text, escaped for an XML element (see the module docstring)."""
    written = value if isinstance(value, str) else str(value)
    if written.isprintable():  # the common case: no control characters at all
        if "&" in written or "<" in written or ">" in written:
            return written.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return written
    written = written.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _UNWRITABLE.sub("\ufffd", written.replace("\r", "&#13;"))


def _timestamp(value: Any) -> str:
    moment = value if isinstance(value, datetime) else datetime.fromtimestamp(value, UTC)
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    # isoformat of an aware UTC time ends "+00:00"; EC2 writes "Z".
    return moment.isoformat(timespec="milliseconds")[:-6] + "Z"


def _boolean(value: Any) -> str:
    return "true" if value else "false"


def _number(value: Any) -> str:
    return str(value) if isinstance(value, int | float) else text(value)


def _blob(value: Any) -> str:
    raw = value if isinstance(value, bytes) else str(value).encode()
    return base64.b64encode(raw).decode()


_CONVERTERS: dict[str, Convert] = {
    "boolean": _boolean,
    "timestamp": _timestamp,
    "blob": _blob,
    "integer": _number,
    "long": _number,
    "float": _number,
    "double": _number,
}
