"""Keystone's routes: `/` (version discovery) and `/v3/...`."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Mount, Route

from kumo.gateway.grpc_backend import Backend
from kumo.gateway.openstack.common import Scopes
from kumo.gateway.openstack.keystone.directory import Directory
from kumo.gateway.openstack.keystone.grants import Grants
from kumo.gateway.openstack.keystone.tokens import Tokens
from kumo.gateway.openstack.keystone.views import DIALECT


class Keystone:
    """The Keystone v3 routes over the identity service."""

    def __init__(self, backend: Backend, scopes: Scopes, public_url: str) -> None:
        self.tokens = Tokens(backend, scopes, public_url)
        self.directory = Directory(backend, scopes, public_url)
        self.grants = Grants(backend, scopes, public_url)

    def app(self) -> Starlette:
        """The `/v3` routes."""
        r = DIALECT.route
        grant = "/projects/{project_id}/users/{user_id}/roles/{role_id}"
        credentials = "/users/{user_id}/application_credentials"
        roles = "/projects/{project_id}/users/{user_id}/roles"
        return DIALECT.app(
            [
                r("/", self.tokens.v3, ["GET"]),
                r("/auth/tokens", self.tokens.issue, ["POST"]),
                r("/auth/tokens", self.tokens.validate, ["GET", "HEAD"]),
                r("/auth/tokens", self.tokens.revoke, ["DELETE"]),
                r("/domains", self.directory.list_domains, ["GET"]),
                r("/domains/{domain_id}", self.directory.get_domain, ["GET"]),
                r("/roles", self.directory.list_roles, ["GET"]),
                r("/roles/{role_id}", self.directory.get_role, ["GET"]),
                r("/role_assignments", self.grants.list_assignments, ["GET"]),
                r("/projects", self.directory.list_projects, ["GET"]),
                r("/auth/projects", self.directory.list_projects, ["GET"]),
                r("/users/{user_id}/projects", self.directory.list_projects, ["GET"]),
                r("/projects", self.directory.create_project, ["POST"]),
                r("/projects/{project_id}", self.directory.get_project, ["GET"]),
                r("/projects/{project_id}", self.directory.update_project, ["PATCH"]),
                r("/projects/{project_id}", self.directory.delete_project, ["DELETE"]),
                r(roles, self.grants.list_user_roles, ["GET"]),
                r(grant, self.grants.grant, ["PUT"]),
                r(grant, self.grants.check_grant, ["GET", "HEAD"]),
                r(grant, self.grants.revoke_grant, ["DELETE"]),
                r("/users", self.directory.list_users, ["GET"]),
                r("/users", self.directory.create_user, ["POST"]),
                r("/users/{user_id}", self.directory.get_user, ["GET"]),
                r("/users/{user_id}", self.directory.update_user, ["PATCH"]),
                r("/users/{user_id}", self.directory.delete_user, ["DELETE"]),
                r(credentials, self.grants.list_credentials, ["GET"]),
                r(credentials, self.grants.create_credential, ["POST"]),
                r(credentials + "/{credential_id}", self.grants.get_credential, ["GET"]),
                r(credentials + "/{credential_id}", self.grants.delete_credential, ["DELETE"]),
            ]
        )

    def routes(self) -> list[Route | Mount]:
        """`/` (version discovery) and `/v3`, for the gateway's root."""
        return [
            DIALECT.route("/", self.tokens.versions, ["GET"]),
            Mount("/v3", app=self.app()),
        ]
