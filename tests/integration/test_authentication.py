"""Authentication across a sample of every service's methods.

Missing, malformed, forged, tampered, expired and voided tokens are all
UNAUTHENTICATED, and the answer carries no details and nothing internal (no
traceback, no token, no ids). A present but invalid token is refused even by
IssueToken, which needs none. Health checking and reflection need no token.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.longrunning import operations_pb2
from google.protobuf import duration_pb2, field_mask_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from kumo.identity.v1 import identity_service_pb2 as iapi
from kumo.identity.v1 import resources_pb2 as ipb
from kumo.server.api.signing import Signer
from kumo.topology.v1 import resources_pb2 as tpb
from kumo.topology.v1 import topology_service_pb2 as tapi
from tests.support.cloud import (
    ADMIN_PASSWORD,
    PASSWORD,
    Stubs,
    Tenant,
    make_tenant,
    rpc_error,
    sign_in,
    unique,
)
from tests.support.server import ServerThread

UA = grpc.StatusCode.UNAUTHENTICATED
Metadata = list[tuple[str, str]] | None


@dataclass(frozen=True)
class Method:
    """A sampled method: how to call it with given metadata, and whether it is public."""

    call: Callable[[Stubs, Metadata], Any]
    public: bool = False


_NO_OP = f"operations/{uuid.UUID(int=0)}"

SAMPLE: dict[str, Method] = {
    "IssueToken": Method(
        lambda s, md: s.identity.IssueToken(
            iapi.IssueTokenRequest(
                password=iapi.PasswordCredentials(user="users/admin", password=ADMIN_PASSWORD),
                project="projects/admin",
            ),
            metadata=md,
        ),
        public=True,
    ),
    "ValidateToken": Method(
        lambda s, md: s.identity.ValidateToken(iapi.ValidateTokenRequest(token="x.y"), metadata=md)
    ),
    "RevokeToken": Method(
        lambda s, md: s.identity.RevokeToken(iapi.RevokeTokenRequest(token="x.y"), metadata=md)
    ),
    "GetProject": Method(
        lambda s, md: s.identity.GetProject(
            iapi.GetProjectRequest(name="projects/admin"), metadata=md
        )
    ),
    "ListProjects": Method(
        lambda s, md: s.identity.ListProjects(iapi.ListProjectsRequest(), metadata=md)
    ),
    "CreateProject": Method(
        lambda s, md: s.identity.CreateProject(
            iapi.CreateProjectRequest(project_id="never-created", project=ipb.Project()),
            metadata=md,
        )
    ),
    "UpdateUser": Method(
        lambda s, md: s.identity.UpdateUser(
            iapi.UpdateUserRequest(
                user=ipb.User(name="users/admin", display_name="x"),
                update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
            ),
            metadata=md,
        )
    ),
    "GetQuota": Method(
        lambda s, md: s.identity.GetQuota(
            iapi.GetQuotaRequest(name="projects/admin/quota"), metadata=md
        )
    ),
    "GetRegion": Method(
        lambda s, md: s.topology.GetRegion(tapi.GetRegionRequest(name="regions/none"), metadata=md)
    ),
    "ListHosts": Method(lambda s, md: s.topology.ListHosts(tapi.ListHostsRequest(), metadata=md)),
    "CreateRegion": Method(
        lambda s, md: s.topology.CreateRegion(
            tapi.CreateRegionRequest(region_id="never-created", region=tpb.Region()),
            metadata=md,
        )
    ),
    "GetOperation": Method(
        lambda s, md: s.operations.GetOperation(
            operations_pb2.GetOperationRequest(name=_NO_OP), metadata=md
        )
    ),
    "ListOperations": Method(
        lambda s, md: s.operations.ListOperations(
            operations_pb2.ListOperationsRequest(), metadata=md
        )
    ),
    "WaitOperation": Method(
        lambda s, md: s.operations.WaitOperation(
            operations_pb2.WaitOperationRequest(
                name=_NO_OP, timeout=duration_pb2.Duration(nanos=10_000_000)
            ),
            metadata=md,
        )
    ),
    "CancelOperation": Method(
        lambda s, md: s.operations.CancelOperation(
            operations_pb2.CancelOperationRequest(name=_NO_OP), metadata=md
        )
    ),
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(user: str, project: str, issued: float, expires: float) -> dict[str, Any]:
    """The claim keys of kumo.server.auth.tokens."""
    return {"t": secrets.token_hex(16), "u": user, "p": project, "i": issued, "e": expires}


def _flip(token: str) -> str:
    """The token with one character of its payload part changed."""
    body, mac = token.split(".")
    index = len(body) // 2
    replacement = "A" if body[index] != "A" else "B"
    return f"{body[:index]}{replacement}{body[index + 1 :]}.{mac}"


def _wait_done(admin: Stubs, name: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        op = admin.operations.WaitOperation(
            operations_pb2.WaitOperationRequest(name=name, timeout=duration_pb2.Duration(seconds=5))
        )
        if op.done:
            assert not op.HasField("error"), op.error
            return
    raise AssertionError(f"{name} did not finish")


@dataclass
class Fixtures:
    """A tenant whose reader holds `good`, and invalid tokens by kind."""

    tenant: Tenant
    good: str
    tokens: dict[str, str]


def _user_with_token(channel: grpc.Channel, admin: Stubs, project: str) -> tuple[str, str]:
    """A new reader of `project`, and its token."""
    user = unique("u")
    admin.identity.CreateUser(
        iapi.CreateUserRequest(user_id=user, user=ipb.User(password=PASSWORD))
    )
    admin.identity.CreateRoleAssignment(
        iapi.CreateRoleAssignmentRequest(
            parent=f"projects/{project}",
            role_assignment=ipb.RoleAssignment(user=f"users/{user}", role=ipb.ROLE_READER),
        )
    )
    return user, sign_in(channel, user, PASSWORD, project)


@pytest.fixture(scope="module")
def bad(api: ServerThread, channel: grpc.Channel, admin: Stubs) -> Fixtures:
    """Tokens that must not authenticate, each made invalid in its own way."""
    tenant = make_tenant(channel, admin, "v")
    good = tenant.stubs["reader"].token or ""
    reader, project = tenant.users["reader"], tenant.project
    now = time.time()
    body, mac = good.split(".")
    escalated = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    escalated.update(u="admin", p="admin")
    real_keys: Signer = api.server.runtime.keys.tokens
    tokens = {
        "garbage": "not-a-token",
        "unsigned": f"{body}.",
        "forged": Signer(b"x" * 32).dumps(_claims(reader, project, now, now + 3600)),
        "forged-admin": Signer(b"x" * 32).dumps(_claims("admin", "admin", now, now + 3600)),
        "tampered": _flip(good),
        "escalated": f"{_b64(json.dumps(escalated).encode())}.{mac}",
        "expired": real_keys.dumps(_claims(reader, project, now - 7200, now - 3600)),
        "missing-claims": real_keys.dumps({"u": reader, "p": project}),
    }

    revoked = sign_in(channel, reader, PASSWORD, project)
    admin.identity.RevokeToken(iapi.RevokeTokenRequest(token=revoked))
    tokens["revoked"] = revoked

    user, tokens["deleted-user"] = _user_with_token(channel, admin, project)
    admin.identity.DeleteUser(iapi.DeleteUserRequest(name=f"users/{user}"))

    user, tokens["disabled-user"] = _user_with_token(channel, admin, project)
    admin.identity.UpdateUser(
        iapi.UpdateUserRequest(
            user=ipb.User(name=f"users/{user}", disabled=True),
            update_mask=field_mask_pb2.FieldMask(paths=["disabled"]),
        )
    )

    user, tokens["password-changed"] = _user_with_token(channel, admin, project)
    admin.identity.UpdateUser(
        iapi.UpdateUserRequest(
            user=ipb.User(name=f"users/{user}", password="another-long-password"),
            update_mask=field_mask_pb2.FieldMask(paths=["password"]),
        )
    )

    user, tokens["role-removed"] = _user_with_token(channel, admin, project)
    admin.identity.DeleteRoleAssignment(
        iapi.DeleteRoleAssignmentRequest(name=f"{tenant.name}/roleAssignments/{user}-reader")
    )

    doomed = unique("d")
    admin.identity.CreateProject(
        iapi.CreateProjectRequest(project_id=doomed, project=ipb.Project())
    )
    _, tokens["project-deleted"] = _user_with_token(channel, admin, doomed)
    _wait_done(
        admin,
        admin.identity.DeleteProject(iapi.DeleteProjectRequest(name=f"projects/{doomed}")).name,
    )
    return Fixtures(tenant, good, tokens)


BAD_TOKENS = [
    "garbage",
    "unsigned",
    "forged",
    "forged-admin",
    "tampered",
    "escalated",
    "expired",
    "missing-claims",
    "revoked",
    "deleted-user",
    "disabled-user",
    "password-changed",
    "role-removed",
    "project-deleted",
]
BAD_HEADERS = {
    "basic": "Basic x",
    "bearer-empty": "Bearer ",
    "bearer-blank": "Bearer    ",
    "bearer-only": "Bearer",
    "no-scheme": "sometoken",
    "token-scheme": "Token abc",
}
PRIVATE = [m for m, method in SAMPLE.items() if not method.public]


def assert_opaque(code: grpc.StatusCode, status: Any, *secrets_: str) -> None:
    """UNAUTHENTICATED with a short plain message: no details, traceback, token or ids."""
    assert code == UA, status
    if status is None:
        return
    assert list(status.details) == [], status
    message = status.message
    assert len(message) < 200, message
    for fragment in ("Traceback", 'File "', ".py", "sqlalchemy", "psycopg", "sqlite"):
        assert fragment not in message, message
    for secret in secrets_:
        if len(secret) >= 8:  # shorter ones are no secret and may occur by chance
            assert secret not in message, message


@pytest.mark.parametrize("method", PRIVATE)
def test_no_token(anonymous: Stubs, method: str) -> None:
    """A method that needs a token is UNAUTHENTICATED without one."""
    code, status = rpc_error(lambda: SAMPLE[method].call(anonymous, None))
    assert_opaque(code, status)


def test_public_method_needs_no_token(anonymous: Stubs) -> None:
    """IssueToken works without a token."""
    token = SAMPLE["IssueToken"].call(anonymous, None).token
    assert token.user == "users/admin"
    assert token.cloud_admin


@pytest.mark.parametrize("header", list(BAD_HEADERS))
@pytest.mark.parametrize("method", list(SAMPLE))
def test_malformed_header(anonymous: Stubs, method: str, header: str) -> None:
    """A malformed authorization header is UNAUTHENTICATED, even for public methods."""
    value = BAD_HEADERS[header]
    code, status = rpc_error(lambda: SAMPLE[method].call(anonymous, [("authorization", value)]))
    assert_opaque(code, status, value.strip())


@pytest.mark.parametrize("kind", BAD_TOKENS)
@pytest.mark.parametrize("method", list(SAMPLE))
def test_invalid_token(anonymous: Stubs, bad: Fixtures, method: str, kind: str) -> None:
    """A forged, tampered, expired or voided token is UNAUTHENTICATED, even for public methods."""
    token = bad.tokens[kind]
    code, status = rpc_error(
        lambda: SAMPLE[method].call(anonymous, [("authorization", f"Bearer {token}")])
    )
    assert_opaque(code, status, token, bad.tenant.users["reader"], bad.tenant.project)


@pytest.mark.parametrize("method", list(SAMPLE))
def test_valid_token_authenticates(anonymous: Stubs, bad: Fixtures, method: str) -> None:
    """The control: the sample's calls with the tenant reader's good token pass authentication."""
    try:
        SAMPLE[method].call(anonymous, [("authorization", f"Bearer {bad.good}")])
    except grpc.RpcError as error:
        assert error.code() != UA, error.details()


def test_health_needs_no_token(channel: grpc.Channel) -> None:
    """The standard health Check and Watch answer SERVING without a token."""
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "kumo.identity.v1.IdentityService", "google.longrunning.Operations"):
        response = health.Check(health_pb2.HealthCheckRequest(service=service))
        assert response.status == health_pb2.HealthCheckResponse.SERVING
    watch = health.Watch(health_pb2.HealthCheckRequest(), timeout=10)
    try:
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
    finally:
        watch.cancel()


def test_reflection_needs_no_token(channel: grpc.Channel) -> None:
    """Server reflection lists Kumo's services without a token."""
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = list(
        stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    )
    names = {s.name for s in responses[0].list_services_response.service}
    assert {
        "kumo.identity.v1.IdentityService",
        "kumo.topology.v1.TopologyService",
        "google.longrunning.Operations",
        "grpc.health.v1.Health",
    } <= names
