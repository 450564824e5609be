"""AuthenticateSignature: AWS Signature Version 4 checked against Kumo access keys.

The EC2 gateway builds the canonical request from what it received; this part derives
the SigV4 signing key from the key's secret (decrypted here, never sent anywhere),
recomputes the signature and, when it matches, issues a 15-minute token for the key's
user in the key's project. For the authenticator's cache TTL (a few seconds) the signing
key of the key's credential scope and that token are kept in memory (`SignatureGrant`):
the next signatures of that scope are checked against the kept key without reading the
database, and get the same token while it has ten minutes left, so their calls hit the
token cache; any change to access keys, users, roles, projects or tokens in this process
drops them (other replicas see it within the TTL, as for tokens). The request time is
checked here too, for every signature, so a captured request cannot be turned into a
token later: within 15 minutes of now, or, for a presigned request (`X-Amz-Expires` in
the canonical query), until that many seconds (at most seven days) after it. Replays
within that window are the gateway's to refuse (it sees them).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

from sqlalchemy.orm import Session

from kumo.identity.v1 import identity_service_pb2 as api
from kumo.server.auth.authenticator import SignatureGrant
from kumo.server.db.models import AccessKeyRow
from kumo.server.errors import InvalidArgument, Unauthenticated
from kumo.server.interceptors.base import Context
from kumo.server.services.identity.tokens import TokenMethods

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = timedelta(minutes=15)
MAX_PRESIGNED = timedelta(days=7)
TOKEN_LIFETIME = timedelta(minutes=15)
# A token issued for an access key is handed out again, for the authenticator's cache TTL,
# while it has at least this long left (the caller's next calls then hit its cache).
MIN_REUSED_LIFETIME = timedelta(minutes=10)
_TIME_FORMAT = "%Y%m%dT%H%M%SZ"


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """SigV4's derived key: HMAC chain over date, region, service and `aws4_request`."""
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def string_to_sign(request_time: str, scope: str, canonical_request: str) -> str:
    """SigV4's string to sign for a canonical request."""
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    return f"{ALGORITHM}\n{request_time}\n{scope}\n{digest}"


def _validity(request: api.AuthenticateSignatureRequest) -> tuple[datetime, datetime]:
    """The window in which the request may be used; InvalidArgument if malformed."""
    try:
        signed_at = datetime.strptime(request.request_time, _TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise InvalidArgument.field("request_time", "use yyyymmddThhmmssZ") from None
    parts = request.credential_scope.split("/")
    if len(parts) != 4 or parts[3] != "aws4_request" or parts[0] != request.request_time[:8]:
        raise InvalidArgument.field(
            "credential_scope", "use {date}/{region}/{service}/aws4_request, dated as the request"
        )
    lines = request.canonical_request.split("\n")
    if len(lines) < 6:
        raise InvalidArgument.field("canonical_request", "is not a SigV4 canonical request")
    expires = dict(parse_qsl(lines[2], keep_blank_values=True)).get("X-Amz-Expires")
    if expires is None:
        return signed_at - MAX_SKEW, signed_at + MAX_SKEW
    if not expires.isdigit() or timedelta(seconds=int(expires)) > MAX_PRESIGNED:
        raise InvalidArgument.field("canonical_request", "X-Amz-Expires must be 0 to 604800")
    return signed_at - MAX_SKEW, signed_at + timedelta(seconds=int(expires))


class SignatureMethods(TokenMethods):
    """Sign-in by a SigV4 signature (the EC2 dialect's credentials)."""

    async def AuthenticateSignature(
        self, request: api.AuthenticateSignatureRequest, context: Context
    ) -> api.AuthenticateSignatureResponse:
        for field in ("access_key_id", "signature"):
            if not getattr(request, field):
                raise InvalidArgument.field(field, "is required")
        not_before, not_after = _validity(request)
        now = datetime.now(UTC)
        if not not_before <= now <= not_after:
            raise Unauthenticated("the request time is outside its validity", "REQUEST_EXPIRED")

        authenticator = self.runtime.authenticator
        grant = authenticator.grant(request.access_key_id)
        if (
            grant is not None
            and grant.scope == request.credential_scope
            and grant.expire_time - now.timestamp() >= MIN_REUSED_LIFETIME.total_seconds()
        ):
            _check(grant.signing_key, request)
            return api.AuthenticateSignatureResponse(token=grant.token)

        def lookup(session: Session) -> AccessKeyRow | None:
            return session.get(AccessKeyRow, request.access_key_id)

        row = await self.runtime.db.run(lookup)
        if row is None:
            raise Unauthenticated("unknown access key", "UNKNOWN_ACCESS_KEY")
        secret = self.runtime.keys.secrets.decrypt(row.secret_encrypted).decode()
        date, region, service, _ = request.credential_scope.split("/")
        key = signing_key(secret, date, region, service)
        _check(key, request)
        token = await self._issue(row.user_id, row.project_id, now + TOKEN_LIFETIME)
        expires = token.expire_time.ToDatetime(tzinfo=UTC).timestamp()
        authenticator.remember_grant(
            request.access_key_id, SignatureGrant(request.credential_scope, key, token, expires)
        )
        return api.AuthenticateSignatureResponse(token=token)


def _check(key: bytes, request: api.AuthenticateSignatureRequest) -> None:
    """Raises Unauthenticated (SIGNATURE_MISMATCH) unless the request's signature is
    the one `key` (the credential scope's signing key) makes."""
    expected = hmac.new(
        key,
        string_to_sign(
            request.request_time, request.credential_scope, request.canonical_request
        ).encode(),
        hashlib.sha256,
    ).hexdigest()
    if not hmac.compare_digest(expected, request.signature):
        raise Unauthenticated("the signature does not match", "SIGNATURE_MISMATCH")
