"""The CLI's rendering, names, updates and error reporting, without a server."""

from __future__ import annotations

import io
import json
from typing import Any

import click
import grpc
import pytest
from click.testing import CliRunner
from google.longrunning import operations_pb2
from google.protobuf import any_pb2, empty_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from kumo.cli import context, errors
from kumo.cli.context import Name, State, parse_labels, patch
from kumo.cli.main import cli
from kumo.cli.output import (
    Column,
    Printer,
    ProgressDisplay,
    enum_label,
    flatten,
    format_fields,
    format_table,
    operation_rows,
    operation_status,
)
from kumo.cli.projects import parse_limit
from kumo.client import KumoError, full_name, role_assignment_name, short_id
from kumo.identity.v1 import resources_pb2 as identity
from kumo.image.v1 import resources_pb2 as image
from kumo.topology.v1 import resources_pb2 as topology
from kumo.type.v1 import operation_metadata_pb2


def project(name: str, **fields: Any) -> Any:
    message = identity.Project(name=f"projects/{name}", **fields)
    message.create_time.FromSeconds(1_700_000_000)
    return message


# Tables and JSON


def test_table_aligns_columns_without_trailing_spaces() -> None:
    text = format_table(["NAME", "STATE"], [["a", "active"], ["longer-name", "x"]])
    assert text == "NAME         STATE\na            active\nlonger-name  x\n"
    assert all(line == line.rstrip() for line in text.splitlines())


def test_table_with_no_rows_prints_the_header() -> None:
    assert format_table(["NAME", "STATE"], []) == "NAME  STATE\n"


def test_columns_show_short_ids_enum_labels_times_and_dashes() -> None:
    row = project("prod", state=identity.Project.STATE_ACTIVE)
    columns = [
        Column("NAME", "name", short=True),
        Column("STATE", "state"),
        Column("CREATED", "create_time"),
        Column("DISPLAY NAME", "display_name"),
    ]
    assert [c.text(row) for c in columns] == ["prod", "active", "2023-11-14T22:13:20Z", "-"]


def test_nested_paths_and_maps() -> None:
    host = topology.Host(name="hosts/h", capacity=topology.HostCapacity(vcpus=8))
    host.labels.update({"b": "2", "a": "1"})
    assert Column("VCPUS", "capacity.vcpus").text(host) == "8"
    assert Column("LABELS", "labels").text(host) == "a=1,b=2"


def test_enum_label_strips_the_prefix_and_lowercases() -> None:
    kinds = topology.HypervisorKind.DESCRIPTOR
    assert enum_label(kinds, topology.HYPERVISOR_KIND_BAREMETAL) == "baremetal"
    assert enum_label(identity.Role.DESCRIPTOR, identity.ROLE_ADMIN) == "admin"
    assert enum_label(kinds, 99) == "99"


def test_printer_table_and_json_lists() -> None:
    items = [project("a", display_name="A"), project("b")]
    columns = [Column("NAME", "name", short=True), Column("DISPLAY NAME", "display_name")]
    out = io.StringIO()
    Printer("table", out).items(items, columns)
    assert out.getvalue() == "NAME  DISPLAY NAME\na     A\nb     -\n"

    out = io.StringIO()
    Printer("json", out).items(items, columns)
    data = json.loads(out.getvalue())
    assert [d["name"] for d in data] == ["projects/a", "projects/b"]
    assert data[0]["displayName"] == "A"  # MessageToDict's camelCase
    assert data[0]["createTime"] == "2023-11-14T22:13:20Z"


def test_show_flattens_nested_messages_maps_and_repeated_fields() -> None:
    host = topology.Host(
        name="hosts/h",
        state=topology.Host.STATE_DISABLED,
        capacity=topology.HostCapacity(vcpus=8, memory_mib=1024),
    )
    host.labels["rack-row"] = "3"
    host.conditions.add(type="Heartbeat", status=1)
    rows = dict(flatten(host))
    assert rows["capacity.vcpus"] == "8"
    assert rows["capacity.memory_mib"] == "1024"
    assert rows["state"] == "disabled"
    assert rows["labels.rack-row"] == "3"
    assert rows["conditions[0].status"] == "true"
    assert "disk_gib" not in rows  # unset fields are left out
    text = format_fields([("name", "hosts/h"), ("capacity.vcpus", "8")])
    assert text == "name:            hosts/h\ncapacity.vcpus:  8\n"


def test_printer_item_json_is_message_to_dict() -> None:
    out = io.StringIO()
    Printer("json", out).item(project("prod", state=identity.Project.STATE_DELETING))
    assert json.loads(out.getvalue())["state"] == "STATE_DELETING"


def test_done_prints_text_or_json() -> None:
    out = io.StringIO()
    Printer("table", out).done("deleted users/alice")
    assert out.getvalue() == "deleted users/alice\n"
    out = io.StringIO()
    Printer("json", out).done("deleted users/alice")
    assert json.loads(out.getvalue()) == {}


def operation(done: bool = False, error: Any = None, percent: int = 40) -> Any:
    result = operations_pb2.Operation(name="operations/1234", done=done)
    result.metadata.Pack(
        operation_metadata_pb2.OperationMetadata(
            verb="DeleteProject", target="projects/p", progress_percent=percent
        )
    )
    if error is not None:
        result.error.CopyFrom(error)
    elif done:
        result.response.Pack(empty_pb2.Empty())
    return result


def test_operation_status_and_rows() -> None:
    assert operation_status(operation()) == "running"
    assert operation_status(operation(done=True)) == "succeeded"
    failed = operation(True, status_pb2.Status(code=code_pb2.NOT_FOUND, message="gone"))
    assert operation_status(failed) == "failed (NOT_FOUND)"
    cancelled = operation(True, status_pb2.Status(code=code_pb2.CANCELLED))
    assert operation_status(cancelled) == "cancelled"
    rows = dict(operation_rows(failed))
    assert rows["error"] == "gone"
    assert rows["verb"] == "DeleteProject"
    assert dict(operation_rows(operation()))["progress"] == "40%"


def test_operation_json_tolerates_unknown_any_types() -> None:
    op = operation(done=True)
    op.response.type_url = "type.googleapis.com/kumo.future.v1.Unknown"
    out = io.StringIO()
    Printer("json", out).item(op)
    data = json.loads(out.getvalue())
    assert data["response"] == {"@type": "type.googleapis.com/kumo.future.v1.Unknown"}
    assert data["metadata"]["verb"] == "DeleteProject"


def test_progress_display_writes_a_line_per_change_when_not_a_terminal() -> None:
    out = io.StringIO()
    display = ProgressDisplay("op", out, live=False)
    metadata = operation_metadata_pb2.OperationMetadata(progress_percent=50, status_message="half")
    display(metadata)
    display(metadata)
    display(operation_metadata_pb2.OperationMetadata(progress_percent=-1, status_message="?"))
    lines = out.getvalue().splitlines()
    assert lines[0] == "op [##########----------]  50%  half"
    assert len(lines) == 2
    assert "%" not in lines[1]


def test_progress_display_redraws_one_line_on_a_terminal() -> None:
    out = io.StringIO()
    display = ProgressDisplay("op", out, live=True)
    for percent in (10, 100):
        display(
            operation_metadata_pb2.OperationMetadata(
                progress_percent=percent, verb="DeleteProject", target="projects/p"
            )
        )
    display.close()
    assert out.getvalue().count("\r") == 2
    assert out.getvalue().endswith("100%\n")
    assert "DeleteProject projects/p" in out.getvalue()


# Names


@pytest.mark.parametrize(
    ("collection", "value", "expected"),
    [
        ("users", "alice", "users/alice"),
        ("users", "users/alice", "users/alice"),
        ("projects", " prod ", "projects/prod"),
        ("operations", "0b8e-11", "operations/0b8e-11"),
    ],
)
def test_full_name_accepts_ids_and_names(collection: str, value: str, expected: str) -> None:
    assert full_name(collection, value) == expected
    assert short_id(expected) == expected.split("/")[1]


@pytest.mark.parametrize("value", ["", "projects/prod", "users/", "users/a/b"])
def test_full_name_rejects_other_collections(value: str) -> None:
    with pytest.raises(ValueError):
        full_name("users", value)


def test_child_names() -> None:
    assert full_name("accessKeys", "KUMO1", "users/a") == "users/a/accessKeys/KUMO1"
    assert full_name("accessKeys", "users/a/accessKeys/KUMO1", "users/a").endswith("KUMO1")
    with pytest.raises(ValueError):
        full_name("accessKeys", "users/b/accessKeys/KUMO1", "users/a")
    assert role_assignment_name("prod", "users/alice", "admin") == (
        "projects/prod/roleAssignments/alice-admin"
    )
    with pytest.raises(ValueError):
        role_assignment_name("prod", "alice", "owner")


def test_name_parameter_is_a_usage_error_for_a_wrong_collection() -> None:
    assert Name("users").convert("alice", None, None) == "users/alice"
    result = CliRunner().invoke(cli, ["project", "show", "users/alice"])
    assert result.exit_code == errors.USAGE
    assert "is not a projects id" in result.output


def test_parse_labels_and_limits() -> None:
    assert parse_labels(["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    with pytest.raises(click.BadParameter):
        parse_labels(["novalue"])
    assert parse_limit("instances=10") == ("instances", 10)
    assert parse_limit("vcpus=unlimited") == ("vcpus", -1)
    for bad in ("vcpus", "=3", "vcpus=many", "vcpus=-2"):
        with pytest.raises(click.BadParameter):
            parse_limit(bad)


# Updates


def test_patch_sends_only_changed_fields_with_the_etag() -> None:
    current = project("prod", display_name="Old", description="keep", etag="e1")
    current.labels.update({"env": "dev", "team": "a"})
    resource, mask = patch(current, {"display_name": "New", "description": None}, {"env": "prod"})
    assert sorted(mask.paths) == ["display_name", "labels"]
    assert resource.name == "projects/prod"
    assert resource.etag == "e1"
    assert resource.display_name == "New"
    assert not resource.description
    assert dict(resource.labels) == {"env": "prod", "team": "a"}


def test_patch_merges_nested_fields_and_removes_labels() -> None:
    current = topology.Host(name="hosts/h", capacity=topology.HostCapacity(vcpus=8, disk_gib=5))
    current.labels["old"] = "x"
    resource, mask = patch(current, {"capacity.vcpus": 16}, remove_labels=["old"], etag="mine")
    assert sorted(mask.paths) == ["capacity", "labels"]
    assert resource.capacity.vcpus == 16
    assert resource.capacity.disk_gib == 5
    assert not resource.labels
    assert resource.etag == "mine"


def test_patch_adds_and_removes_tags() -> None:
    current = image.Image(name="projects/p/images/i", tags=["a", "b"], etag="e")
    resource, mask = patch(current, {}, tags=["c", "a"], remove_tags=["b"])
    assert list(mask.paths) == ["tags"]
    assert list(resource.tags) == ["a", "c"] and resource.etag == "e"


def test_patch_sends_false_explicitly_and_refuses_no_change() -> None:
    current = identity.User(name="users/a", disabled=True)
    resource, mask = patch(current, {"disabled": False})
    assert list(mask.paths) == ["disabled"]
    assert resource.disabled is False
    with pytest.raises(click.UsageError):
        patch(current, {"email": None})


# Errors and exit codes


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (grpc.StatusCode.OK, 1),
        (grpc.StatusCode.UNKNOWN, 1),
        (grpc.StatusCode.INTERNAL, 1),
        (grpc.StatusCode.NOT_FOUND, 3),
        (grpc.StatusCode.PERMISSION_DENIED, 4),
        (grpc.StatusCode.UNAUTHENTICATED, 4),
        (grpc.StatusCode.INVALID_ARGUMENT, 5),
        (grpc.StatusCode.FAILED_PRECONDITION, 5),
        (grpc.StatusCode.ALREADY_EXISTS, 5),
        (grpc.StatusCode.ABORTED, 5),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 5),
        (grpc.StatusCode.UNAVAILABLE, 7),
    ],
)
def test_exit_code_for_each_status(code: grpc.StatusCode, expected: int) -> None:
    assert errors.exit_code(code) == expected


class FakeRpcError(grpc.RpcError, grpc.Call):
    """What a failed sync call raises: code, details and trailing metadata."""

    def __init__(self, code: grpc.StatusCode, message: str, status: Any = None) -> None:
        self._code, self._message = code, message
        self._trailers: list[tuple[str, Any]] = [("x-request-id", "req-42")]
        if status is not None:
            self._trailers.append(("grpc-status-details-bin", status.SerializeToString()))

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._message

    def trailing_metadata(self) -> list[tuple[str, Any]]:
        return self._trailers

    def initial_metadata(self) -> None: ...
    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> None: ...
    def cancel(self) -> None: ...
    def add_callback(self, callback: Any) -> None: ...


def bad_request_status(message: str) -> Any:
    violation = error_details_pb2.BadRequest.FieldViolation(field="project_id", description="bad")
    packed = any_pb2.Any()
    packed.Pack(error_details_pb2.BadRequest(field_violations=[violation]))
    unknown = any_pb2.Any(type_url="type.googleapis.com/some.Other", value=b"")
    return status_pb2.Status(
        code=code_pb2.INVALID_ARGUMENT, message=message, details=[packed, unknown]
    )


def test_kumo_error_decodes_details_and_request_id() -> None:
    message = "invalid request: project_id: bad"
    error = KumoError.from_rpc_error(
        FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, message, bad_request_status(message))
    )
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.message == message
    assert error.request_id == "req-42"
    assert error.field_violations() == [("project_id", "bad")]
    assert isinstance(error.details[1], any_pb2.Any)  # unknown types stay packed


def test_kumo_error_ignores_details_contradicting_the_status() -> None:
    status = bad_request_status("another message")
    error = KumoError.from_rpc_error(FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, "m", status))
    assert error.details == []


def test_cli_error_message_and_lines() -> None:
    failure = error_details_pb2.QuotaFailure(
        violations=[error_details_pb2.QuotaFailure.Violation(subject="vcpus", description="full")]
    )
    error = errors.CliError.from_kumo(
        KumoError(grpc.StatusCode.RESOURCE_EXHAUSTED, "quota exceeded", [failure], "r1")
    )
    assert error.exit_code == 5
    assert error.format_message() == "error: quota exceeded (request r1)\n  quota vcpus: full"
    unreachable = errors.CliError.from_kumo(
        KumoError(grpc.StatusCode.UNAVAILABLE, "connection refused"), endpoint="h:1"
    )
    assert unreachable.format_message() == "error: cannot reach Kumo at h:1: connection refused"
    assert unreachable.exit_code == 7


class FakeService:
    """Stands in for `client.identity`: each method is a given function."""

    def __init__(self, **methods: Any) -> None:
        self.__dict__.update(methods)


class FakeClient:
    def __init__(self, **services: Any) -> None:
        self.__dict__.update(services)
        self.endpoint, self.token = "fake:1", "t"

    def close(self) -> None: ...


def use_client(monkeypatch: pytest.MonkeyPatch, client: FakeClient) -> None:
    monkeypatch.setattr(State, "client", lambda self, signed_in=True: client)


def test_call_errors_become_exit_codes_and_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    def get_project(request: Any) -> Any:
        violations = [error_details_pb2.BadRequest.FieldViolation(field="name", description="x")]
        details = [error_details_pb2.BadRequest(field_violations=violations)]
        raise KumoError(grpc.StatusCode.NOT_FOUND, "no such project", details, "req-7")

    use_client(monkeypatch, FakeClient(identity=FakeService(GetProject=get_project)))
    result = CliRunner().invoke(cli, ["project", "show", "prod"])
    assert result.exit_code == 3
    assert result.stderr == "error: no such project (request req-7)\n  name: x\n"
    assert result.stdout == ""


def test_list_pages_through_every_result(monkeypatch: pytest.MonkeyPatch) -> None:
    pages = {"": (["a", "b"], "2"), "2": (["c"], "")}
    seen: list[Any] = []

    def list_projects(request: Any) -> Any:
        seen.append((request.page_token, request.filter))
        names, token = pages[request.page_token]
        response = type("Page", (), {})()
        response.projects = [project(n) for n in names]
        response.next_page_token = token
        return response

    use_client(monkeypatch, FakeClient(identity=FakeService(ListProjects=list_projects)))
    result = CliRunner().invoke(cli, ["project", "list", "--filter", 'state = "active"'])
    assert result.exit_code == 0, result.output
    assert [line.split()[0] for line in result.stdout.splitlines()[1:]] == ["a", "b", "c"]
    assert seen == [("", 'state = "active"'), ("2", 'state = "active"')]
    result = CliRunner().invoke(cli, ["project", "list", "-o", "json", "--limit", "1"])
    assert [p["name"] for p in json.loads(result.stdout)] == ["projects/a"]


def test_output_option_works_before_and_after_the_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = FakeClient(identity=FakeService(GetProject=lambda request: project("p")))
    use_client(monkeypatch, client)
    for args in (["-o", "json", "project", "show", "p"], ["project", "show", "p", "-o", "json"]):
        result = CliRunner().invoke(cli, args)
        assert json.loads(result.stdout)["name"] == "projects/p"


def test_failed_operation_exits_6(monkeypatch: pytest.MonkeyPatch) -> None:
    failed = operation(True, status_pb2.Status(code=code_pb2.FAILED_PRECONDITION, message="busy"))
    client = FakeClient(identity=FakeService(DeleteProject=lambda request: operation()))
    client.wait = lambda op, timeout=None, on_progress=None: failed  # type: ignore[attr-defined]
    use_client(monkeypatch, client)
    result = CliRunner().invoke(cli, ["project", "delete", "p"])
    assert result.exit_code == errors.OPERATION_FAILED
    assert "error: operations/1234 failed: busy (FAILED_PRECONDITION)" in result.stderr


def test_delete_async_prints_the_operation_name(monkeypatch: pytest.MonkeyPatch) -> None:
    client = FakeClient(identity=FakeService(DeleteProject=lambda request: operation()))
    use_client(monkeypatch, client)
    result = CliRunner().invoke(cli, ["project", "delete", "p", "--async"])
    assert (result.exit_code, result.stdout) == (0, "operations/1234\n")
    result = CliRunner().invoke(cli, ["project", "delete", "p", "--async", "--no-wait"])
    assert result.exit_code == errors.USAGE


def test_commands_registered_later_get_the_shared_state() -> None:
    @cli.command("test-extra")
    @context.pass_state
    def extra(state: State) -> None:
        click.echo(state.output)

    try:
        result = CliRunner().invoke(cli, ["test-extra", "-o", "json"])
        assert (result.exit_code, result.stdout) == (0, "json\n")
    finally:
        cli.commands.pop("test-extra")


def test_a_single_violation_already_in_the_message_is_not_repeated() -> None:
    violation = error_details_pb2.BadRequest.FieldViolation(field="user.password", description="x")
    details = [error_details_pb2.BadRequest(field_violations=[violation])]
    error = KumoError(
        grpc.StatusCode.INVALID_ARGUMENT, "invalid request: user.password: x", details
    )
    assert errors.CliError.from_kumo(error).lines == []
    details[0].field_violations.add(field="user_id", description="y")
    assert errors.CliError.from_kumo(error).lines == ["  user.password: x", "  user_id: y"]
