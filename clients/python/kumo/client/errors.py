"""Errors raised by the Kumo client.

    KumoError               a call failed, or an operation finished with an error
    OperationTimeoutError   Client.wait gave up before the operation was done

Every failed call raises KumoError with the gRPC status code, the server's
message, the decoded google.rpc detail messages and the request id the server
returned in its `x-request-id` trailer.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

REQUEST_ID_KEY = "x-request-id"

_DETAIL_TYPES: dict[str, Any] = {
    descriptor.full_name: getattr(error_details_pb2, name)
    for name, descriptor in error_details_pb2.DESCRIPTOR.message_types_by_name.items()
}
_CODES: dict[int, grpc.StatusCode] = {code.value[0]: code for code in grpc.StatusCode}


def decode_details(packed: Any) -> list[Any]:
    """Unpacks google.rpc detail messages (BadRequest, QuotaFailure, ...).

    Details of a type this client does not know stay as `google.protobuf.Any`.
    """
    details: list[Any] = []
    for item in packed:
        detail_type = _DETAIL_TYPES.get(item.TypeName())
        if detail_type is None:
            details.append(item)
            continue
        message = detail_type()
        item.Unpack(message)
        details.append(message)
    return details


class KumoError(Exception):
    """A Kumo call failed.

    Attributes:
        code: the gRPC status code.
        message: the server's human-readable message.
        details: decoded google.rpc detail messages, such as BadRequest with its
            field violations, QuotaFailure, PreconditionFailure, ResourceInfo.
        request_id: the server's request id for this call, if it answered.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        details: list[Any] | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or []
        self.request_id = request_id

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> KumoError:
        """Builds a KumoError from a failed call, reading its status details."""
        code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
        message = (error.details() if hasattr(error, "details") else None) or str(error)
        trailers = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
        request_id = None
        for key, value in trailers or ():
            if key == REQUEST_ID_KEY:
                request_id = value if isinstance(value, str) else value.decode()
        try:
            status = rpc_status.from_call(error) if trailers is not None else None
        except ValueError:  # details that contradict the status: ignore them
            status = None
        details = decode_details(status.details) if status is not None else []
        return cls(code, message, details, request_id)

    @classmethod
    def from_status(cls, status: status_pb2.Status) -> KumoError:
        """Builds a KumoError from a google.rpc.Status, such as `Operation.error`."""
        code = _CODES.get(status.code, grpc.StatusCode.UNKNOWN)
        return cls(code, status.message, decode_details(status.details))

    def field_violations(self) -> list[tuple[str, str]]:
        """The (field, description) pairs of every BadRequest detail."""
        return [
            (violation.field, violation.description)
            for detail in self.details
            if isinstance(detail, error_details_pb2.BadRequest)
            for violation in detail.field_violations
        ]


class OperationTimeoutError(TimeoutError):
    """Client.wait gave up; `operation` is the last state seen, still running."""

    def __init__(self, operation: Any, timeout: float) -> None:
        super().__init__(f"{operation.name} is not done after {timeout:g} s")
        self.operation = operation
        self.timeout = timeout
