"""HMAC signing of small JSON payloads (tokens, page tokens).

A signed value is `base64url(json).base64url(hmac_sha256)`. `loads` raises
ValueError for anything that was not produced by `dumps` with the same key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Signs and verifies JSON payloads with one key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def dumps(self, payload: Any) -> str:
        """Returns the signed, URL-safe text of `payload`."""
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        mac = hmac.new(self._key, body, hashlib.sha256).digest()
        return f"{_b64(body)}.{_b64(mac)}"

    def loads(self, text: str) -> Any:
        """Returns the payload of `text`; raises ValueError if it is malformed or forged."""
        try:
            body_text, mac_text = text.split(".")
            body, mac = _unb64(body_text), _unb64(mac_text)
        except (ValueError, UnicodeEncodeError) as exc:
            raise ValueError("malformed signed value") from exc
        expected = hmac.new(self._key, body, hashlib.sha256).digest()
        if not hmac.compare_digest(mac, expected):
            raise ValueError("bad signature")
        return json.loads(body)


def derive_key(master: bytes, purpose: str) -> bytes:
    """A key for one purpose, derived from the master secret."""
    return hmac.new(master, purpose.encode(), hashlib.sha256).digest()
