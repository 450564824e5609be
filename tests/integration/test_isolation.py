"""Tenant isolation, table-driven over every method of every Kumo service.

Tenant A's reader, member and admin aim each method at tenant B's things (its
project, users, role assignments, access key, quota, images, key pairs, server
groups, instances, their consoles and operations), at an operation of
`projects/admin` and at shared things (topology, flavors). Reads of other
tenants' things are NOT_FOUND (or PERMISSION_DENIED where the policy refuses
the method to the role outright); lists never show them; mutations and
instance actions fail and leave the target unchanged, as the cloud
administrator reads it before and after. Topology and flavors are readable by
every signed-in user and writable by cloud administrators only; AgentService
is for host agents (cloud administrators) only. A reader mutates nothing,
except through the self-service calls listed in SELF_SERVICE.

`test_every_method_has_a_row` fails when a service gains a method without a
row in TABLE, so every new method must state its isolation rules here.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.longrunning import operations_pb2
from google.protobuf import duration_pb2, field_mask_pb2
from google.protobuf.message import Message

from kumo.agent.v1 import agent_service_pb2 as aapi
from kumo.agent.v1 import agent_service_pb2_grpc as arpc
from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import compute_service_pb2_grpc as crpc
from kumo.compute.v1 import resources_pb2 as cpb
from kumo.identity.v1 import identity_service_pb2 as iapi
from kumo.identity.v1 import resources_pb2 as ipb
from kumo.image.v1 import image_service_pb2 as imgapi
from kumo.image.v1 import image_service_pb2_grpc as imgrpc
from kumo.image.v1 import resources_pb2 as imgpb
from kumo.network.v1 import network_service_pb2 as napi
from kumo.network.v1 import network_service_pb2_grpc as nrpc
from kumo.network.v1 import resources_pb2 as npb
from kumo.server.app import method_names
from kumo.storage.v1 import resources_pb2 as spb
from kumo.storage.v1 import storage_service_pb2 as sapi
from kumo.storage.v1 import storage_service_pb2_grpc as srpc
from kumo.topology.v1 import resources_pb2 as tpb
from kumo.topology.v1 import topology_service_pb2 as tapi
from kumo.type.v1 import operation_metadata_pb2
from tests.support.cloud import PASSWORD, ROLES, Stubs, Tenant, make_tenant, rpc_error, unique

OK = grpc.StatusCode.OK
PD = grpc.StatusCode.PERMISSION_DENIED
NF = grpc.StatusCode.NOT_FOUND
UA = grpc.StatusCode.UNAUTHENTICATED
IA = grpc.StatusCode.INVALID_ARGUMENT
ROLE_NAMES = tuple(ROLES)  # reader, member, admin

_IDENTITY = "/kumo.identity.v1.IdentityService/"
_TOPOLOGY = "/kumo.topology.v1.TopologyService/"
_OPERATIONS = "/google.longrunning.Operations/"
_IMAGE = "/kumo.image.v1.ImageService/"
_COMPUTE = "/kumo.compute.v1.ComputeService/"
_AGENT = "/kumo.agent.v1.AgentService/"
_NETWORK = "/kumo.network.v1.NetworkService/"


@dataclass(frozen=True)
class Caller:
    """One of tenant A's signed-in users."""

    role: str
    user: str  # id
    stubs: Stubs

    @property
    def user_name(self) -> str:
        """`users/{user}`."""
        return f"users/{self.user}"

    @property
    def token(self) -> str:
        """The caller's bearer token."""
        assert self.stubs.token is not None
        return self.stubs.token


@dataclass(frozen=True)
class World:
    """Tenant A (the callers), tenant B (the targets) and shared things, built once per module."""

    admin: Stubs
    a: Tenant
    b: Tenant
    b_token: str  # B's reader's token
    b_assignment: str  # B's admin's role assignment on B
    b_key: str  # an access key of B's member, acting in B
    a_reader_key: str  # an access key of A's reader, acting in A
    operation: str  # a finished operation started from projects/admin
    # Next-page tokens the cloud administrator got for all projects, all operations
    # and B's role assignments; replayed by A they must grant nothing.
    projects_page_token: str
    operations_page_token: str
    b_assignments_page_token: str
    new_id: str  # an id nothing has yet, for creates that must not happen
    a_image: str  # a PRIVATE image of A, without data
    b_image: str  # a PRIVATE image of B, with data (ACTIVE)
    b_shared: str  # a SHARED image of B, without data, shared with C (not with A)
    c_project: str  # `projects/{c}`, a third project B shares with
    region: str
    zone: str
    pool: str
    rack: str
    host: str  # never heartbeats, so nothing is ever placed in `zone`
    flavor: str  # global
    a_ready_image: str  # a PRIVATE image of A, with data (ACTIVE)
    a_key_pair: str
    a_server_group: str
    a_instance: str  # in ERROR (no valid host); built by the cloud administrator
    b_key_pair: str
    b_server_group: str  # with b_instance as member
    b_instance: str  # in ERROR (no valid host), with B's key pair, group and console output
    b_instance_uid: str
    b_operation: str  # the finished build of b_instance, started by B's member
    # Next-page tokens the cloud administrator got for B's key pairs, server groups
    # and instances (B has two of each); replayed by A they must grant nothing.
    b_key_pairs_page_token: str
    b_server_groups_page_token: str
    b_instances_page_token: str

    def caller(self, role: str) -> Caller:
        """Tenant A's user holding `role`."""
        return Caller(role, self.a.users[role], self.a.stubs[role])

    def b_user(self, role: str = "reader") -> str:
        """`users/{user}` of tenant B's user holding `role`."""
        return f"users/{self.b.users[role]}"


Call = Callable[[Caller, World], Message]
Snapshot = Callable[[World], Any]
Check = Callable[[Any, Caller, World], None]
Expect = dict[str, grpc.StatusCode]


def each(code: grpc.StatusCode) -> Expect:
    """The same outcome for the reader, the member and the admin."""
    return dict.fromkeys(ROLE_NAMES, code)


def by_role(reader: grpc.StatusCode, member: grpc.StatusCode, admin: grpc.StatusCode) -> Expect:
    """One outcome per role."""
    return {"reader": reader, "member": member, "admin": admin}


@dataclass(frozen=True)
class Case:
    """One call of a method by each of A's roles, and what must come of it."""

    label: str
    call: Call
    expect: Expect
    # Read as cloud administrator before and after; must not change (mutations).
    snapshot: Snapshot | None = None
    # Checks a successful response (lists: nothing of B's in them).
    check: Check | None = None


@dataclass(frozen=True)
class Row:
    """A method's isolation rules."""

    cases: tuple[Case, ...]
    mutates: bool = False
    # For mutations: the reader's call on its own project or itself, which must be
    # PERMISSION_DENIED (None only for calls that are wholly self-service).
    own: Call | None = None


def probe(call: Callable[[], Message]) -> Any:
    """A call's response (serialized deterministically) or its status code, to compare later."""
    try:
        return call().SerializeToString(deterministic=True)
    except grpc.RpcError as error:
        return error.code()


def mask(*paths: str) -> field_mask_pb2.FieldMask:
    """An update mask."""
    return field_mask_pb2.FieldMask(paths=list(paths))


# ---------------------------------------------------------------- cloud-admin reads


def project_state(name: Callable[[World], str]) -> Snapshot:
    return lambda w: probe(
        lambda: w.admin.identity.GetProject(iapi.GetProjectRequest(name=name(w)))
    )


def user_state(name: Callable[[World], str]) -> Snapshot:
    return lambda w: probe(lambda: w.admin.identity.GetUser(iapi.GetUserRequest(name=name(w))))


def b_assignments(w: World) -> Any:
    return probe(
        lambda: w.admin.identity.ListRoleAssignments(
            iapi.ListRoleAssignmentsRequest(parent=w.b.name, page_size=1000)
        )
    )


def b_quota(w: World) -> Any:
    return probe(lambda: w.admin.identity.GetQuota(iapi.GetQuotaRequest(name=w.b.name + "/quota")))


def b_keys(w: World) -> Any:
    keys = probe(
        lambda: w.admin.identity.ListAccessKeys(
            iapi.ListAccessKeysRequest(parent=w.b_user("member"), page_size=1000)
        )
    )
    return keys, b_quota(w)


def b_token_state(w: World) -> Any:
    return probe(lambda: w.admin.identity.ValidateToken(iapi.ValidateTokenRequest(token=w.b_token)))


def operation_state(w: World) -> Any:
    return probe(
        lambda: w.admin.operations.GetOperation(
            operations_pb2.GetOperationRequest(name=w.operation)
        )
    )


def topology_state(kind: str, name: Callable[[World], str]) -> Snapshot:
    def read(w: World) -> Any:
        method = getattr(w.admin.topology, f"Get{kind}")
        request = getattr(tapi, f"Get{kind}Request")(name=name(w))
        return probe(lambda: method(request))

    return read


def images_of(stubs: Stubs) -> imgrpc.ImageServiceStub:
    """The image service on the stubs' (authenticated) channel."""
    return imgrpc.ImageServiceStub(stubs.channel)


def b_images(w: World) -> Any:
    stub = images_of(w.admin)
    listed = probe(
        lambda: stub.ListImages(imgapi.ListImagesRequest(parent=w.b.name, page_size=1000))
    )
    members = probe(
        lambda: stub.ListImageMembers(
            imgapi.ListImageMembersRequest(parent=w.b_shared, page_size=1000)
        )
    )
    return listed, members


def upload(stubs: Stubs, name: str) -> Message:
    """UploadImageData of 64 KiB of zeros (a valid raw image)."""
    requests = [imgapi.UploadImageDataRequest(name=name, data=bytes(64 << 10))]
    return images_of(stubs).UploadImageData(iter(requests))


def download(stubs: Stubs, name: str) -> Message:
    """DownloadImageData, all chunks joined."""
    chunks = images_of(stubs).DownloadImageData(imgapi.DownloadImageDataRequest(name=name))
    return imgapi.DownloadImageDataResponse(data=b"".join(c.data for c in chunks))


def compute_of(stubs: Stubs) -> crpc.ComputeServiceStub:
    """The compute service on the stubs' (authenticated) channel."""
    return crpc.ComputeServiceStub(stubs.channel)


def agent_of(stubs: Stubs) -> arpc.AgentServiceStub:
    """The agent service on the stubs' (authenticated) channel."""
    return arpc.AgentServiceStub(stubs.channel)


def flavor_state(name: Callable[[World], str]) -> Snapshot:
    return lambda w: probe(
        lambda: compute_of(w.admin).GetFlavor(capi.GetFlavorRequest(name=name(w)))
    )


def b_key_pairs(w: World) -> Any:
    return probe(
        lambda: compute_of(w.admin).ListKeyPairs(
            capi.ListKeyPairsRequest(parent=w.b.name, page_size=1000)
        )
    )


def b_server_groups(w: World) -> Any:
    return probe(
        lambda: compute_of(w.admin).ListServerGroups(
            capi.ListServerGroupsRequest(parent=w.b.name, page_size=1000)
        )
    )


def _instances(w: World, project: str) -> Any:
    """A project's instances in every zone, and its quota (which instances use)."""
    listed = probe(
        lambda: compute_of(w.admin).ListInstances(
            capi.ListInstancesRequest(parent=f"{project}/zones/-", page_size=1000)
        )
    )
    quota = probe(lambda: w.admin.identity.GetQuota(iapi.GetQuotaRequest(name=project + "/quota")))
    return listed, quota


def a_instances(w: World) -> Any:
    return _instances(w, w.a.name)


def b_instances(w: World) -> Any:
    return _instances(w, w.b.name)


def b_console(w: World) -> Any:
    return probe(
        lambda: compute_of(w.admin).GetSerialPortOutput(
            capi.GetSerialPortOutputRequest(name=w.b_instance)
        )
    )


def b_operation_state(w: World) -> Any:
    return probe(
        lambda: w.admin.operations.GetOperation(
            operations_pb2.GetOperationRequest(name=w.b_operation)
        )
    )


# ---------------------------------------------------------------- response checks


def only_own_project(response: Any, c: Caller, w: World) -> None:
    names = [p.name for p in response.projects]
    assert w.b.name not in names
    assert names == [w.a.name]


def only_own_assignments(response: Any, c: Caller, w: World) -> None:
    names = [r.name for r in response.role_assignments]
    assert names, "A's own role assignments are listed"
    assert all(n.startswith(w.a.name + "/") for n in names), names
    assert {r.user for r in response.role_assignments} <= {f"users/{u}" for u in w.a.users.values()}


def only_own_keys(response: Any, c: Caller, w: World) -> None:
    names = [k.name for k in response.access_keys]
    assert w.b_key not in names
    assert all(n.startswith(c.user_name + "/") for n in names), names
    assert all(k.project == w.a.name for k in response.access_keys)


def only_own_operations(response: Any, c: Caller, w: World) -> None:
    # Cloud administrators (DeleteProject, A's instance) and B (its instances) started
    # operations; A lists only those its own users started (say, the volume of its storage
    # things, when those were made before this ran), not theirs.
    names = [op.name for op in response.operations]
    assert w.operation not in names and w.b_operation not in names
    for operation in response.operations:
        metadata = operation_metadata_pb2.OperationMetadata()
        assert operation.metadata.Unpack(metadata)
        assert metadata.requester.removeprefix("users/") in w.a.users.values(), metadata


def no_images_of_b(response: Any, c: Caller, w: World) -> None:
    names = [i.name for i in response.images]
    assert w.b_image not in names and w.b_shared not in names
    for image in response.images:
        assert (
            image.name.startswith(w.a.name + "/") or image.visibility == imgpb.VISIBILITY_PUBLIC
        ), image.name


def only_own(plural: str, own: str, *of_b: str) -> Check:
    """A list of A's project: A's `own` thing is in it, B's (`of_b`) and anything outside A not."""

    def check(response: Any, c: Caller, w: World) -> None:
        names = [r.name for r in getattr(response, plural)]
        assert getattr(w, own) in names
        assert not {getattr(w, field) for field in of_b} & set(names), names
        assert all(n.startswith(w.a.name + "/") for n in names), names

    return check


def _assert_empty(items: Any) -> None:
    assert list(items) == []


def named(field: str) -> Check:
    def check(response: Any, c: Caller, w: World) -> None:
        assert response.name == getattr(w, field)

    return check


def listed(plural: str, field: str) -> Check:
    def check(response: Any, c: Caller, w: World) -> None:
        assert getattr(w, field) in [r.name for r in getattr(response, plural)]

    return check


# ---------------------------------------------------------------- the table


def ident(c: Caller) -> Any:
    """The caller's identity stub."""
    return c.stubs.identity


def ops_of(c: Caller) -> Any:
    """The caller's operations stub."""
    return c.stubs.operations


def _forged_signature(key_name: str) -> iapi.AuthenticateSignatureRequest:
    """A SigV4 check of B's access key with a signature made without its secret."""
    now = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return iapi.AuthenticateSignatureRequest(
        access_key_id=key_name.rsplit("/", 1)[-1],
        credential_scope=f"{now[:8]}/kumo-1/ec2/aws4_request",
        request_time=now,
        canonical_request="POST\n/\n\nhost:kumo\n\nhost\n" + "0" * 64,
        signature="0" * 64,
    )


TABLE: dict[str, Row] = {
    # ---------------------------------------------------------------- tokens
    _IDENTITY + "IssueToken": Row(
        mutates=True,
        cases=(
            Case(
                "rescope-own-token-to-b",
                lambda c, w: ident(c).IssueToken(
                    iapi.IssueTokenRequest(
                        token=iapi.TokenCredentials(token=c.token), project=w.b.name
                    )
                ),
                each(UA),
                snapshot=b_assignments,
            ),
            Case(
                "password-into-b",
                lambda c, w: ident(c).IssueToken(
                    iapi.IssueTokenRequest(
                        password=iapi.PasswordCredentials(user=c.user_name, password=PASSWORD),
                        project=w.b.name,
                    )
                ),
                each(UA),
                snapshot=b_assignments,
            ),
        ),
    ),
    _IDENTITY + "AuthenticateSignature": Row(
        cases=(
            Case(
                "b-key-without-its-secret",
                lambda c, w: ident(c).AuthenticateSignature(_forged_signature(w.b_key)),
                each(UA),
            ),
        ),
    ),
    _IDENTITY + "ValidateToken": Row(
        cases=(
            Case(
                "b-token",
                lambda c, w: ident(c).ValidateToken(iapi.ValidateTokenRequest(token=w.b_token)),
                each(PD),
            ),
        ),
    ),
    _IDENTITY + "RevokeToken": Row(
        mutates=True,
        cases=(
            Case(
                "b-token",
                lambda c, w: ident(c).RevokeToken(iapi.RevokeTokenRequest(token=w.b_token)),
                each(PD),
                snapshot=b_token_state,
            ),
        ),
        own=lambda c, w: ident(c).RevokeToken(
            iapi.RevokeTokenRequest(token=w.a.stubs["member"].token or "")
        ),
    ),
    # ---------------------------------------------------------------- projects
    _IDENTITY + "CreateProject": Row(
        mutates=True,
        cases=(
            Case(
                "new",
                lambda c, w: ident(c).CreateProject(
                    iapi.CreateProjectRequest(project_id=w.new_id, project=ipb.Project())
                ),
                each(PD),
                snapshot=project_state(lambda w: f"projects/{w.new_id}"),
            ),
        ),
        own=lambda c, w: ident(c).CreateProject(
            iapi.CreateProjectRequest(project_id=w.new_id, project=ipb.Project())
        ),
    ),
    _IDENTITY + "GetProject": Row(
        cases=(
            Case(
                "b",
                lambda c, w: ident(c).GetProject(iapi.GetProjectRequest(name=w.b.name)),
                each(NF),
            ),
        ),
    ),
    _IDENTITY + "ListProjects": Row(
        cases=(
            Case(
                "all",
                lambda c, w: ident(c).ListProjects(iapi.ListProjectsRequest(page_size=1000)),
                each(OK),
                check=only_own_project,
            ),
            Case(
                "admin-page-token",
                lambda c, w: ident(c).ListProjects(
                    iapi.ListProjectsRequest(page_size=1, page_token=w.projects_page_token)
                ),
                each(IA),
            ),
            Case(
                "filter-active",
                lambda c, w: ident(c).ListProjects(
                    iapi.ListProjectsRequest(page_size=1000, filter='state = "STATE_ACTIVE"')
                ),
                each(OK),
                check=only_own_project,
            ),
        ),
    ),
    _IDENTITY + "UpdateProject": Row(
        mutates=True,
        cases=(
            Case(
                "b",
                lambda c, w: ident(c).UpdateProject(
                    iapi.UpdateProjectRequest(
                        project=ipb.Project(name=w.b.name, display_name="taken over"),
                        update_mask=mask("display_name"),
                    )
                ),
                by_role(PD, PD, NF),
                snapshot=project_state(lambda w: w.b.name),
            ),
        ),
        own=lambda c, w: ident(c).UpdateProject(
            iapi.UpdateProjectRequest(
                project=ipb.Project(name=w.a.name, display_name="renamed"),
                update_mask=mask("display_name"),
            )
        ),
    ),
    _IDENTITY + "DeleteProject": Row(
        mutates=True,
        cases=(
            Case(
                "b",
                lambda c, w: ident(c).DeleteProject(iapi.DeleteProjectRequest(name=w.b.name)),
                each(PD),
                snapshot=project_state(lambda w: w.b.name),
            ),
        ),
        own=lambda c, w: ident(c).DeleteProject(iapi.DeleteProjectRequest(name=w.a.name)),
    ),
    # ---------------------------------------------------------------- users
    _IDENTITY + "CreateUser": Row(
        mutates=True,
        cases=(
            Case(
                "new",
                lambda c, w: ident(c).CreateUser(
                    iapi.CreateUserRequest(user_id=w.new_id, user=ipb.User(password=PASSWORD))
                ),
                each(PD),
                snapshot=user_state(lambda w: f"users/{w.new_id}"),
            ),
        ),
        own=lambda c, w: ident(c).CreateUser(
            iapi.CreateUserRequest(user_id=w.new_id, user=ipb.User(password=PASSWORD))
        ),
    ),
    _IDENTITY + "GetUser": Row(
        cases=(
            Case(
                "b-user",
                lambda c, w: ident(c).GetUser(iapi.GetUserRequest(name=w.b_user())),
                each(NF),
            ),
            Case(
                "a-peer",  # users see only themselves, even within their project
                lambda c, w: ident(c).GetUser(
                    iapi.GetUserRequest(
                        name=f"users/{w.a.users['admin' if c.role != 'admin' else 'reader']}"
                    )
                ),
                each(NF),
            ),
        ),
    ),
    _IDENTITY + "ListUsers": Row(
        cases=(
            Case(
                "all",
                lambda c, w: ident(c).ListUsers(iapi.ListUsersRequest(page_size=1000)),
                each(PD),
            ),
        ),
    ),
    _IDENTITY + "UpdateUser": Row(
        mutates=True,
        cases=(
            Case(
                "b-user-display-name",
                lambda c, w: ident(c).UpdateUser(
                    iapi.UpdateUserRequest(
                        user=ipb.User(name=w.b_user(), display_name="taken over"),
                        update_mask=mask("display_name"),
                    )
                ),
                each(NF),
                snapshot=user_state(lambda w: w.b_user()),
            ),
            Case(
                "b-user-password",
                lambda c, w: ident(c).UpdateUser(
                    iapi.UpdateUserRequest(
                        user=ipb.User(name=w.b_user(), password="a-new-password-123"),
                        update_mask=mask("password"),
                    )
                ),
                each(NF),
                snapshot=lambda w: (user_state(lambda w: w.b_user())(w), b_token_state(w)),
            ),
            Case(
                "b-user-disable",
                lambda c, w: ident(c).UpdateUser(
                    iapi.UpdateUserRequest(
                        user=ipb.User(name=w.b_user(), disabled=True),
                        update_mask=mask("disabled"),
                    )
                ),
                each(NF),
                snapshot=lambda w: (user_state(lambda w: w.b_user())(w), b_token_state(w)),
            ),
        ),
        # Users may change only their own display name, e-mail and password.
        own=lambda c, w: ident(c).UpdateUser(
            iapi.UpdateUserRequest(
                user=ipb.User(name=c.user_name, labels={"tier": "gold"}),
                update_mask=mask("labels"),
            )
        ),
    ),
    _IDENTITY + "DeleteUser": Row(
        mutates=True,
        cases=(
            Case(
                "b-user",
                lambda c, w: ident(c).DeleteUser(iapi.DeleteUserRequest(name=w.b_user())),
                each(PD),
                snapshot=user_state(lambda w: w.b_user()),
            ),
        ),
        own=lambda c, w: ident(c).DeleteUser(
            iapi.DeleteUserRequest(name=f"users/{w.a.users['member']}")
        ),
    ),
    # ---------------------------------------------------------------- role assignments
    _IDENTITY + "CreateRoleAssignment": Row(
        mutates=True,
        cases=(
            Case(
                "self-on-b",
                lambda c, w: ident(c).CreateRoleAssignment(
                    iapi.CreateRoleAssignmentRequest(
                        parent=w.b.name,
                        role_assignment=ipb.RoleAssignment(user=c.user_name, role=ipb.ROLE_ADMIN),
                    )
                ),
                by_role(PD, PD, NF),
                snapshot=b_assignments,
            ),
            Case(
                "b-user-on-b",
                lambda c, w: ident(c).CreateRoleAssignment(
                    iapi.CreateRoleAssignmentRequest(
                        parent=w.b.name,
                        role_assignment=ipb.RoleAssignment(user=w.b_user(), role=ipb.ROLE_ADMIN),
                    )
                ),
                by_role(PD, PD, NF),
                snapshot=b_assignments,
            ),
        ),
        own=lambda c, w: ident(c).CreateRoleAssignment(
            iapi.CreateRoleAssignmentRequest(
                parent=w.a.name,
                role_assignment=ipb.RoleAssignment(user=c.user_name, role=ipb.ROLE_ADMIN),
            )
        ),
    ),
    _IDENTITY + "GetRoleAssignment": Row(
        cases=(
            Case(
                "b",
                lambda c, w: ident(c).GetRoleAssignment(
                    iapi.GetRoleAssignmentRequest(name=w.b_assignment)
                ),
                each(NF),
            ),
        ),
    ),
    _IDENTITY + "ListRoleAssignments": Row(
        cases=(
            Case(
                "b",
                lambda c, w: ident(c).ListRoleAssignments(
                    iapi.ListRoleAssignmentsRequest(parent=w.b.name, page_size=1000)
                ),
                each(NF),
            ),
            Case(
                "a",
                lambda c, w: ident(c).ListRoleAssignments(
                    iapi.ListRoleAssignmentsRequest(parent=w.a.name, page_size=1000)
                ),
                each(OK),
                check=only_own_assignments,
            ),
            Case(
                "a-with-admin-page-token-of-b",
                lambda c, w: ident(c).ListRoleAssignments(
                    iapi.ListRoleAssignmentsRequest(
                        parent=w.a.name, page_size=1, page_token=w.b_assignments_page_token
                    )
                ),
                each(IA),
            ),
            Case(
                "a-filtered-by-b-user",
                lambda c, w: ident(c).ListRoleAssignments(
                    iapi.ListRoleAssignmentsRequest(
                        parent=w.a.name, filter=f'user = "{w.b_user("admin")}"'
                    )
                ),
                each(OK),
                check=lambda r, c, w: _assert_empty(r.role_assignments),
            ),
        ),
    ),
    _IDENTITY + "DeleteRoleAssignment": Row(
        mutates=True,
        cases=(
            Case(
                "b",
                lambda c, w: ident(c).DeleteRoleAssignment(
                    iapi.DeleteRoleAssignmentRequest(name=w.b_assignment)
                ),
                by_role(PD, PD, NF),
                snapshot=b_assignments,
            ),
        ),
        own=lambda c, w: ident(c).DeleteRoleAssignment(
            iapi.DeleteRoleAssignmentRequest(
                name=f"{w.a.name}/roleAssignments/{w.a.users['member']}-member"
            )
        ),
    ),
    # ---------------------------------------------------------------- access keys
    _IDENTITY + "CreateAccessKey": Row(
        mutates=True,
        cases=(
            Case(
                "b-user-in-b",
                lambda c, w: ident(c).CreateAccessKey(
                    iapi.CreateAccessKeyRequest(
                        parent=w.b_user("member"), access_key=ipb.AccessKey(project=w.b.name)
                    )
                ),
                by_role(PD, NF, NF),
                snapshot=b_keys,
            ),
            Case(
                # Refused before B is looked up, so the answer says nothing about B.
                "self-in-b",
                lambda c, w: ident(c).CreateAccessKey(
                    iapi.CreateAccessKeyRequest(
                        parent=c.user_name, access_key=ipb.AccessKey(project=w.b.name)
                    )
                ),
                by_role(PD, IA, IA),
                snapshot=b_quota,
            ),
        ),
        own=lambda c, w: ident(c).CreateAccessKey(
            iapi.CreateAccessKeyRequest(
                parent=c.user_name, access_key=ipb.AccessKey(project=w.a.name)
            )
        ),
    ),
    _IDENTITY + "GetAccessKey": Row(
        cases=(
            Case(
                "b",
                lambda c, w: ident(c).GetAccessKey(iapi.GetAccessKeyRequest(name=w.b_key)),
                each(NF),
            ),
        ),
    ),
    _IDENTITY + "ListAccessKeys": Row(
        cases=(
            Case(
                "b-user",
                lambda c, w: ident(c).ListAccessKeys(
                    iapi.ListAccessKeysRequest(parent=w.b_user("member"), page_size=1000)
                ),
                each(NF),
            ),
            Case(
                "self",
                lambda c, w: ident(c).ListAccessKeys(
                    iapi.ListAccessKeysRequest(parent=c.user_name, page_size=1000)
                ),
                each(OK),
                check=only_own_keys,
            ),
        ),
    ),
    _IDENTITY + "DeleteAccessKey": Row(
        mutates=True,
        cases=(
            Case(
                "b",
                lambda c, w: ident(c).DeleteAccessKey(iapi.DeleteAccessKeyRequest(name=w.b_key)),
                by_role(PD, NF, NF),
                snapshot=b_keys,
            ),
        ),
        own=lambda c, w: ident(c).DeleteAccessKey(iapi.DeleteAccessKeyRequest(name=w.a_reader_key)),
    ),
    # ---------------------------------------------------------------- quotas
    _IDENTITY + "GetQuota": Row(
        cases=(
            Case(
                "b",
                lambda c, w: ident(c).GetQuota(iapi.GetQuotaRequest(name=w.b.name + "/quota")),
                each(NF),
            ),
        ),
    ),
    _IDENTITY + "UpdateQuota": Row(
        mutates=True,
        cases=(
            Case(
                "b",
                lambda c, w: ident(c).UpdateQuota(
                    iapi.UpdateQuotaRequest(
                        quota=ipb.Quota(
                            name=w.b.name + "/quota",
                            limits=[ipb.QuotaLimit(resource="instances", limit=1000)],
                        )
                    )
                ),
                each(PD),
                snapshot=b_quota,
            ),
        ),
        own=lambda c, w: ident(c).UpdateQuota(
            iapi.UpdateQuotaRequest(
                quota=ipb.Quota(
                    name=w.a.name + "/quota",
                    limits=[ipb.QuotaLimit(resource="instances", limit=1000)],
                )
            )
        ),
    ),
    # ---------------------------------------------------------------- operations
    _OPERATIONS + "GetOperation": Row(
        cases=(
            Case(
                "admin-project-op",
                lambda c, w: ops_of(c).GetOperation(
                    operations_pb2.GetOperationRequest(name=w.operation)
                ),
                each(NF),
            ),
            Case(
                "b-instance-build",
                lambda c, w: ops_of(c).GetOperation(
                    operations_pb2.GetOperationRequest(name=w.b_operation)
                ),
                each(NF),
            ),
        ),
    ),
    _OPERATIONS + "ListOperations": Row(
        cases=(
            Case(
                "all",
                lambda c, w: ops_of(c).ListOperations(
                    operations_pb2.ListOperationsRequest(name="operations", page_size=1000)
                ),
                each(OK),
                check=only_own_operations,
            ),
            Case(
                "admin-page-token",
                lambda c, w: ops_of(c).ListOperations(
                    operations_pb2.ListOperationsRequest(
                        page_size=1, page_token=w.operations_page_token
                    )
                ),
                each(IA),
            ),
            Case(
                "done",
                lambda c, w: ops_of(c).ListOperations(
                    operations_pb2.ListOperationsRequest(page_size=1000, filter='done = "true"')
                ),
                each(OK),
                check=only_own_operations,
            ),
        ),
    ),
    _OPERATIONS + "WaitOperation": Row(
        cases=(
            Case(
                "admin-project-op",
                lambda c, w: ops_of(c).WaitOperation(
                    operations_pb2.WaitOperationRequest(
                        name=w.operation, timeout=duration_pb2.Duration(nanos=100_000_000)
                    )
                ),
                each(NF),
            ),
            Case(
                "b-instance-build",
                lambda c, w: ops_of(c).WaitOperation(
                    operations_pb2.WaitOperationRequest(
                        name=w.b_operation, timeout=duration_pb2.Duration(nanos=100_000_000)
                    )
                ),
                each(NF),
            ),
        ),
    ),
    _OPERATIONS + "CancelOperation": Row(
        mutates=True,
        cases=(
            Case(
                "admin-project-op",
                lambda c, w: ops_of(c).CancelOperation(
                    operations_pb2.CancelOperationRequest(name=w.operation)
                ),
                by_role(PD, NF, NF),
                snapshot=operation_state,
            ),
            Case(
                "b-instance-build",
                lambda c, w: ops_of(c).CancelOperation(
                    operations_pb2.CancelOperationRequest(name=w.b_operation)
                ),
                by_role(PD, NF, NF),
                snapshot=b_operation_state,
            ),
        ),
        # A has no operation of its own; the policy refuses before any lookup.
        own=lambda c, w: ops_of(c).CancelOperation(
            operations_pb2.CancelOperationRequest(name=w.operation)
        ),
    ),
    _OPERATIONS + "DeleteOperation": Row(
        mutates=True,
        cases=(
            Case(
                "admin-project-op",
                lambda c, w: ops_of(c).DeleteOperation(
                    operations_pb2.DeleteOperationRequest(name=w.operation)
                ),
                by_role(PD, NF, NF),
                snapshot=operation_state,
            ),
            Case(
                "b-instance-build",
                lambda c, w: ops_of(c).DeleteOperation(
                    operations_pb2.DeleteOperationRequest(name=w.b_operation)
                ),
                by_role(PD, NF, NF),
                snapshot=b_operation_state,
            ),
        ),
        own=lambda c, w: ops_of(c).DeleteOperation(
            operations_pb2.DeleteOperationRequest(name=w.operation)
        ),
    ),
}


def _image_member(w: World, project: str) -> Message:
    return imgapi.UpdateImageMemberRequest(
        image_member=imgpb.ImageMember(
            name=f"{w.b_shared}/members/{project.removeprefix('projects/')}",
            state=imgpb.ImageMember.STATE_ACCEPTED,
        ),
        update_mask=mask("state"),
    )


TABLE.update(
    {
        _IMAGE + "CreateImage": Row(
            mutates=True,
            cases=(
                Case(
                    "in-b",
                    lambda c, w: images_of(c.stubs).CreateImage(
                        imgapi.CreateImageRequest(
                            parent=w.b.name,
                            image_id=w.new_id,
                            image=imgpb.Image(disk_format=imgpb.DISK_FORMAT_RAW),
                        )
                    ),
                    by_role(PD, NF, NF),
                    snapshot=b_images,
                ),
            ),
            own=lambda c, w: images_of(c.stubs).CreateImage(
                imgapi.CreateImageRequest(
                    parent=w.a.name,
                    image_id=w.new_id,
                    image=imgpb.Image(disk_format=imgpb.DISK_FORMAT_RAW),
                )
            ),
        ),
        _IMAGE + "UploadImageData": Row(
            mutates=True,
            cases=(
                Case(
                    "b-pending",
                    lambda c, w: upload(c.stubs, w.b_shared),
                    by_role(PD, NF, NF),
                    snapshot=b_images,
                ),
            ),
            own=lambda c, w: upload(c.stubs, w.a_image),
        ),
        _IMAGE + "DownloadImageData": Row(
            cases=(Case("b-active", lambda c, w: download(c.stubs, w.b_image), each(NF)),),
        ),
        _IMAGE + "GetImage": Row(
            cases=(
                Case(
                    "b-private",
                    lambda c, w: images_of(c.stubs).GetImage(
                        imgapi.GetImageRequest(name=w.b_image)
                    ),
                    each(NF),
                ),
                Case(
                    "b-shared-with-c",
                    lambda c, w: images_of(c.stubs).GetImage(
                        imgapi.GetImageRequest(name=w.b_shared)
                    ),
                    each(NF),
                ),
            ),
        ),
        _IMAGE + "ListImages": Row(
            cases=(
                Case(
                    "in-b",
                    lambda c, w: images_of(c.stubs).ListImages(
                        imgapi.ListImagesRequest(parent=w.b.name, page_size=1000)
                    ),
                    each(OK),
                    check=no_images_of_b,
                ),
                Case(
                    "everywhere",
                    lambda c, w: images_of(c.stubs).ListImages(
                        imgapi.ListImagesRequest(parent="projects/-", page_size=1000)
                    ),
                    each(OK),
                    check=no_images_of_b,
                ),
            ),
        ),
        _IMAGE + "UpdateImage": Row(
            mutates=True,
            cases=(
                Case(
                    "b-private",
                    lambda c, w: images_of(c.stubs).UpdateImage(
                        imgapi.UpdateImageRequest(
                            image=imgpb.Image(name=w.b_image, display_name="taken over"),
                            update_mask=mask("display_name"),
                        )
                    ),
                    by_role(PD, NF, NF),
                    snapshot=b_images,
                ),
            ),
            own=lambda c, w: images_of(c.stubs).UpdateImage(
                imgapi.UpdateImageRequest(
                    image=imgpb.Image(name=w.a_image, display_name="renamed"),
                    update_mask=mask("display_name"),
                )
            ),
        ),
        _IMAGE + "DeleteImage": Row(
            mutates=True,
            cases=(
                Case(
                    "b-private",
                    lambda c, w: images_of(c.stubs).DeleteImage(
                        imgapi.DeleteImageRequest(name=w.b_image)
                    ),
                    by_role(PD, NF, NF),
                    snapshot=b_images,
                ),
            ),
            own=lambda c, w: images_of(c.stubs).DeleteImage(
                imgapi.DeleteImageRequest(name=w.a_image)
            ),
        ),
        _IMAGE + "CreateImageMember": Row(
            mutates=True,
            cases=(
                Case(
                    "share-b-image-with-a",
                    lambda c, w: images_of(c.stubs).CreateImageMember(
                        imgapi.CreateImageMemberRequest(parent=w.b_shared, member_project=w.a.name)
                    ),
                    by_role(PD, NF, NF),
                    snapshot=b_images,
                ),
            ),
            own=lambda c, w: images_of(c.stubs).CreateImageMember(
                imgapi.CreateImageMemberRequest(parent=w.a_image, member_project=w.b.name)
            ),
        ),
        _IMAGE + "ListImageMembers": Row(
            cases=(
                Case(
                    "b-shared",
                    lambda c, w: images_of(c.stubs).ListImageMembers(
                        imgapi.ListImageMembersRequest(parent=w.b_shared)
                    ),
                    each(NF),
                ),
            ),
        ),
        _IMAGE + "UpdateImageMember": Row(
            mutates=True,
            cases=(
                Case(
                    "c-membership",
                    lambda c, w: images_of(c.stubs).UpdateImageMember(
                        _image_member(w, w.c_project)
                    ),
                    by_role(PD, NF, NF),
                    snapshot=b_images,
                ),
                Case(
                    "self-invite",  # A is no member: accepting must not make it one
                    lambda c, w: images_of(c.stubs).UpdateImageMember(_image_member(w, w.a.name)),
                    by_role(PD, NF, NF),
                    snapshot=b_images,
                ),
            ),
            own=lambda c, w: images_of(c.stubs).UpdateImageMember(_image_member(w, w.a.name)),
        ),
        _IMAGE + "DeleteImageMember": Row(
            mutates=True,
            cases=(
                Case(
                    "c-membership",
                    lambda c, w: images_of(c.stubs).DeleteImageMember(
                        imgapi.DeleteImageMemberRequest(
                            name=f"{w.b_shared}/members/{w.c_project.removeprefix('projects/')}"
                        )
                    ),
                    by_role(PD, NF, NF),
                    snapshot=b_images,
                ),
            ),
            own=lambda c, w: images_of(c.stubs).DeleteImageMember(
                imgapi.DeleteImageMemberRequest(name=f"{w.a_image}/members/{w.b.project}")
            ),
        ),
    }
)


# ---------------------------------------------------------------- topology rows

_PARENTS = {"Zone": "region", "Pool": "zone", "Rack": "pool", "Host": "rack"}


def _new_topology(kind: str, w: World) -> Message:
    singular = kind.lower()
    fields: dict[str, Any] = {"display_name": "intruder"}
    if kind in _PARENTS:
        fields[_PARENTS[kind]] = getattr(w, _PARENTS[kind])
    if kind == "Pool":
        fields["hypervisor_kind"] = tpb.HYPERVISOR_KIND_KVM
    if kind == "Host":
        fields["address"] = "192.0.2.66"
    message = getattr(tpb, kind)(**fields)
    return getattr(tapi, f"Create{kind}Request")(**{singular: message, f"{singular}_id": w.new_id})


def _topology_rows(kind: str) -> dict[str, Row]:
    singular, plural = kind.lower(), kind.lower() + "s"

    def target(w: World) -> str:
        return str(getattr(w, singular))

    state = topology_state(kind, target)

    def stub(c: Caller, verb: str, suffix: str = "") -> Any:
        return getattr(c.stubs.topology, f"{verb}{kind}{suffix}")

    def create(c: Caller, w: World) -> Message:
        return stub(c, "Create")(_new_topology(kind, w))

    def update(c: Caller, w: World) -> Message:
        message = getattr(tpb, kind)(name=target(w), display_name="taken over")
        request = getattr(tapi, f"Update{kind}Request")(
            **{singular: message, "update_mask": mask("display_name")}
        )
        return stub(c, "Update")(request)

    def delete(c: Caller, w: World) -> Message:
        return stub(c, "Delete")(getattr(tapi, f"Delete{kind}Request")(name=target(w)))

    def write(name: str, call: Call, snapshot: Snapshot) -> Row:
        return Row(mutates=True, cases=(Case(name, call, each(PD), snapshot=snapshot),), own=call)

    new_state = topology_state(kind, lambda w: f"{plural}/{w.new_id}")
    return {
        _TOPOLOGY + f"Create{kind}": write("new", create, new_state),
        _TOPOLOGY + f"Get{kind}": Row(
            cases=(
                Case(
                    "shared",
                    lambda c, w: stub(c, "Get")(getattr(tapi, f"Get{kind}Request")(name=target(w))),
                    each(OK),
                    check=named(singular),
                ),
            ),
        ),
        _TOPOLOGY + f"List{kind}s": Row(
            cases=(
                Case(
                    "shared",
                    lambda c, w: stub(c, "List", "s")(
                        getattr(tapi, f"List{kind}sRequest")(page_size=1000)
                    ),
                    each(OK),
                    check=listed(plural, singular),
                ),
            ),
        ),
        _TOPOLOGY + f"Update{kind}": write("shared", update, state),
        _TOPOLOGY + f"Delete{kind}": write("shared", delete, state),
    }


for _kind in ("Region", "Zone", "Pool", "Rack", "Host"):
    TABLE.update(_topology_rows(_kind))


def _host_call(method: str) -> Call:
    def call(c: Caller, w: World) -> Message:
        request = getattr(tapi, f"{method}Request")(name=w.host)
        return getattr(c.stubs.topology, method)(request)

    return call


for _method in ("EnableHost", "DisableHost", "EnterHostMaintenance", "ExitHostMaintenance"):
    TABLE[_TOPOLOGY + _method] = Row(
        mutates=True,
        cases=(
            Case("shared", _host_call(_method), each(PD), topology_state("Host", lambda w: w.host)),
        ),
        own=_host_call(_method),
    )


# ---------------------------------------------------------------- compute rows


def _new_flavor(c: Caller, w: World) -> Message:
    return compute_of(c.stubs).CreateFlavor(
        capi.CreateFlavorRequest(
            flavor_id=w.new_id, flavor=cpb.Flavor(vcpus=1, memory_mib=128, disk_gib=1)
        )
    )


def _update_flavor(c: Caller, w: World) -> Message:
    return compute_of(c.stubs).UpdateFlavor(
        capi.UpdateFlavorRequest(
            flavor=cpb.Flavor(name=w.flavor, display_name="taken over"),
            update_mask=mask("display_name"),
        )
    )


def _delete_flavor(c: Caller, w: World) -> Message:
    return compute_of(c.stubs).DeleteFlavor(capi.DeleteFlavorRequest(name=w.flavor))


def _new_instance(project: str, w: World, **spec: Any) -> capi.CreateInstanceRequest:
    """CreateInstance of `w.new_id` in `project` in the zone (by default from A's ACTIVE image)."""
    fields: dict[str, Any] = {"flavor": w.flavor, "image": w.a_ready_image, **spec}
    return capi.CreateInstanceRequest(
        parent=f"{project}/{w.zone}", instance_id=w.new_id, instance=cpb.Instance(**fields)
    )


def _instance_update(name: str) -> capi.UpdateInstanceRequest:
    return capi.UpdateInstanceRequest(
        instance=cpb.Instance(name=name, display_name="taken over", labels={"owner": "a"}),
        update_mask=mask("display_name", "labels"),
    )


TABLE.update(
    {
        # ------------------------------------------------------------ flavors (global)
        _COMPUTE + "CreateFlavor": Row(
            mutates=True,
            cases=(
                Case(
                    "new",
                    _new_flavor,
                    each(PD),
                    snapshot=flavor_state(lambda w: f"flavors/{w.new_id}"),
                ),
            ),
            own=_new_flavor,
        ),
        _COMPUTE + "GetFlavor": Row(
            cases=(
                Case(
                    "shared",
                    lambda c, w: compute_of(c.stubs).GetFlavor(
                        capi.GetFlavorRequest(name=w.flavor)
                    ),
                    each(OK),
                    check=named("flavor"),
                ),
            ),
        ),
        _COMPUTE + "ListFlavors": Row(
            cases=(
                Case(
                    "all",
                    lambda c, w: compute_of(c.stubs).ListFlavors(
                        capi.ListFlavorsRequest(page_size=1000)
                    ),
                    each(OK),
                    check=listed("flavors", "flavor"),
                ),
            ),
        ),
        _COMPUTE + "UpdateFlavor": Row(
            mutates=True,
            cases=(
                Case(
                    "shared",
                    _update_flavor,
                    each(PD),
                    snapshot=flavor_state(lambda w: w.flavor),
                ),
            ),
            own=_update_flavor,
        ),
        _COMPUTE + "DeleteFlavor": Row(
            mutates=True,
            cases=(
                Case(
                    "shared",
                    _delete_flavor,
                    each(PD),
                    snapshot=flavor_state(lambda w: w.flavor),
                ),
            ),
            own=_delete_flavor,
        ),
        # ------------------------------------------------------------ key pairs
        _COMPUTE + "CreateKeyPair": Row(
            mutates=True,
            cases=(
                Case(
                    "in-b",
                    lambda c, w: compute_of(c.stubs).CreateKeyPair(
                        capi.CreateKeyPairRequest(
                            parent=w.b.name, key_pair_id=w.new_id, key_pair=cpb.KeyPair()
                        )
                    ),
                    by_role(PD, NF, NF),
                    snapshot=b_key_pairs,
                ),
            ),
            own=lambda c, w: compute_of(c.stubs).CreateKeyPair(
                capi.CreateKeyPairRequest(
                    parent=w.a.name, key_pair_id=w.new_id, key_pair=cpb.KeyPair()
                )
            ),
        ),
        _COMPUTE + "GetKeyPair": Row(
            cases=(
                Case(
                    "b",
                    lambda c, w: compute_of(c.stubs).GetKeyPair(
                        capi.GetKeyPairRequest(name=w.b_key_pair)
                    ),
                    each(NF),
                ),
            ),
        ),
        _COMPUTE + "ListKeyPairs": Row(
            cases=(
                Case(
                    "b",
                    lambda c, w: compute_of(c.stubs).ListKeyPairs(
                        capi.ListKeyPairsRequest(parent=w.b.name, page_size=1000)
                    ),
                    each(NF),
                ),
                Case(
                    "a",
                    lambda c, w: compute_of(c.stubs).ListKeyPairs(
                        capi.ListKeyPairsRequest(parent=w.a.name, page_size=1000)
                    ),
                    each(OK),
                    check=only_own("key_pairs", "a_key_pair", "b_key_pair"),
                ),
                Case(
                    "a-with-admin-page-token-of-b",
                    lambda c, w: compute_of(c.stubs).ListKeyPairs(
                        capi.ListKeyPairsRequest(
                            parent=w.a.name, page_size=1, page_token=w.b_key_pairs_page_token
                        )
                    ),
                    each(IA),
                ),
            ),
        ),
        _COMPUTE + "UpdateKeyPair": Row(
            mutates=True,
            cases=(
                Case(
                    "b",
                    lambda c, w: compute_of(c.stubs).UpdateKeyPair(
                        capi.UpdateKeyPairRequest(
                            key_pair=cpb.KeyPair(name=w.b_key_pair, labels={"x": "y"})
                        )
                    ),
                    by_role(PD, NF, NF),
                    snapshot=b_key_pairs,
                ),
            ),
            own=lambda c, w: compute_of(c.stubs).UpdateKeyPair(
                capi.UpdateKeyPairRequest(
                    key_pair=cpb.KeyPair(name=w.a_key_pair, labels={"x": "y"})
                )
            ),
        ),
        _COMPUTE + "DeleteKeyPair": Row(
            mutates=True,
            cases=(
                Case(
                    "b",
                    lambda c, w: compute_of(c.stubs).DeleteKeyPair(
                        capi.DeleteKeyPairRequest(name=w.b_key_pair)
                    ),
                    by_role(PD, NF, NF),
                    snapshot=b_key_pairs,
                ),
            ),
            own=lambda c, w: compute_of(c.stubs).DeleteKeyPair(
                capi.DeleteKeyPairRequest(name=w.a_key_pair)
            ),
        ),
        # ------------------------------------------------------------ server groups
        _COMPUTE + "CreateServerGroup": Row(
            mutates=True,
            cases=(
                Case(
                    "in-b",
                    lambda c, w: compute_of(c.stubs).CreateServerGroup(
                        capi.CreateServerGroupRequest(
                            parent=w.b.name,
                            server_group_id=w.new_id,
                            server_group=cpb.ServerGroup(policy=cpb.ServerGroup.POLICY_AFFINITY),
                        )
                    ),
                    by_role(PD, NF, NF),
                    snapshot=b_server_groups,
                ),
            ),
            own=lambda c, w: compute_of(c.stubs).CreateServerGroup(
                capi.CreateServerGroupRequest(
                    parent=w.a.name,
                    server_group_id=w.new_id,
                    server_group=cpb.ServerGroup(policy=cpb.ServerGroup.POLICY_AFFINITY),
                )
            ),
        ),
        _COMPUTE + "GetServerGroup": Row(
            cases=(
                Case(
                    "b",
                    lambda c, w: compute_of(c.stubs).GetServerGroup(
                        capi.GetServerGroupRequest(name=w.b_server_group)
                    ),
                    each(NF),
                ),
            ),
        ),
        _COMPUTE + "ListServerGroups": Row(
            cases=(
                Case(
                    "b",
                    lambda c, w: compute_of(c.stubs).ListServerGroups(
                        capi.ListServerGroupsRequest(parent=w.b.name, page_size=1000)
                    ),
                    each(NF),
                ),
                Case(
                    "a",
                    lambda c, w: compute_of(c.stubs).ListServerGroups(
                        capi.ListServerGroupsRequest(parent=w.a.name, page_size=1000)
                    ),
                    each(OK),
                    check=only_own("server_groups", "a_server_group", "b_server_group"),
                ),
                Case(
                    "a-with-admin-page-token-of-b",
                    lambda c, w: compute_of(c.stubs).ListServerGroups(
                        capi.ListServerGroupsRequest(
                            parent=w.a.name, page_size=1, page_token=w.b_server_groups_page_token
                        )
                    ),
                    each(IA),
                ),
            ),
        ),
        _COMPUTE + "DeleteServerGroup": Row(
            mutates=True,
            cases=(
                Case(
                    "b",
                    lambda c, w: compute_of(c.stubs).DeleteServerGroup(
                        capi.DeleteServerGroupRequest(name=w.b_server_group)
                    ),
                    by_role(PD, NF, NF),
                    snapshot=b_server_groups,
                ),
            ),
            own=lambda c, w: compute_of(c.stubs).DeleteServerGroup(
                capi.DeleteServerGroupRequest(name=w.a_server_group)
            ),
        ),
        # ------------------------------------------------------------ instances
        _COMPUTE + "CreateInstance": Row(
            mutates=True,
            cases=(
                Case(
                    "in-b",
                    lambda c, w: compute_of(c.stubs).CreateInstance(
                        _new_instance(w.b.name, w, image=w.b_image)
                    ),
                    by_role(PD, NF, NF),
                    snapshot=b_instances,
                ),
                Case(
                    "in-a-from-b-image",
                    lambda c, w: compute_of(c.stubs).CreateInstance(
                        _new_instance(w.a.name, w, image=w.b_image)
                    ),
                    by_role(PD, NF, NF),
                    snapshot=lambda w: (a_instances(w), b_images(w)),
                ),
                Case(
                    # The same answer as for a key pair that does not exist.
                    "in-a-with-b-key-pair",
                    lambda c, w: compute_of(c.stubs).CreateInstance(
                        _new_instance(w.a.name, w, key_pairs=[w.b_key_pair])
                    ),
                    by_role(PD, IA, IA),
                    snapshot=lambda w: (a_instances(w), b_key_pairs(w)),
                ),
                Case(
                    # The same answer as for a server group that does not exist.
                    "in-a-in-b-server-group",
                    lambda c, w: compute_of(c.stubs).CreateInstance(
                        _new_instance(w.a.name, w, server_group=w.b_server_group)
                    ),
                    by_role(PD, IA, IA),
                    snapshot=lambda w: (a_instances(w), b_server_groups(w)),
                ),
            ),
            own=lambda c, w: compute_of(c.stubs).CreateInstance(_new_instance(w.a.name, w)),
        ),
        _COMPUTE + "GetInstance": Row(
            cases=(
                Case(
                    "b",
                    lambda c, w: compute_of(c.stubs).GetInstance(
                        capi.GetInstanceRequest(name=w.b_instance)
                    ),
                    each(NF),
                ),
            ),
        ),
        _COMPUTE + "ListInstances": Row(
            cases=(
                Case(
                    "b-every-zone",
                    lambda c, w: compute_of(c.stubs).ListInstances(
                        capi.ListInstancesRequest(parent=f"{w.b.name}/zones/-", page_size=1000)
                    ),
                    each(NF),
                ),
                Case(
                    "b-in-zone",
                    lambda c, w: compute_of(c.stubs).ListInstances(
                        capi.ListInstancesRequest(parent=f"{w.b.name}/{w.zone}", page_size=1000)
                    ),
                    each(NF),
                ),
                Case(
                    "every-project",  # every project A's roles may read: its own
                    lambda c, w: compute_of(c.stubs).ListInstances(
                        capi.ListInstancesRequest(parent="projects/-/zones/-", page_size=1000)
                    ),
                    each(OK),
                    check=only_own("instances", "a_instance", "b_instance"),
                ),
                Case(
                    "a-in-zone",
                    lambda c, w: compute_of(c.stubs).ListInstances(
                        capi.ListInstancesRequest(parent=f"{w.a.name}/{w.zone}", page_size=1000)
                    ),
                    each(OK),
                    check=only_own("instances", "a_instance", "b_instance"),
                ),
                Case(
                    "a-on-b-flavor",  # B's instance matches the filter, but is not A's
                    lambda c, w: compute_of(c.stubs).ListInstances(
                        capi.ListInstancesRequest(
                            parent=f"{w.a.name}/zones/-",
                            page_size=1000,
                            filter=f'flavor = "{w.flavor}"',
                        )
                    ),
                    each(OK),
                    check=only_own("instances", "a_instance", "b_instance"),
                ),
                Case(
                    "a-with-admin-page-token-of-b",
                    lambda c, w: compute_of(c.stubs).ListInstances(
                        capi.ListInstancesRequest(
                            parent=f"{w.a.name}/zones/-",
                            page_size=1,
                            page_token=w.b_instances_page_token,
                        )
                    ),
                    each(IA),
                ),
            ),
        ),
        _COMPUTE + "UpdateInstance": Row(
            mutates=True,
            cases=(
                Case(
                    "b",
                    lambda c, w: compute_of(c.stubs).UpdateInstance(_instance_update(w.b_instance)),
                    by_role(PD, NF, NF),
                    snapshot=b_instances,
                ),
            ),
            own=lambda c, w: compute_of(c.stubs).UpdateInstance(_instance_update(w.a_instance)),
        ),
        _COMPUTE + "DeleteInstance": Row(
            mutates=True,
            cases=(
                Case(
                    "b",
                    lambda c, w: compute_of(c.stubs).DeleteInstance(
                        capi.DeleteInstanceRequest(name=w.b_instance)
                    ),
                    by_role(PD, NF, NF),
                    snapshot=lambda w: (b_instances(w), b_server_groups(w), b_console(w)),
                ),
            ),
            own=lambda c, w: compute_of(c.stubs).DeleteInstance(
                capi.DeleteInstanceRequest(name=w.a_instance)
            ),
        ),
        _COMPUTE + "GetSerialPortOutput": Row(
            cases=(
                Case(
                    "b",
                    lambda c, w: compute_of(c.stubs).GetSerialPortOutput(
                        capi.GetSerialPortOutputRequest(name=w.b_instance)
                    ),
                    each(NF),
                ),
            ),
        ),
    }
)

# The instance actions and their arguments besides `name`.
_ACTIONS: dict[str, Callable[[World], dict[str, Any]]] = {
    "Start": lambda w: {},
    "Stop": lambda w: {"timeout_seconds": 1},
    "Reboot": lambda w: {"type": capi.REBOOT_TYPE_HARD},
    "Suspend": lambda w: {},
    "Resume": lambda w: {},
    "Resize": lambda w: {"flavor": w.flavor},
    "ConfirmResize": lambda w: {},
    "RevertResize": lambda w: {},
    "Rebuild": lambda w: {},
    "Snapshot": lambda w: {"image_id": w.new_id},
}


def _instance_action(verb: str, target: Callable[[World], str]) -> Call:
    def call(c: Caller, w: World) -> Message:
        request = getattr(capi, f"{verb}InstanceRequest")(name=target(w), **_ACTIONS[verb](w))
        return getattr(compute_of(c.stubs), f"{verb}Instance")(request)

    return call


def _b_instance_state(w: World) -> Any:
    return b_instances(w), b_console(w)


def _b_instance_and_images(w: World) -> Any:
    return _b_instance_state(w), b_images(w)  # a snapshot would be a new image of B


_MORE_ACTION_CASES: dict[str, tuple[Case, ...]] = {
    "Rebuild": (
        Case(
            "a-from-b-image",  # the same answer as for an image that does not exist
            lambda c, w: compute_of(c.stubs).RebuildInstance(
                capi.RebuildInstanceRequest(name=w.a_instance, image=w.b_image)
            ),
            by_role(PD, NF, NF),
            snapshot=lambda w: (a_instances(w), b_images(w)),
        ),
    ),
}


def _attach_interface(target: Callable[[World], str]) -> Call:
    def call(c: Caller, w: World) -> Message:
        interface = cpb.NetworkInterface(network=f"{w.a.name}/networks/{w.new_id}")
        return compute_of(c.stubs).AttachNetworkInterface(
            capi.AttachNetworkInterfaceRequest(name=target(w), network_interface=interface)
        )

    return call


def _detach_interface(target: Callable[[World], str]) -> Call:
    def call(c: Caller, w: World) -> Message:
        return compute_of(c.stubs).DetachNetworkInterface(
            capi.DetachNetworkInterfaceRequest(name=target(w), port=f"{w.b.name}/ports/{w.new_id}")
        )

    return call


for _method, _call in (
    ("AttachNetworkInterface", _attach_interface),
    ("DetachNetworkInterface", _detach_interface),
):
    TABLE[_COMPUTE + _method] = Row(
        mutates=True,
        cases=(
            Case(
                "b", _call(lambda w: w.b_instance), by_role(PD, NF, NF), snapshot=_b_instance_state
            ),
        ),
        own=_call(lambda w: w.a_instance),
    )

for _verb in _ACTIONS:
    TABLE[_COMPUTE + f"{_verb}Instance"] = Row(
        mutates=True,
        cases=(
            Case(
                "b",
                _instance_action(_verb, lambda w: w.b_instance),
                by_role(PD, NF, NF),
                snapshot=_b_instance_and_images if _verb == "Snapshot" else _b_instance_state,
            ),
            *_MORE_ACTION_CASES.get(_verb, ()),
        ),
        own=_instance_action(_verb, lambda w: w.a_instance),
    )


# Moving instances between hosts is the cloud administrators' (tenants may not try).
for _verb in ("Migrate", "Evacuate"):
    TABLE[_COMPUTE + f"{_verb}Instance"] = Row(
        mutates=True,
        cases=(
            Case(
                "b",
                lambda c, w, verb=_verb: getattr(compute_of(c.stubs), f"{verb}Instance")(
                    getattr(capi, f"{verb}InstanceRequest")(name=w.b_instance)
                ),
                each(PD),
                snapshot=_b_instance_state,
            ),
        ),
        own=lambda c, w, verb=_verb: getattr(compute_of(c.stubs), f"{verb}Instance")(
            getattr(capi, f"{verb}InstanceRequest")(name=w.a_instance)
        ),
    )

# ---------------------------------------------------------------- agent rows

# What the fixture writes to B's instance's console.
B_CONSOLE = b"console of b\n"


def _register_host(host: Callable[[World], str]) -> Call:
    def call(c: Caller, w: World) -> Message:
        return agent_of(c.stubs).RegisterHost(
            aapi.RegisterHostRequest(
                host=tpb.Host(
                    name=host(w),
                    rack=w.rack,
                    address="192.0.2.66",
                    capacity=tpb.HostCapacity(vcpus=64, memory_mib=1 << 20, disk_gib=1000),
                )
            )
        )

    return call


def _heartbeat(c: Caller, w: World) -> Message:
    return agent_of(c.stubs).Heartbeat(aapi.HeartbeatRequest(host=w.host))


def _watch_assignments(c: Caller, w: World) -> Message:
    """The stream's first message (the host's full set of assignments)."""
    stream = agent_of(c.stubs).WatchAssignments(
        aapi.WatchAssignmentsRequest(host=w.host), timeout=10
    )
    try:
        return next(iter(stream))
    finally:
        stream.cancel()


def _report_b_running(c: Caller, w: World) -> Message:
    return agent_of(c.stubs).ReportInstanceStatus(
        aapi.ReportInstanceStatusRequest(
            instance_uid=w.b_instance_uid,
            host=w.host,
            observed_generation=1000,
            state=cpb.Instance.STATE_RUNNING,
            message="taken over",
        )
    )


def _report_b_migrated(c: Caller, w: World) -> Message:
    return agent_of(c.stubs).ReportMigrationStatus(
        aapi.ReportMigrationStatusRequest(
            instance_uid=w.b_instance_uid,
            host=w.host,
            serial=1,
            phase=aapi.ReportMigrationStatusRequest.PHASE_COMPLETED,
        )
    )


def _append_to_b_console(c: Caller, w: World) -> Message:
    return agent_of(c.stubs).AppendSerialPortOutput(
        aapi.AppendSerialPortOutputRequest(
            instance_uid=w.b_instance_uid, offset=len(B_CONSOLE), data=b"taken over\n"
        )
    )


_host_state = topology_state("Host", lambda w: w.host)


def _agent_write(label: str, call: Call, snapshot: Snapshot) -> Row:
    """Agents' calls are the cloud administrators'; a tenant's role makes no difference."""
    return Row(mutates=True, cases=(Case(label, call, each(PD), snapshot=snapshot),), own=call)


TABLE.update(
    {
        _AGENT + "RegisterHost": Row(
            mutates=True,
            cases=(
                Case(
                    "shared",
                    _register_host(lambda w: w.host),
                    each(PD),
                    snapshot=_host_state,
                ),
                Case(
                    "new",
                    _register_host(lambda w: f"hosts/{w.new_id}"),
                    each(PD),
                    snapshot=topology_state("Host", lambda w: f"hosts/{w.new_id}"),
                ),
            ),
            own=_register_host(lambda w: w.host),
        ),
        _AGENT + "Heartbeat": _agent_write("shared", _heartbeat, _host_state),
        _AGENT + "WatchAssignments": Row(
            cases=(Case("shared", _watch_assignments, each(PD)),),
        ),
        # B's instance is on no host, so the code is what tells here.
        _AGENT + "ReportInstanceStatus": _agent_write("b", _report_b_running, b_instances),
        _AGENT + "AppendSerialPortOutput": _agent_write("b", _append_to_b_console, b_console),
        _AGENT + "ReportMigrationStatus": _agent_write("b", _report_b_migrated, b_instances),
    }
)


# ---------------------------------------------------------------- self-service


def _issue_own(c: Caller, w: World) -> None:
    response = c.stubs.identity.IssueToken(
        iapi.IssueTokenRequest(token=iapi.TokenCredentials(token=c.token), project=w.a.name)
    )
    assert response.token.project == w.a.name
    assert list(response.token.roles) == [ROLES[c.role]]


def _revoke_own(c: Caller, w: World) -> None:
    fresh = c.stubs.identity.IssueToken(
        iapi.IssueTokenRequest(token=iapi.TokenCredentials(token=c.token), project=w.a.name)
    ).token.token
    c.stubs.identity.RevokeToken(iapi.RevokeTokenRequest(token=fresh))
    code, _ = rpc_error(
        lambda: Stubs(w.admin.channel, fresh).identity.GetProject(
            iapi.GetProjectRequest(name=w.a.name)
        )
    )
    assert code == UA
    c.stubs.identity.GetProject(iapi.GetProjectRequest(name=w.a.name))  # the caller's still works


def _update_self(c: Caller, w: World) -> None:
    user = c.stubs.identity.UpdateUser(
        iapi.UpdateUserRequest(
            user=ipb.User(name=c.user_name, display_name="Reader Renamed", email="r@example.com"),
            update_mask=mask("display_name", "email"),
        )
    )
    assert (user.name, user.display_name, user.email) == (
        c.user_name,
        "Reader Renamed",
        "r@example.com",
    )


# ---------------------------------------------------------------- storage
# B's volumes, snapshot and transfer are made on first use (World stays as it is), by B's
# member in the world's zone on a qcow2 volume type the cloud administrator creates.

_STORAGE = "/kumo.storage.v1.StorageService/"


@dataclass(frozen=True)
class StorageWorld:
    """Storage things of A and B for the isolation rows."""

    volume_type: str
    a_volume: str  # AVAILABLE, A's own
    b_volume: str  # AVAILABLE, with b_snapshot
    b_snapshot: str
    b_loose: str  # AVAILABLE, no snapshots: offered by b_transfer
    b_transfer: str
    b_backup: str  # of b_volume


_STORAGE_WORLDS: dict[int, StorageWorld] = {}


def storage_of(stubs: Stubs) -> srpc.StorageServiceStub:
    return srpc.StorageServiceStub(stubs.channel)


def _volume(stubs: Stubs, parent: str, volume_type: str) -> str:
    volume_id = unique("v")
    op = storage_of(stubs).CreateVolume(
        sapi.CreateVolumeRequest(
            parent=parent,
            volume_id=volume_id,
            volume=spb.Volume(volume_type=volume_type, size_gib=1),
        )
    )
    assert not _wait_done(stubs, op.name).HasField("error")
    return f"{parent}/volumes/{volume_id}"


def sw(w: World) -> StorageWorld:
    """The storage things of this world (made once)."""
    if id(w) not in _STORAGE_WORLDS:
        volume_type = (
            storage_of(w.admin)
            .CreateVolumeType(
                sapi.CreateVolumeTypeRequest(
                    volume_type_id=unique("vt"),
                    volume_type=spb.VolumeType(backend=spb.BACKEND_QCOW2, pool="isolation"),
                )
            )
            .name
        )
        b_member, a_member = w.b.stubs["member"], w.a.stubs["member"]
        b_parent, a_parent = f"{w.b.name}/{w.zone}", f"{w.a.name}/{w.zone}"
        b_volume = _volume(b_member, b_parent, volume_type)
        op = storage_of(b_member).CreateSnapshot(
            sapi.CreateSnapshotRequest(parent=b_volume, snapshot_id="s", snapshot=spb.Snapshot())
        )
        assert not _wait_done(b_member, op.name).HasField("error")
        b_loose = _volume(b_member, b_parent, volume_type)
        b_backup = f"{b_parent}/backups/{unique('bk')}"
        op = storage_of(b_member).CreateBackup(
            sapi.CreateBackupRequest(
                parent=b_parent,
                backup_id=b_backup.rsplit("/", 1)[1],
                backup=spb.Backup(source_volume=b_volume),
            )
        )
        assert not _wait_done(b_member, op.name).HasField("error")
        transfer = storage_of(b_member).CreateVolumeTransfer(
            sapi.CreateVolumeTransferRequest(
                parent=w.b.name,
                volume_transfer_id=unique("t"),
                volume_transfer=spb.VolumeTransfer(volume=b_loose),
            )
        )
        _STORAGE_WORLDS[id(w)] = StorageWorld(
            volume_type=volume_type,
            a_volume=_volume(a_member, a_parent, volume_type),
            b_volume=b_volume,
            b_snapshot=f"{b_volume}/snapshots/s",
            b_loose=b_loose,
            b_transfer=transfer.name,
            b_backup=b_backup,
        )
    return _STORAGE_WORLDS[id(w)]


def b_storage(w: World) -> Any:
    """B's volumes, snapshots and transfers as the cloud administrator reads them."""
    admin, s = storage_of(w.admin), sw(w)
    return (
        probe(
            lambda: admin.ListVolumes(
                sapi.ListVolumesRequest(parent=f"{w.b.name}/zones/-", page_size=1000)
            )
        ),
        probe(lambda: admin.ListSnapshots(sapi.ListSnapshotsRequest(parent=s.b_volume))),
        probe(lambda: admin.ListVolumeTransfers(sapi.ListVolumeTransfersRequest(parent=w.b.name))),
        probe(
            lambda: admin.ListBackups(
                sapi.ListBackupsRequest(parent=f"{w.b.name}/zones/-", page_size=1000)
            )
        ),
    )


def volume_type_state(w: World) -> Any:
    return probe(
        lambda: storage_of(w.admin).GetVolumeType(sapi.GetVolumeTypeRequest(name=sw(w).volume_type))
    )


def _b_volume_mutation(label: str, call: Call, own: Call) -> Row:
    return Row(
        mutates=True,
        cases=(Case(label, call, by_role(PD, NF, NF), snapshot=b_storage),),
        own=own,
    )


def _after_storage(call: Call) -> Call:
    """`call` once this world's storage things exist (a listing that must show them must
    not be the first to need them, or it fails when run alone)."""

    def made_first(c: Caller, w: World) -> Any:
        sw(w)
        return call(c, w)

    return made_first


def _no_b_volumes(response: Any, c: Caller, w: World) -> None:
    assert all(not v.name.startswith(f"{w.b.name}/") for v in response.volumes)
    assert sw(w).a_volume in [v.name for v in response.volumes]


TABLE.update(
    {
        _STORAGE + "CreateVolumeType": Row(
            mutates=True,
            cases=(
                Case(
                    "new",
                    lambda c, w: storage_of(c.stubs).CreateVolumeType(
                        sapi.CreateVolumeTypeRequest(
                            volume_type_id=w.new_id,
                            volume_type=spb.VolumeType(backend=spb.BACKEND_QCOW2, pool="x"),
                        )
                    ),
                    each(PD),
                    snapshot=lambda w: probe(
                        lambda: storage_of(w.admin).GetVolumeType(
                            sapi.GetVolumeTypeRequest(name=f"volumeTypes/{w.new_id}")
                        )
                    ),
                ),
            ),
            own=lambda c, w: storage_of(c.stubs).CreateVolumeType(
                sapi.CreateVolumeTypeRequest(
                    volume_type_id=w.new_id,
                    volume_type=spb.VolumeType(backend=spb.BACKEND_QCOW2, pool="x"),
                )
            ),
        ),
        _STORAGE + "GetVolumeType": Row(
            cases=(
                Case(
                    "shared",
                    lambda c, w: storage_of(c.stubs).GetVolumeType(
                        sapi.GetVolumeTypeRequest(name=sw(w).volume_type)
                    ),
                    each(OK),
                ),
            ),
        ),
        _STORAGE + "ListVolumeTypes": Row(
            cases=(
                Case(
                    "all",
                    _after_storage(
                        lambda c, w: storage_of(c.stubs).ListVolumeTypes(
                            sapi.ListVolumeTypesRequest(page_size=1000)
                        )
                    ),
                    each(OK),
                    check=lambda r, c, w: _assert_in(sw(w).volume_type, r.volume_types),
                ),
            ),
        ),
        _STORAGE + "UpdateVolumeType": Row(
            mutates=True,
            cases=(
                Case(
                    "shared",
                    lambda c, w: storage_of(c.stubs).UpdateVolumeType(
                        sapi.UpdateVolumeTypeRequest(
                            volume_type=spb.VolumeType(name=sw(w).volume_type, description="x")
                        )
                    ),
                    each(PD),
                    snapshot=volume_type_state,
                ),
            ),
            own=lambda c, w: storage_of(c.stubs).UpdateVolumeType(
                sapi.UpdateVolumeTypeRequest(
                    volume_type=spb.VolumeType(name=sw(w).volume_type, description="x")
                )
            ),
        ),
        _STORAGE + "DeleteVolumeType": Row(
            mutates=True,
            cases=(
                Case(
                    "shared",
                    lambda c, w: storage_of(c.stubs).DeleteVolumeType(
                        sapi.DeleteVolumeTypeRequest(name=sw(w).volume_type)
                    ),
                    each(PD),
                    snapshot=volume_type_state,
                ),
            ),
            own=lambda c, w: storage_of(c.stubs).DeleteVolumeType(
                sapi.DeleteVolumeTypeRequest(name=sw(w).volume_type)
            ),
        ),
        _STORAGE + "CreateVolume": _b_volume_mutation(
            "in-b",
            lambda c, w: storage_of(c.stubs).CreateVolume(
                sapi.CreateVolumeRequest(
                    parent=f"{w.b.name}/{w.zone}",
                    volume_id=w.new_id,
                    volume=spb.Volume(volume_type=sw(w).volume_type, size_gib=1),
                )
            ),
            lambda c, w: storage_of(c.stubs).CreateVolume(
                sapi.CreateVolumeRequest(
                    parent=f"{w.a.name}/{w.zone}",
                    volume_id=w.new_id,
                    volume=spb.Volume(volume_type=sw(w).volume_type, size_gib=1),
                )
            ),
        ),
        _STORAGE + "GetVolume": Row(
            cases=(
                Case(
                    "b",
                    lambda c, w: storage_of(c.stubs).GetVolume(
                        sapi.GetVolumeRequest(name=sw(w).b_volume)
                    ),
                    each(NF),
                ),
            ),
        ),
        _STORAGE + "ListVolumes": Row(
            cases=(
                Case(
                    "in-b",
                    lambda c, w: storage_of(c.stubs).ListVolumes(
                        sapi.ListVolumesRequest(parent=f"{w.b.name}/zones/-")
                    ),
                    each(NF),
                ),
                Case(
                    "own",
                    _after_storage(
                        lambda c, w: storage_of(c.stubs).ListVolumes(
                            sapi.ListVolumesRequest(parent=f"{w.a.name}/zones/-", page_size=1000)
                        )
                    ),
                    each(OK),
                    check=_no_b_volumes,
                ),
            ),
        ),
        _STORAGE + "UpdateVolume": _b_volume_mutation(
            "b",
            lambda c, w: storage_of(c.stubs).UpdateVolume(
                sapi.UpdateVolumeRequest(volume=spb.Volume(name=sw(w).b_volume, display_name="x"))
            ),
            lambda c, w: storage_of(c.stubs).UpdateVolume(
                sapi.UpdateVolumeRequest(volume=spb.Volume(name=sw(w).a_volume, display_name="x"))
            ),
        ),
        _STORAGE + "DeleteVolume": _b_volume_mutation(
            "b",
            lambda c, w: storage_of(c.stubs).DeleteVolume(
                sapi.DeleteVolumeRequest(name=sw(w).b_loose)
            ),
            lambda c, w: storage_of(c.stubs).DeleteVolume(
                sapi.DeleteVolumeRequest(name=sw(w).a_volume)
            ),
        ),
        _STORAGE + "ExtendVolume": _b_volume_mutation(
            "b",
            lambda c, w: storage_of(c.stubs).ExtendVolume(
                sapi.ExtendVolumeRequest(name=sw(w).b_volume, size_gib=2)
            ),
            lambda c, w: storage_of(c.stubs).ExtendVolume(
                sapi.ExtendVolumeRequest(name=sw(w).a_volume, size_gib=2)
            ),
        ),
        _STORAGE + "RetypeVolume": _b_volume_mutation(
            "b",
            lambda c, w: storage_of(c.stubs).RetypeVolume(
                sapi.RetypeVolumeRequest(name=sw(w).b_loose, volume_type=sw(w).volume_type)
            ),
            lambda c, w: storage_of(c.stubs).RetypeVolume(
                sapi.RetypeVolumeRequest(name=sw(w).a_volume, volume_type=sw(w).volume_type)
            ),
        ),
        _STORAGE + "AttachVolume": _b_volume_mutation(
            "b-to-own-instance",
            lambda c, w: storage_of(c.stubs).AttachVolume(
                sapi.AttachVolumeRequest(name=sw(w).b_loose, instance=w.a_instance)
            ),
            lambda c, w: storage_of(c.stubs).AttachVolume(
                sapi.AttachVolumeRequest(name=sw(w).a_volume, instance=w.a_instance)
            ),
        ),
        _STORAGE + "DetachVolume": _b_volume_mutation(
            "b",
            lambda c, w: storage_of(c.stubs).DetachVolume(
                sapi.DetachVolumeRequest(name=sw(w).b_volume, instance=w.b_instance)
            ),
            lambda c, w: storage_of(c.stubs).DetachVolume(
                sapi.DetachVolumeRequest(name=sw(w).a_volume, instance=w.a_instance)
            ),
        ),
        _STORAGE + "UpdateAttachment": _b_volume_mutation(
            "b",
            lambda c, w: storage_of(c.stubs).UpdateAttachment(
                sapi.UpdateAttachmentRequest(
                    name=sw(w).b_volume, instance=w.b_instance, delete_with_instance=True
                )
            ),
            lambda c, w: storage_of(c.stubs).UpdateAttachment(
                sapi.UpdateAttachmentRequest(name=sw(w).a_volume, instance=w.a_instance)
            ),
        ),
        _STORAGE + "CreateSnapshot": _b_volume_mutation(
            "of-b",
            lambda c, w: storage_of(c.stubs).CreateSnapshot(
                sapi.CreateSnapshotRequest(
                    parent=sw(w).b_volume, snapshot_id=w.new_id, snapshot=spb.Snapshot()
                )
            ),
            lambda c, w: storage_of(c.stubs).CreateSnapshot(
                sapi.CreateSnapshotRequest(
                    parent=sw(w).a_volume, snapshot_id=w.new_id, snapshot=spb.Snapshot()
                )
            ),
        ),
        _STORAGE + "GetSnapshot": Row(
            cases=(
                Case(
                    "b",
                    lambda c, w: storage_of(c.stubs).GetSnapshot(
                        sapi.GetSnapshotRequest(name=sw(w).b_snapshot)
                    ),
                    each(NF),
                ),
            ),
        ),
        _STORAGE + "ListSnapshots": Row(
            cases=(
                Case(
                    "of-b",
                    lambda c, w: storage_of(c.stubs).ListSnapshots(
                        sapi.ListSnapshotsRequest(parent=sw(w).b_volume)
                    ),
                    each(NF),
                ),
            ),
        ),
        _STORAGE + "UpdateSnapshot": _b_volume_mutation(
            "b",
            lambda c, w: storage_of(c.stubs).UpdateSnapshot(
                sapi.UpdateSnapshotRequest(
                    snapshot=spb.Snapshot(name=sw(w).b_snapshot, labels={"x": "y"})
                )
            ),
            lambda c, w: storage_of(c.stubs).UpdateSnapshot(
                sapi.UpdateSnapshotRequest(
                    snapshot=spb.Snapshot(name=f"{sw(w).a_volume}/snapshots/s", labels={"x": "y"})
                )
            ),
        ),
        _STORAGE + "DeleteSnapshot": _b_volume_mutation(
            "b",
            lambda c, w: storage_of(c.stubs).DeleteSnapshot(
                sapi.DeleteSnapshotRequest(name=sw(w).b_snapshot)
            ),
            lambda c, w: storage_of(c.stubs).DeleteSnapshot(
                sapi.DeleteSnapshotRequest(name=f"{sw(w).a_volume}/snapshots/s")
            ),
        ),
        _STORAGE + "CreateBackup": _b_volume_mutation(
            "of-b",
            lambda c, w: storage_of(c.stubs).CreateBackup(
                sapi.CreateBackupRequest(
                    parent=f"{w.b.name}/{w.zone}",
                    backup_id=w.new_id,
                    backup=spb.Backup(source_volume=sw(w).b_volume),
                )
            ),
            lambda c, w: storage_of(c.stubs).CreateBackup(
                sapi.CreateBackupRequest(
                    parent=f"{w.a.name}/{w.zone}",
                    backup_id=w.new_id,
                    backup=spb.Backup(source_volume=sw(w).a_volume),
                )
            ),
        ),
        _STORAGE + "GetBackup": Row(
            cases=(
                Case(
                    "b",
                    lambda c, w: storage_of(c.stubs).GetBackup(
                        sapi.GetBackupRequest(name=sw(w).b_backup)
                    ),
                    each(NF),
                ),
            ),
        ),
        _STORAGE + "ListBackups": Row(
            cases=(
                Case(
                    "in-b",
                    lambda c, w: storage_of(c.stubs).ListBackups(
                        sapi.ListBackupsRequest(parent=f"{w.b.name}/{w.zone}")
                    ),
                    each(NF),
                ),
            ),
        ),
        _STORAGE + "DeleteBackup": _b_volume_mutation(
            "b",
            lambda c, w: storage_of(c.stubs).DeleteBackup(
                sapi.DeleteBackupRequest(name=sw(w).b_backup)
            ),
            lambda c, w: storage_of(c.stubs).DeleteBackup(
                sapi.DeleteBackupRequest(name=f"{w.a.name}/{w.zone}/backups/x")
            ),
        ),
        _STORAGE + "CreateVolumeTransfer": _b_volume_mutation(
            "of-b",
            lambda c, w: storage_of(c.stubs).CreateVolumeTransfer(
                sapi.CreateVolumeTransferRequest(
                    parent=w.b.name,
                    volume_transfer_id=w.new_id,
                    volume_transfer=spb.VolumeTransfer(volume=sw(w).b_volume),
                )
            ),
            lambda c, w: storage_of(c.stubs).CreateVolumeTransfer(
                sapi.CreateVolumeTransferRequest(
                    parent=w.a.name,
                    volume_transfer_id=w.new_id,
                    volume_transfer=spb.VolumeTransfer(volume=sw(w).a_volume),
                )
            ),
        ),
        _STORAGE + "GetVolumeTransfer": Row(
            cases=(
                Case(
                    "b",
                    lambda c, w: storage_of(c.stubs).GetVolumeTransfer(
                        sapi.GetVolumeTransferRequest(name=sw(w).b_transfer)
                    ),
                    each(NF),
                ),
            ),
        ),
        _STORAGE + "ListVolumeTransfers": Row(
            cases=(
                Case(
                    "in-b",
                    lambda c, w: storage_of(c.stubs).ListVolumeTransfers(
                        sapi.ListVolumeTransfersRequest(parent=w.b.name)
                    ),
                    each(NF),
                ),
            ),
        ),
        _STORAGE + "DeleteVolumeTransfer": _b_volume_mutation(
            "b",
            lambda c, w: storage_of(c.stubs).DeleteVolumeTransfer(
                sapi.DeleteVolumeTransferRequest(name=sw(w).b_transfer)
            ),
            lambda c, w: storage_of(c.stubs).DeleteVolumeTransfer(
                sapi.DeleteVolumeTransferRequest(name=f"{w.a.name}/volumeTransfers/x")
            ),
        ),
        # Accepting needs the key B hands out; without it the transfer is not found.
        _STORAGE + "AcceptVolumeTransfer": _b_volume_mutation(
            "b-without-key",
            lambda c, w: storage_of(c.stubs).AcceptVolumeTransfer(
                sapi.AcceptVolumeTransferRequest(
                    name=sw(w).b_transfer, auth_key="guessed", destination_project=w.a.name
                )
            ),
            lambda c, w: storage_of(c.stubs).AcceptVolumeTransfer(
                sapi.AcceptVolumeTransferRequest(
                    name=sw(w).b_transfer, auth_key="guessed", destination_project=w.a.name
                )
            ),
        ),
    }
)


def _assert_in(name: str, resources: Any) -> None:
    assert name in [r.name for r in resources]


# The documented self-service calls: what even a reader may do, to itself only.
SELF_SERVICE: dict[str, Callable[[Caller, World], None]] = {
    _IDENTITY + "IssueToken": _issue_own,
    _IDENTITY + "RevokeToken": _revoke_own,
    _IDENTITY + "UpdateUser": _update_self,
}


# ---------------------------------------------------------------- the world


def _wait_done(admin: Stubs, name: str) -> operations_pb2.Operation:
    deadline = time.monotonic() + 60
    while True:
        op = admin.operations.WaitOperation(
            operations_pb2.WaitOperationRequest(name=name, timeout=duration_pb2.Duration(seconds=5))
        )
        if op.done or time.monotonic() > deadline:
            return op


def _key_pair(stubs: Stubs, project: str) -> str:
    return str(
        compute_of(stubs)
        .CreateKeyPair(
            capi.CreateKeyPairRequest(
                parent=project, key_pair_id=unique("kp"), key_pair=cpb.KeyPair()
            )
        )
        .name
    )


def _server_group(stubs: Stubs, project: str) -> str:
    return str(
        compute_of(stubs)
        .CreateServerGroup(
            capi.CreateServerGroupRequest(
                parent=project,
                server_group_id=unique("sg"),
                server_group=cpb.ServerGroup(policy=cpb.ServerGroup.POLICY_ANTI_AFFINITY),
            )
        )
        .name
    )


def _failed_instance(stubs: Stubs, admin: Stubs, parent: str, **spec: Any) -> tuple[str, str]:
    """An instance that could not be built (no valid host): its name and its build operation."""
    instance_id = unique("vm")
    op = compute_of(stubs).CreateInstance(
        capi.CreateInstanceRequest(
            parent=parent, instance_id=instance_id, instance=cpb.Instance(**spec)
        )
    )
    done = _wait_done(admin, op.name)
    assert done.done and done.error.code == grpc.StatusCode.FAILED_PRECONDITION.value[0], done
    name = f"{parent}/instances/{instance_id}"
    instance = compute_of(admin).GetInstance(capi.GetInstanceRequest(name=name))
    assert instance.state == cpb.Instance.STATE_ERROR, instance
    assert "no valid host" in instance.status_message, instance
    return name, op.name


@pytest.fixture(scope="module")
def world(channel: grpc.Channel, admin: Stubs) -> Iterator[World]:
    """Two tenants, an access key in each, a finished admin operation, a topology chain,
    images, a flavor, and key pairs, server groups and (failed) instances in each tenant."""
    a = make_tenant(channel, admin, "a")
    b = make_tenant(channel, admin, "b")
    b_key = admin.identity.CreateAccessKey(
        iapi.CreateAccessKeyRequest(
            parent=f"users/{b.users['member']}", access_key=ipb.AccessKey(project=b.name)
        )
    ).name
    a_reader_key = admin.identity.CreateAccessKey(
        iapi.CreateAccessKeyRequest(
            parent=f"users/{a.users['reader']}", access_key=ipb.AccessKey(project=a.name)
        )
    ).name
    operations = []
    for _ in range(2):
        doomed = unique("x")
        admin.identity.CreateProject(
            iapi.CreateProjectRequest(project_id=doomed, project=ipb.Project())
        )
        operations.append(
            admin.identity.DeleteProject(iapi.DeleteProjectRequest(name=f"projects/{doomed}")).name
        )
    assert all(_wait_done(admin, name).done for name in operations)
    projects_page_token = admin.identity.ListProjects(
        iapi.ListProjectsRequest(page_size=1)
    ).next_page_token
    operations_page_token = admin.operations.ListOperations(
        operations_pb2.ListOperationsRequest(page_size=1)
    ).next_page_token
    b_assignments_page_token = admin.identity.ListRoleAssignments(
        iapi.ListRoleAssignmentsRequest(parent=b.name, page_size=1)
    ).next_page_token
    assert projects_page_token and operations_page_token and b_assignments_page_token
    c_project = admin.identity.CreateProject(
        iapi.CreateProjectRequest(project_id=unique("c"), project=ipb.Project())
    ).name
    b_member, a_member = b.stubs["member"], a.stubs["member"]
    raw = imgpb.Image(disk_format=imgpb.DISK_FORMAT_RAW)
    b_image = (
        images_of(b_member)
        .CreateImage(imgapi.CreateImageRequest(parent=b.name, image_id=unique("i"), image=raw))
        .name
    )
    assert upload(b_member, b_image).state == imgpb.Image.STATE_ACTIVE
    b_shared = (
        images_of(b_member)
        .CreateImage(
            imgapi.CreateImageRequest(
                parent=b.name,
                image_id=unique("s"),
                image=imgpb.Image(
                    disk_format=imgpb.DISK_FORMAT_RAW, visibility=imgpb.VISIBILITY_SHARED
                ),
            )
        )
        .name
    )
    images_of(b_member).CreateImageMember(
        imgapi.CreateImageMemberRequest(parent=b_shared, member_project=c_project)
    )
    a_image = (
        images_of(a_member)
        .CreateImage(imgapi.CreateImageRequest(parent=a.name, image_id=unique("i"), image=raw))
        .name
    )
    region = admin.topology.CreateRegion(
        tapi.CreateRegionRequest(region_id=unique("r"), region=tpb.Region())
    ).name
    zone = admin.topology.CreateZone(
        tapi.CreateZoneRequest(zone_id=unique("z"), zone=tpb.Zone(region=region))
    ).name
    pool = admin.topology.CreatePool(
        tapi.CreatePoolRequest(
            pool_id=unique("p"),
            pool=tpb.Pool(zone=zone, hypervisor_kind=tpb.HYPERVISOR_KIND_KVM),
        )
    ).name
    rack = admin.topology.CreateRack(
        tapi.CreateRackRequest(rack_id=unique("k"), rack=tpb.Rack(pool=pool))
    ).name
    host = admin.topology.CreateHost(
        tapi.CreateHostRequest(host_id=unique("h"), host=tpb.Host(rack=rack, address="192.0.2.10"))
    ).name
    flavor = (
        compute_of(admin)
        .CreateFlavor(
            capi.CreateFlavorRequest(
                flavor_id=unique("f"), flavor=cpb.Flavor(vcpus=1, memory_mib=128, disk_gib=1)
            )
        )
        .name
    )
    a_ready_image = (
        images_of(a_member)
        .CreateImage(imgapi.CreateImageRequest(parent=a.name, image_id=unique("i"), image=raw))
        .name
    )
    assert upload(a_member, a_ready_image).state == imgpb.Image.STATE_ACTIVE
    a_key_pair = _key_pair(a_member, a.name)
    a_server_group = _server_group(a_member, a.name)
    b_key_pair, _ = _key_pair(b_member, b.name), _key_pair(b_member, b.name)
    b_server_group, _ = _server_group(b_member, b.name), _server_group(b_member, b.name)
    # No host in the zone ever heartbeats, so every build fails (no valid host), which
    # leaves the instances in ERROR, settled, for the rest of the module.
    b_instance, b_operation = _failed_instance(
        b_member,
        admin,
        f"{b.name}/{zone}",
        flavor=flavor,
        image=b_image,
        key_pairs=[b_key_pair],
        server_group=b_server_group,
        user_data=b"secret of b",
        labels={"owner": "b"},
    )
    _failed_instance(b_member, admin, f"{b.name}/{zone}", flavor=flavor, image=b_image)
    # Built by the cloud administrator, so that A still has no operation of its own.
    a_instance, _ = _failed_instance(
        admin, admin, f"{a.name}/{zone}", flavor=flavor, image=a_ready_image
    )
    b_instance_uid = compute_of(admin).GetInstance(capi.GetInstanceRequest(name=b_instance)).uid
    agent_of(admin).AppendSerialPortOutput(
        aapi.AppendSerialPortOutputRequest(instance_uid=b_instance_uid, offset=0, data=B_CONSOLE)
    )
    b_key_pairs_page_token = (
        compute_of(admin)
        .ListKeyPairs(capi.ListKeyPairsRequest(parent=b.name, page_size=1))
        .next_page_token
    )
    b_server_groups_page_token = (
        compute_of(admin)
        .ListServerGroups(capi.ListServerGroupsRequest(parent=b.name, page_size=1))
        .next_page_token
    )
    b_instances_page_token = (
        compute_of(admin)
        .ListInstances(capi.ListInstancesRequest(parent=f"{b.name}/zones/-", page_size=1))
        .next_page_token
    )
    assert b_key_pairs_page_token and b_server_groups_page_token and b_instances_page_token
    yield World(
        admin=admin,
        a=a,
        b=b,
        b_token=b.stubs["reader"].token or "",
        b_assignment=f"{b.name}/roleAssignments/{b.users['admin']}-admin",
        b_key=b_key,
        a_reader_key=a_reader_key,
        operation=operations[0],
        projects_page_token=projects_page_token,
        operations_page_token=operations_page_token,
        b_assignments_page_token=b_assignments_page_token,
        new_id=unique("n"),
        a_image=a_image,
        b_image=b_image,
        b_shared=b_shared,
        c_project=c_project,
        region=region,
        zone=zone,
        pool=pool,
        rack=rack,
        host=host,
        flavor=flavor,
        a_ready_image=a_ready_image,
        a_key_pair=a_key_pair,
        a_server_group=a_server_group,
        a_instance=a_instance,
        b_key_pair=b_key_pair,
        b_server_group=b_server_group,
        b_instance=b_instance,
        b_instance_uid=b_instance_uid,
        b_operation=b_operation,
        b_key_pairs_page_token=b_key_pairs_page_token,
        b_server_groups_page_token=b_server_groups_page_token,
        b_instances_page_token=b_instances_page_token,
    )


# ---------------------------------------------------------------- network
# B's networking things (a network with a subnet, a port, a router on the subnet, a
# security group, a floating IP from the cloud administrator's external network) are
# built on first use per world; A aims every NetworkService method at them.

_NETS: dict[int, dict[str, str]] = {}


def b_net(w: World) -> dict[str, str]:
    """Names of B's networking things (made once per world)."""
    if id(w) not in _NETS:
        admin, b = nets_of(w.admin), nets_of(w.b.stubs["member"])
        ext = admin.CreateNetwork(
            napi.CreateNetworkRequest(
                parent="projects/admin",
                network_id=unique("ext"),
                network=npb.Network(
                    type=npb.Network.TYPE_FLAT, physical_network="e", external=True
                ),
            )
        ).name
        admin.CreateSubnet(
            napi.CreateSubnetRequest(
                parent=ext, subnet_id="s", subnet=npb.Subnet(cidr="172.29.0.0/24")
            )
        )
        network = b.CreateNetwork(
            napi.CreateNetworkRequest(parent=w.b.name, network_id="bnet", network=npb.Network())
        ).name
        subnet = b.CreateSubnet(
            napi.CreateSubnetRequest(
                parent=network, subnet_id="bsub", subnet=npb.Subnet(cidr="10.0.0.0/24")
            )
        ).name
        port = b.CreatePort(
            napi.CreatePortRequest(parent=w.b.name, port_id="bport", port=npb.Port(network=network))
        ).name
        router = b.CreateRouter(
            napi.CreateRouterRequest(
                parent=w.b.name,
                router_id="brouter",
                router=npb.Router(external_gateway=npb.ExternalGateway(network=ext)),
            )
        ).name
        b.AddRouterInterface(napi.AddRouterInterfaceRequest(router=router, subnet=subnet))
        fip = b.CreateFloatingIp(
            napi.CreateFloatingIpRequest(
                parent=w.b.name,
                floating_ip_id="bfip",
                floating_ip=npb.FloatingIp(network=ext, port=port),
            )
        ).name
        group = b.CreateSecurityGroup(
            napi.CreateSecurityGroupRequest(
                parent=w.b.name,
                security_group_id="bsg",
                security_group=npb.SecurityGroup(
                    rules=[npb.SecurityGroupRule(direction=npb.SecurityGroupRule.DIRECTION_INGRESS)]
                ),
            )
        )
        _NETS[id(w)] = {
            "ext": ext,
            "network": network,
            "subnet": subnet,
            "port": port,
            "router": router,
            "fip": fip,
            "group": group.name,
            "rule": group.rules[0].id,
        }
    return _NETS[id(w)]


def nets_of(stubs: Stubs) -> nrpc.NetworkServiceStub:
    """The network service on the stubs' (authenticated) channel."""
    return nrpc.NetworkServiceStub(stubs.channel)


def b_network_state(w: World) -> Any:
    stub, names = nets_of(w.admin), b_net(w)
    return (
        probe(lambda: stub.ListNetworks(napi.ListNetworksRequest(parent=w.b.name))),
        probe(lambda: stub.ListSubnets(napi.ListSubnetsRequest(parent=names["network"]))),
        probe(lambda: stub.ListPorts(napi.ListPortsRequest(parent=w.b.name))),
        probe(lambda: stub.ListRouters(napi.ListRoutersRequest(parent=w.b.name))),
        probe(lambda: stub.ListFloatingIps(napi.ListFloatingIpsRequest(parent=w.b.name))),
        probe(lambda: stub.ListSecurityGroups(napi.ListSecurityGroupsRequest(parent=w.b.name))),
    )


def _net_mutation(
    call: Callable[[nrpc.NetworkServiceStub, World, dict[str, str]], Message],
    own: Callable[[nrpc.NetworkServiceStub, World], Message],
) -> Row:
    return Row(
        mutates=True,
        cases=(
            Case(
                "in-b",
                lambda c, w: call(nets_of(c.stubs), w, b_net(w)),
                by_role(PD, NF, NF),
                snapshot=b_network_state,
            ),
        ),
        own=lambda c, w: own(nets_of(c.stubs), w),
    )


def _net_read(call: Callable[[nrpc.NetworkServiceStub, World, dict[str, str]], Message]) -> Row:
    return Row(cases=(Case("in-b", lambda c, w: call(nets_of(c.stubs), w, b_net(w)), each(NF)),))


_NET_KEYS = {
    "Network": ("network", "parent", lambda w, n: w.b.name),
    "Subnet": ("subnet", "parent", lambda w, n: n["network"]),
    "Port": ("port", "parent", lambda w, n: w.b.name),
    "Router": ("router", "parent", lambda w, n: w.b.name),
    "FloatingIp": ("fip", "parent", lambda w, n: w.b.name),
    "SecurityGroup": ("group", "parent", lambda w, n: w.b.name),
}


def _network_rows() -> dict[str, Row]:
    rows: dict[str, Row] = {}
    specs: dict[str, Callable[[dict[str, str]], Message]] = {
        "Network": lambda n: npb.Network(),
        "Subnet": lambda n: npb.Subnet(cidr="10.9.0.0/24"),
        "Port": lambda n: npb.Port(network=n["network"]),
        "Router": lambda n: npb.Router(),
        "FloatingIp": lambda n: npb.FloatingIp(network=n["ext"]),
        "SecurityGroup": lambda n: npb.SecurityGroup(),
    }
    for kind, (key, _, parent) in _NET_KEYS.items():
        field = re.sub(r"(?<!^)(?=[A-Z])", "_", kind).lower()
        requests = {
            verb: getattr(napi, f"{verb}{kind}Request")
            for verb in ("Create", "Get", "Update", "Delete")
        }
        list_request = getattr(napi, f"List{kind}sRequest")
        message = getattr(npb, kind)

        def create(
            stub: Any,
            w: World,
            n: dict[str, str],
            kind: str = kind,
            field: str = field,
            parent: Any = parent,
            requests: Any = requests,
        ) -> Message:
            return getattr(stub, f"Create{kind}")(
                requests["Create"](
                    parent=parent(w, n),
                    **{f"{field}_id": w.new_id, field: specs[kind](n)},
                )
            )

        def own_create(
            stub: Any, w: World, kind: str = kind, field: str = field, requests: Any = requests
        ) -> Message:
            parent_name = w.a.name if kind != "Subnet" else f"{w.a.name}/networks/x"
            return getattr(stub, f"Create{kind}")(
                requests["Create"](parent=parent_name, **{f"{field}_id": w.new_id})
            )

        rows[_NETWORK + f"Create{kind}"] = _net_mutation(create, own_create)
        rows[_NETWORK + f"Get{kind}"] = _net_read(
            lambda stub, w, n, kind=kind, key=key, requests=requests: getattr(stub, f"Get{kind}")(
                requests["Get"](name=n[key])
            )
        )
        rows[_NETWORK + f"List{kind}s"] = _net_read(
            lambda stub, w, n, kind=kind, parent=parent, list_request=list_request: getattr(
                stub, f"List{kind}s"
            )(list_request(parent=parent(w, n)))
        )
        rows[_NETWORK + f"Update{kind}"] = _net_mutation(
            lambda stub, w, n, kind=kind, key=key, field=field, requests=requests, msg=message: (
                getattr(stub, f"Update{kind}")(
                    requests["Update"](
                        **{field: msg(name=n[key], display_name="taken")},
                        update_mask=mask("display_name"),
                    )
                )
            ),
            lambda stub, w, kind=kind, field=field, requests=requests, message=message: getattr(
                stub, f"Update{kind}"
            )(
                requests["Update"](
                    **{field: message(name=f"{w.a.name}/x/y", display_name="x")},
                    update_mask=mask("display_name"),
                )
            ),
        )
        rows[_NETWORK + f"Delete{kind}"] = _net_mutation(
            lambda stub, w, n, kind=kind, key=key, requests=requests: getattr(
                stub, f"Delete{kind}"
            )(requests["Delete"](name=n[key])),
            lambda stub, w, kind=kind, requests=requests: getattr(stub, f"Delete{kind}")(
                requests["Delete"](name=f"{w.a.name}/x/y")
            ),
        )
    rows[_NETWORK + "AddRouterInterface"] = _net_mutation(
        lambda stub, w, n: stub.AddRouterInterface(
            napi.AddRouterInterfaceRequest(router=n["router"], subnet=n["subnet"])
        ),
        lambda stub, w: stub.AddRouterInterface(
            napi.AddRouterInterfaceRequest(
                router=f"{w.a.name}/routers/r", subnet=f"{w.a.name}/networks/n/subnets/s"
            )
        ),
    )
    rows[_NETWORK + "RemoveRouterInterface"] = _net_mutation(
        lambda stub, w, n: stub.RemoveRouterInterface(
            napi.RemoveRouterInterfaceRequest(router=n["router"], subnet=n["subnet"])
        ),
        lambda stub, w: stub.RemoveRouterInterface(
            napi.RemoveRouterInterfaceRequest(
                router=f"{w.a.name}/routers/r", subnet=f"{w.a.name}/networks/n/subnets/s"
            )
        ),
    )
    rows[_NETWORK + "CreateSecurityGroupRule"] = _net_mutation(
        lambda stub, w, n: stub.CreateSecurityGroupRule(
            napi.CreateSecurityGroupRuleRequest(
                security_group=n["group"],
                rule=npb.SecurityGroupRule(direction=npb.SecurityGroupRule.DIRECTION_EGRESS),
            )
        ),
        lambda stub, w: stub.CreateSecurityGroupRule(
            napi.CreateSecurityGroupRuleRequest(
                security_group=f"{w.a.name}/securityGroups/default",
                rule=npb.SecurityGroupRule(direction=npb.SecurityGroupRule.DIRECTION_EGRESS),
            )
        ),
    )
    rows[_NETWORK + "DeleteSecurityGroupRule"] = _net_mutation(
        lambda stub, w, n: stub.DeleteSecurityGroupRule(
            napi.DeleteSecurityGroupRuleRequest(security_group=n["group"], rule_id=n["rule"])
        ),
        lambda stub, w: stub.DeleteSecurityGroupRule(
            napi.DeleteSecurityGroupRuleRequest(
                security_group=f"{w.a.name}/securityGroups/default", rule_id="x"
            )
        ),
    )
    return rows


TABLE.update(_network_rows())


def no_networks_of_b(response: Any, c: Caller, w: World) -> None:
    names = [n.name for n in response.networks]
    assert b_net(w)["network"] not in names
    for network in response.networks:
        assert network.name.startswith(w.a.name + "/") or network.external, network.name


TABLE[_NETWORK + "ListNetworks"] = Row(
    cases=(
        *TABLE[_NETWORK + "ListNetworks"].cases,
        Case(
            "everywhere",
            lambda c, w: nets_of(c.stubs).ListNetworks(
                napi.ListNetworksRequest(parent="projects/-", page_size=1000)
            ),
            each(OK),
            check=no_networks_of_b,
        ),
    )
)


# ---------------------------------------------------------------- tests

CASES = [
    pytest.param(method, case, id=f"{method.rsplit('/', 1)[-1]}-{case.label}")
    for method, row in TABLE.items()
    for case in row.cases
]
MUTATIONS = [
    pytest.param(method, id=method.rsplit("/", 1)[-1])
    for method, row in TABLE.items()
    if row.own is not None
]


def test_every_method_has_a_row() -> None:
    """Every method of every service has isolation rules here, and no rule is stale."""
    missing: dict[str, list[str]] = {}
    for method in sorted(set(method_names()) - set(TABLE)):
        service, name = method.strip("/").split("/")
        missing.setdefault(service, []).append(name)
    assert missing == {}, f"add rows to TABLE in {__file__} for: {missing}"
    assert sorted(set(TABLE) - set(method_names())) == []


def test_rows_are_complete() -> None:
    """Each mutation checks the target's state and has a reader call or a self-service entry."""
    for method, row in TABLE.items():
        assert row.cases, method
        for case in row.cases:
            assert set(case.expect) == set(ROLE_NAMES), (method, case.label)
            if row.mutates:
                assert case.snapshot is not None, (method, case.label)
        if row.mutates:
            assert row.own is not None or method in SELF_SERVICE, method
    assert set(SELF_SERVICE) <= {m for m, row in TABLE.items() if row.mutates}


@pytest.mark.parametrize("role", ROLE_NAMES)
@pytest.mark.parametrize(("method", "case"), CASES)
def test_other_tenant_is_out_of_reach(world: World, method: str, case: Case, role: str) -> None:
    """Tenant A's role gets the expected outcome on B's things, and B's state stays as it was."""
    caller = world.caller(role)
    before = case.snapshot(world) if case.snapshot is not None else None
    expected = case.expect[role]
    if expected == OK:
        response = case.call(caller, world)
        if case.check is not None:
            case.check(response, caller, world)
    else:
        code, status = rpc_error(lambda: case.call(caller, world))
        assert code == expected, status
    if case.snapshot is not None:
        assert case.snapshot(world) == before


@pytest.mark.parametrize("method", MUTATIONS)
def test_reader_cannot_mutate(world: World, method: str) -> None:
    """A reader's mutations of its own project are PERMISSION_DENIED, bar the self-service calls."""
    reader, own = world.caller("reader"), TABLE[method].own
    assert own is not None
    code, status = rpc_error(lambda: own(reader, world))
    assert code == PD, status


@pytest.mark.parametrize("method", sorted(SELF_SERVICE))
def test_reader_self_service(world: World, method: str) -> None:
    """A reader may make the documented self-service calls on itself."""
    SELF_SERVICE[method](world.caller("reader"), world)
