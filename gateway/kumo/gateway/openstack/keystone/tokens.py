"""Keystone version discovery and tokens: issue (password, token or application
credential), validate, revoke."""

from __future__ import annotations

from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from kumo.gateway.dialect import invalid, json_body, object_at
from kumo.gateway.errors import RpcFailure
from kumo.gateway.grpc_backend import Backend
from kumo.gateway.openstack.catalog import Regions, catalog
from kumo.gateway.openstack.common import (
    DOMAIN,
    Scope,
    Scopes,
    auth_token,
    iso,
)
from kumo.gateway.openstack.keystone.base import KeystoneBase
from kumo.gateway.openstack.keystone.views import (
    audit_id,
    domain_check,
    version_document,
)
from kumo.identity.v1 import identity_service_pb2 as iapi


class Tokens(KeystoneBase):
    """Version documents and `/v3/auth/tokens`."""

    def __init__(self, backend: Backend, scopes: Scopes, public_url: str) -> None:
        super().__init__(backend, scopes, public_url)
        self.regions = Regions(backend)

    # --- version discovery -------------------------------------------------------------

    async def versions(self, request: Request) -> Response:
        """GET /: the identity versions (300 Multiple Choices, as Keystone answers)."""
        body = {"versions": {"values": [version_document(self.base(request))]}}
        return JSONResponse(body, status_code=300)

    async def v3(self, request: Request) -> Response:
        """GET /v3: the v3 version document."""
        return JSONResponse({"version": version_document(self.base(request))})

    # --- tokens -------------------------------------------------------------------------

    @staticmethod
    def _issue_request(body: dict[str, Any]) -> tuple[iapi.IssueTokenRequest, list[str]]:
        auth = body.get("auth")
        if not isinstance(auth, dict) or not isinstance(auth.get("identity"), dict):
            raise invalid("auth.identity is required")
        identity = auth["identity"]
        methods = identity.get("methods") or []
        if not isinstance(methods, list):
            raise invalid("auth.identity.methods must be a list")
        request = iapi.IssueTokenRequest()
        if "password" in methods:
            user = object_at(object_at(identity, "password"), "user")
            domain = object_at(user, "domain")
            domain_check(domain.get("id"), domain.get("name"))
            user_id = user.get("id") or user.get("name")
            if not user_id:
                raise invalid("auth.identity.password.user needs an id or a name")
            request.password.user = f"users/{user_id}"
            request.password.password = str(user.get("password", ""))
        elif "token" in methods:
            request.token.token = str(object_at(identity, "token").get("id", ""))
        elif "application_credential" in methods:
            credential = object_at(identity, "application_credential")
            request.access_key.access_key_id = str(credential.get("id", ""))
            request.access_key.secret_access_key = str(credential.get("secret", ""))
        else:
            raise invalid("supported methods: password, token, application_credential")
        project = object_at(object_at(auth, "scope"), "project")
        project_id = project.get("id") or project.get("name")
        if project_id:
            request.project = f"projects/{project_id}"
        elif not request.HasField("access_key"):
            raise invalid("Kumo tokens are scoped to a project: give auth.scope.project")
        return request, [m for m in methods if isinstance(m, str)]

    async def token_body(
        self, request: Request, scope: Scope, methods: list[str]
    ) -> dict[str, Any]:
        """The `token` object of Keystone's answer, with its catalog."""
        base = self.base(request)
        regions = await self.regions.ids(scope.token)
        return {
            "token": {
                "methods": methods,
                "user": {
                    "id": scope.user,
                    "name": scope.user,
                    "domain": DOMAIN,
                    "password_expires_at": None,
                },
                "project": {"id": scope.project, "name": scope.project, "domain": DOMAIN},
                "roles": [{"id": r, "name": r} for r in scope.roles],
                "is_domain": False,
                "audit_ids": [audit_id(scope.token)],
                "issued_at": iso(scope.issued, micro=True),
                "expires_at": iso(scope.expires, micro=True),
                "catalog": catalog(base, regions),
            }
        }

    async def issue(self, request: Request) -> Response:
        """POST /v3/auth/tokens: 201 with X-Subject-Token."""
        message, methods = self._issue_request(await json_body(request))
        answer = await self.backend.call(self.identity.IssueToken, message, None)
        scope = Scope.of(answer.token.token, answer.token)
        body = await self.token_body(request, scope, methods)
        return JSONResponse(body, status_code=201, headers={"X-Subject-Token": scope.token})

    def _subject(self, request: Request) -> str:
        subject = request.headers.get("x-subject-token", "").strip()
        if not subject:
            raise RpcFailure.of(grpc.StatusCode.NOT_FOUND, "X-Subject-Token is required")
        return subject

    async def validate(self, request: Request) -> Response:
        """GET and HEAD /v3/auth/tokens: describes X-Subject-Token."""
        caller, subject = auth_token(request), self._subject(request)
        answer = await self.call(
            self.identity.ValidateToken, iapi.ValidateTokenRequest(token=subject), caller
        )
        headers = {"X-Subject-Token": subject}
        if request.method == "HEAD":
            return Response(status_code=200, headers=headers)
        body = await self.token_body(request, Scope.of(subject, answer.token), ["token"])
        return JSONResponse(body, headers=headers)

    async def revoke(self, request: Request) -> Response:
        """DELETE /v3/auth/tokens: revokes X-Subject-Token (204)."""
        caller, subject = auth_token(request), self._subject(request)
        await self.call(self.identity.RevokeToken, iapi.RevokeTokenRequest(token=subject), caller)
        self.scopes.forget(subject)
        return Response(status_code=204)
