"""Keystone's directory: the one domain, the three roles, projects and users."""

from __future__ import annotations

import grpc
from google.protobuf import field_mask_pb2
from google.rpc import code_pb2
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from kumo.gateway.dialect import invalid, json_member
from kumo.gateway.errors import RpcFailure
from kumo.gateway.openstack.common import (
    DOMAIN,
    ROLES_BY_NAME,
    last_segment,
)
from kumo.gateway.openstack.keystone.base import KeystoneBase
from kumo.gateway.openstack.keystone.views import (
    domain_check,
    forbidden,
    listed,
    project_json,
    role_json,
    user_json,
)
from kumo.identity.v1 import identity_service_pb2 as iapi
from kumo.identity.v1 import resources_pb2 as ipb


class Directory(KeystoneBase):
    """Domains, roles, projects and users."""

    # --- domains and roles (fixed) ------------------------------------------------------

    async def list_domains(self, request: Request) -> Response:
        """GET /v3/domains[?name=]."""
        await self.scopes.of(request)
        name = request.query_params.get("name")
        found = name is None or name in ("Default", "default")
        domain = {**DOMAIN, "enabled": True, "description": "Kumo's one domain", "tags": []}
        return listed("domains", [domain] if found else [], request)

    async def get_domain(self, request: Request) -> Response:
        """GET /v3/domains/{id}."""
        await self.scopes.of(request)
        if request.path_params["domain_id"] not in ("default", "Default"):
            raise RpcFailure.of(grpc.StatusCode.NOT_FOUND, "Could not find domain.")
        return JSONResponse({"domain": {**DOMAIN, "enabled": True, "description": ""}})

    async def list_roles(self, request: Request) -> Response:
        """GET /v3/roles[?name=]."""
        await self.scopes.of(request)
        name = request.query_params.get("name")
        roles = [role_json(r, self.base(request)) for r in ROLES_BY_NAME if name in (None, r)]
        return listed("roles", roles, request)

    async def get_role(self, request: Request) -> Response:
        """GET /v3/roles/{id}."""
        await self.scopes.of(request)
        role = request.path_params["role_id"]
        if role not in ROLES_BY_NAME:
            raise RpcFailure.of(grpc.StatusCode.NOT_FOUND, f"Could not find role: {role}.")
        return JSONResponse({"role": role_json(role, self.base(request))})

    # --- projects -----------------------------------------------------------------------

    async def list_projects(self, request: Request) -> Response:
        """GET /v3/projects[?name=] (also /v3/auth/projects and /v3/users/{id}/projects):
        the projects the caller holds a role on, every project for cloud administrators."""
        scope = await self.scopes.of(request)
        base = self.base(request)
        name = request.query_params.get("name")
        if name:
            try:
                found = await self.call(
                    self.identity.GetProject,
                    iapi.GetProjectRequest(name=f"projects/{name}"),
                    scope.token,
                )
            except RpcFailure as failure:
                if failure.code != code_pb2.NOT_FOUND:
                    raise
                if not scope.cloud_admin:  # as get_project: Keystone's list is admin-only
                    raise forbidden("identity:list_projects") from None
                return listed("projects", [], request)
            return listed("projects", [project_json(found, base)], request)
        projects = [
            project_json(p, base)
            async for p in self.pages(
                self.identity.ListProjects,
                lambda t: iapi.ListProjectsRequest(page_size=1000, page_token=t),
                "projects",
                scope.token,
            )
        ]
        return listed("projects", projects, request)

    async def create_project(self, request: Request) -> Response:
        """POST /v3/projects: 201."""
        scope = await self.scopes.of(request)
        body = await json_member(request, "project")
        domain_check(body.get("domain_id"))
        project_id = str(body.get("name", ""))
        created = await self.call(
            self.identity.CreateProject,
            iapi.CreateProjectRequest(
                project_id=project_id,
                project=ipb.Project(
                    display_name=project_id, description=str(body.get("description") or "")
                ),
            ),
            scope.token,
        )
        return JSONResponse({"project": project_json(created, self.base(request))}, 201)

    async def get_project(self, request: Request) -> Response:
        """GET /v3/projects/{id}. A project the caller holds no role on is 403 for anyone
        but a cloud administrator, as Keystone's policy answers (clients such as
        `openstack image add project` rely on it), whether it exists or not."""
        scope = await self.scopes.of(request)
        name = f"projects/{request.path_params['project_id']}"
        try:
            found = await self.call(
                self.identity.GetProject, iapi.GetProjectRequest(name=name), scope.token
            )
        except RpcFailure as failure:
            if failure.code == code_pb2.NOT_FOUND and not scope.cloud_admin:
                raise forbidden("identity:get_project") from None
            raise
        return JSONResponse({"project": project_json(found, self.base(request))})

    async def update_project(self, request: Request) -> Response:
        """PATCH /v3/projects/{id}: the description only (names are ids in Kumo); a body
        without one changes nothing."""
        scope = await self.scopes.of(request)
        body = await json_member(request, "project")
        project_id = request.path_params["project_id"]
        if body.get("name", project_id) != project_id:
            raise invalid("a Kumo project cannot be renamed")
        if body.get("enabled") is False:
            raise invalid("Kumo projects cannot be disabled")
        project = ipb.Project(name=f"projects/{project_id}")
        paths = []
        if "description" in body:  # (a PATCH without it leaves the description as it is)
            project.description = str(body["description"] or "")
            paths.append("description")
        updated = await self.call(
            self.identity.UpdateProject,
            iapi.UpdateProjectRequest(
                project=project, update_mask=field_mask_pb2.FieldMask(paths=paths)
            ),
            scope.token,
        )
        return JSONResponse({"project": project_json(updated, self.base(request))})

    async def delete_project(self, request: Request) -> Response:
        """DELETE /v3/projects/{id}: 204 (the project is deleted in the background)."""
        scope = await self.scopes.of(request)
        name = f"projects/{request.path_params['project_id']}"
        await self.call(
            self.identity.DeleteProject, iapi.DeleteProjectRequest(name=name), scope.token
        )
        return Response(status_code=204)

    # --- users --------------------------------------------------------------------------

    async def list_users(self, request: Request) -> Response:
        """GET /v3/users[?name=]."""
        scope = await self.scopes.of(request)
        base = self.base(request)
        name = request.query_params.get("name")
        users = [
            user_json(u, base)
            async for u in self.pages(
                self.identity.ListUsers,
                lambda t: iapi.ListUsersRequest(page_size=1000, page_token=t),
                "users",
                scope.token,
            )
            if name is None or last_segment(u.name) == name
        ]
        return listed("users", users, request)

    async def create_user(self, request: Request) -> Response:
        """POST /v3/users: 201."""
        scope = await self.scopes.of(request)
        body = await json_member(request, "user")
        domain_check(body.get("domain_id"))
        user_id = str(body.get("name", ""))
        created = await self.call(
            self.identity.CreateUser,
            iapi.CreateUserRequest(
                user_id=user_id,
                user=ipb.User(
                    password=str(body.get("password") or ""),
                    email=str(body.get("email") or ""),
                    display_name=str(body.get("description") or ""),
                    disabled=body.get("enabled") is False,
                ),
            ),
            scope.token,
        )
        return JSONResponse({"user": user_json(created, self.base(request))}, 201)

    async def get_user(self, request: Request) -> Response:
        """GET /v3/users/{id}; another user is 403 for anyone but a cloud administrator,
        as in Keystone (see get_project)."""
        scope = await self.scopes.of(request)
        name = f"users/{request.path_params['user_id']}"
        try:
            found = await self.call(
                self.identity.GetUser, iapi.GetUserRequest(name=name), scope.token
            )
        except RpcFailure as failure:
            if failure.code == code_pb2.NOT_FOUND and not scope.cloud_admin:
                raise forbidden("identity:get_user") from None
            raise
        return JSONResponse({"user": user_json(found, self.base(request))})

    async def update_user(self, request: Request) -> Response:
        """PATCH /v3/users/{id}: password, email, description, enabled."""
        scope = await self.scopes.of(request)
        body = await json_member(request, "user")
        user = ipb.User(name=f"users/{request.path_params['user_id']}")
        paths = []
        for key, field in (
            ("password", "password"),
            ("email", "email"),
            ("description", "display_name"),
        ):
            if key in body:
                setattr(user, field, str(body[key] or ""))
                paths.append(field)
        if "enabled" in body:
            user.disabled = body["enabled"] is False
            paths.append("disabled")
        updated = await self.call(
            self.identity.UpdateUser,
            iapi.UpdateUserRequest(user=user, update_mask=field_mask_pb2.FieldMask(paths=paths)),
            scope.token,
        )
        return JSONResponse({"user": user_json(updated, self.base(request))})

    async def delete_user(self, request: Request) -> Response:
        """DELETE /v3/users/{id}: 204."""
        scope = await self.scopes.of(request)
        name = f"users/{request.path_params['user_id']}"
        await self.call(self.identity.DeleteUser, iapi.DeleteUserRequest(name=name), scope.token)
        return Response(status_code=204)
