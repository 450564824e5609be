"""Authenticated stubs and throwaway tenants for tests against a real server."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.longrunning import operations_pb2_grpc
from google.rpc import status_pb2
from grpc_status import rpc_status

from kumo.identity.v1 import identity_service_pb2 as iapi
from kumo.identity.v1 import identity_service_pb2_grpc as irpc
from kumo.identity.v1 import resources_pb2 as ipb
from kumo.topology.v1 import topology_service_pb2_grpc as trpc

ADMIN_PASSWORD = "admin-password-for-tests"
PASSWORD = "a-long-enough-password"
ROLES = {"reader": ipb.ROLE_READER, "member": ipb.ROLE_MEMBER, "admin": ipb.ROLE_ADMIN}


class _Bearer(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
):
    def __init__(self, token: str) -> None:
        self._metadata = (("authorization", f"Bearer {token}"),)

    def _add(self, continuation: Any, details: Any, request: Any) -> Any:
        metadata = list(details.metadata or ()) + list(self._metadata)
        return continuation(details._replace(metadata=metadata), request)

    intercept_unary_unary = _add
    intercept_unary_stream = _add
    intercept_stream_unary = _add


class Stubs:
    """The three services' stubs on one channel, optionally with a bearer token."""

    def __init__(self, channel: grpc.Channel, token: str | None = None) -> None:
        self.token = token
        if token is not None:
            channel = grpc.intercept_channel(channel, _Bearer(token))
        self.channel = channel
        self.identity = irpc.IdentityServiceStub(channel)
        self.topology = trpc.TopologyServiceStub(channel)
        self.operations = operations_pb2_grpc.OperationsStub(channel)


def sign_in(channel: grpc.Channel, user: str, password: str, project: str) -> str:
    """A token for the user scoped to the project."""
    response = irpc.IdentityServiceStub(channel).IssueToken(
        iapi.IssueTokenRequest(
            password=iapi.PasswordCredentials(user=f"users/{user}", password=password),
            project=f"projects/{project}",
        )
    )
    return str(response.token.token)


def unique(prefix: str) -> str:
    """A fresh resource id starting with `prefix`."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class Tenant:
    """A project with one user per role, each signed in."""

    project: str  # id
    users: dict[str, str]  # role name -> user id
    stubs: dict[str, Stubs] = field(default_factory=dict)  # role name -> stubs

    @property
    def name(self) -> str:
        """`projects/{project}`."""
        return f"projects/{self.project}"


def make_tenant(channel: grpc.Channel, admin: Stubs, prefix: str = "t") -> Tenant:
    """Creates a project and a reader, a member and an admin of it, all signed in."""
    project = unique(prefix)
    admin.identity.CreateProject(
        iapi.CreateProjectRequest(project_id=project, project=ipb.Project(display_name=project))
    )
    tenant = Tenant(project=project, users={})
    for role_name, role in ROLES.items():
        user = unique(f"{prefix}{role_name[0]}")
        admin.identity.CreateUser(
            iapi.CreateUserRequest(user_id=user, user=ipb.User(password=PASSWORD))
        )
        admin.identity.CreateRoleAssignment(
            iapi.CreateRoleAssignmentRequest(
                parent=f"projects/{project}",
                role_assignment=ipb.RoleAssignment(user=f"users/{user}", role=role),
            )
        )
        tenant.users[role_name] = user
        tenant.stubs[role_name] = Stubs(channel, sign_in(channel, user, PASSWORD, project))
    return tenant


def set_quota(admin: Stubs, tenant: Tenant, **limits: int) -> None:
    """Sets these limits (resource=limit) of the tenant's quota, as the admin."""
    admin.identity.UpdateQuota(
        iapi.UpdateQuotaRequest(
            quota=ipb.Quota(
                name=f"{tenant.name}/quota",
                limits=[ipb.QuotaLimit(resource=k, limit=v) for k, v in limits.items()],
            )
        )
    )


def rpc_error(call: Callable[[], Any]) -> tuple[grpc.StatusCode, status_pb2.Status | None]:
    """Runs `call`, which must fail; returns its status code and decoded google.rpc.Status."""
    try:
        call()
    except grpc.RpcError as error:
        return error.code(), rpc_status.from_call(error)
    raise AssertionError("the call succeeded but was expected to fail")
