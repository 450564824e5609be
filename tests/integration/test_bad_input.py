"""Malformed requests over a real channel: INVALID_ARGUMENT (or ABORTED), and nothing changes."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.longrunning import operations_pb2
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2, status_pb2

from kumo.identity.v1 import identity_service_pb2 as iapi
from kumo.identity.v1 import resources_pb2 as ipb
from kumo.topology.v1 import resources_pb2 as tpb
from kumo.topology.v1 import topology_service_pb2 as tapi
from tests.support.cloud import Stubs, Tenant, rpc_error, unique

INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
ABORTED = grpc.StatusCode.ABORTED
# Field number 127, wire type varint, value 1: a field no Kumo message defines.
UNKNOWN_FIELD = b"\xf8\x07\x01"
TOPOLOGY = "/kumo.topology.v1.TopologyService/"
IDENTITY = "/kumo.identity.v1.IdentityService/"


# --- helpers ---------------------------------------------------------------------------------


def violations(status: status_pb2.Status | None) -> dict[str, str]:
    """Field → description of the BadRequest detail of `status`."""
    assert status is not None
    for packed in status.details:
        if packed.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            packed.Unpack(bad)
            return {v.field: v.description for v in bad.field_violations}
    raise AssertionError(f"no BadRequest detail in {status}")


def invalid(call: Callable[[], Any]) -> dict[str, str]:
    """Runs `call`, which must be INVALID_ARGUMENT; returns its field violations."""
    code, status = rpc_error(call)
    assert code == INVALID_ARGUMENT, status
    return violations(status)


def raw(stubs: Stubs, method: str, payload: bytes, response_type: Any) -> Any:
    """Calls `method` with `payload` as the serialized request, bypassing the client's checks."""
    call = stubs.channel.unary_unary(
        method, request_serializer=lambda b: b, response_deserializer=response_type.FromString
    )
    return call(payload)


def length_delimited(field_number: int, payload: bytes) -> bytes:
    """`payload` encoded as length-delimited field `field_number` (a submessage)."""
    assert len(payload) < 128
    return bytes([(field_number << 3) | 2, len(payload)]) + payload


def mask(*paths: str) -> field_mask_pb2.FieldMask:
    """A FieldMask of `paths`."""
    return field_mask_pb2.FieldMask(paths=list(paths))


def new_region(admin: Stubs, **fields: Any) -> tpb.Region:
    """Creates a region with `fields`."""
    return admin.topology.CreateRegion(
        tapi.CreateRegionRequest(region_id=unique("r"), region=tpb.Region(**fields))
    )


def get_region(admin: Stubs, name: str) -> tpb.Region:
    """GetRegion."""
    return admin.topology.GetRegion(tapi.GetRegionRequest(name=name))


def absent(call: Callable[[], Any]) -> None:
    """Asserts that `call` (a Get) is NOT_FOUND: the rejected create made nothing."""
    code, _ = rpc_error(call)
    assert code == NOT_FOUND


def new_host(admin: Stubs) -> tpb.Host:
    """Creates a host in a new region → zone → pool → rack."""
    region = new_region(admin).name
    zone = admin.topology.CreateZone(
        tapi.CreateZoneRequest(zone_id=unique("z"), zone=tpb.Zone(region=region))
    ).name
    pool = admin.topology.CreatePool(
        tapi.CreatePoolRequest(
            pool_id=unique("p"), pool=tpb.Pool(zone=zone, hypervisor_kind=tpb.HYPERVISOR_KIND_KVM)
        )
    ).name
    rack = admin.topology.CreateRack(
        tapi.CreateRackRequest(rack_id=unique("k"), rack=tpb.Rack(pool=pool))
    ).name
    return admin.topology.CreateHost(
        tapi.CreateHostRequest(
            host_id=unique("h"),
            host=tpb.Host(rack=rack, address="10.1.2.3", capacity=tpb.HostCapacity(vcpus=8)),
        )
    )


# --- names -----------------------------------------------------------------------------------

BAD_PROJECT_NAMES = ["projects/UPPER", "projects/", "projects/a/b", "projects/-x", "project/a", ""]


@pytest.mark.parametrize("name", BAD_PROJECT_NAMES)
def test_malformed_project_name(admin: Stubs, name: str) -> None:
    """GetProject with a malformed name is INVALID_ARGUMENT naming `name`."""
    assert "name" in invalid(lambda: admin.identity.GetProject(iapi.GetProjectRequest(name=name)))


@pytest.mark.parametrize(
    ("label", "call", "field"),
    [
        ("zone", lambda s: s.topology.GetZone(tapi.GetZoneRequest(name="zones/-x")), "name"),
        ("host", lambda s: s.topology.GetHost(tapi.GetHostRequest(name="hosts/x-")), "name"),
        ("user", lambda s: s.identity.GetUser(iapi.GetUserRequest(name="users/Bob")), "name"),
        (
            "role assignment",
            lambda s: s.identity.GetRoleAssignment(
                iapi.GetRoleAssignmentRequest(name="projects/admin/roleAssignments/admin-owner")
            ),
            "name",
        ),
        (
            "access key",
            lambda s: s.identity.GetAccessKey(
                iapi.GetAccessKeyRequest(name="users/admin/accessKeys/kumolowercase")
            ),
            "name",
        ),
        (
            "quota",
            lambda s: s.identity.GetQuota(iapi.GetQuotaRequest(name="projects/admin")),
            "name",
        ),
        (
            "operation",
            lambda s: s.operations.GetOperation(
                operations_pb2.GetOperationRequest(name="operations/not-a-uuid")
            ),
            "name",
        ),
        (
            "sign-in user",
            lambda s: s.identity.IssueToken(
                iapi.IssueTokenRequest(
                    password=iapi.PasswordCredentials(user="users/A B", password="x"),
                    project="projects/admin",
                )
            ),
            "password.user",
        ),
        (
            "list parent",
            lambda s: s.identity.ListRoleAssignments(
                iapi.ListRoleAssignmentsRequest(parent="projects/a/b")
            ),
            "parent",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_malformed_names_name_their_field(
    admin: Stubs, label: str, call: Callable[[Stubs], Any], field: str
) -> None:
    """A malformed resource name anywhere is INVALID_ARGUMENT with a violation of its field."""
    assert field in invalid(lambda: call(admin)), label


def test_malformed_ids_and_references_create_nothing(admin: Stubs) -> None:
    """Bad ids and malformed parent references are refused before anything is written."""
    assert "project_id" in invalid(
        lambda: admin.identity.CreateProject(
            iapi.CreateProjectRequest(project_id="Has-Upper", project=ipb.Project())
        )
    )
    assert "region_id" in invalid(
        lambda: admin.topology.CreateRegion(
            tapi.CreateRegionRequest(region_id="-x", region=tpb.Region())
        )
    )
    zone_id = unique("z")
    assert "zone.region" in invalid(
        lambda: admin.topology.CreateZone(
            tapi.CreateZoneRequest(zone_id=zone_id, zone=tpb.Zone(region="regions/UPPER"))
        )
    )
    absent(lambda: admin.topology.GetZone(tapi.GetZoneRequest(name=f"zones/{zone_id}")))
    assert "project.name" in invalid(
        lambda: admin.identity.UpdateProject(
            iapi.UpdateProjectRequest(project=ipb.Project(name="projects/a/b", display_name="x"))
        )
    )


# --- unknown fields and enum values ----------------------------------------------------------


def test_unknown_top_level_field_is_rejected(admin: Stubs) -> None:
    """A request carrying a field the contract does not define is INVALID_ARGUMENT naming it."""
    region_id = unique("r")
    payload = tapi.CreateRegionRequest(region_id=region_id, region=tpb.Region()).SerializeToString()
    found = invalid(
        lambda: raw(admin, TOPOLOGY + "CreateRegion", payload + UNKNOWN_FIELD, tpb.Region)
    )
    assert "127" in found["request"]
    absent(lambda: get_region(admin, f"regions/{region_id}"))
    # The same bytes without the extra field are accepted.
    assert raw(admin, TOPOLOGY + "CreateRegion", payload, tpb.Region).name.endswith(region_id)


def test_unknown_nested_field_is_rejected(admin: Stubs, tenant: Tenant) -> None:
    """An unknown field inside the resource is INVALID_ARGUMENT naming the resource field."""
    region_id = unique("r")
    region = tpb.Region(display_name="x").SerializeToString() + UNKNOWN_FIELD
    payload = (
        length_delimited(1, region)
        + tapi.CreateRegionRequest(region_id=region_id).SerializeToString()
    )
    found = invalid(lambda: raw(admin, TOPOLOGY + "CreateRegion", payload, tpb.Region))
    assert "127" in found["region"]
    absent(lambda: get_region(admin, f"regions/{region_id}"))

    before = admin.identity.GetProject(iapi.GetProjectRequest(name=tenant.name))
    project = ipb.Project(name=tenant.name, display_name="changed").SerializeToString()
    found = invalid(
        lambda: raw(
            admin,
            IDENTITY + "UpdateProject",
            length_delimited(1, project + UNKNOWN_FIELD),
            ipb.Project,
        )
    )
    assert "127" in found["project"]
    assert admin.identity.GetProject(iapi.GetProjectRequest(name=tenant.name)) == before


def test_unknown_field_on_a_read_is_rejected(admin: Stubs) -> None:
    """Reads reject unknown fields too."""
    payload = iapi.GetProjectRequest(name="projects/admin").SerializeToString() + UNKNOWN_FIELD
    assert "request" in invalid(lambda: raw(admin, IDENTITY + "GetProject", payload, ipb.Project))


def test_undefined_enum_value_is_rejected(admin: Stubs) -> None:
    """An enum number the contract does not define is INVALID_ARGUMENT; nothing is created."""
    host = new_host(admin)
    zone = admin.topology.GetHost(tapi.GetHostRequest(name=host.name)).zone
    pool = tpb.Pool(zone=zone)
    pool.hypervisor_kind = 99  # type: ignore[assignment]  # proto3 enums are open
    pool_id = unique("p")
    assert "pool.hypervisor_kind" in invalid(
        lambda: admin.topology.CreatePool(tapi.CreatePoolRequest(pool_id=pool_id, pool=pool))
    )
    absent(lambda: admin.topology.GetPool(tapi.GetPoolRequest(name=f"pools/{pool_id}")))

    # The same through raw bytes: Pool field 4 (hypervisor_kind) as varint 99.
    raw_pool = tpb.Pool(zone=zone).SerializeToString() + b"\x20\x63"
    payload = (
        length_delimited(1, raw_pool) + tapi.CreatePoolRequest(pool_id=pool_id).SerializeToString()
    )
    assert "pool.hypervisor_kind" in invalid(
        lambda: raw(admin, TOPOLOGY + "CreatePool", payload, tpb.Pool)
    )
    absent(lambda: admin.topology.GetPool(tapi.GetPoolRequest(name=f"pools/{pool_id}")))


def test_undefined_role_is_rejected(admin: Stubs, tenant: Tenant) -> None:
    """A role number outside the enum is INVALID_ARGUMENT and grants nothing."""
    user = f"users/{tenant.users['reader']}"
    assignment = ipb.RoleAssignment(user=user)
    assignment.role = 42  # type: ignore[assignment]
    assert "role_assignment.role" in invalid(
        lambda: admin.identity.CreateRoleAssignment(
            iapi.CreateRoleAssignmentRequest(parent=tenant.name, role_assignment=assignment)
        )
    )
    roles = admin.identity.ListRoleAssignments(
        iapi.ListRoleAssignmentsRequest(parent=tenant.name, filter=f'user = "{user}"')
    ).role_assignments
    assert [r.role for r in roles] == [ipb.ROLE_READER]


# --- paging ----------------------------------------------------------------------------------

NEGATIVE_PAGE_SIZE = [
    lambda s: s.topology.ListRegions(tapi.ListRegionsRequest(page_size=-1)),
    lambda s: s.topology.ListHosts(tapi.ListHostsRequest(page_size=-5)),
    lambda s: s.identity.ListProjects(iapi.ListProjectsRequest(page_size=-1)),
    lambda s: s.identity.ListUsers(iapi.ListUsersRequest(page_size=-1)),
    lambda s: s.identity.ListRoleAssignments(
        iapi.ListRoleAssignmentsRequest(parent="projects/admin", page_size=-1)
    ),
    lambda s: s.identity.ListAccessKeys(
        iapi.ListAccessKeysRequest(parent="users/admin", page_size=-1)
    ),
    lambda s: s.operations.ListOperations(operations_pb2.ListOperationsRequest(page_size=-1)),
]


@pytest.mark.parametrize("call", NEGATIVE_PAGE_SIZE)
def test_negative_page_size_is_invalid(admin: Stubs, call: Callable[[Stubs], Any]) -> None:
    """A negative page_size is INVALID_ARGUMENT naming page_size."""
    assert "page_size" in invalid(lambda: call(admin))


def test_huge_page_size_is_capped(admin: Stubs) -> None:
    """A page_size above the maximum is served as the maximum (1000), without error."""
    new_region(admin)
    regions = admin.topology.ListRegions(tapi.ListRegionsRequest(page_size=1_000_000)).regions
    assert 1 <= len(regions) <= 1000
    projects = admin.identity.ListProjects(iapi.ListProjectsRequest(page_size=1_000_000)).projects
    assert 1 <= len(projects) <= 1000


def _forge(token: str) -> str:
    """`token` with its payload changed and its signature kept."""
    body, mac = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["i"] = "aaaa"
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return f"{forged}.{mac}"


def test_bad_page_tokens_are_invalid(admin: Stubs) -> None:
    """Garbage, forged, truncated and foreign page tokens are INVALID_ARGUMENT naming page_token."""
    tag = unique("tok")
    for _ in range(2):
        new_region(admin, labels={"tok": tag})
    query = f'labels.tok = "{tag}"'
    token = admin.topology.ListRegions(
        tapi.ListRegionsRequest(filter=query, page_size=1)
    ).next_page_token
    assert token
    region = new_region(admin).name
    for _ in range(2):
        admin.topology.CreateZone(
            tapi.CreateZoneRequest(zone_id=unique("z"), zone=tpb.Zone(region=region))
        )
    zones_token = admin.topology.ListZones(
        tapi.ListZonesRequest(filter=f'region = "{region}"', page_size=1)
    ).next_page_token
    bad = {
        "garbage": "garbage",
        "dotted garbage": "abc.def",
        "truncated": token[:-6],
        "forged": _forge(token),
        "other signature": token.split(".")[0] + ".AAAA",
        "another list's": zones_token,
    }
    for label, value in bad.items():
        found = invalid(
            lambda v=value: admin.topology.ListRegions(
                tapi.ListRegionsRequest(filter=query, page_size=1, page_token=v)
            )
        )
        assert "page_token" in found, label
    assert "page_token" in invalid(
        lambda: admin.identity.ListProjects(iapi.ListProjectsRequest(page_token=token))
    )


# --- etags -----------------------------------------------------------------------------------


def test_stale_etag_on_update_and_delete_is_aborted(admin: Stubs) -> None:
    """Update and Delete with an old etag are ABORTED and leave the resource as it is."""
    region = new_region(admin, display_name="v1")
    stale = region.etag
    current = admin.topology.UpdateRegion(
        tapi.UpdateRegionRequest(region=tpb.Region(name=region.name, display_name="v2"))
    )
    code, _ = rpc_error(
        lambda: admin.topology.UpdateRegion(
            tapi.UpdateRegionRequest(
                region=tpb.Region(name=region.name, display_name="v3", etag=stale)
            )
        )
    )
    assert code == ABORTED
    code, _ = rpc_error(
        lambda: admin.topology.DeleteRegion(tapi.DeleteRegionRequest(name=region.name, etag=stale))
    )
    assert code == ABORTED
    assert get_region(admin, region.name) == current


def test_stale_etag_on_identity_deletes_is_aborted(admin: Stubs, tenant: Tenant) -> None:
    """DeleteProject and DeleteUser with an old etag are ABORTED and delete nothing."""
    project = admin.identity.GetProject(iapi.GetProjectRequest(name=tenant.name))
    admin.identity.UpdateProject(
        iapi.UpdateProjectRequest(project=ipb.Project(name=tenant.name, description="new"))
    )
    code, _ = rpc_error(
        lambda: admin.identity.DeleteProject(
            iapi.DeleteProjectRequest(name=tenant.name, etag=project.etag)
        )
    )
    assert code == ABORTED
    after = admin.identity.GetProject(iapi.GetProjectRequest(name=tenant.name))
    assert after.state == ipb.Project.STATE_ACTIVE

    name = f"users/{tenant.users['reader']}"
    user = admin.identity.GetUser(iapi.GetUserRequest(name=name))
    admin.identity.UpdateUser(iapi.UpdateUserRequest(user=ipb.User(name=name, display_name="R")))
    code, _ = rpc_error(
        lambda: admin.identity.DeleteUser(iapi.DeleteUserRequest(name=name, etag=user.etag))
    )
    assert code == ABORTED
    assert admin.identity.GetUser(iapi.GetUserRequest(name=name)).display_name == "R"


# --- required fields -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "fields"),
    [
        (lambda s, t: s.topology.CreateZone(tapi.CreateZoneRequest()), {"zone", "zone_id"}),
        (
            lambda s, t: s.topology.CreatePool(
                tapi.CreatePoolRequest(pool_id=unique("p"), pool=tpb.Pool())
            ),
            {"pool.zone", "pool.hypervisor_kind"},
        ),
        (
            lambda s, t: s.topology.CreateHost(
                tapi.CreateHostRequest(host_id=unique("h"), host=tpb.Host())
            ),
            {"host.rack"},
        ),
        (lambda s, t: s.topology.UpdateRegion(tapi.UpdateRegionRequest()), {"region"}),
        (lambda s, t: s.topology.DeleteRack(tapi.DeleteRackRequest()), {"name"}),
        (
            lambda s, t: s.identity.CreateRoleAssignment(
                iapi.CreateRoleAssignmentRequest(
                    parent=t.name, role_assignment=ipb.RoleAssignment()
                )
            ),
            {"role_assignment.user", "role_assignment.role"},
        ),
        (
            lambda s, t: s.identity.CreateAccessKey(
                iapi.CreateAccessKeyRequest(parent="users/admin")
            ),
            {"access_key"},
        ),
        (
            lambda s, t: s.identity.IssueToken(
                iapi.IssueTokenRequest(password=iapi.PasswordCredentials())
            ),
            {"password.user", "password.password"},
        ),
        (lambda s, t: s.identity.IssueToken(iapi.IssueTokenRequest()), {"credentials"}),
        (lambda s, t: s.identity.ValidateToken(iapi.ValidateTokenRequest()), {"token"}),
        (
            lambda s, t: s.identity.CreateUser(iapi.CreateUserRequest(user_id=unique("u"))),
            {"user"},
        ),
        (
            lambda s, t: s.identity.CreateUser(
                iapi.CreateUserRequest(user_id=unique("u"), user=ipb.User(display_name="x"))
            ),
            {"user.password"},
        ),
    ],
)
def test_missing_required_fields_are_each_listed(
    admin: Stubs, tenant: Tenant, call: Callable[[Stubs, Tenant], Any], fields: set[str]
) -> None:
    """A request missing REQUIRED fields is INVALID_ARGUMENT with one violation per field."""
    assert set(invalid(lambda: call(admin, tenant))) == fields


def test_missing_required_fields_create_nothing(admin: Stubs) -> None:
    """A create refused for missing fields leaves no resource behind."""
    pool_id = unique("p")
    invalid(
        lambda: admin.topology.CreatePool(
            tapi.CreatePoolRequest(pool_id=pool_id, pool=tpb.Pool(display_name="x"))
        )
    )
    absent(lambda: admin.topology.GetPool(tapi.GetPoolRequest(name=f"pools/{pool_id}")))


# --- sizes -----------------------------------------------------------------------------------

TOO_LONG = [
    pytest.param("display_name", {"display_name": "x" * 64}, id="display_name"),
    pytest.param("description", {"description": "x" * 1025}, id="description"),
    pytest.param("labels", {"labels": {"k" * 64: "v"}}, id="label-key"),
    pytest.param("labels", {"labels": {"k": "v" * 64}}, id="label-value"),
    pytest.param("labels", {"labels": {"": "v"}}, id="empty-label-key"),
    pytest.param("labels", {"labels": {f"k{i}": "v" for i in range(65)}}, id="label-count"),
]


@pytest.mark.parametrize(("field", "values"), TOO_LONG)
def test_too_long_fields_on_create(admin: Stubs, field: str, values: dict[str, Any]) -> None:
    """Oversized names, descriptions and labels are INVALID_ARGUMENT; nothing is created."""
    region_id = unique("r")
    found = invalid(
        lambda: admin.topology.CreateRegion(
            tapi.CreateRegionRequest(region_id=region_id, region=tpb.Region(**values))
        )
    )
    assert f"region.{field}" in found
    absent(lambda: get_region(admin, f"regions/{region_id}"))


@pytest.mark.parametrize(("field", "values"), TOO_LONG)
def test_too_long_fields_on_update(tenant: Tenant, field: str, values: dict[str, Any]) -> None:
    """An oversized update is INVALID_ARGUMENT and leaves the project unchanged."""
    stubs = tenant.stubs["admin"]
    before = stubs.identity.GetProject(iapi.GetProjectRequest(name=tenant.name))
    found = invalid(
        lambda: stubs.identity.UpdateProject(
            iapi.UpdateProjectRequest(project=ipb.Project(name=tenant.name, **values))
        )
    )
    assert f"project.{field}" in found
    assert stubs.identity.GetProject(iapi.GetProjectRequest(name=tenant.name)) == before


def test_too_long_host_fields(admin: Stubs) -> None:
    """Oversized host addresses and disable reasons are refused; the host is unchanged."""
    host = new_host(admin)
    assert "host.address" in invalid(
        lambda: admin.topology.UpdateHost(
            tapi.UpdateHostRequest(host=tpb.Host(name=host.name, address="a" * 256))
        )
    )
    assert "reason" in invalid(
        lambda: admin.topology.DisableHost(
            tapi.DisableHostRequest(name=host.name, reason="r" * 256)
        )
    )
    assert admin.topology.GetHost(tapi.GetHostRequest(name=host.name)) == host


# --- filters and ordering --------------------------------------------------------------------


@pytest.mark.parametrize(
    "filter",
    [
        'labels.a ~ "b"',
        'display_name = "x"',
        "region = ",
        '= "x"',
        'labels.a = "b" OR labels.c = "d"',
        'labels.a = "unterminated',
    ],
)
def test_bad_filter_is_invalid(admin: Stubs, filter: str) -> None:
    """Unparsable filters and filters on unknown fields are INVALID_ARGUMENT naming filter."""
    assert "filter" in invalid(
        lambda: admin.topology.ListRegions(tapi.ListRegionsRequest(filter=filter))
    )


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.topology.ListHosts(tapi.ListHostsRequest(filter="state = sleepy")),
        lambda s: s.topology.ListPools(tapi.ListPoolsRequest(filter="hypervisor_kind = 99")),
        lambda s: s.identity.ListProjects(iapi.ListProjectsRequest(filter="state = bogus")),
        lambda s: s.identity.ListUsers(iapi.ListUsersRequest(filter="disabled = maybe")),
        lambda s: s.identity.ListRoleAssignments(
            iapi.ListRoleAssignmentsRequest(parent="projects/admin", filter="role = owner")
        ),
        lambda s: s.operations.ListOperations(
            operations_pb2.ListOperationsRequest(filter="done = maybe")
        ),
    ],
)
def test_bad_filter_values_are_invalid(admin: Stubs, call: Callable[[Stubs], Any]) -> None:
    """Filter values outside a field's domain are INVALID_ARGUMENT naming filter."""
    assert "filter" in invalid(lambda: call(admin))


@pytest.mark.parametrize(
    "order_by", ["uid", "display_name", "name sideways", "create_time desc extra", "desc"]
)
def test_bad_order_by_is_invalid(admin: Stubs, order_by: str) -> None:
    """An order_by outside the documented fields and directions is INVALID_ARGUMENT."""
    assert "order_by" in invalid(
        lambda: admin.topology.ListRegions(tapi.ListRegionsRequest(order_by=order_by))
    )
    assert "order_by" in invalid(
        lambda: admin.identity.ListUsers(iapi.ListUsersRequest(order_by=order_by))
    )


# --- update masks ----------------------------------------------------------------------------


def test_empty_update_mask_changes_only_set_fields(admin: Stubs) -> None:
    """With no mask, only the fields set in the request change."""
    region = new_region(admin, display_name="keep", description="old", labels={"a": "1"})
    updated = admin.topology.UpdateRegion(
        tapi.UpdateRegionRequest(region=tpb.Region(name=region.name, description="new"))
    )
    assert (updated.display_name, updated.description) == ("keep", "new")
    assert dict(updated.labels) == {"a": "1"}
    assert updated.uid == region.uid


def test_empty_update_mask_on_a_host(admin: Stubs) -> None:
    """A host update without a mask keeps the address when only capacity is sent."""
    host = new_host(admin)
    updated = admin.topology.UpdateHost(
        tapi.UpdateHostRequest(
            host=tpb.Host(name=host.name, capacity=tpb.HostCapacity(vcpus=16, memory_mib=1024))
        )
    )
    assert updated.address == host.address
    assert (updated.capacity.vcpus, updated.capacity.memory_mib) == (16, 1024)


def test_star_update_mask_replaces_every_writable_field(admin: Stubs) -> None:
    """`*` writes every writable field, clearing those left unset."""
    region = new_region(admin, display_name="gone", description="old", labels={"a": "1"})
    updated = admin.topology.UpdateRegion(
        tapi.UpdateRegionRequest(
            region=tpb.Region(name=region.name, description="only"), update_mask=mask("*")
        )
    )
    assert (updated.display_name, updated.description) == ("", "only")
    assert dict(updated.labels) == {}


@pytest.mark.parametrize(
    ("call", "get"),
    [
        (
            lambda s, h: s.topology.UpdateZone(
                tapi.UpdateZoneRequest(
                    zone=tpb.Zone(name=h.zone, region="regions/elsewhere"),
                    update_mask=mask("region"),
                )
            ),
            lambda s, h: s.topology.GetZone(tapi.GetZoneRequest(name=h.zone)),
        ),
        (
            lambda s, h: s.topology.UpdatePool(
                tapi.UpdatePoolRequest(
                    pool=tpb.Pool(name=h.pool, hypervisor_kind=tpb.HYPERVISOR_KIND_ESXI),
                    update_mask=mask("hypervisor_kind"),
                )
            ),
            lambda s, h: s.topology.GetPool(tapi.GetPoolRequest(name=h.pool)),
        ),
        (
            lambda s, h: s.topology.UpdateHost(
                tapi.UpdateHostRequest(
                    host=tpb.Host(name=h.name, state=tpb.Host.STATE_ENABLED),
                    update_mask=mask("state"),
                )
            ),
            lambda s, h: s.topology.GetHost(tapi.GetHostRequest(name=h.name)),
        ),
        (
            lambda s, h: s.topology.UpdateHost(
                tapi.UpdateHostRequest(
                    host=tpb.Host(name=h.name, display_name="x"),
                    update_mask=mask("display_name", "no_such_field"),
                )
            ),
            lambda s, h: s.topology.GetHost(tapi.GetHostRequest(name=h.name)),
        ),
    ],
    ids=["immutable", "immutable-enum", "output-only", "unknown-path"],
)
def test_non_writable_paths_in_mask_are_invalid(
    admin: Stubs, call: Callable[[Stubs, tpb.Host], Any], get: Callable[[Stubs, tpb.Host], Any]
) -> None:
    """A mask naming an immutable, output-only or unknown field is refused; nothing changes."""
    host = new_host(admin)
    before = get(admin, host)
    assert "update_mask" in invalid(lambda: call(admin, host))
    assert get(admin, host) == before
