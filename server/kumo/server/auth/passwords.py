"""Salted, slow password hashes (scrypt from the standard library).

A hash is `scrypt$<log2 n>$<r>$<p>$<salt b64>$<digest b64>`, so the cost can be
raised later without invalidating stored hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_R, _P, _LEN = 8, 1, 32


def _scrypt(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    n = 1 << log2_n
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, dklen=_LEN, maxmem=256 * n * r + 2**20
    )


def hash_password(password: str, log2_n: int = 14) -> str:
    """Returns a new salted hash of `password`."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, log2_n, _R, _P)
    b64 = base64.b64encode
    return f"scrypt${log2_n}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches `stored`; False for a malformed hash. Constant-time compare."""
    try:
        scheme, log2_n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        actual = _scrypt(password, base64.b64decode(salt), int(log2_n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(actual, base64.b64decode(digest))


# Verified against when a user does not exist, so that unknown users cost the same time.
DUMMY_HASH = hash_password(secrets.token_urlsafe(16), 14)
