"""Exit codes, and how errors are reported on stderr."""

from __future__ import annotations

from typing import IO, Any

import click
import grpc
from google.rpc import error_details_pb2

from kumo.client import KumoError

OK = 0
ERROR = 1
USAGE = 2
NOT_FOUND = 3
DENIED = 4
REJECTED = 5
OPERATION_FAILED = 6
UNAVAILABLE = 7

_EXIT_CODES = {
    grpc.StatusCode.NOT_FOUND: NOT_FOUND,
    grpc.StatusCode.PERMISSION_DENIED: DENIED,
    grpc.StatusCode.UNAUTHENTICATED: DENIED,
    grpc.StatusCode.INVALID_ARGUMENT: REJECTED,
    grpc.StatusCode.FAILED_PRECONDITION: REJECTED,
    grpc.StatusCode.ALREADY_EXISTS: REJECTED,
    grpc.StatusCode.ABORTED: REJECTED,
    grpc.StatusCode.OUT_OF_RANGE: REJECTED,
    grpc.StatusCode.RESOURCE_EXHAUSTED: REJECTED,
    grpc.StatusCode.UNAVAILABLE: UNAVAILABLE,
}

EPILOG = """\b
Exit codes:
  0  success
  1  any other error
  2  usage error (bad option or argument)
  3  not found
  4  permission denied, or not signed in (unauthenticated)
  5  invalid argument, failed precondition, already exists,
     aborted (etag mismatch), quota exceeded
  6  the operation finished with an error
  7  the server is unavailable or cannot be reached
"""


def exit_code(code: grpc.StatusCode) -> int:
    """The `kumo` exit code for a gRPC status code."""
    return _EXIT_CODES.get(code, ERROR)


def detail_lines(details: list[Any]) -> list[str]:
    """Indented lines for the detail messages a user can act on."""
    lines: list[str] = []
    for detail in details:
        if isinstance(detail, error_details_pb2.BadRequest):
            lines += [f"  {v.field}: {v.description}" for v in detail.field_violations]
        elif isinstance(detail, error_details_pb2.QuotaFailure):
            lines += [f"  quota {v.subject}: {v.description}" for v in detail.violations]
        elif isinstance(detail, error_details_pb2.PreconditionFailure):
            lines += [
                f"  {' '.join(filter(None, (v.type, v.subject)))}: {v.description}"
                for v in detail.violations
            ]
    return lines


class CliError(click.ClickException):
    """An error that ends the command with `exit_code` and a message on stderr.

    Printed as `error: <message> (request <id>)` followed by detail lines.
    """

    def __init__(
        self,
        message: str,
        exit_code: int = ERROR,
        request_id: str | None = None,
        lines: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # a ClassVar in click's stubs
        self.request_id = request_id
        self.lines = lines or []

    @classmethod
    def from_kumo(
        cls, error: KumoError, endpoint: str = "", prefix: str = "", hint: bool = True
    ) -> CliError:
        """Reports a failed call; UNAVAILABLE without a request id means that
        no server answered. `hint` suggests `kumo login` for UNAUTHENTICATED."""
        message = error.message
        if error.code == grpc.StatusCode.UNAVAILABLE and error.request_id is None and endpoint:
            message = f"cannot reach Kumo at {endpoint}: {message}"
        lines = detail_lines(error.details)
        if len(lines) == 1 and lines[0].strip() in message:
            lines = []  # the message says it already
        if hint and error.code == grpc.StatusCode.UNAUTHENTICATED:
            lines.append("  hint: run `kumo login` to sign in")
        return cls(prefix + message, exit_code(error.code), error.request_id, lines)

    def format_message(self) -> str:
        text = f"error: {self.message}"
        if self.request_id:
            text += f" (request {self.request_id})"
        return "\n".join([text, *self.lines])

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(self.format_message(), err=file is None, file=file)
