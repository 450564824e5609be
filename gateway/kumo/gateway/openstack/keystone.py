"""Keystone v3 over the identity service.

Kumo's names map one to one: a Keystone project id and name are the Kumo project id, a user
id and name the Kumo user id, role ids and names are `reader`, `member`, `admin`, and there is
one domain, `default` ("Default"). Application credentials are Kumo access keys (id = access
key id, secret = secret access key; the name is kept as the key's description). Tokens are
Kumo tokens, always scoped to a project.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf import field_mask_pb2
from google.rpc import code_pb2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from kumo.gateway.dialect import Dialect, invalid, json_body
from kumo.gateway.errors import RpcFailure
from kumo.gateway.grpc_backend import Backend
from kumo.gateway.openstack.catalog import Regions, catalog
from kumo.gateway.openstack.common import (
    DOMAIN,
    ROLE_NAMES,
    ROLES_BY_NAME,
    Scope,
    Scopes,
    auth_token,
    base_url,
    iso,
    last_segment,
    quoted,
)
from kumo.gateway.openstack.errors import CONFLICT_OVERRIDES, keystone_error
from kumo.identity.v1 import identity_service_pb2 as iapi
from kumo.identity.v1 import identity_service_pb2_grpc as irpc
from kumo.identity.v1 import resources_pb2 as ipb

DIALECT = Dialect("keystone", keystone_error, CONFLICT_OVERRIDES)
VERSION = "v3.14"
UPDATED = "2020-04-07T00:00:00Z"
MEDIA = [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]


def version_document(base: str) -> dict[str, Any]:
    """The v3 version entry."""
    return {
        "id": VERSION,
        "status": "stable",
        "updated": UPDATED,
        "links": [{"rel": "self", "href": f"{base}/v3/"}],
        "media-types": MEDIA,
    }


def _domain_check(domain_id: Any = None, domain_name: Any = None) -> None:
    if domain_id not in (None, "default") or domain_name not in (None, "Default", "default"):
        raise invalid("Kumo has one domain, 'default' (named 'Default')")


def project_json(project: ipb.Project, base: str) -> dict[str, Any]:
    """A Kumo project as a Keystone project."""
    project_id = last_segment(project.name)
    return {
        "id": project_id,
        "name": project_id,
        "description": project.description,
        "domain_id": "default",
        "parent_id": "default",
        "enabled": True,
        "is_domain": False,
        "tags": [],
        "options": {},
        "links": {"self": f"{base}/v3/projects/{project_id}"},
    }


def user_json(user: ipb.User, base: str) -> dict[str, Any]:
    """A Kumo user as a Keystone user."""
    user_id = last_segment(user.name)
    return {
        "id": user_id,
        "name": user_id,
        "email": user.email or None,
        "description": user.display_name,
        "domain_id": "default",
        "enabled": not user.disabled,
        "password_expires_at": None,
        "options": {},
        "links": {"self": f"{base}/v3/users/{user_id}"},
    }


def role_json(name: str, base: str) -> dict[str, Any]:
    """One of Kumo's three roles as a Keystone role."""
    return {
        "id": name,
        "name": name,
        "domain_id": None,
        "description": f"Kumo's {name} role",
        "options": {},
        "links": {"self": f"{base}/v3/roles/{name}"},
    }


def credential_json(key: ipb.AccessKey, scope: Scope, user: str) -> dict[str, Any]:
    """A Kumo access key as a Keystone application credential."""
    body: dict[str, Any] = {
        "id": key.access_key_id,
        "name": key.description or key.access_key_id,
        "description": key.description,
        "user_id": user,
        "project_id": last_segment(key.project),
        "roles": [{"id": r, "name": r} for r in scope.roles],
        "expires_at": None,
        "unrestricted": False,
        "access_rules": [],
    }
    if key.secret_access_key:
        body["secret"] = key.secret_access_key
    return body


def audit_id(token: str) -> str:
    """A token's audit id: a digest that names it in logs without revealing it."""
    digest = hashlib.sha256(token.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:22]


def _forbidden(action: str) -> RpcFailure:
    return RpcFailure.of(
        grpc.StatusCode.PERMISSION_DENIED,
        f"You are not authorized to perform the requested action: {action}.",
    )


def _listed(name: str, items: list[dict[str, Any]], request: Request) -> JSONResponse:
    return JSONResponse(
        {name: items, "links": {"self": str(request.url), "next": None, "previous": None}}
    )


class Keystone:
    """The Keystone v3 routes."""

    def __init__(self, backend: Backend, scopes: Scopes, public_url: str) -> None:
        self.backend = backend
        self.scopes = scopes
        self.regions = Regions(backend)
        self.public_url = public_url
        self.identity = backend.stub(irpc.IdentityServiceStub)

    def base(self, request: Request) -> str:
        """This gateway's base URL."""
        return base_url(request, self.public_url)

    async def call(self, method: Any, message: Any, token: str) -> Any:
        """A call with the caller's token."""
        return await self.backend.call(method, message, token)

    async def pages(
        self, method: Any, make: Callable[[str], Any], plural: str, token: str
    ) -> AsyncIterator[Any]:
        """Every item of a paged List call."""
        page_token = ""
        while True:
            answer = await self.call(method, make(page_token), token)
            for item in getattr(answer, plural):
                yield item
            page_token = answer.next_page_token
            if not page_token:
                return

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
        request = iapi.IssueTokenRequest()
        if "password" in methods:
            user = (identity.get("password") or {}).get("user") or {}
            domain = user.get("domain") or {}
            _domain_check(domain.get("id"), domain.get("name"))
            user_id = user.get("id") or user.get("name")
            if not user_id:
                raise invalid("auth.identity.password.user needs an id or a name")
            request.password.user = f"users/{user_id}"
            request.password.password = str(user.get("password", ""))
        elif "token" in methods:
            request.token.token = str((identity.get("token") or {}).get("id", ""))
        elif "application_credential" in methods:
            credential = identity.get("application_credential") or {}
            request.access_key.access_key_id = str(credential.get("id", ""))
            request.access_key.secret_access_key = str(credential.get("secret", ""))
        else:
            raise invalid("supported methods: password, token, application_credential")
        project = ((auth.get("scope") or {}).get("project")) or {}
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

    # --- domains and roles (fixed) ------------------------------------------------------

    async def list_domains(self, request: Request) -> Response:
        """GET /v3/domains[?name=]."""
        await self.scopes.of(request)
        name = request.query_params.get("name")
        found = name is None or name in ("Default", "default")
        domain = {**DOMAIN, "enabled": True, "description": "Kumo's one domain", "tags": []}
        return _listed("domains", [domain] if found else [], request)

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
        return _listed("roles", roles, request)

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
                    raise _forbidden("identity:list_projects") from None
                return _listed("projects", [], request)
            return _listed("projects", [project_json(found, base)], request)
        projects = [
            project_json(p, base)
            async for p in self.pages(
                self.identity.ListProjects,
                lambda t: iapi.ListProjectsRequest(page_size=1000, page_token=t),
                "projects",
                scope.token,
            )
        ]
        return _listed("projects", projects, request)

    async def create_project(self, request: Request) -> Response:
        """POST /v3/projects: 201."""
        scope = await self.scopes.of(request)
        body = (await json_body(request)).get("project") or {}
        _domain_check(body.get("domain_id"))
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
                raise _forbidden("identity:get_project") from None
            raise
        return JSONResponse({"project": project_json(found, self.base(request))})

    async def update_project(self, request: Request) -> Response:
        """PATCH /v3/projects/{id}: the description only (names are ids in Kumo)."""
        scope = await self.scopes.of(request)
        body = (await json_body(request)).get("project") or {}
        project_id = request.path_params["project_id"]
        if body.get("name", project_id) != project_id:
            raise invalid("a Kumo project cannot be renamed")
        if body.get("enabled") is False:
            raise invalid("Kumo projects cannot be disabled")
        updated = await self.call(
            self.identity.UpdateProject,
            iapi.UpdateProjectRequest(
                project=ipb.Project(
                    name=f"projects/{project_id}", description=str(body.get("description") or "")
                ),
                update_mask=field_mask_pb2.FieldMask(paths=["description"]),
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
        return _listed("users", users, request)

    async def create_user(self, request: Request) -> Response:
        """POST /v3/users: 201."""
        scope = await self.scopes.of(request)
        body = (await json_body(request)).get("user") or {}
        _domain_check(body.get("domain_id"))
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
                raise _forbidden("identity:get_user") from None
            raise
        return JSONResponse({"user": user_json(found, self.base(request))})

    async def update_user(self, request: Request) -> Response:
        """PATCH /v3/users/{id}: password, email, description, enabled."""
        scope = await self.scopes.of(request)
        body = (await json_body(request)).get("user") or {}
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
        return _listed("roles", [role_json(ROLE_NAMES[a.role], base) for a in found], request)

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
        return _listed("role_assignments", items, request)

    # --- application credentials (access keys) ------------------------------------------

    async def create_credential(self, request: Request) -> Response:
        """POST /v3/users/{u}/application_credentials: 201 with the secret (once)."""
        scope = await self.scopes.of(request)
        body = (await json_body(request)).get("application_credential") or {}
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
        return _listed("application_credentials", items, request)

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

    def app(self) -> Starlette:
        """The `/v3` routes."""
        r = DIALECT.route
        grant = "/projects/{project_id}/users/{user_id}/roles/{role_id}"
        credentials = "/users/{user_id}/application_credentials"
        return DIALECT.app(
            [
                r("/", self.v3, ["GET"]),
                r("/auth/tokens", self.issue, ["POST"]),
                r("/auth/tokens", self.validate, ["GET", "HEAD"]),
                r("/auth/tokens", self.revoke, ["DELETE"]),
                r("/domains", self.list_domains, ["GET"]),
                r("/domains/{domain_id}", self.get_domain, ["GET"]),
                r("/roles", self.list_roles, ["GET"]),
                r("/roles/{role_id}", self.get_role, ["GET"]),
                r("/role_assignments", self.list_assignments, ["GET"]),
                r("/projects", self.list_projects, ["GET"]),
                r("/auth/projects", self.list_projects, ["GET"]),
                r("/users/{user_id}/projects", self.list_projects, ["GET"]),
                r("/projects", self.create_project, ["POST"]),
                r("/projects/{project_id}", self.get_project, ["GET"]),
                r("/projects/{project_id}", self.update_project, ["PATCH"]),
                r("/projects/{project_id}", self.delete_project, ["DELETE"]),
                r("/projects/{project_id}/users/{user_id}/roles", self.list_user_roles, ["GET"]),
                r(grant, self.grant, ["PUT"]),
                r(grant, self.check_grant, ["GET", "HEAD"]),
                r(grant, self.revoke_grant, ["DELETE"]),
                r("/users", self.list_users, ["GET"]),
                r("/users", self.create_user, ["POST"]),
                r("/users/{user_id}", self.get_user, ["GET"]),
                r("/users/{user_id}", self.update_user, ["PATCH"]),
                r("/users/{user_id}", self.delete_user, ["DELETE"]),
                r(credentials, self.list_credentials, ["GET"]),
                r(credentials, self.create_credential, ["POST"]),
                r(credentials + "/{credential_id}", self.get_credential, ["GET"]),
                r(credentials + "/{credential_id}", self.delete_credential, ["DELETE"]),
            ]
        )

    def routes(self) -> list[Route | Mount]:
        """`/` (version discovery) and `/v3`, for the gateway's root."""
        return [
            DIALECT.route("/", self.versions, ["GET"]),
            Mount("/v3", app=self.app()),
        ]
