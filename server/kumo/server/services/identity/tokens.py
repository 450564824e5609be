"""IssueToken, ValidateToken and RevokeToken."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from datetime import datetime
from typing import cast

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kumo.identity.v1 import identity_service_pb2 as api
from kumo.identity.v1 import resources_pb2 as pb
from kumo.server.api.convert import timestamp
from kumo.server.auth.authenticator import resolve_principal
from kumo.server.auth.passwords import DUMMY_HASH, verify_password
from kumo.server.auth.principal import Principal, current_principal
from kumo.server.auth.tokens import TokenClaims
from kumo.server.db.models import AccessKeyRow, RevokedTokenRow, UserRow
from kumo.server.errors import InvalidArgument, PermissionDenied, Unauthenticated
from kumo.server.interceptors.base import Context
from kumo.server.services.identity.common import (
    PROJECTS,
    USERS,
    IdentityPart,
    roles_on,
)

_BAD_CREDENTIALS = "invalid credentials or no role on the requested project"


class TokenMethods(IdentityPart):
    """Sign-in and token checks."""

    def _token(self, session: Session, text: str, claims: TokenClaims) -> pb.Token:
        principal = self._resolve(session, claims)
        return pb.Token(
            token=text,
            user=USERS.name_of(claims.user_id),
            project=PROJECTS.name_of(claims.project_id),
            roles=cast(list[pb.Role], roles_on(session, claims.user_id, claims.project_id)),
            cloud_admin=principal.cloud_admin,
            issue_time=timestamp(claims.issue_time),
            expire_time=timestamp(claims.expire_time),
        )

    def _resolve(self, session: Session, claims: TokenClaims) -> Principal:
        try:
            return resolve_principal(session, claims, self.runtime.config.bootstrap.project)
        except Unauthenticated as exc:
            raise Unauthenticated(_BAD_CREDENTIALS) from exc

    async def _issue(
        self, user_id: str, project_id: str, not_after: datetime | None = None
    ) -> pb.Token:
        text, claims = self.runtime.authenticator.codec.issue(user_id, project_id, not_after)
        return await self.runtime.db.run(lambda s: self._token(s, text, claims))

    async def IssueToken(
        self, request: api.IssueTokenRequest, context: Context
    ) -> api.IssueTokenResponse:
        which = request.WhichOneof("credentials")
        if which is None:
            raise InvalidArgument.field("credentials", "give password, access_key or token")
        not_after = None
        if which == "access_key":
            user_id, project_id = await self._check_access_key(request)
        else:
            if not request.project:
                raise InvalidArgument.field("project", "is required with this kind of credentials")
            project_id = PROJECTS.parse(request.project, "project")
            if which == "password":
                user_id = await self._check_password(request.password)
            else:  # a re-scoped token never outlives the one it came from
                principal = await self.runtime.authenticator.authenticate(request.token.token)
                user_id, not_after = principal.user_id, principal.expire_time
        return api.IssueTokenResponse(token=await self._issue(user_id, project_id, not_after))

    async def _check_password(self, credentials: api.PasswordCredentials) -> str:
        user_id = USERS.parse(credentials.user, "password.user")
        row = await self.runtime.db.run(lambda s: s.get(UserRow, user_id))
        stored = row.password_hash if row is not None else DUMMY_HASH
        matches = await asyncio.to_thread(verify_password, credentials.password, stored)
        if row is None or not matches or row.disabled:
            raise Unauthenticated(_BAD_CREDENTIALS)
        return user_id

    async def _check_access_key(self, request: api.IssueTokenRequest) -> tuple[str, str]:
        credentials = request.access_key

        def lookup(session: Session) -> AccessKeyRow | None:
            return session.get(AccessKeyRow, credentials.access_key_id)

        row = await self.runtime.db.run(lookup)
        if row is None:
            raise Unauthenticated(_BAD_CREDENTIALS)
        secret = self.runtime.keys.secrets.decrypt(row.secret_encrypted).decode()
        if not hmac.compare_digest(secret, credentials.secret_access_key):
            raise Unauthenticated(_BAD_CREDENTIALS)
        if request.project and PROJECTS.parse(request.project, "project") != row.project_id:
            raise InvalidArgument.field("project", "an access key acts only in its own project")
        return row.user_id, row.project_id

    def _claims_of(self, token: str) -> TokenClaims:
        try:
            return self.runtime.authenticator.codec.decode(token)
        except Unauthenticated as exc:
            raise InvalidArgument.field("token", exc.message) from exc

    async def ValidateToken(
        self, request: api.ValidateTokenRequest, context: Context
    ) -> api.ValidateTokenResponse:
        caller = current_principal()
        claims = self._claims_of(request.token)
        if not caller.cloud_admin and claims.user_id != caller.user_id:
            raise PermissionDenied("only cloud administrators may check other users' tokens")
        token = await self.runtime.db.run(lambda s: self._token(s, "", claims))
        return api.ValidateTokenResponse(token=token)

    async def RevokeToken(
        self, request: api.RevokeTokenRequest, context: Context
    ) -> api.RevokeTokenResponse:
        caller = current_principal()
        try:
            claims = self.runtime.authenticator.codec.decode(request.token)
        except Unauthenticated:
            return api.RevokeTokenResponse()  # expired or not ours: nothing left to revoke
        if not caller.cloud_admin and claims.user_id != caller.user_id:
            raise PermissionDenied("only cloud administrators may revoke other users' tokens")

        def revoke(session: Session) -> None:
            known = session.scalar(
                select(RevokedTokenRow.token_id).where(RevokedTokenRow.token_id == claims.token_id)
            )
            if known is None:
                session.add(
                    RevokedTokenRow(token_id=claims.token_id, expire_time=claims.expire_time)
                )

        with contextlib.suppress(IntegrityError):  # revoked concurrently
            await self.runtime.db.run(revoke)
        self.runtime.authenticator.invalidate()
        return api.RevokeTokenResponse()
