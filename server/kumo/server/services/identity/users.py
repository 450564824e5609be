"""CreateUser, GetUser, ListUsers, UpdateUser, DeleteUser."""

from __future__ import annotations

import asyncio

from google.protobuf import empty_pb2
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kumo.identity.v1 import identity_service_pb2 as api
from kumo.identity.v1 import resources_pb2 as pb
from kumo.server.api.convert import check_etag
from kumo.server.api.fields import check_required, update_paths
from kumo.server.api.idempotency import idempotent
from kumo.server.api.resources import apply_common
from kumo.server.auth.passwords import hash_password
from kumo.server.auth.principal import current_principal
from kumo.server.db.base import utcnow
from kumo.server.db.models import AccessKeyRow, UserRow
from kumo.server.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from kumo.server.interceptors.base import Context
from kumo.server.quota import charge
from kumo.server.services.identity.common import (
    USERS,
    IdentityPart,
    self_or_admin,
    user_to_proto,
)

MIN_PASSWORD, MAX_PASSWORD = 8, 256
MAX_EMAIL = 254
_SELF_SERVICE = {"display_name", "email", "password"}


def _check_password(password: str, field: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidArgument.field(field, f"must be {MIN_PASSWORD} to {MAX_PASSWORD} characters")


def _apply(row: UserRow, user: pb.User, paths: set[str], password_hash: str | None) -> None:
    apply_common(row, user, paths & {"display_name", "labels"}, "user")
    if "email" in paths:
        if len(user.email) > MAX_EMAIL or (user.email and "@" not in user.email):
            raise InvalidArgument.field("user.email", "not an e-mail address")
        row.email = user.email
    if "disabled" in paths:
        row.disabled = user.disabled
    if password_hash is not None:
        row.password_hash = password_hash
    if password_hash is not None or ("disabled" in paths and user.disabled):
        row.tokens_valid_after = utcnow()


class UserMethods(IdentityPart):
    """Users."""

    async def _hash(self, password: str) -> str:
        cost = self.runtime.config.auth.scrypt_log2_n
        return await asyncio.to_thread(hash_password, password, cost)

    async def CreateUser(self, request: api.CreateUserRequest, context: Context) -> pb.User:
        check_required(request.user, "user.")
        _check_password(request.user.password, "user.password")
        password_hash = await self._hash(request.user.password)
        fields = {f.name for f, _ in request.user.ListFields()} - {"password"}

        def create(session: Session) -> pb.User:
            row = UserRow(password_hash=password_hash, disabled=False, email="")
            _apply(row, request.user, fields, None)
            row.tokens_valid_after = utcnow()
            USERS.insert(session, request.user_id, "user_id", row)
            session.flush()
            return user_to_proto(row)

        return await idempotent(self.runtime.db, "CreateUser", request, pb.User, create)

    async def GetUser(self, request: api.GetUserRequest, context: Context) -> pb.User:
        caller = current_principal()
        self_or_admin(caller, USERS.parse(request.name), request.name)
        return await self.runtime.db.read(
            lambda c: user_to_proto(USERS.fetch(c, request.name))  # type: ignore[arg-type]
        )

    async def ListUsers(
        self, request: api.ListUsersRequest, context: Context
    ) -> api.ListUsersResponse:
        def page(session: Session) -> api.ListUsersResponse:
            result = USERS.list(session, self.runtime.pager, request)
            return api.ListUsersResponse(
                users=[user_to_proto(r) for r in result.rows],
                next_page_token=result.next_page_token,
            )

        return await self.runtime.db.run(page)

    async def UpdateUser(self, request: api.UpdateUserRequest, context: Context) -> pb.User:
        caller = current_principal()
        user_id = USERS.parse(request.user.name, "user.name")
        self_or_admin(caller, user_id, request.user.name)
        paths = update_paths(request.user, request.update_mask, "user")
        if not caller.cloud_admin and paths - _SELF_SERVICE:
            raise PermissionDenied(
                f"only cloud administrators may change {', '.join(sorted(paths - _SELF_SERVICE))}"
            )
        if "disabled" in paths and request.user.disabled and user_id == caller.user_id:
            raise FailedPrecondition(
                "you cannot disable yourself", type="SELF_LOCKOUT", subject=request.user.name
            )
        password_hash = None
        if "password" in paths:
            _check_password(request.user.password, "user.password")
            password_hash = await self._hash(request.user.password)

        def update(session: Session) -> pb.User:
            row = USERS.get(session, request.user.name, "user.name")
            check_etag(request.user.etag, row.version, request.user.name)
            _apply(row, request.user, paths, password_hash)
            row.version += 1
            session.flush()
            return user_to_proto(row)

        user = await idempotent(self.runtime.db, "UpdateUser", request, pb.User, update)
        self.runtime.authenticator.invalidate()
        return user

    async def DeleteUser(self, request: api.DeleteUserRequest, context: Context) -> empty_pb2.Empty:
        caller = current_principal()
        if USERS.parse(request.name) == caller.user_id:
            raise FailedPrecondition(
                "you cannot delete yourself", type="SELF_LOCKOUT", subject=request.name
            )

        def delete(session: Session) -> empty_pb2.Empty:
            row = USERS.get(session, request.name)
            check_etag(request.etag, row.version, request.name)
            # The database cascades the user's access keys away; release their quota first.
            keys = session.execute(
                select(AccessKeyRow.project_id, func.count())
                .where(AccessKeyRow.user_id == row.id)
                .group_by(AccessKeyRow.project_id)
            )
            for project_id, count in keys.all():
                charge(session, project_id, {"access_keys": -count})
            session.delete(row)
            return empty_pb2.Empty()

        result = await idempotent(self.runtime.db, "DeleteUser", request, empty_pb2.Empty, delete)
        self.runtime.authenticator.invalidate()
        return result
