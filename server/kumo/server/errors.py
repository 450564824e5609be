"""Kumo's one exception tree, and how each class becomes a gRPC status.

    KumoError                       (INTERNAL)
    ├── InvalidArgument             INVALID_ARGUMENT   + BadRequest.field_violations
    ├── NotFound                    NOT_FOUND          + ResourceInfo
    ├── AlreadyExists               ALREADY_EXISTS     + ResourceInfo
    ├── Aborted                     ABORTED            (etag mismatch, lost race)
    ├── FailedPrecondition          FAILED_PRECONDITION + PreconditionFailure
    ├── QuotaExceeded               RESOURCE_EXHAUSTED + QuotaFailure
    ├── Unauthenticated             UNAUTHENTICATED
    ├── PermissionDenied            PERMISSION_DENIED
    ├── Unavailable                 UNAVAILABLE
    └── Unimplemented               UNIMPLEMENTED

Every class carries a human message and the details that let a program act on
it. `to_status()` renders a `google.rpc.Status`; the error interceptor sends it
as the call's status with the `grpc-status-details-bin` trailer. Anything that
is not a KumoError is logged and reported as INTERNAL without its text.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request: its dotted path and what is wrong with it."""

    field: str
    description: str


class KumoError(Exception):
    """Base of every error Kumo reports to callers."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def details(self) -> list[Message]:
        """google.rpc detail messages to attach; none by default."""
        return []

    def to_status(self) -> status_pb2.Status:
        """Renders the error as a google.rpc.Status."""
        status = status_pb2.Status(code=self.code.value[0], message=self.message)
        for detail in self.details():
            packed = any_pb2.Any()
            packed.Pack(detail)
            status.details.append(packed)
        return status


class InvalidArgument(KumoError):
    """The request is malformed; `violations` says which fields and why."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, violations: Iterable[FieldViolation], message: str = "") -> None:
        self.violations = list(violations)
        text = "; ".join(f"{v.field}: {v.description}" for v in self.violations)
        super().__init__(message or f"invalid request: {text}")

    @classmethod
    def field(cls, field: str, description: str) -> InvalidArgument:
        """Shorthand for a single bad field."""
        return cls([FieldViolation(field, description)])

    def details(self) -> list[Message]:
        return [
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field, description=v.description
                    )
                    for v in self.violations
                ]
            )
        ]


class _ResourceError(KumoError):
    """An error about one named resource."""

    verb = ""

    def __init__(self, resource_type: str, name: str) -> None:
        self.resource_type = resource_type
        self.resource_name = name
        super().__init__(f"{resource_type} {name!r} {self.verb}")

    def details(self) -> list[Message]:
        return [
            error_details_pb2.ResourceInfo(
                resource_type=self.resource_type, resource_name=self.resource_name
            )
        ]


class NotFound(_ResourceError):
    """The resource does not exist, or the caller may not know that it does."""

    code = grpc.StatusCode.NOT_FOUND
    verb = "not found"


class AlreadyExists(_ResourceError):
    """A resource with that name exists already."""

    code = grpc.StatusCode.ALREADY_EXISTS
    verb = "already exists"


class Aborted(KumoError):
    """A concurrent change won (stale etag); re-read and retry."""

    code = grpc.StatusCode.ABORTED


class FailedPrecondition(KumoError):
    """The system is not in a state that allows the call (e.g. a non-empty parent)."""

    code = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self, message: str, *, type: str, subject: str) -> None:
        super().__init__(message)
        self.violation_type = type
        self.subject = subject

    def details(self) -> list[Message]:
        return [
            error_details_pb2.PreconditionFailure(
                violations=[
                    error_details_pb2.PreconditionFailure.Violation(
                        type=self.violation_type, subject=self.subject, description=self.message
                    )
                ]
            )
        ]


class QuotaExceeded(KumoError):
    """Creating this would take a project over one of its quota limits."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, project: str, resource: str, limit: int, in_use: int, asked: int) -> None:
        self.project = project
        self.resource = resource
        super().__init__(
            f"quota exceeded for {resource} in {project}: limit {limit}, "
            f"in use {in_use}, requested {asked}"
        )

    def details(self) -> list[Message]:
        return [
            error_details_pb2.QuotaFailure(
                violations=[
                    error_details_pb2.QuotaFailure.Violation(
                        subject=self.project, description=self.message
                    )
                ]
            )
        ]


class Unauthenticated(KumoError):
    """No valid credentials: missing, malformed, forged, expired or revoked. An optional
    `reason` (UPPER_SNAKE) is sent as ErrorInfo for callers that must tell causes apart."""

    code = grpc.StatusCode.UNAUTHENTICATED

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason

    def details(self) -> list[Message]:
        if not self.reason:
            return []
        return [error_details_pb2.ErrorInfo(reason=self.reason, domain="kumo.dev")]


class PermissionDenied(KumoError):
    """Valid credentials, but the caller's role does not allow the call."""

    code = grpc.StatusCode.PERMISSION_DENIED


class Unavailable(KumoError):
    """The server is shutting down or a dependency is unreachable; retry later."""

    code = grpc.StatusCode.UNAVAILABLE


class Unimplemented(KumoError):
    """The method is known to the contract but not served here."""

    code = grpc.StatusCode.UNIMPLEMENTED


def internal_status(message: str = "internal error") -> status_pb2.Status:
    """The status reported for unexpected failures: no traceback, no internal text."""
    return status_pb2.Status(code=code_pb2.INTERNAL, message=message)
