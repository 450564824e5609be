"""EC2 errors: one exception carrying the documented code, and the HTTP status it answers.

Ec2Error(code, message)          any EC2 error code, HTTP 400 unless listed in STATUS
  raised by the parser (MissingParameter, InvalidParameterValue, UnknownParameter, ...),
  the signature check (AuthFailure, SignatureDoesNotMatch, RequestExpired, ...) and the
  operations (from gRPC statuses, see `operations/grpc_errors.py`).
"""

from __future__ import annotations

STATUS: dict[str, int] = {
    "AuthFailure": 401,
    "MissingAuthenticationToken": 401,
    "SignatureDoesNotMatch": 403,
    "UnauthorizedOperation": 403,
    "OptInRequired": 403,
    "DryRunOperation": 412,
    "InternalError": 500,
    "Unavailable": 503,
    "RequestLimitExceeded": 503,
}


class Ec2Error(Exception):
    """An error EC2 documents, rendered in the `<Response><Errors>` envelope."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        """The HTTP status EC2 answers with this code."""
        return STATUS.get(self.code, 400)


def missing(parameter: str) -> Ec2Error:
    """MissingParameter for a required parameter (its wire name)."""
    return Ec2Error("MissingParameter", f"The request must contain the parameter {parameter}")


def invalid(parameter: str, value: object, why: str = "") -> Ec2Error:
    """InvalidParameterValue for `parameter` (its wire name)."""
    reason = f" {why}" if why else ""
    return Ec2Error(
        "InvalidParameterValue", f"Value ({value}) for parameter {parameter} is invalid.{reason}"
    )
