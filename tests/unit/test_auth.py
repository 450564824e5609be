"""Unit tests of password hashing, tokens and the policy table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kumo.server.api.signing import Signer
from kumo.server.app import method_names
from kumo.server.auth.generated import typeable_secret
from kumo.server.auth.passwords import hash_password, verify_password
from kumo.server.auth.policy import POLICY, Rule, authorize, missing_rules
from kumo.server.auth.principal import ADMIN, MEMBER, READER, Principal
from kumo.server.auth.tokens import TokenCodec
from kumo.server.errors import PermissionDenied, Unauthenticated


def test_password_hashes_are_salted_and_verify() -> None:
    """Same password, different hashes; only the right password verifies."""
    first, second = hash_password("correct horse", 10), hash_password("correct horse", 10)
    assert first != second and first.startswith("scrypt$10$")
    assert verify_password("correct horse", first)
    assert not verify_password("wrong horse", first)
    assert not verify_password("correct horse", "md5$whatever")


def test_tokens_round_trip_and_expire() -> None:
    """A token decodes to its claims; an expired or foreign one is UNAUTHENTICATED."""
    codec = TokenCodec(Signer(b"s" * 32), 3600)
    text, claims = codec.issue("alice", "demo")
    assert codec.decode(text) == claims
    _, capped_claims = codec.issue(
        "alice", "demo", not_after=claims.issue_time + timedelta(seconds=5)
    )
    assert capped_claims.expire_time < claims.expire_time
    expired = Signer(b"s" * 32).dumps({"t": "x", "u": "a", "p": "d", "i": 0, "e": 1})
    for bad in (expired, TokenCodec(Signer(b"o" * 32), 3600).issue("a", "d")[0], "junk"):
        with pytest.raises(Unauthenticated):
            codec.decode(bad)


def test_every_method_has_a_rule() -> None:
    """The policy table covers every RPC of every Kumo service (fail closed)."""
    assert missing_rules(method_names()) == []
    assert POLICY["/kumo.identity.v1.IdentityService/IssueToken"] is Rule.PUBLIC


def _principal(role: int, cloud_admin: bool = False) -> Principal:
    now = datetime.now(UTC)
    return Principal("u", "p", role, cloud_admin, "t", now, now + timedelta(hours=1))


def test_rules_against_roles() -> None:
    """Each rule admits exactly the roles at or above it."""
    authorize(Rule.PUBLIC, None)
    with pytest.raises(Unauthenticated):
        authorize(Rule.AUTHENTICATED, None)
    authorize(Rule.READER, _principal(READER))
    with pytest.raises(PermissionDenied):
        authorize(Rule.MEMBER, _principal(READER))
    authorize(Rule.MEMBER, _principal(MEMBER))
    with pytest.raises(PermissionDenied):
        authorize(Rule.ADMIN, _principal(MEMBER))
    with pytest.raises(PermissionDenied):
        authorize(Rule.CLOUD_ADMIN, _principal(ADMIN))
    authorize(Rule.CLOUD_ADMIN, _principal(ADMIN, cloud_admin=True))


def test_generated_secrets_are_letters_and_digits() -> None:
    """Generated passwords, access key secrets and transfer keys go on command lines: never
    a leading `-` (URL-safe base64 had one in 32, and `--auth-key -abc` failed in the CLI)."""
    made = [typeable_secret(32) for _ in range(2000)]
    assert all(len(s) == 32 and s.isascii() and s.isalnum() for s in made)
    assert len(set(made)) == len(made)
