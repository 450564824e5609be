"""Bearer tokens: signed claims naming a user, a project and an expiry.

Tokens carry no roles: roles are read when a token is validated, so that a
removed role stops working at once. A token can be made void before its expiry
by revocation (its id is listed) or by the user's `tokens_valid_after`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from kumo.server.api.signing import Signer
from kumo.server.db.base import utcnow
from kumo.server.errors import Unauthenticated


@dataclass(frozen=True)
class TokenClaims:
    """What a token says about itself."""

    token_id: str
    user_id: str
    project_id: str
    issue_time: datetime
    expire_time: datetime


class TokenCodec:
    """Issues and decodes tokens with one signer."""

    def __init__(self, signer: Signer, ttl_seconds: int) -> None:
        self._signer = signer
        self._ttl = timedelta(seconds=ttl_seconds)

    def issue(
        self, user_id: str, project_id: str, not_after: datetime | None = None
    ) -> tuple[str, TokenClaims]:
        """A new token for the user in the project, expiring after the TTL or at
        `not_after`, whichever is first; and its claims."""
        now = utcnow()
        expire = now + self._ttl if not_after is None else min(now + self._ttl, not_after)
        claims = TokenClaims(secrets.token_hex(16), user_id, project_id, now, expire)
        text = self._signer.dumps(
            {
                "t": claims.token_id,
                "u": user_id,
                "p": project_id,
                "i": now.timestamp(),
                "e": claims.expire_time.timestamp(),
            }
        )
        return text, claims

    def decode(self, token: str) -> TokenClaims:
        """The claims of a genuine, unexpired token.

        Raises Unauthenticated if the token is malformed, forged or expired
        (revocation is checked by the authenticator).
        """
        try:
            raw = self._signer.loads(token)
            claims = TokenClaims(
                token_id=str(raw["t"]),
                user_id=str(raw["u"]),
                project_id=str(raw["p"]),
                issue_time=datetime.fromtimestamp(float(raw["i"]), UTC),
                expire_time=datetime.fromtimestamp(float(raw["e"]), UTC),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise Unauthenticated("invalid token") from exc
        if claims.expire_time <= utcnow():
            raise Unauthenticated("token expired")
        return claims
