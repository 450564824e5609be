"""Keystone role assignments (grants) and application credentials (Kumo access keys)."""

from __future__ import annotations

from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from kumo.gateway.dialect import invalid, json_member
from kumo.gateway.errors import RpcFailure
from kumo.gateway.openstack.common import (
    ROLE_NAMES,
    ROLES_BY_NAME,
    Scope,
    last_segment,
    quoted,
)
from kumo.gateway.openstack.keystone.base import KeystoneBase
from kumo.gateway.openstack.keystone.views import (
    credential_json,
    listed,
    role_json,
)
from kumo.identity.v1 import identity_service_pb2 as iapi
from kumo.identity.v1 import resources_pb2 as ipb


class Grants(KeystoneBase):
    """Role assignments and application credentials."""

    # --- role assignments ---------------------------------------------------------------

    async def _assignments(
        self, token: str, project: str, user: str | None = None
    ) -> list[ipb.RoleAssignment]:
        query = f"user = {quoted('users/' + user)}" if user else ""
        return [
            a
            async for a in self.pages(
                self.identity.ListRoleAssignments,
                lambda t: iapi.ListRoleAssignmentsRequest(
                    parent=f"projects/{project}", page_size=1000, page_token=t, filter=query
                ),
                "role_assignments",
                token,
            )
        ]

    @staticmethod
    def _role(request: Request) -> Any:
        name = request.path_params["role_id"]
        if name not in ROLES_BY_NAME:
            raise RpcFailure.of(grpc.StatusCode.NOT_FOUND, f"Could not find role: {name}.")
        return ROLES_BY_NAME[name]

    async def grant(self, request: Request) -> Response:
        """PUT /v3/projects/{p}/users/{u}/roles/{r}: 204 (a repeat is accepted)."""
        scope = await self.scopes.of(request)
        params = request.path_params
        try:
            await self.call(
                self.identity.CreateRoleAssignment,
                iapi.CreateRoleAssignmentRequest(
                    parent=f"projects/{params['project_id']}",
                    role_assignment=ipb.RoleAssignment(
                        user=f"users/{params['user_id']}", role=self._role(request)
                    ),
                ),
                scope.token,
            )
        except RpcFailure as failure:
            if failure.code != grpc.StatusCode.ALREADY_EXISTS.value[0]:
                raise
        return Response(status_code=204)

    async def _find_grant(self, request: Request) -> tuple[Scope, ipb.RoleAssignment]:
        scope = await self.scopes.of(request)
        params = request.path_params
        role = self._role(request)
        for item in await self._assignments(scope.token, params["project_id"], params["user_id"]):
            if item.role == role:
                return scope, item
        raise RpcFailure.of(grpc.StatusCode.NOT_FOUND, "Could not find role assignment.")

    async def check_grant(self, request: Request) -> Response:
        """HEAD or GET /v3/projects/{p}/users/{u}/roles/{r}: 204 or 404."""
        await self._find_grant(request)
        return Response(status_code=204)

    async def revoke_grant(self, request: Request) -> Response:
        """DELETE /v3/projects/{p}/users/{u}/roles/{r}: 204."""
        scope, item = await self._find_grant(request)
        await self.call(
            self.identity.DeleteRoleAssignment,
            iapi.DeleteRoleAssignmentRequest(name=item.name),
            scope.token,
        )
        return Response(status_code=204)

    async def list_user_roles(self, request: Request) -> Response:
        """GET /v3/projects/{p}/users/{u}/roles."""
        scope = await self.scopes.of(request)
        params = request.path_params
        found = await self._assignments(scope.token, params["project_id"], params["user_id"])
        base = self.base(request)
        return listed("roles", [role_json(ROLE_NAMES[a.role], base) for a in found], request)

    async def list_assignments(self, request: Request) -> Response:
        """GET /v3/role_assignments?scope.project.id=&user.id=&role.id= (one project: the
        given one, else the token's)."""
        scope = await self.scopes.of(request)
        query = request.query_params
        project = query.get("scope.project.id") or scope.project
        role = query.get("role.id")
        found = await self._assignments(scope.token, project, query.get("user.id"))
        items = [
            {
                "role": {"id": ROLE_NAMES[a.role], "name": ROLE_NAMES[a.role]},
                "user": {"id": last_segment(a.user), "name": last_segment(a.user)},
                "scope": {"project": {"id": project, "name": project}},
                "links": {
                    "assignment": f"{self.base(request)}/v3/projects/{project}/users/"
                    f"{last_segment(a.user)}/roles/{ROLE_NAMES[a.role]}"
                },
            }
            for a in found
            if role in (None, ROLE_NAMES[a.role])
        ]
        return listed("role_assignments", items, request)

    # --- application credentials (access keys) ------------------------------------------

    async def create_credential(self, request: Request) -> Response:
        """POST /v3/users/{u}/application_credentials: 201 with the secret (once)."""
        scope = await self.scopes.of(request)
        body = await json_member(request, "application_credential")
        if body.get("secret"):
            raise invalid("Kumo generates application credential secrets")
        user = request.path_params["user_id"]
        key = await self.call(
            self.identity.CreateAccessKey,
            iapi.CreateAccessKeyRequest(
                parent=f"users/{user}",
                access_key=ipb.AccessKey(
                    project=scope.parent, description=str(body.get("name") or "")
                ),
            ),
            scope.token,
        )
        return JSONResponse({"application_credential": credential_json(key, scope, user)}, 201)

    async def list_credentials(self, request: Request) -> Response:
        """GET /v3/users/{u}/application_credentials[?name=]."""
        scope = await self.scopes.of(request)
        user = request.path_params["user_id"]
        name = request.query_params.get("name")
        items = [
            credential_json(k, scope, user)
            async for k in self.pages(
                self.identity.ListAccessKeys,
                lambda t: iapi.ListAccessKeysRequest(
                    parent=f"users/{user}", page_size=1000, page_token=t
                ),
                "access_keys",
                scope.token,
            )
            if name in (None, k.description, k.access_key_id)
        ]
        return listed("application_credentials", items, request)

    def _key_name(self, request: Request) -> str:
        params = request.path_params
        return f"users/{params['user_id']}/accessKeys/{params['credential_id']}"

    async def get_credential(self, request: Request) -> Response:
        """GET /v3/users/{u}/application_credentials/{id}."""
        scope = await self.scopes.of(request)
        key = await self.call(
            self.identity.GetAccessKey,
            iapi.GetAccessKeyRequest(name=self._key_name(request)),
            scope.token,
        )
        body = credential_json(key, scope, request.path_params["user_id"])
        return JSONResponse({"application_credential": body})

    async def delete_credential(self, request: Request) -> Response:
        """DELETE /v3/users/{u}/application_credentials/{id}: 204."""
        scope = await self.scopes.of(request)
        await self.call(
            self.identity.DeleteAccessKey,
            iapi.DeleteAccessKeyRequest(name=self._key_name(request)),
            scope.token,
        )
        return Response(status_code=204)
