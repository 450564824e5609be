"""Failures as the gateway sees them: one `google.rpc.Status`, whatever its origin.

An error from a gRPC call (`from_rpc_error`) and the gateway's own refusals (bad JSON, an
unknown route, a body too large: `RpcFailure.of`) are the same type, so each dialect renders
every failure one way. `HTTP_STATUS` is grpc-gateway's mapping (runtime/errors.go
HTTPStatusFromCode); a dialect may override single codes where its API reference says
otherwise (Nova answers a quota failure with 403, a wrong state with 409).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc
from google.protobuf import json_format
from google.rpc import code_pb2, error_details_pb2, status_pb2

DETAILS_KEY = "grpc-status-details-bin"

HTTP_STATUS: Mapping[int, int] = {
    code_pb2.OK: 200,
    code_pb2.CANCELLED: 499,
    code_pb2.UNKNOWN: 500,
    code_pb2.INVALID_ARGUMENT: 400,
    code_pb2.DEADLINE_EXCEEDED: 504,
    code_pb2.NOT_FOUND: 404,
    code_pb2.ALREADY_EXISTS: 409,
    code_pb2.PERMISSION_DENIED: 403,
    code_pb2.UNAUTHENTICATED: 401,
    code_pb2.RESOURCE_EXHAUSTED: 429,
    code_pb2.FAILED_PRECONDITION: 400,
    code_pb2.ABORTED: 409,
    code_pb2.OUT_OF_RANGE: 400,
    code_pb2.UNIMPLEMENTED: 501,
    code_pb2.INTERNAL: 500,
    code_pb2.UNAVAILABLE: 503,
    code_pb2.DATA_LOSS: 500,
}


class RpcFailure(Exception):
    """A failed call, carrying its `google.rpc.Status` (code, message, details)."""

    def __init__(self, status: status_pb2.Status, http: int | None = None) -> None:
        super().__init__(status.message)
        self.status = status
        # An HTTP status that wins over every table (a body too large is 413 in any dialect).
        self.http = http

    @classmethod
    def of(cls, code: grpc.StatusCode, message: str, http: int | None = None) -> RpcFailure:
        """A failure the gateway raises itself."""
        return cls(status_pb2.Status(code=code.value[0], message=message), http)

    @property
    def code(self) -> int:
        """The google.rpc.Code number."""
        return int(self.status.code)

    @property
    def message(self) -> str:
        """The human message (never a traceback)."""
        return str(self.status.message)

    def precondition_types(self) -> set[str]:
        """The violation types of a FAILED_PRECONDITION's PreconditionFailure detail (what
        failed, e.g. INSTANCE_DELETING); empty for any other status."""
        found: set[str] = set()
        if self.code != code_pb2.FAILED_PRECONDITION:
            return found
        for detail in self.status.details:
            failure = error_details_pb2.PreconditionFailure()
            if detail.Unpack(failure):
                found.update(v.type for v in failure.violations)
        return found

    def http_status(self, overrides: Mapping[int, int] | None = None) -> int:
        """The HTTP status: `self.http`, `overrides`, then grpc-gateway's table, else 500."""
        if self.http is not None:
            return self.http
        if overrides and self.code in overrides:
            return overrides[self.code]
        return HTTP_STATUS.get(self.code, 500)

    def to_json(self) -> dict[str, Any]:
        """The status as grpc-gateway renders it: `{"code", "message", "details"}`."""
        body: dict[str, Any] = json_format.MessageToDict(self.status)
        body.setdefault("code", self.code)
        body.setdefault("message", "")
        body.setdefault("details", [])
        return body


def from_rpc_error(error: grpc.aio.AioRpcError) -> RpcFailure:
    """The failure of a gRPC call, with the server's detailed status when it sent one."""
    for key, value in error.trailing_metadata() or ():
        if key == DETAILS_KEY and isinstance(value, bytes):
            return RpcFailure(status_pb2.Status.FromString(value))
    return RpcFailure(status_pb2.Status(code=error.code().value[0], message=error.details() or ""))
