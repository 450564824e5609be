"""IdentityService over a real channel: sign-in, projects, users, roles, access keys, quotas."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.longrunning import operations_pb2
from google.protobuf import duration_pb2, empty_pb2, field_mask_pb2
from google.rpc import error_details_pb2, status_pb2

from kumo.identity.v1 import identity_service_pb2 as iapi
from kumo.identity.v1 import resources_pb2 as ipb
from kumo.server.config import default_quota
from tests.conftest import database_url_for, make_config
from tests.support.cloud import (
    ADMIN_PASSWORD,
    PASSWORD,
    Stubs,
    Tenant,
    rpc_error,
    sign_in,
    unique,
)
from tests.support.network import make_network
from tests.support.server import ServerThread

UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
PERMISSION_DENIED = grpc.StatusCode.PERMISSION_DENIED
INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION


# --- helpers ---------------------------------------------------------------------------------


def detail(status: status_pb2.Status | None, message_type: Any) -> Any:
    """The first detail of `status` of `message_type`, unpacked; fails if there is none."""
    assert status is not None
    for packed in status.details:
        if packed.Is(message_type.DESCRIPTOR):
            out = message_type()
            packed.Unpack(out)
            return out
    raise AssertionError(f"no {message_type.DESCRIPTOR.full_name} in {status}")


def violated_fields(status: status_pb2.Status | None) -> set[str]:
    """The fields named by the BadRequest detail of `status`."""
    return {v.field for v in detail(status, error_details_pb2.BadRequest).field_violations}


def new_project(admin: Stubs, **labels: str) -> str:
    """Creates a project with `labels`; returns its id."""
    project = unique("p")
    admin.identity.CreateProject(
        iapi.CreateProjectRequest(
            project_id=project, project=ipb.Project(display_name=project, labels=labels)
        )
    )
    return project


def new_user(admin: Stubs, password: str = PASSWORD, **fields: Any) -> str:
    """Creates a user with `password`; returns its id."""
    user = unique("u")
    admin.identity.CreateUser(
        iapi.CreateUserRequest(user_id=user, user=ipb.User(password=password, **fields))
    )
    return user


def grant(admin: Stubs, project: str, user: str, role: ipb.Role) -> ipb.RoleAssignment:
    """Gives `user` `role` on `project`."""
    return admin.identity.CreateRoleAssignment(
        iapi.CreateRoleAssignmentRequest(
            parent=f"projects/{project}",
            role_assignment=ipb.RoleAssignment(user=f"users/{user}", role=role),
        )
    )


def password_login(user: str, password: str, project: str) -> iapi.IssueTokenRequest:
    """An IssueToken request with password credentials."""
    return iapi.IssueTokenRequest(
        password=iapi.PasswordCredentials(user=f"users/{user}", password=password),
        project=f"projects/{project}",
    )


def key_login(key_id: str, secret: str) -> iapi.IssueTokenRequest:
    """An IssueToken request with access-key credentials."""
    return iapi.IssueTokenRequest(
        access_key=iapi.AccessKeyCredentials(access_key_id=key_id, secret_access_key=secret)
    )


def create_key(stubs: Stubs, user: str, project: str) -> ipb.AccessKey:
    """Creates an access key for `user` acting in `project`."""
    return stubs.identity.CreateAccessKey(
        iapi.CreateAccessKeyRequest(
            parent=f"users/{user}", access_key=ipb.AccessKey(project=f"projects/{project}")
        )
    )


def list_keys(stubs: Stubs, user: str) -> list[ipb.AccessKey]:
    """Every access key of `user`."""
    request = iapi.ListAccessKeysRequest(parent=f"users/{user}", page_size=1000)
    return list(stubs.identity.ListAccessKeys(request).access_keys)


def in_use(stubs: Stubs, project: str, resource: str) -> int:
    """The project's current usage of `resource`."""
    quota = stubs.identity.GetQuota(iapi.GetQuotaRequest(name=f"projects/{project}/quota"))
    return next(limit.in_use for limit in quota.limits if limit.resource == resource)


def get_project(stubs: Stubs, project: str) -> ipb.Project:
    """GetProject by id."""
    return stubs.identity.GetProject(iapi.GetProjectRequest(name=f"projects/{project}"))


def project_names(stubs: Stubs, filter: str = "") -> list[str]:
    """Names of the projects `stubs` may list."""
    request = iapi.ListProjectsRequest(page_size=1000, filter=filter)
    return [p.name for p in stubs.identity.ListProjects(request).projects]


def wait(stubs: Stubs, operation: operations_pb2.Operation) -> operations_pb2.Operation:
    """Waits for `operation` to finish (the server's controller runs it)."""
    done = stubs.operations.WaitOperation(
        operations_pb2.WaitOperationRequest(
            name=operation.name, timeout=duration_pb2.Duration(seconds=30)
        )
    )
    assert done.done, done
    return done


def mask(*paths: str) -> field_mask_pb2.FieldMask:
    """A FieldMask of `paths`."""
    return field_mask_pb2.FieldMask(paths=list(paths))


@pytest.fixture(scope="module")
def fresh_cloud(api: ServerThread, request: pytest.FixtureRequest) -> Iterator[Stubs]:
    """A second server on a new database of the same backend, whose only cloud admin is `admin`."""
    backend = "sqlite" if api.config.database_url.startswith("sqlite") else "postgres"
    server = ServerThread(make_config(database_url_for(backend, request)))
    try:
        with grpc.insecure_channel(server.address) as chan:
            yield Stubs(chan, sign_in(chan, "admin", ADMIN_PASSWORD, "admin"))
    finally:
        server.stop()


# --- tokens ----------------------------------------------------------------------------------


def test_issue_token_with_password(anonymous: Stubs, tenant: Tenant) -> None:
    """A password sign-in returns a token scoped to the project with the user's roles."""
    user = tenant.users["member"]
    response = anonymous.identity.IssueToken(password_login(user, PASSWORD, tenant.project))
    token = response.token
    assert token.token
    assert token.user == f"users/{user}"
    assert token.project == tenant.name
    assert list(token.roles) == [ipb.ROLE_MEMBER]
    assert not token.cloud_admin
    assert token.expire_time.ToDatetime() > token.issue_time.ToDatetime()


def test_issue_token_with_access_key(
    channel: grpc.Channel, anonymous: Stubs, admin: Stubs, tenant: Tenant
) -> None:
    """An access-key sign-in is scoped to the key's project and acts as the key's user."""
    user = tenant.users["member"]
    key = create_key(admin, user, tenant.project)
    token = anonymous.identity.IssueToken(key_login(key.access_key_id, key.secret_access_key)).token
    assert token.user == f"users/{user}"
    assert token.project == tenant.name
    assert get_project(Stubs(channel, token.token), tenant.project).name == tenant.name


def test_rescoped_token_does_not_outlive_the_original(
    channel: grpc.Channel, anonymous: Stubs, admin: Stubs, tenant: Tenant, other_tenant: Tenant
) -> None:
    """Exchanging a token for another project's keeps the user and never extends the expiry."""
    user = tenant.users["member"]
    grant(admin, other_tenant.project, user, ipb.ROLE_READER)
    first = anonymous.identity.IssueToken(password_login(user, PASSWORD, tenant.project)).token
    second = anonymous.identity.IssueToken(
        iapi.IssueTokenRequest(
            token=iapi.TokenCredentials(token=first.token), project=other_tenant.name
        )
    ).token
    assert second.user == f"users/{user}"
    assert second.project == other_tenant.name
    assert list(second.roles) == [ipb.ROLE_READER]
    assert second.expire_time.ToDatetime() <= first.expire_time.ToDatetime()
    assert get_project(Stubs(channel, second.token), other_tenant.project).name
    code, _ = rpc_error(
        lambda: anonymous.identity.IssueToken(
            iapi.IssueTokenRequest(
                token=iapi.TokenCredentials(token=first.token), project="projects/admin"
            )
        )
    )
    assert code == UNAUTHENTICATED


def test_bad_credentials_are_unauthenticated_with_one_message(
    anonymous: Stubs, admin: Stubs, tenant: Tenant, other_tenant: Tenant
) -> None:
    """Wrong password, unknown user, disabled user, no role and bad key secret look alike."""
    member = tenant.users["member"]
    disabled = new_user(admin)
    grant(admin, tenant.project, disabled, ipb.ROLE_MEMBER)
    admin.identity.UpdateUser(
        iapi.UpdateUserRequest(
            user=ipb.User(name=f"users/{disabled}", disabled=True), update_mask=mask("disabled")
        )
    )
    key = create_key(admin, member, tenant.project)
    attempts = {
        "wrong password": password_login(member, "not-the-password", tenant.project),
        "unknown user": password_login(unique("ghost"), PASSWORD, tenant.project),
        "disabled user": password_login(disabled, PASSWORD, tenant.project),
        "no role on project": password_login(member, PASSWORD, other_tenant.project),
        "wrong key secret": key_login(key.access_key_id, "x" * 40),
        "unknown key": key_login("KUMOAAAAAAAAAAAAAAAA", key.secret_access_key),
    }
    messages = {}
    for label, request in attempts.items():
        code, status = rpc_error(lambda r=request: anonymous.identity.IssueToken(r))
        assert code == UNAUTHENTICATED, label
        assert status is not None
        messages[label] = status.message
    assert len(set(messages.values())) == 1, messages


def test_validate_own_token(tenant: Tenant) -> None:
    """A caller may check its own token; the answer describes it without echoing it."""
    stubs = tenant.stubs["member"]
    assert stubs.token is not None
    token = stubs.identity.ValidateToken(iapi.ValidateTokenRequest(token=stubs.token)).token
    assert token.token == ""
    assert token.user == f"users/{tenant.users['member']}"
    assert token.project == tenant.name
    assert list(token.roles) == [ipb.ROLE_MEMBER]
    assert not token.cloud_admin


def test_validate_other_users_token_needs_cloud_admin(admin: Stubs, tenant: Tenant) -> None:
    """Checking another user's token is PERMISSION_DENIED except for cloud administrators."""
    member_token = tenant.stubs["member"].token
    assert member_token is not None
    code, _ = rpc_error(
        lambda: tenant.stubs["admin"].identity.ValidateToken(
            iapi.ValidateTokenRequest(token=member_token)
        )
    )
    assert code == PERMISSION_DENIED
    token = admin.identity.ValidateToken(iapi.ValidateTokenRequest(token=member_token)).token
    assert token.user == f"users/{tenant.users['member']}"
    assert admin.token is not None
    own = admin.identity.ValidateToken(iapi.ValidateTokenRequest(token=admin.token)).token
    assert own.cloud_admin


def test_revoke_token_stops_it_at_once_and_is_idempotent(
    channel: grpc.Channel, tenant: Tenant
) -> None:
    """A revoked token fails on its next call; revoking it again succeeds; others keep working."""
    user = tenant.users["reader"]
    first = Stubs(channel, sign_in(channel, user, PASSWORD, tenant.project))
    second = Stubs(channel, sign_in(channel, user, PASSWORD, tenant.project))
    assert get_project(first, tenant.project).name == tenant.name
    assert first.token is not None
    for _ in range(2):
        second.identity.RevokeToken(iapi.RevokeTokenRequest(token=first.token))
    code, _ = rpc_error(lambda: get_project(first, tenant.project))
    assert code == UNAUTHENTICATED
    assert get_project(second, tenant.project).name == tenant.name


def test_revoking_another_users_token_needs_cloud_admin(admin: Stubs, tenant: Tenant) -> None:
    """Non-administrators may revoke only their own tokens."""
    member = tenant.stubs["member"]
    assert member.token is not None
    code, _ = rpc_error(
        lambda: tenant.stubs["admin"].identity.RevokeToken(
            iapi.RevokeTokenRequest(token=member.token)
        )
    )
    assert code == PERMISSION_DENIED
    assert get_project(member, tenant.project).name == tenant.name
    admin.identity.RevokeToken(iapi.RevokeTokenRequest(token=member.token))
    code, _ = rpc_error(lambda: get_project(member, tenant.project))
    assert code == UNAUTHENTICATED


# --- projects --------------------------------------------------------------------------------


def test_create_and_get_project(admin: Stubs) -> None:
    """A new project is ACTIVE, has a uid, an etag and times, and gets the default quota."""
    project_id = unique("p")
    created = admin.identity.CreateProject(
        iapi.CreateProjectRequest(
            project_id=project_id,
            project=ipb.Project(
                display_name="Team A", description="the A team", labels={"env": "test"}
            ),
        )
    )
    assert created.name == f"projects/{project_id}"
    assert created.state == ipb.Project.STATE_ACTIVE
    assert created.uid and created.etag
    assert created.create_time.seconds > 0
    assert (created.display_name, created.description) == ("Team A", "the A team")
    assert dict(created.labels) == {"env": "test"}
    assert get_project(admin, project_id) == created
    assert in_use(admin, project_id, "access_keys") == 0


def test_create_existing_project_is_already_exists(admin: Stubs, tenant: Tenant) -> None:
    """A second project with the same id is ALREADY_EXISTS and leaves the first alone."""
    before = get_project(admin, tenant.project)
    code, _ = rpc_error(
        lambda: admin.identity.CreateProject(
            iapi.CreateProjectRequest(
                project_id=tenant.project, project=ipb.Project(display_name="other")
            )
        )
    )
    assert code == grpc.StatusCode.ALREADY_EXISTS
    assert get_project(admin, tenant.project) == before


def test_member_cannot_create_projects(tenant: Tenant) -> None:
    """Creating projects is for cloud administrators."""
    project_id = unique("p")
    code, _ = rpc_error(
        lambda: tenant.stubs["admin"].identity.CreateProject(
            iapi.CreateProjectRequest(project_id=project_id, project=ipb.Project())
        )
    )
    assert code == PERMISSION_DENIED


def test_list_projects_shows_members_only_their_projects(
    admin: Stubs, tenant: Tenant, other_tenant: Tenant
) -> None:
    """A member lists the projects it holds roles on; a cloud administrator lists all."""
    member = tenant.stubs["member"]
    assert project_names(member) == [tenant.name]
    assert {tenant.name, other_tenant.name, "projects/admin"} <= set(project_names(admin))
    grant(admin, other_tenant.project, tenant.users["member"], ipb.ROLE_READER)
    assert project_names(member) == sorted([tenant.name, other_tenant.name])


def test_other_tenants_project_is_not_found(tenant: Tenant, other_tenant: Tenant) -> None:
    """A project the caller holds no role on cannot even be probed."""
    code, _ = rpc_error(lambda: get_project(tenant.stubs["admin"], other_tenant.project))
    assert code == NOT_FOUND


def test_update_project_with_mask_and_etag(tenant: Tenant) -> None:
    """Only masked fields change; the current etag is accepted and a new one is returned."""
    stubs = tenant.stubs["admin"]
    before = get_project(stubs, tenant.project)
    updated = stubs.identity.UpdateProject(
        iapi.UpdateProjectRequest(
            project=ipb.Project(
                name=tenant.name, display_name="renamed", description="ignored", etag=before.etag
            ),
            update_mask=mask("display_name"),
        )
    )
    assert updated.display_name == "renamed"
    assert updated.description == before.description
    assert updated.etag != before.etag
    assert updated.uid == before.uid
    assert get_project(stubs, tenant.project) == updated


def test_update_project_with_stale_etag_is_aborted(tenant: Tenant) -> None:
    """An update carrying an old etag is ABORTED and changes nothing."""
    stubs = tenant.stubs["admin"]
    stale = get_project(stubs, tenant.project).etag
    stubs.identity.UpdateProject(
        iapi.UpdateProjectRequest(
            project=ipb.Project(name=tenant.name, description="first"),
            update_mask=mask("description"),
        )
    )
    current = get_project(stubs, tenant.project)
    code, _ = rpc_error(
        lambda: stubs.identity.UpdateProject(
            iapi.UpdateProjectRequest(
                project=ipb.Project(name=tenant.name, description="second", etag=stale),
                update_mask=mask("description"),
            )
        )
    )
    assert code == grpc.StatusCode.ABORTED
    assert get_project(stubs, tenant.project) == current


@pytest.mark.parametrize("path", ["state", "uid", "create_time", "name", "etag"])
def test_update_project_of_non_writable_field_is_invalid(tenant: Tenant, path: str) -> None:
    """A mask naming an output-only or identifying field is INVALID_ARGUMENT naming update_mask."""
    stubs = tenant.stubs["admin"]
    before = get_project(stubs, tenant.project)
    code, status = rpc_error(
        lambda: stubs.identity.UpdateProject(
            iapi.UpdateProjectRequest(
                project=ipb.Project(name=tenant.name, state=ipb.Project.STATE_DELETING),
                update_mask=mask(path),
            )
        )
    )
    assert code == INVALID_ARGUMENT
    assert violated_fields(status) == {"update_mask"}
    assert get_project(stubs, tenant.project) == before


def test_project_members_cannot_update_it(tenant: Tenant) -> None:
    """UpdateProject needs the admin role on the project."""
    before = get_project(tenant.stubs["member"], tenant.project)
    code, _ = rpc_error(
        lambda: tenant.stubs["member"].identity.UpdateProject(
            iapi.UpdateProjectRequest(project=ipb.Project(name=tenant.name, display_name="x"))
        )
    )
    assert code == PERMISSION_DENIED
    assert get_project(tenant.stubs["member"], tenant.project) == before


def test_delete_project_removes_it_with_tokens_roles_keys_and_quota(
    anonymous: Stubs, admin: Stubs, tenant: Tenant
) -> None:
    """DeleteProject's operation ends with Empty; the project and all it held are gone."""
    member = tenant.users["member"]
    key = create_key(admin, member, tenant.project)
    admin.identity.UpdateQuota(
        iapi.UpdateQuotaRequest(
            quota=ipb.Quota(
                name=f"{tenant.name}/quota",
                limits=[ipb.QuotaLimit(resource="instances", limit=3)],
            )
        )
    )
    operation = admin.identity.DeleteProject(iapi.DeleteProjectRequest(name=tenant.name))
    assert operation.name.startswith("operations/")

    done = wait(admin, operation)
    assert done.WhichOneof("result") == "response"
    assert done.response.Is(empty_pb2.Empty.DESCRIPTOR)
    code, _ = rpc_error(lambda: get_project(admin, tenant.project))
    assert code == NOT_FOUND
    assert tenant.name not in project_names(admin)
    for role, stubs in tenant.stubs.items():
        code, _ = rpc_error(lambda s=stubs: get_project(s, tenant.project))
        assert code == UNAUTHENTICATED, role
    assert all(k.project != tenant.name for k in list_keys(admin, member))
    code, _ = rpc_error(
        lambda: anonymous.identity.IssueToken(key_login(key.access_key_id, key.secret_access_key))
    )
    assert code == UNAUTHENTICATED

    # The same id makes a new, empty project: no role assignment or quota usage survived.
    admin.identity.CreateProject(
        iapi.CreateProjectRequest(project_id=tenant.project, project=ipb.Project())
    )
    roles = admin.identity.ListRoleAssignments(
        iapi.ListRoleAssignmentsRequest(parent=tenant.name)
    ).role_assignments
    assert list(roles) == []
    quota = admin.identity.GetQuota(iapi.GetQuotaRequest(name=f"{tenant.name}/quota"))
    assert all(limit.in_use == 0 for limit in quota.limits)
    assert next(limit.limit for limit in quota.limits if limit.resource == "instances") == 10


def test_delete_bootstrap_project_is_failed_precondition(admin: Stubs) -> None:
    """The bootstrap project cannot be deleted, and stays ACTIVE."""
    code, status = rpc_error(
        lambda: admin.identity.DeleteProject(iapi.DeleteProjectRequest(name="projects/admin"))
    )
    assert code == FAILED_PRECONDITION
    failure = detail(status, error_details_pb2.PreconditionFailure)
    assert failure.violations[0].subject == "projects/admin"
    assert get_project(admin, "admin").state == ipb.Project.STATE_ACTIVE


# --- users -----------------------------------------------------------------------------------


def test_user_crud_never_returns_the_password(admin: Stubs) -> None:
    """Create, get, list, update and delete a user; no response carries a password."""
    user_id = unique("u")
    name = f"users/{user_id}"
    created = admin.identity.CreateUser(
        iapi.CreateUserRequest(
            user_id=user_id,
            user=ipb.User(password=PASSWORD, display_name="Ann", email=f"{user_id}@example.com"),
        )
    )
    assert created.name == name
    assert created.password == ""
    assert (created.display_name, created.email, created.disabled) == (
        "Ann",
        f"{user_id}@example.com",
        False,
    )
    got = admin.identity.GetUser(iapi.GetUserRequest(name=name))
    assert got == created
    listed = admin.identity.ListUsers(
        iapi.ListUsersRequest(filter=f'email = "{user_id}@example.com"')
    ).users
    assert list(listed) == [created]
    updated = admin.identity.UpdateUser(
        iapi.UpdateUserRequest(
            user=ipb.User(name=name, display_name="Ann B", password="another-password"),
            update_mask=mask("display_name", "password"),
        )
    )
    assert updated.display_name == "Ann B"
    assert updated.password == ""
    admin.identity.DeleteUser(iapi.DeleteUserRequest(name=name))
    code, _ = rpc_error(lambda: admin.identity.GetUser(iapi.GetUserRequest(name=name)))
    assert code == NOT_FOUND


def test_user_changes_own_email_and_password(
    channel: grpc.Channel, anonymous: Stubs, tenant: Tenant
) -> None:
    """Users edit their own e-mail and password; a new password voids their older tokens."""
    user = tenant.users["reader"]
    stubs = tenant.stubs["reader"]
    name = f"users/{user}"
    other = Stubs(channel, sign_in(channel, user, PASSWORD, tenant.project))
    updated = stubs.identity.UpdateUser(
        iapi.UpdateUserRequest(user=ipb.User(name=name, email="me@example.com"))
    )
    assert updated.email == "me@example.com"
    stubs.identity.UpdateUser(
        iapi.UpdateUserRequest(
            user=ipb.User(name=name, password="a-brand-new-password"), update_mask=mask("password")
        )
    )
    for old in (stubs, other):
        code, _ = rpc_error(lambda s=old: s.identity.GetUser(iapi.GetUserRequest(name=name)))
        assert code == UNAUTHENTICATED
    code, _ = rpc_error(
        lambda: anonymous.identity.IssueToken(password_login(user, PASSWORD, tenant.project))
    )
    assert code == UNAUTHENTICATED
    fresh = Stubs(channel, sign_in(channel, user, "a-brand-new-password", tenant.project))
    assert fresh.identity.GetUser(iapi.GetUserRequest(name=name)).email == "me@example.com"


def test_user_cannot_disable_self_or_touch_others(admin: Stubs, tenant: Tenant) -> None:
    """`disabled` is for cloud administrators; other users are invisible (NOT_FOUND)."""
    stubs = tenant.stubs["admin"]
    name = f"users/{tenant.users['admin']}"
    before = admin.identity.GetUser(iapi.GetUserRequest(name=name))
    code, _ = rpc_error(
        lambda: stubs.identity.UpdateUser(
            iapi.UpdateUserRequest(user=ipb.User(name=name, disabled=True))
        )
    )
    assert code == PERMISSION_DENIED
    assert admin.identity.GetUser(iapi.GetUserRequest(name=name)) == before
    other = f"users/{tenant.users['member']}"
    code, _ = rpc_error(lambda: stubs.identity.GetUser(iapi.GetUserRequest(name=other)))
    assert code == NOT_FOUND
    code, _ = rpc_error(
        lambda: stubs.identity.UpdateUser(
            iapi.UpdateUserRequest(user=ipb.User(name=other, email="x@example.com"))
        )
    )
    assert code == NOT_FOUND


def test_disabling_a_user_stops_its_tokens(admin: Stubs, tenant: Tenant) -> None:
    """A disabled user's existing token fails on its next call; re-enabling allows sign-in."""
    user = tenant.users["member"]
    stubs = tenant.stubs["member"]
    admin.identity.UpdateUser(
        iapi.UpdateUserRequest(
            user=ipb.User(name=f"users/{user}", disabled=True), update_mask=mask("disabled")
        )
    )
    code, _ = rpc_error(lambda: get_project(stubs, tenant.project))
    assert code == UNAUTHENTICATED
    admin.identity.UpdateUser(
        iapi.UpdateUserRequest(
            user=ipb.User(name=f"users/{user}", disabled=False), update_mask=mask("disabled")
        )
    )
    assert sign_in(admin.channel, user, PASSWORD, tenant.project)


def test_nobody_can_delete_themselves(admin: Stubs, tenant: Tenant) -> None:
    """DeleteUser of oneself is FAILED_PRECONDITION (admin) or PERMISSION_DENIED (others)."""
    code, _ = rpc_error(
        lambda: admin.identity.DeleteUser(iapi.DeleteUserRequest(name="users/admin"))
    )
    assert code == FAILED_PRECONDITION
    assert admin.identity.GetUser(iapi.GetUserRequest(name="users/admin")).name == "users/admin"
    name = f"users/{tenant.users['admin']}"
    code, _ = rpc_error(
        lambda: tenant.stubs["admin"].identity.DeleteUser(iapi.DeleteUserRequest(name=name))
    )
    assert code == PERMISSION_DENIED


def test_delete_user_removes_its_roles_and_keys(admin: Stubs, tenant: Tenant) -> None:
    """A deleted user's tokens, role assignments and access keys go, and the quota is released."""
    user = tenant.users["member"]
    create_key(admin, user, tenant.project)
    assert in_use(admin, tenant.project, "access_keys") == 1
    admin.identity.DeleteUser(iapi.DeleteUserRequest(name=f"users/{user}"))
    code, _ = rpc_error(lambda: get_project(tenant.stubs["member"], tenant.project))
    assert code == UNAUTHENTICATED
    roles = admin.identity.ListRoleAssignments(
        iapi.ListRoleAssignmentsRequest(parent=tenant.name, filter=f'user = "users/{user}"')
    ).role_assignments
    assert list(roles) == []
    assert in_use(admin, tenant.project, "access_keys") == 0


# --- role assignments ------------------------------------------------------------------------


def test_role_assignment_crud(admin: Stubs, tenant: Tenant) -> None:
    """Grant, read, list by role and remove a role assignment."""
    user = new_user(admin)
    stubs = tenant.stubs["admin"]
    created = grant(admin, tenant.project, user, ipb.ROLE_MEMBER)
    name = f"{tenant.name}/roleAssignments/{user}-member"
    assert created.name == name
    assert (created.user, created.role) == (f"users/{user}", ipb.ROLE_MEMBER)
    got = stubs.identity.GetRoleAssignment(iapi.GetRoleAssignmentRequest(name=name))
    assert got == created
    members = stubs.identity.ListRoleAssignments(
        iapi.ListRoleAssignmentsRequest(parent=tenant.name, filter="role = member")
    ).role_assignments
    assert sorted(r.user for r in members) == sorted(
        [f"users/{user}", f"users/{tenant.users['member']}"]
    )
    assert all(r.role == ipb.ROLE_MEMBER for r in members)
    stubs.identity.DeleteRoleAssignment(iapi.DeleteRoleAssignmentRequest(name=name))
    code, _ = rpc_error(
        lambda: stubs.identity.GetRoleAssignment(iapi.GetRoleAssignmentRequest(name=name))
    )
    assert code == NOT_FOUND


def test_duplicate_role_assignment_is_already_exists(admin: Stubs, tenant: Tenant) -> None:
    """Granting a role twice is ALREADY_EXISTS and leaves one assignment."""
    user = tenant.users["reader"]
    code, _ = rpc_error(lambda: grant(admin, tenant.project, user, ipb.ROLE_READER))
    assert code == grpc.StatusCode.ALREADY_EXISTS
    roles = admin.identity.ListRoleAssignments(
        iapi.ListRoleAssignmentsRequest(parent=tenant.name, filter=f'user = "users/{user}"')
    ).role_assignments
    assert len(roles) == 1


def test_removing_a_role_takes_effect_on_the_next_call(
    channel: grpc.Channel, admin: Stubs, tenant: Tenant
) -> None:
    """A token loses a removed role at once, and stops working when no role is left."""
    user = new_user(admin)
    grant(admin, tenant.project, user, ipb.ROLE_READER)
    grant(admin, tenant.project, user, ipb.ROLE_MEMBER)
    stubs = Stubs(channel, sign_in(channel, user, PASSWORD, tenant.project))
    create_key(stubs, user, tenant.project)
    admin.identity.DeleteRoleAssignment(
        iapi.DeleteRoleAssignmentRequest(name=f"{tenant.name}/roleAssignments/{user}-member")
    )
    code, _ = rpc_error(lambda: create_key(stubs, user, tenant.project))
    assert code == PERMISSION_DENIED
    assert get_project(stubs, tenant.project).name == tenant.name
    admin.identity.DeleteRoleAssignment(
        iapi.DeleteRoleAssignmentRequest(name=f"{tenant.name}/roleAssignments/{user}-reader")
    )
    code, _ = rpc_error(lambda: get_project(stubs, tenant.project))
    assert code == UNAUTHENTICATED


def test_members_cannot_grant_roles(admin: Stubs, tenant: Tenant) -> None:
    """Role assignments are managed by the project's admins."""
    user = new_user(admin)
    code, _ = rpc_error(lambda: grant(tenant.stubs["member"], tenant.project, user, ipb.ROLE_ADMIN))
    assert code == PERMISSION_DENIED
    grant(tenant.stubs["admin"], tenant.project, user, ipb.ROLE_READER)


def test_last_cloud_admin_cannot_be_removed(fresh_cloud: Stubs) -> None:
    """Removing the only ADMIN of the bootstrap project is FAILED_PRECONDITION."""
    admin = fresh_cloud
    last = "projects/admin/roleAssignments/admin-admin"
    code, status = rpc_error(
        lambda: admin.identity.DeleteRoleAssignment(iapi.DeleteRoleAssignmentRequest(name=last))
    )
    assert code == FAILED_PRECONDITION
    assert detail(status, error_details_pb2.PreconditionFailure).violations[0].subject == last
    assert admin.identity.GetRoleAssignment(iapi.GetRoleAssignmentRequest(name=last)).name == last
    # With a second cloud admin, one of the two may go.
    second = new_user(admin)
    grant(admin, "admin", second, ipb.ROLE_ADMIN)
    admin.identity.DeleteRoleAssignment(
        iapi.DeleteRoleAssignmentRequest(name=f"projects/admin/roleAssignments/{second}-admin")
    )
    code, _ = rpc_error(
        lambda: admin.identity.DeleteRoleAssignment(iapi.DeleteRoleAssignmentRequest(name=last))
    )
    assert code == FAILED_PRECONDITION


# --- access keys -----------------------------------------------------------------------------


def test_access_key_lifecycle(anonymous: Stubs, tenant: Tenant) -> None:
    """The secret is shown once; list and get omit it; usage follows create and delete."""
    user = tenant.users["member"]
    stubs = tenant.stubs["member"]
    key = stubs.identity.CreateAccessKey(
        iapi.CreateAccessKeyRequest(
            parent=f"users/{user}",
            access_key=ipb.AccessKey(project=tenant.name, description="ci robot"),
        )
    )
    key_id = key.access_key_id
    assert len(key_id) == 20 and key_id.startswith("KUMO")
    assert key_id.isalnum() and key_id.isupper()
    assert key.name == f"users/{user}/accessKeys/{key_id}"
    assert key.secret_access_key
    assert (key.project, key.description) == (tenant.name, "ci robot")
    assert in_use(stubs, tenant.project, "access_keys") == 1

    got = stubs.identity.GetAccessKey(iapi.GetAccessKeyRequest(name=key.name))
    assert got.secret_access_key == ""
    without_secret = ipb.AccessKey()
    without_secret.CopyFrom(key)
    without_secret.secret_access_key = ""
    assert got == without_secret
    assert list_keys(stubs, user) == [without_secret]
    assert anonymous.identity.IssueToken(key_login(key_id, key.secret_access_key)).token.token

    stubs.identity.DeleteAccessKey(iapi.DeleteAccessKeyRequest(name=key.name))
    assert in_use(stubs, tenant.project, "access_keys") == 0
    assert list_keys(stubs, user) == []
    code, _ = rpc_error(
        lambda: stubs.identity.GetAccessKey(iapi.GetAccessKeyRequest(name=key.name))
    )
    assert code == NOT_FOUND
    code, _ = rpc_error(
        lambda: anonymous.identity.IssueToken(key_login(key_id, key.secret_access_key))
    )
    assert code == UNAUTHENTICATED


def test_access_keys_of_other_users_are_not_found(admin: Stubs, tenant: Tenant) -> None:
    """Users see only their own keys; cloud administrators see everyone's."""
    key = create_key(admin, tenant.users["member"], tenant.project)
    reader = tenant.stubs["reader"]
    code, _ = rpc_error(
        lambda: reader.identity.GetAccessKey(iapi.GetAccessKeyRequest(name=key.name))
    )
    assert code == NOT_FOUND
    code, _ = rpc_error(lambda: list_keys(reader, tenant.users["member"]))
    assert code == NOT_FOUND
    code, _ = rpc_error(
        lambda: create_key(tenant.stubs["admin"], tenant.users["member"], tenant.project)
    )
    assert code == NOT_FOUND
    assert [k.access_key_id for k in list_keys(admin, tenant.users["member"])] == [
        key.access_key_id
    ]


def test_access_key_over_quota_is_resource_exhausted(admin: Stubs, tenant: Tenant) -> None:
    """At the access_keys limit a create is RESOURCE_EXHAUSTED (QuotaFailure); nothing changes."""
    user = tenant.users["member"]
    first = create_key(tenant.stubs["member"], user, tenant.project)
    used = in_use(admin, tenant.project, "access_keys")
    admin.identity.UpdateQuota(
        iapi.UpdateQuotaRequest(
            quota=ipb.Quota(
                name=f"{tenant.name}/quota",
                limits=[ipb.QuotaLimit(resource="access_keys", limit=used)],
            )
        )
    )
    code, status = rpc_error(lambda: create_key(tenant.stubs["member"], user, tenant.project))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    failure = detail(status, error_details_pb2.QuotaFailure)
    assert failure.violations[0].subject == tenant.name
    assert "access_keys" in failure.violations[0].description
    assert in_use(admin, tenant.project, "access_keys") == used
    assert [k.access_key_id for k in list_keys(admin, user)] == [first.access_key_id]


# --- quotas ----------------------------------------------------------------------------------


def test_get_and_update_quota(admin: Stubs, tenant: Tenant) -> None:
    """Readers read the quota; an update replaces the given limits and keeps the others;
    each limit shows the configured default a new project starts with."""
    name = f"{tenant.name}/quota"
    before = tenant.stubs["reader"].identity.GetQuota(iapi.GetQuotaRequest(name=name))
    assert before.name == name
    resources = [limit.resource for limit in before.limits]
    assert resources == sorted(resources) and "access_keys" in resources
    updated = admin.identity.UpdateQuota(
        iapi.UpdateQuotaRequest(
            quota=ipb.Quota(
                name=name,
                etag=before.etag,
                limits=[
                    ipb.QuotaLimit(resource="instances", limit=3),
                    ipb.QuotaLimit(resource="volumes", limit=-1),
                ],
            )
        )
    )
    limits = {limit.resource: limit.limit for limit in updated.limits}
    expected = {limit.resource: limit.limit for limit in before.limits}
    expected.update(instances=3, volumes=-1)
    assert limits == expected
    assert {limit.resource: limit.default_limit for limit in updated.limits} == default_quota()
    assert updated.etag != before.etag
    assert tenant.stubs["reader"].identity.GetQuota(iapi.GetQuotaRequest(name=name)) == updated


def test_quota_update_may_refuse_limits_below_usage(admin: Stubs, tenant: Tenant) -> None:
    """With validate_usage, a limit below what the project holds is FAILED_PRECONDITION
    QUOTA_BELOW_USAGE and nothing changes; at or above it (or unlimited) it is set. Without
    it, a limit below usage is set (an operator's choice: creates then stop)."""
    name = f"{tenant.name}/quota"
    for index in range(2):
        make_network(tenant.stubs["member"], tenant.project, f"10.9{index}.0.0/24")

    def update(limit: int, validate: bool) -> ipb.Quota:
        return admin.identity.UpdateQuota(
            iapi.UpdateQuotaRequest(
                quota=ipb.Quota(
                    name=name, limits=[ipb.QuotaLimit(resource="networks", limit=limit)]
                ),
                validate_usage=validate,
            )
        )

    def networks(quota: ipb.Quota) -> tuple[int, int]:
        (found,) = [(q.limit, q.in_use) for q in quota.limits if q.resource == "networks"]
        return found

    before = admin.identity.GetQuota(iapi.GetQuotaRequest(name=name))
    assert networks(before)[1] == 2
    code, status = rpc_error(lambda: update(1, True))
    assert code == FAILED_PRECONDITION and status is not None
    failure = detail(status, error_details_pb2.PreconditionFailure)
    assert [(v.type, v.subject) for v in failure.violations] == [("QUOTA_BELOW_USAGE", name)]
    assert admin.identity.GetQuota(iapi.GetQuotaRequest(name=name)) == before
    assert networks(update(2, True)) == (2, 2)
    assert networks(update(-1, True)) == (-1, 2)
    assert networks(update(1, False)) == (1, 2)


def test_quota_updates_are_for_cloud_admins_and_checked(admin: Stubs, tenant: Tenant) -> None:
    """Project admins cannot raise limits; unknown resources and stale etags are refused."""
    name = f"{tenant.name}/quota"
    before = admin.identity.GetQuota(iapi.GetQuotaRequest(name=name))
    one = [ipb.QuotaLimit(resource="instances", limit=99)]
    code, _ = rpc_error(
        lambda: tenant.stubs["admin"].identity.UpdateQuota(
            iapi.UpdateQuotaRequest(quota=ipb.Quota(name=name, limits=one))
        )
    )
    assert code == PERMISSION_DENIED
    code, _ = rpc_error(
        lambda: admin.identity.UpdateQuota(
            iapi.UpdateQuotaRequest(
                quota=ipb.Quota(name=name, limits=[ipb.QuotaLimit(resource="unicorns", limit=1)])
            )
        )
    )
    assert code == INVALID_ARGUMENT
    code, _ = rpc_error(
        lambda: admin.identity.UpdateQuota(
            iapi.UpdateQuotaRequest(quota=ipb.Quota(name=name, limits=one, etag='"v0"'))
        )
    )
    assert code == grpc.StatusCode.ABORTED
    assert admin.identity.GetQuota(iapi.GetQuotaRequest(name=name)) == before


# --- request ids -----------------------------------------------------------------------------


def test_create_project_request_id_repeat_returns_first_result(admin: Stubs) -> None:
    """A repeated CreateProject with the same request_id returns the first project, once."""
    tag = unique("rid")
    request = iapi.CreateProjectRequest(
        project_id=unique("p"),
        project=ipb.Project(labels={"rid": tag}),
        request_id=str(uuid.uuid4()),
    )
    first = admin.identity.CreateProject(request)
    again = admin.identity.CreateProject(request)
    assert again == first
    assert project_names(admin, f'labels.rid = "{tag}"') == [first.name]


def test_create_user_request_id_repeat_returns_first_result(admin: Stubs) -> None:
    """A repeated CreateUser with the same request_id returns the first user, once."""
    tag = unique("rid")
    request = iapi.CreateUserRequest(
        user_id=unique("u"),
        user=ipb.User(password=PASSWORD, labels={"rid": tag}),
        request_id=str(uuid.uuid4()),
    )
    first = admin.identity.CreateUser(request)
    again = admin.identity.CreateUser(request)
    assert again.uid == first.uid
    assert again == first
    users = admin.identity.ListUsers(iapi.ListUsersRequest(filter=f'labels.rid = "{tag}"')).users
    assert [u.name for u in users] == [first.name]


def test_delete_project_request_id_repeat_returns_first_operation(admin: Stubs) -> None:
    """A repeated DeleteProject with the same request_id returns the same operation, once."""
    project = new_project(admin)
    request = iapi.DeleteProjectRequest(name=f"projects/{project}", request_id=str(uuid.uuid4()))
    first = admin.identity.DeleteProject(request)
    assert admin.identity.DeleteProject(request).name == first.name
    wait(admin, first)
    assert admin.identity.DeleteProject(request).name == first.name
    operations = admin.operations.ListOperations(
        operations_pb2.ListOperationsRequest(filter=f'target = "projects/{project}"')
    ).operations
    assert [op.name for op in operations] == [first.name]


def test_request_id_reused_for_another_request_is_invalid(admin: Stubs) -> None:
    """The same request_id with a different request is INVALID_ARGUMENT and creates nothing."""
    request_id = str(uuid.uuid4())
    first = unique("p")
    admin.identity.CreateProject(
        iapi.CreateProjectRequest(project_id=first, project=ipb.Project(), request_id=request_id)
    )
    second = unique("p")
    code, status = rpc_error(
        lambda: admin.identity.CreateProject(
            iapi.CreateProjectRequest(
                project_id=second, project=ipb.Project(), request_id=request_id
            )
        )
    )
    assert code == INVALID_ARGUMENT
    assert violated_fields(status) == {"request_id"}
    code, _ = rpc_error(lambda: get_project(admin, second))
    assert code == NOT_FOUND


@pytest.mark.parametrize(
    "request_id", ["not-a-uuid", "1234", "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"]
)
def test_request_id_must_be_a_uuid(admin: Stubs, request_id: str) -> None:
    """A request_id that is not a UUID is INVALID_ARGUMENT naming request_id; nothing is made."""
    project = unique("p")
    code, status = rpc_error(
        lambda: admin.identity.CreateProject(
            iapi.CreateProjectRequest(
                project_id=project, project=ipb.Project(), request_id=request_id
            )
        )
    )
    assert code == INVALID_ARGUMENT
    assert violated_fields(status) == {"request_id"}
    code, _ = rpc_error(lambda: get_project(admin, project))
    assert code == NOT_FOUND
