"""SigV4, gateway side: the canonical request of an incoming request, and its time checks.

`signed_request(...)` reads the signature from the `Authorization` header or, for a
presigned request, from the `X-Amz-*` query fields, and rebuilds the canonical request
exactly as botocore's signer builds it (path normalized and quoted, query fields decoded,
re-encoded per RFC 3986 and sorted without `X-Amz-Signature`, signed headers lower-cased
with whitespace folded, payload hash from `x-amz-content-sha256` or the body). The
identity service recomputes the signature from it (`AuthenticateSignature`); the secret
is never here.

Raises Ec2Error: MissingAuthenticationToken (no signature at all), IncompleteSignature
(a malformed one), AuthFailure (another algorithm), RequestExpired (dated more than
15 minutes from now, or a presigned request past its `X-Amz-Expires`).
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote

from kumo.gateway.aws.errors import Ec2Error

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = timedelta(minutes=15)
MAX_EXPIRES = 604800  # seven days, as AWS
TIME_FORMAT = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class SignedRequest:
    """What the identity service needs to check a signature, and the replay window."""

    access_key_id: str
    credential_scope: str
    request_time: str
    canonical_request: str
    signature: str
    presigned: bool
    valid_until: datetime


def _incomplete(message: str) -> Ec2Error:
    return Ec2Error("IncompleteSignature", message)


def _encode(text: str) -> str:
    return quote(text, safe="-_.~")


def query_pairs(query: str) -> list[tuple[str, str]]:
    """The decoded fields of a query string, in order (`+` is a space, as in forms)."""
    pairs = []
    for part in query.split("&"):
        if part:
            key, _, value = part.partition("=")
            pairs.append((unquote(key.replace("+", " ")), unquote(value.replace("+", " "))))
    return pairs


def _canonical_path(path: str) -> str:
    normalized = posixpath.normpath(path or "/")
    if path.endswith("/") and normalized != "/":
        normalized += "/"
    return quote(normalized.replace("//", "/"), safe="/~")


def _auth_header(value: str) -> dict[str, str]:
    algorithm, _, rest = value.partition(" ")
    if algorithm != ALGORITHM:
        raise Ec2Error("AuthFailure", f"Unsupported signature algorithm {algorithm or value!r}")
    fields: dict[str, str] = {}
    for item in rest.split(","):
        key, sep, text = item.strip().partition("=")
        if sep:
            fields[key] = text
    for key in ("Credential", "SignedHeaders", "Signature"):
        if key not in fields:
            raise _incomplete(f"Authorization header requires '{key}' parameter.")
    return fields


def signed_request(
    method: str,
    path: str,
    query: str,
    headers: dict[str, list[str]],
    body: bytes,
    now: datetime,
) -> SignedRequest:
    """The signature parts of a request (headers: lower-case name → values). Raises Ec2Error."""
    pairs = query_pairs(query)
    fields = dict(pairs)
    presigned = "X-Amz-Algorithm" in fields
    if presigned:
        if fields["X-Amz-Algorithm"] != ALGORITHM:
            raise Ec2Error("AuthFailure", "Unsupported signature algorithm")
        names = ("X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Signature")
        for name in (*names, "X-Amz-Expires"):
            if name not in fields:
                raise _incomplete(f"Presigned request requires the {name} query field.")
        credential, request_time, signed_names, signature = (fields[n] for n in names)
    elif "authorization" in headers:
        auth = _auth_header(headers["authorization"][0])
        credential, signed_names, signature = (
            auth["Credential"],
            auth["SignedHeaders"],
            auth["Signature"],
        )
        request_time = (headers.get("x-amz-date") or [""])[0]
        if not request_time:
            raise _incomplete("Authorization requires an X-Amz-Date header.")
    else:
        raise Ec2Error(
            "MissingAuthenticationToken", "The request must contain a signature (SigV4)."
        )
    key_id, _, scope = credential.partition("/")
    if not key_id or scope.count("/") != 3:
        raise _incomplete(f"Credential should be scoped to a valid region: {credential!r}")
    try:
        signed_at = datetime.strptime(request_time, TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise _incomplete(f"Invalid X-Amz-Date {request_time!r}") from None
    valid_until = _check_time(signed_at, fields.get("X-Amz-Expires") if presigned else None, now)
    canonical = "\n".join(
        [
            method.upper(),
            _canonical_path(path),
            _canonical_query(pairs),
            _canonical_headers(signed_names, headers),
            signed_names,
            (headers.get("x-amz-content-sha256") or [hashlib.sha256(body).hexdigest()])[0],
        ]
    )
    return SignedRequest(
        access_key_id=key_id,
        credential_scope=scope,
        request_time=request_time,
        canonical_request=canonical,
        signature=signature,
        presigned=presigned,
        valid_until=valid_until,
    )


def _check_time(signed_at: datetime, expires: str | None, now: datetime) -> datetime:
    if expires is None:
        if abs(now - signed_at) > MAX_SKEW:
            raise Ec2Error(
                "RequestExpired",
                "Request has expired: its X-Amz-Date is more than 15 minutes from now.",
            )
        return signed_at + MAX_SKEW
    if not expires.isdigit() or int(expires) > MAX_EXPIRES:
        raise Ec2Error("AuthFailure", "X-Amz-Expires must be between 0 and 604800 seconds.")
    valid_until = signed_at + timedelta(seconds=int(expires))
    if now > valid_until or signed_at - now > MAX_SKEW:
        raise Ec2Error("RequestExpired", "Request has expired (X-Amz-Expires has passed).")
    return valid_until


def _canonical_query(pairs: list[tuple[str, str]]) -> str:
    encoded = sorted((_encode(k), _encode(v)) for k, v in pairs if k != "X-Amz-Signature")
    return "&".join(f"{k}={v}" for k, v in encoded)


def _canonical_headers(signed_names: str, headers: dict[str, list[str]]) -> str:
    lines = []
    for name in signed_names.split(";"):
        values = headers.get(name)
        if values is None:
            raise _incomplete(f"Signed header {name!r} is missing from the request.")
        lines.append(name + ":" + ",".join(" ".join(v.split()) for v in values) + "\n")
    return "".join(lines)
