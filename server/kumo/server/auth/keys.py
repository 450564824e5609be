"""The server's secret keys, derived from one master secret.

The master comes from configuration or, when none is configured, from the
`server_secrets` table, where the first server to start stores a random one,
so that every API replica signs and verifies with the same keys.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass

from cryptography.fernet import Fernet
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kumo.server.api.signing import Signer, derive_key
from kumo.server.db.engine import Database
from kumo.server.db.models import ServerSecretRow


@dataclass(frozen=True)
class ServerKeys:
    """Signers for tokens and page tokens, and the cipher for stored secrets."""

    tokens: Signer
    pages: Signer
    secrets: Fernet

    @classmethod
    def from_master(cls, master: bytes) -> ServerKeys:
        """Derives every key from `master`."""
        fernet_key = base64.urlsafe_b64encode(derive_key(master, "secrets"))
        return cls(
            tokens=Signer(derive_key(master, "tokens")),
            pages=Signer(derive_key(master, "pages")),
            secrets=Fernet(fernet_key),
        )


def _stored_master(session: Session) -> bytes:
    row = session.get(ServerSecretRow, "master")
    if row is None:
        row = ServerSecretRow(name="master", value=secrets.token_bytes(32))
        session.add(row)
    return row.value


def load_keys(db: Database, configured: str) -> ServerKeys:
    """Keys from `configured` if given, else from the database (created once). Idempotent."""
    if configured:
        return ServerKeys.from_master(configured.encode())
    try:
        master = db.transaction(_stored_master)
    except IntegrityError:  # another replica created it first
        master = db.transaction(_stored_master)
    return ServerKeys.from_master(master)
