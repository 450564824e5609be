"""Rendering results: aligned plain-text tables, or protobuf JSON.

Tables show what a user would type back: short ids for resource names, enum
values without their prefix in lower case (`active`, `kvm`, `admin`), times in
UTC as ISO 8601. JSON is `json_format.MessageToDict` output, one object for one
resource and an array for a list.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any, TextIO

import click
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor

from kumo.client import KumoError, operation_metadata, short_id

FORMATS = ("table", "json")
EMPTY = "-"
"""What a table shows for an unset value, so that every row has every column."""


def enum_label(enum_descriptor: Any, number: int) -> str:
    """`STATE_ACTIVE` -> `active`, `HYPERVISOR_KIND_KVM` -> `kvm` for the enum's
    values; an unknown number is shown as the number."""
    value = enum_descriptor.values_by_number.get(number)
    if value is None:
        return str(number)
    zero = enum_descriptor.values_by_number.get(0)
    prefix = zero.name[: -len("UNSPECIFIED")] if zero and zero.name.endswith("UNSPECIFIED") else ""
    name: str = value.name
    return (name[len(prefix) :] if prefix and name.startswith(prefix) else name).lower()


def format_timestamp(timestamp: Any) -> str:
    """A Timestamp as `2025-01-31T12:00:00Z`; an unset one as empty."""
    if not timestamp.seconds and not timestamp.nanos:
        return ""
    moment = timestamp.ToDatetime(tzinfo=UTC)
    return str(moment.strftime("%Y-%m-%dT%H:%M:%SZ"))


def _scalar(field: Any, value: Any) -> str:
    if field.type == FieldDescriptor.TYPE_ENUM:
        return enum_label(field.enum_type, value)
    if field.type == FieldDescriptor.TYPE_BOOL:
        return "true" if value else "false"
    if field.type == FieldDescriptor.TYPE_BYTES:
        return f"({len(value)} bytes)" if value else ""
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        full = field.message_type.full_name
        if full == "google.protobuf.Timestamp":
            return format_timestamp(value)
        if full == "google.protobuf.Duration":
            return f"{value.ToTimedelta().total_seconds():g}s"
        return json.dumps(json_format.MessageToDict(value), separators=(",", ":"))
    return str(value)


def _is_map(field: Any) -> bool:
    return bool(
        field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry
    )


def field_text(message: Any, path: str) -> str:
    """The value at dotted `path` of `message` as table text (empty if unset)."""
    *parents, last = path.split(".")
    for part in parents:
        message = getattr(message, part)
    field = message.DESCRIPTOR.fields_by_name[last]
    value = getattr(message, last)
    if _is_map(field):
        value_field = field.message_type.fields_by_name["value"]
        return ",".join(f"{k}={_scalar(value_field, value[k])}" for k in sorted(value))
    if field.is_repeated:
        return ", ".join(_scalar(field, item) for item in value)
    return _scalar(field, value)


@dataclass(frozen=True)
class Column:
    """One table column: a header and a dotted field path, or a function.

    `short` shows only the id of a resource name (`users/alice` -> `alice`).
    """

    header: str
    path: str = ""
    short: bool = False
    get: Callable[[Any], str] | None = None

    def text(self, message: Any) -> str:
        value = self.get(message) if self.get is not None else field_text(message, self.path)
        if self.short and value:
            value = short_id(value)
        return value or EMPTY


def format_bytes(count: int) -> str:
    """A size for people: `512 B`, `1.5 KiB`, `64.0 MiB`, `2.0 GiB`."""
    if count < 1024:
        return f"{count} B"
    value = float(count)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


def format_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Aligned columns separated by two spaces, a header line first, no
    trailing spaces; ends with a newline."""
    table = [list(headers), *[list(row) for row in rows]]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in table
    ]
    return "\n".join(lines) + "\n"


def flatten(message: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Every set field of `message` as (dotted path, text) pairs, in field order.

    Maps become `labels.KEY`, repeated messages `conditions[0].type`.
    """
    rows: list[tuple[str, str]] = []
    for field, value in message.ListFields():
        key = prefix + field.name
        if _is_map(field):
            value_field = field.message_type.fields_by_name["value"]
            rows += [(f"{key}.{k}", _scalar(value_field, value[k])) for k in sorted(value)]
        elif field.is_repeated and field.type == FieldDescriptor.TYPE_MESSAGE:
            for index, item in enumerate(value):
                rows += flatten(item, f"{key}[{index}].")
        elif field.is_repeated:
            rows.append((key, ", ".join(_scalar(field, item) for item in value)))
        elif field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.full_name not in (
            "google.protobuf.Timestamp",
            "google.protobuf.Duration",
        ):
            rows += flatten(value, key + ".")
        else:
            rows.append((key, _scalar(field, value)))
    return rows


def format_fields(rows: Sequence[tuple[str, str]]) -> str:
    """`key:  value` lines with the values aligned; ends with a newline."""
    if not rows:
        return ""
    width = max(len(key) for key, _ in rows) + 1
    return "".join(f"{(key + ':').ljust(width)}  {value}".rstrip() + "\n" for key, value in rows)


def to_dict(message: Any) -> dict[str, Any]:
    """`MessageToDict`, tolerating `Any` fields of a type this client does not
    know (they keep only their `@type`)."""
    try:
        return dict(json_format.MessageToDict(message))
    except (TypeError, KeyError):
        if message.DESCRIPTOR.full_name != "google.longrunning.Operation":
            raise
    copy = type(message)()
    copy.CopyFrom(message)
    unknown = {}
    for field in ("metadata", "response"):
        if copy.HasField(field):
            try:
                json_format.MessageToDict(getattr(copy, field))
            except (TypeError, KeyError):
                unknown[field] = {"@type": getattr(copy, field).type_url}
                copy.ClearField(field)
    return {**json_format.MessageToDict(copy), **unknown}


def to_json(value: Any) -> str:
    """A message, or a list of messages, as indented JSON."""
    if isinstance(value, list | tuple):
        return json.dumps([to_dict(item) for item in value], indent=2)
    return json.dumps(to_dict(value), indent=2)


class Printer:
    """Writes results in the chosen format to stdout."""

    def __init__(self, fmt: str = "table", stream: TextIO | None = None) -> None:
        self.format = fmt
        self.stream = stream

    def _write(self, text: str) -> None:
        click.echo(text, file=self.stream, nl=False)

    def items(self, items: Sequence[Any], columns: Sequence[Column]) -> None:
        """A list of resources: one row each, or a JSON array."""
        if self.format == "json":
            self._write(to_json(list(items)) + "\n")
            return
        rows = [[column.text(item) for column in columns] for item in items]
        self._write(format_table([column.header for column in columns], rows))

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[str]], message: Any) -> None:
        """A custom table of one message's parts (quota limits); JSON shows the message."""
        if self.format == "json":
            self._write(to_json(message) + "\n")
        else:
            self._write(format_table(headers, rows))

    def item(self, message: Any, rows: Sequence[tuple[str, str]] | None = None) -> None:
        """One resource: its fields as `key: value` lines, or a JSON object.

        `rows` replaces the generic field listing in table format.
        """
        if self.format == "json":
            self._write(to_json(message) + "\n")
        else:
            self._write(format_fields(flatten(message) if rows is None else rows))

    def done(self, text: str, message: Any = None) -> None:
        """Reports an action without a resource to show (`deleted users/alice`):
        the text in table format, the message (or `{}`) in JSON."""
        if self.format == "json":
            self._write((to_json(message) if message is not None else "{}") + "\n")
        else:
            self._write(text + "\n")


OPERATION_COLUMNS = (
    Column("ID", "name", short=True),
    Column("VERB", get=lambda op: operation_metadata(op).verb),
    Column("TARGET", get=lambda op: operation_metadata(op).target),
    Column("STATUS", get=lambda op: operation_status(op)),
    Column("PROGRESS", get=lambda op: progress_text(operation_metadata(op).progress_percent)),
    Column("CREATED", get=lambda op: format_timestamp(operation_metadata(op).create_time)),
)


def progress_text(percent: int) -> str:
    return f"{percent}%" if percent >= 0 else ""


def operation_status(operation: Any) -> str:
    """`running`, `succeeded`, `cancelled` or `failed (CODE)`."""
    if not operation.done:
        return "running"
    if not operation.HasField("error"):
        return "succeeded"
    code = KumoError.from_status(operation.error).code
    return "cancelled" if code.name == "CANCELLED" else f"failed ({code.name})"


def operation_rows(operation: Any) -> list[tuple[str, str]]:
    """The table view of an operation: state, metadata, then result or error."""
    metadata = operation_metadata(operation)
    rows = [("name", operation.name), ("status", operation_status(operation))]
    rows += [(key, value) for key, value in flatten(metadata) if key != "progress_percent"]
    if metadata.progress_percent >= 0 and not operation.done:
        rows.append(("progress", progress_text(metadata.progress_percent)))
    if operation.HasField("error"):
        rows.append(("error", operation.error.message))
    elif operation.HasField("response"):
        rows.append(("response", operation.response.TypeName()))
    return rows


class ProgressDisplay:
    """Shows an operation's progress on stderr while waiting.

    On a terminal it redraws one line
    (`DeleteProject projects/x [#####-----]  50%  Deleting keys`); otherwise it
    writes a line each time the progress or message changes. The label is the
    operation's verb and target once known, `label` until then.
    """

    WIDTH = 20

    def __init__(self, label: str, stream: TextIO | None = None, live: bool | None = None):
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self._last: tuple[int, str] | None = None
        self._drawn = 0

    def __call__(self, metadata: Any) -> None:
        if metadata.verb and metadata.target:
            self.label = f"{metadata.verb} {metadata.target}"
        state = (int(metadata.progress_percent), str(metadata.status_message))
        if state == self._last:
            return
        self._last = state
        line = self.render(*state)
        if self.live:
            self.stream.write("\r" + line.ljust(self._drawn))
            self._drawn = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def render(self, percent: int, message: str) -> str:
        if percent < 0:
            bar = f"{self.label} [{'?' * self.WIDTH}]"
        else:
            filled = min(self.WIDTH, max(0, percent * self.WIDTH // 100))
            bar = f"{self.label} [{'#' * filled}{'-' * (self.WIDTH - filled)}] {percent:3d}%"
        return f"{bar}  {message}".rstrip()

    def close(self) -> None:
        """Ends the redrawn line, if any."""
        if self.live and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = 0


@dataclass(frozen=True)
class _Step:
    """What ProgressDisplay reads from OperationMetadata, for a transfer."""

    progress_percent: int
    status_message: str
    verb: str = ""
    target: str = ""


class TransferProgress:
    """Shows bytes moved (an image upload or download) on stderr, drawn like
    an operation's progress: `upload disk [########------------]  40%  25.6 MiB
    of 64.0 MiB`.

    Call it with the bytes moved so far; it redraws at each percent on a
    terminal, and writes a line every 10 % otherwise. With an unknown total
    (0) it shows only the bytes.
    """

    def __init__(
        self, label: str, total: int, stream: TextIO | None = None, live: bool | None = None
    ) -> None:
        self.display = ProgressDisplay(label, stream, live)
        self.total = total
        self._step = 1 if self.display.live else 10
        self._shown: int | None = None

    def __call__(self, done: int) -> None:
        if self.total > 0:
            percent = min(100, done * 100 // self.total)
            mark = percent // self._step if percent < 100 else 100
            message = f"{format_bytes(done)} of {format_bytes(self.total)}"
        else:
            percent, mark, message = -1, (done >> 20) // self._step, format_bytes(done)
        if mark == self._shown:
            return
        self._shown = mark
        self.display(_Step(percent, message))

    def close(self) -> None:
        """Ends the redrawn line, if any."""
        self.display.close()
