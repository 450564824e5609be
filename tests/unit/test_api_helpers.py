"""Unit tests of the request helpers: names, filters, order, signing, fields."""

from __future__ import annotations

import pytest
from google.protobuf import field_mask_pb2

from kumo.identity.v1 import identity_service_pb2 as iapi
from kumo.identity.v1 import resources_pb2 as ipb
from kumo.server.api.fields import update_paths, writable_fields
from kumo.server.api.filtering import enum_value, parse_filter
from kumo.server.api.names import check_id, parse
from kumo.server.api.paging import Order, parse_order_by
from kumo.server.api.signing import Signer
from kumo.server.api.validation import validate_request
from kumo.server.errors import InvalidArgument


@pytest.mark.parametrize("value", ["a", "abc-1", "a" * 63, "x9"])
def test_valid_ids(value: str) -> None:
    """Ids of letters, digits and inner hyphens up to 63 characters pass."""
    assert check_id("id", value) == value


@pytest.mark.parametrize("value", ["", "A", "1a", "a-", "a_b", "a" * 64, "é"])
def test_invalid_ids(value: str) -> None:
    """Anything else names the field in the violation."""
    with pytest.raises(InvalidArgument) as info:
        check_id("project_id", value)
    assert info.value.violations[0].field == "project_id"


def test_parse_names() -> None:
    """Names split into their ids; custom segments apply to one placeholder only."""
    pattern = "users/{user}/accessKeys/{access_key}"
    assert parse("name", "users/bob/accessKeys/KUMOAB", pattern, access_key="KUMO[A-Z]+") == (
        "bob",
        "KUMOAB",
    )
    with pytest.raises(InvalidArgument):
        parse("name", "users/BOB/accessKeys/KUMOAB", pattern, access_key="KUMO[A-Z]+")
    with pytest.raises(InvalidArgument):
        parse("name", "projects/a/extra", "projects/{project}")


def test_filter_terms() -> None:
    """Conjunctions of equality terms, quoted or bare, and label terms."""
    clauses = parse_filter(
        'state = active AND labels.env = "prod x" AND zone="zones/z1"', {"state", "zone"}
    )
    assert [(t.field, t.value, t.label) for (t,) in clauses] == [
        ("state", "active", None),
        ("labels", "prod x", "env"),
        ("zone", "zones/z1", None),
    ]
    assert parse_filter("  ", {"state"}) == []


def test_filter_has_not_and_or() -> None:
    """`field:value` on repeated fields, NOT, and OR inside parentheses; AND inside a
    quoted value is part of the value."""
    clauses = parse_filter(
        'tags:"a b" AND NOT tags:c AND (tags:"d" OR NOT state = on) AND name = "x AND y"',
        {"state", "name"},
        {"tags"},
    )
    assert [[(t.field, t.value, t.has, t.negated) for t in c] for c in clauses] == [
        [("tags", "a b", True, False)],
        [("tags", "c", True, True)],
        [("tags", "d", True, False), ("state", "on", False, True)],
        [("name", "x AND y", False, False)],
    ]


def test_filter_comparisons_on_ordered_fields() -> None:
    """`<`, `<=`, `>`, `>=` on ordered fields (quoted or bare times), negatable."""
    clauses = parse_filter(
        'update_time >= "2026-11-27T10:00:00+01:00" AND NOT create_time<2026-01-01T00:00:00Z',
        {"state"},
        ordered={"update_time", "create_time"},
    )
    assert [[(t.field, t.op, t.value, t.negated) for t in c] for c in clauses] == [
        [("update_time", ">=", "2026-11-27T10:00:00+01:00", False)],
        [("create_time", "<", "2026-01-01T00:00:00Z", True)],
    ]


@pytest.mark.parametrize(
    "text",
    [
        "update_time = 2026-01-01",  # a comparison field does not take '='
        "state > 1",  # nor an equality field a comparison
        "update_time => 1",
    ],
)
def test_bad_comparisons(text: str) -> None:
    """A comparison on a field that is not ordered, or '=' on one that is only ordered,
    is INVALID_ARGUMENT on `filter`."""
    with pytest.raises(InvalidArgument) as info:
        parse_filter(text, {"state"}, ordered={"update_time"})
    assert info.value.violations[0].field == "filter"


@pytest.mark.parametrize(
    "text",
    [
        "state",
        "state = ",
        "bogus = 1",
        "state = 1 OR zone = 2",
        'a = "x',
        "state:1",
        "tags = 1",
        "(state = 1",
        "(state = 1 AND zone = 2)",
        "NOT",
        "state = 1 AND",
        "state = 1 zone = 2",
    ],
)
def test_bad_filters(text: str) -> None:
    """Bad syntax, unknown fields and the wrong operator are INVALID_ARGUMENT on `filter`."""
    with pytest.raises(InvalidArgument) as info:
        parse_filter(text, {"state", "zone"}, {"tags"})
    assert info.value.violations[0].field == "filter"


def test_enum_values() -> None:
    """Enum values by full or short name."""
    assert enum_value(ipb.Project.State, "STATE_ACTIVE") == ipb.Project.STATE_ACTIVE
    assert enum_value(ipb.Role, "member") == ipb.ROLE_MEMBER
    with pytest.raises(InvalidArgument):
        enum_value(ipb.Role, "owner")


def test_order_by() -> None:
    """Default, explicit and descending orders; unknown fields refused."""
    assert parse_order_by("", ("name", "create_time")) == Order("name")
    assert parse_order_by("create_time desc", ("name", "create_time")) == Order("create_time", True)
    for bad in ("uid", "name sideways", "name desc extra"):
        with pytest.raises(InvalidArgument):
            parse_order_by(bad, ("name", "create_time"))


def test_signer_rejects_forgery() -> None:
    """Signed values verify with their key only, and any change is detected."""
    signer = Signer(b"k" * 32)
    text = signer.dumps({"a": 1})
    assert signer.loads(text) == {"a": 1}
    body, mac = text.split(".")
    for forged in (Signer(b"x" * 32).dumps({"a": 1}), f"{body}x.{mac}", body, "", "a.b.c"):
        with pytest.raises(ValueError):
            signer.loads(forged)


def test_writable_fields_follow_the_contract() -> None:
    """Output-only, immutable and identifier fields are never writable."""
    assert writable_fields(ipb.Project.DESCRIPTOR) == {"display_name", "description", "labels"}
    assert "role" not in writable_fields(ipb.RoleAssignment.DESCRIPTOR)


def test_update_paths() -> None:
    """Empty mask means set fields; '*' all writable; others are checked."""
    project = ipb.Project(name="projects/p", display_name="x")
    assert update_paths(project, field_mask_pb2.FieldMask(), "project") == {"display_name"}
    everything = update_paths(project, field_mask_pb2.FieldMask(paths=["*"]), "project")
    assert everything == {"display_name", "description", "labels"}
    with pytest.raises(InvalidArgument):
        update_paths(project, field_mask_pb2.FieldMask(paths=["uid"]), "project")


def test_validate_request_finds_unknown_and_required() -> None:
    """Unknown fields, undefined enum values and missing required fields are all reported."""
    raw = iapi.GetProjectRequest(name="projects/p").SerializeToString() + b"\xf8\x07\x01"
    with pytest.raises(InvalidArgument) as info:
        validate_request(iapi.GetProjectRequest.FromString(raw))
    assert "unknown field number 127" in info.value.message
    with pytest.raises(InvalidArgument) as info:
        validate_request(iapi.IssueTokenRequest(password=iapi.PasswordCredentials(user="users/u")))
    assert [v.field for v in info.value.violations] == ["password.password"]
    assignment = ipb.RoleAssignment(user="users/u")
    assignment.role = 42  # type: ignore[assignment]
    with pytest.raises(InvalidArgument) as info:
        validate_request(
            iapi.CreateRoleAssignmentRequest(parent="projects/p", role_assignment=assignment)
        )
    assert info.value.violations[0].field == "role_assignment.role"
