"""Turns a bearer token into a Principal, with a short in-process cache.

Validation reads the user, the revocation list and the user's roles on the
token's project. Results are cached for `cache_seconds`; any change this
process makes to users, roles, projects, access keys or revocations clears the
cache, so a single process sees such changes at once and other replicas within
the TTL. The same cache keeps, per access key, what a verified SigV4 signature
granted (`SignatureGrant`), for AuthenticateSignature.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kumo.server.auth.principal import ADMIN, Principal
from kumo.server.auth.tokens import TokenClaims, TokenCodec
from kumo.server.db.engine import Database
from kumo.server.db.models import ProjectRow, RevokedTokenRow, RoleAssignmentRow, UserRow
from kumo.server.errors import Unauthenticated

_ACTIVE = 1


def resolve_principal(session: Session, claims: TokenClaims, admin_project: str) -> Principal:
    """Checks the claims against the database and returns what they grant now.

    Raises Unauthenticated if the token was revoked, the user is gone or
    disabled, or the user no longer holds any role on the project.
    """
    user = session.get(UserRow, claims.user_id)
    if user is None or user.disabled or claims.issue_time < user.tokens_valid_after:
        raise Unauthenticated("token is no longer valid")
    if session.get(RevokedTokenRow, claims.token_id) is not None:
        raise Unauthenticated("token has been revoked")
    project = session.get(ProjectRow, claims.project_id)
    role = session.scalar(
        select(func.max(RoleAssignmentRow.role)).where(
            RoleAssignmentRow.project_id == claims.project_id,
            RoleAssignmentRow.user_id == claims.user_id,
        )
    )
    if project is None or (project.state != _ACTIVE and claims.project_id != admin_project):
        raise Unauthenticated("token's project is gone")
    if role is None:
        raise Unauthenticated("token no longer grants any role on its project")
    return Principal(
        user_id=claims.user_id,
        project_id=claims.project_id,
        role=role,
        cloud_admin=claims.project_id == admin_project and role == ADMIN,
        token_id=claims.token_id,
        issue_time=claims.issue_time,
        expire_time=claims.expire_time,
    )


@dataclass(frozen=True)
class SignatureGrant:
    """What an access key's last verified signature granted: the SigV4 signing key of
    its credential scope (derived from the secret, which is not kept) and the token
    issued then (a `kumo.identity.v1.Token`), reused while it has time left."""

    scope: str
    signing_key: bytes
    token: Any
    expire_time: float  # the token's, as a POSIX timestamp


class Authenticator:
    """Validates tokens for the auth interceptor and the identity service."""

    def __init__(
        self, db: Database, codec: TokenCodec, admin_project: str, cache_seconds: float
    ) -> None:
        self._db = db
        self.codec = codec
        self._admin_project = admin_project
        self._ttl = cache_seconds
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._grants: dict[str, tuple[float, SignatureGrant]] = {}

    async def authenticate(self, token: str) -> Principal:
        """The principal for `token`; raises Unauthenticated for any invalid token."""
        now = time.monotonic()
        hit = self._cache.get(token)
        if hit is not None and hit[0] > now and hit[1].expire_time.timestamp() > time.time():
            return hit[1]
        claims = self.codec.decode(token)
        principal = await self._db.run(lambda s: resolve_principal(s, claims, self._admin_project))
        if self._ttl > 0:
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[token] = (now + self._ttl, principal)
        return principal

    def grant(self, access_key_id: str) -> SignatureGrant | None:
        """The access key's cached grant, if younger than the cache TTL."""
        hit = self._grants.get(access_key_id)
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def remember_grant(self, access_key_id: str, grant: SignatureGrant) -> None:
        """Caches a grant for the TTL (nothing when the TTL is 0)."""
        if self._ttl > 0:
            if len(self._grants) > 10_000:
                self._grants.clear()
            self._grants[access_key_id] = (time.monotonic() + self._ttl, grant)

    def invalidate(self) -> None:
        """Forgets every cached principal and grant (after a change to users, roles,
        projects, access keys or tokens)."""
        self._cache.clear()
        self._grants.clear()
