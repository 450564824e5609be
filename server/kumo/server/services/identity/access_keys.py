"""CreateAccessKey, GetAccessKey, ListAccessKeys, DeleteAccessKey."""

from __future__ import annotations

import base64
import secrets

from google.protobuf import empty_pb2
from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.identity.v1 import identity_service_pb2 as api
from kumo.identity.v1 import resources_pb2 as pb
from kumo.server.api.fields import check_required
from kumo.server.api.idempotency import idempotent
from kumo.server.api.names import parse
from kumo.server.api.paging import Order
from kumo.server.auth.generated import typeable_secret
from kumo.server.auth.principal import Principal, current_principal
from kumo.server.db.models import AccessKeyRow
from kumo.server.errors import InvalidArgument, NotFound
from kumo.server.interceptors.base import Context
from kumo.server.quota import charge
from kumo.server.services.identity.common import (
    ACCESS_KEY_ID,
    PROJECTS,
    USERS,
    IdentityPart,
    access_key_to_proto,
    require_active,
    roles_on,
    self_or_admin,
)

TYPE_NAME = "identity.kumo.dev/AccessKey"
PATTERN = "users/{user}/accessKeys/{access_key}"
MAX_DESCRIPTION = 1024


def new_key_id() -> str:
    """`KUMO` and 16 random base32 characters (80 bits)."""
    return "KUMO" + base64.b32encode(secrets.token_bytes(10)).decode()


def _visible(session: Session, caller: Principal, name: str) -> AccessKeyRow:
    user_id, key_id = parse("name", name, PATTERN, access_key=ACCESS_KEY_ID)
    self_or_admin(caller, user_id, name)
    row = session.get(AccessKeyRow, key_id)
    if row is None or row.user_id != user_id:
        raise NotFound(TYPE_NAME, name)
    return row


class AccessKeyMethods(IdentityPart):
    """Access keys: long-lived credentials acting in one project."""

    async def CreateAccessKey(
        self, request: api.CreateAccessKeyRequest, context: Context
    ) -> pb.AccessKey:
        caller = current_principal()
        check_required(request.access_key, "access_key.")
        user_id = USERS.parse(request.parent, "parent")
        self_or_admin(caller, user_id, request.parent)
        project_id = PROJECTS.parse(request.access_key.project, "access_key.project")
        if not caller.cloud_admin and project_id != caller.project_id:
            raise InvalidArgument.field(
                "access_key.project", "must be the project your token is scoped to"
            )
        if len(request.access_key.description) > MAX_DESCRIPTION:
            raise InvalidArgument.field("access_key.description", "at most 1024 characters")
        secret = typeable_secret(40)

        def create(session: Session) -> pb.AccessKey:
            USERS.get(session, request.parent, "parent")
            project = PROJECTS.get(session, request.access_key.project, "access_key.project")
            require_active(project)
            if not roles_on(session, user_id, project_id):
                raise InvalidArgument.field(
                    "access_key.project", "the user holds no role on this project"
                )
            charge(session, project_id, {"access_keys": 1})
            row = AccessKeyRow(
                id=new_key_id(),
                user_id=user_id,
                project_id=project_id,
                secret_encrypted=self.runtime.keys.secrets.encrypt(secret.encode()),
                description=request.access_key.description,
            )
            session.add(row)
            session.flush()
            return access_key_to_proto(row, secret)

        return await idempotent(self.runtime.db, "CreateAccessKey", request, pb.AccessKey, create)

    async def GetAccessKey(
        self, request: api.GetAccessKeyRequest, context: Context
    ) -> pb.AccessKey:
        caller = current_principal()
        return await self.runtime.db.run(
            lambda s: access_key_to_proto(_visible(s, caller, request.name))
        )

    async def ListAccessKeys(
        self, request: api.ListAccessKeysRequest, context: Context
    ) -> api.ListAccessKeysResponse:
        caller = current_principal()
        user_id = USERS.parse(request.parent, "parent")
        self_or_admin(caller, user_id, request.parent)

        def page(session: Session) -> api.ListAccessKeysResponse:
            USERS.get(session, request.parent, "parent")
            result = self.runtime.pager.page(
                session,
                select(AccessKeyRow).where(AccessKeyRow.user_id == user_id),
                key=AccessKeyRow.create_time,
                id_column=AccessKeyRow.id,
                order=Order("create_time"),
                page_size=request.page_size,
                page_token=request.page_token,
                binding=f"{TYPE_NAME}|{request.parent}",
            )
            return api.ListAccessKeysResponse(
                access_keys=[access_key_to_proto(r) for r in result.rows],
                next_page_token=result.next_page_token,
            )

        return await self.runtime.db.run(page)

    async def DeleteAccessKey(
        self, request: api.DeleteAccessKeyRequest, context: Context
    ) -> empty_pb2.Empty:
        caller = current_principal()

        def delete(session: Session) -> empty_pb2.Empty:
            row = _visible(session, caller, request.name)
            charge(session, row.project_id, {"access_keys": -1})
            session.delete(row)
            return empty_pb2.Empty()

        deleted = await idempotent(
            self.runtime.db, "DeleteAccessKey", request, empty_pb2.Empty, delete
        )
        self.runtime.authenticator.invalidate()  # its signature grant goes
        return deleted
