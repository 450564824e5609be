"""CreateKeyPair, GetKeyPair, ListKeyPairs, UpdateKeyPair (labels only), DeleteKeyPair."""

from __future__ import annotations

import base64
import hashlib
from typing import TypeVar

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from google.protobuf import empty_pb2
from sqlalchemy.orm import Session

from kumo.compute.v1 import compute_service_pb2 as api
from kumo.compute.v1 import resources_pb2 as pb
from kumo.server.api.convert import check_etag
from kumo.server.api.fields import update_paths
from kumo.server.api.idempotency import idempotent
from kumo.server.api.resources import Collection, apply_common
from kumo.server.auth.principal import Principal, current_principal
from kumo.server.db.models import KeyPairRow
from kumo.server.errors import InvalidArgument
from kumo.server.interceptors.base import Context
from kumo.server.services.compute.common import (
    KEY_PAIRS,
    ComputePart,
    key_pair_to_proto,
)
from kumo.server.services.identity.common import PROJECTS

MAX_PUBLIC_KEY = 16384
MAX_NAME = 255  # (a display name: Nova's and EC2's longest key pair names)
R = TypeVar("R")


def fingerprint(public_key: str) -> str:
    """`SHA256:<base64>` of the key blob, as `ssh-keygen -l` prints it."""
    blob = base64.b64decode(public_key.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def parse_public_key(text: str) -> str:
    """The normalised `type base64 [comment]` of an OpenSSH public key; InvalidArgument if bad."""
    text = text.strip()
    if len(text) > MAX_PUBLIC_KEY or "\n" in text:
        raise InvalidArgument.field("key_pair.public_key", "one OpenSSH public key line")
    try:
        serialization.load_ssh_public_key(text.encode())
    except (ValueError, TypeError, IndexError, UnsupportedAlgorithm) as exc:
        raise InvalidArgument.field("key_pair.public_key", "not an OpenSSH public key") from exc
    return text


def generate() -> tuple[str, str]:
    """A new Ed25519 pair: (public key line, OpenSSH private key)."""
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return public, private


def own_project(caller: Principal, parent: str) -> str:
    """The project id of `parent` if the caller works there; NotFound otherwise."""
    project_id = PROJECTS.parse(parent, "parent")
    caller.require_project(project_id, PROJECTS.type_name, parent)
    return project_id


def visible(session: Session, caller: Principal, collection: Collection[R], name: str) -> R:
    """A project-scoped row the caller may see; NotFound otherwise."""
    project_id = collection.key(name)[0]
    caller.require_project(project_id, collection.type_name, name)
    return collection.get(session, name)


class KeyPairMethods(ComputePart):
    """Key pairs: SSH public keys of a project."""

    async def CreateKeyPair(
        self, request: api.CreateKeyPairRequest, context: Context
    ) -> pb.KeyPair:
        project_id = own_project(current_principal(), request.parent)
        private = ""
        if request.key_pair.public_key:
            public = parse_public_key(request.key_pair.public_key)
        else:
            public, private = generate()

        display_name = request.key_pair.display_name
        if len(display_name) > MAX_NAME or not display_name.isprintable():
            raise InvalidArgument.field(
                "key_pair.display_name", f"at most {MAX_NAME} printable characters"
            )

        def create(session: Session) -> pb.KeyPair:
            PROJECTS.get(session, request.parent, "parent")
            row = KeyPairRow(
                project_id=project_id,
                public_key=public,
                fingerprint=fingerprint(public),
                display_name=display_name,
            )
            if request.key_pair.labels:
                apply_common(row, request.key_pair, {"labels"}, "key_pair")
            KEY_PAIRS.insert(session, request.key_pair_id, "key_pair_id", row)
            session.flush()
            return key_pair_to_proto(row, private)

        return await idempotent(self.runtime.db, "CreateKeyPair", request, pb.KeyPair, create)

    async def GetKeyPair(self, request: api.GetKeyPairRequest, context: Context) -> pb.KeyPair:
        caller = current_principal()
        return await self.runtime.db.run(
            lambda s: key_pair_to_proto(visible(s, caller, KEY_PAIRS, request.name))
        )

    async def ListKeyPairs(
        self, request: api.ListKeyPairsRequest, context: Context
    ) -> api.ListKeyPairsResponse:
        project_id = own_project(current_principal(), request.parent)

        def page(session: Session) -> api.ListKeyPairsResponse:
            result = KEY_PAIRS.list(
                session,
                self.runtime.pager,
                request,
                [KeyPairRow.project_id == project_id],
                binding=request.parent,
            )
            return api.ListKeyPairsResponse(
                key_pairs=[key_pair_to_proto(r) for r in result.rows],
                next_page_token=result.next_page_token,
            )

        return await self.runtime.db.run(page)

    async def UpdateKeyPair(
        self, request: api.UpdateKeyPairRequest, context: Context
    ) -> pb.KeyPair:
        """Changes the labels (other fields are immutable or output only: ignored).
        ABORTED on a stale etag; idempotent by request_id."""
        caller = current_principal()
        paths = update_paths(request.key_pair, request.update_mask, "key_pair") & {"labels"}

        def update(session: Session) -> pb.KeyPair:
            row = visible(session, caller, KEY_PAIRS, request.key_pair.name)
            check_etag(request.key_pair.etag, row.version, request.key_pair.name)
            apply_common(row, request.key_pair, paths, "key_pair")
            row.version += 1
            session.flush()
            return key_pair_to_proto(row)

        return await idempotent(self.runtime.db, "UpdateKeyPair", request, pb.KeyPair, update)

    async def DeleteKeyPair(
        self, request: api.DeleteKeyPairRequest, context: Context
    ) -> empty_pb2.Empty:
        caller = current_principal()

        def delete(session: Session) -> empty_pb2.Empty:
            session.delete(visible(session, caller, KEY_PAIRS, request.name))
            return empty_pb2.Empty()

        return await idempotent(self.runtime.db, "DeleteKeyPair", request, empty_pb2.Empty, delete)
