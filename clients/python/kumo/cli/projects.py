"""`kumo project`, `kumo role` and `kumo quota`: everything scoped to a project."""

from __future__ import annotations

from typing import Any

import click

from kumo.cli.context import (
    Group,
    Id,
    Name,
    State,
    finish,
    label_options,
    list_all,
    list_options,
    operation_options,
    pass_state,
    patch,
)
from kumo.cli.output import Column
from kumo.client import role_assignment_name
from kumo.client.names import ROLE_IDS
from kumo.identity.v1 import identity_service_pb2 as pb
from kumo.identity.v1 import resources_pb2

PROJECT = Name("projects")
USER = Name("users")
ROLE = click.Choice(ROLE_IDS, case_sensitive=False)

PROJECT_COLUMNS = (
    Column("NAME", "name", short=True),
    Column("DISPLAY NAME", "display_name"),
    Column("STATE", "state"),
    Column("CREATED", "create_time"),
)
ROLE_COLUMNS = (
    Column("USER", "user", short=True),
    Column("ROLE", "role"),
    Column("CREATED", "create_time"),
)


@click.group(cls=Group)
def project() -> None:
    """Projects: the unit of tenancy."""


@project.command("list")
@list_options()
@pass_state
def list_projects(state: State, filter_: str, order_by: str, limit: int) -> None:
    """List the projects you hold a role on (all, for cloud administrators)."""
    request = pb.ListProjectsRequest(filter=filter_, order_by=order_by)
    items = list_all(state.client().identity.ListProjects, request, "projects", limit)
    state.printer.items(items, PROJECT_COLUMNS)


@project.command("show")
@click.argument("name", type=PROJECT, metavar="PROJECT")
@pass_state
def show_project(state: State, name: str) -> None:
    """Show a project."""
    state.printer.item(state.client().identity.GetProject(pb.GetProjectRequest(name=name)))


@project.command("create")
@click.argument("project_id", type=Id("projects"), metavar="PROJECT")
@click.option("--display-name", help="Human-readable name.")
@click.option("--description", help="Free text.")
@label_options()
@pass_state
def create_project(
    state: State,
    project_id: str,
    display_name: str | None,
    description: str | None,
    labels: dict[str, str],
) -> None:
    """Create a project with the default quota (cloud administrators)."""
    resource = resources_pb2.Project(
        display_name=display_name or "", description=description or "", labels=labels
    )
    request = pb.CreateProjectRequest(project=resource, project_id=project_id)
    state.printer.item(state.client().identity.CreateProject(request))


@project.command("update")
@click.argument("name", type=PROJECT, metavar="PROJECT")
@click.option("--display-name", help="New human-readable name.")
@click.option("--description", help="New description.")
@label_options(update=True)
@click.option("--etag", help="Fail unless the project still has this etag.")
@pass_state
def update_project(
    state: State,
    name: str,
    display_name: str | None,
    description: str | None,
    labels: dict[str, str],
    remove_labels: tuple[str, ...],
    etag: str | None,
) -> None:
    """Change a project's display name, description or labels."""
    identity = state.client().identity
    current = identity.GetProject(pb.GetProjectRequest(name=name))
    changes = {"display_name": display_name, "description": description}
    resource, mask = patch(current, changes, labels, remove_labels, etag)
    state.printer.item(
        identity.UpdateProject(pb.UpdateProjectRequest(project=resource, update_mask=mask))
    )


@project.command("delete")
@click.argument("name", type=PROJECT, metavar="PROJECT")
@click.option("--etag", help="Fail unless the project still has this etag.")
@operation_options
@pass_state
def delete_project(
    state: State,
    name: str,
    etag: str | None,
    no_wait: bool,
    async_: bool,
    timeout: float | None,
) -> None:
    """Delete a project with everything it holds (cloud administrators).

    Waits for the deletion with a progress display unless --no-wait or --async.
    """
    request = pb.DeleteProjectRequest(name=name, etag=etag or "")
    operation = state.client().identity.DeleteProject(request)
    finish(state, operation, f"deleted {name}", no_wait=no_wait, async_=async_, timeout=timeout)


@click.group(cls=Group)
def role() -> None:
    """Role assignments: who may do what in a project (reader < member < admin)."""


@role.command("list")
@click.argument("parent", type=PROJECT, metavar="PROJECT")
@list_options(order_by=False)
@pass_state
def list_roles(state: State, parent: str, filter_: str, limit: int) -> None:
    """List a project's role assignments."""
    request = pb.ListRoleAssignmentsRequest(parent=parent, filter=filter_)
    method = state.client().identity.ListRoleAssignments
    state.printer.items(list_all(method, request, "role_assignments", limit), ROLE_COLUMNS)


def _role_number(role_id: str) -> Any:
    return resources_pb2.Role.Value(f"ROLE_{role_id.upper()}")


@role.command("grant")
@click.argument("parent", type=PROJECT, metavar="PROJECT")
@click.argument("user", type=USER)
@click.argument("role_id", type=ROLE, metavar="ROLE")
@pass_state
def grant(state: State, parent: str, user: str, role_id: str) -> None:
    """Grant USER the role ROLE (reader, member or admin) on PROJECT."""
    assignment = resources_pb2.RoleAssignment(user=user, role=_role_number(role_id.lower()))
    request = pb.CreateRoleAssignmentRequest(parent=parent, role_assignment=assignment)
    state.printer.item(state.client().identity.CreateRoleAssignment(request))


@role.command("revoke")
@click.argument("parent", type=PROJECT, metavar="PROJECT")
@click.argument("user", type=USER)
@click.argument("role_id", type=ROLE, metavar="ROLE")
@pass_state
def revoke(state: State, parent: str, user: str, role_id: str) -> None:
    """Take the role ROLE on PROJECT away from USER."""
    name = role_assignment_name(parent, user, role_id.lower())
    state.client().identity.DeleteRoleAssignment(pb.DeleteRoleAssignmentRequest(name=name))
    state.printer.done(f"revoked {role_id.lower()} on {parent} from {user}")


def parse_limit(item: str) -> tuple[str, int]:
    """`instances=10` -> ("instances", 10); `unlimited` (or -1) means no limit.

    Raises click.BadParameter for anything else.
    """
    resource, sep, value = item.partition("=")
    resource, value = resource.strip(), value.strip().lower()
    if not sep or not resource:
        raise click.BadParameter(f"{item!r} is not RESOURCE=LIMIT")
    if value == "unlimited":
        return resource, -1
    try:
        limit = int(value)
    except ValueError:
        raise click.BadParameter(f"{item!r}: the limit must be a number or 'unlimited'") from None
    if limit < -1:
        raise click.BadParameter(f"{item!r}: the limit must be -1 (unlimited) or more")
    return resource, limit


def quota_rows(quota: Any) -> list[list[str]]:
    return [
        [limit.resource, "unlimited" if limit.limit < 0 else str(limit.limit), str(limit.in_use)]
        for limit in quota.limits
    ]


def _print_quota(state: State, quota: Any) -> None:
    state.printer.table(["RESOURCE", "LIMIT", "IN USE"], quota_rows(quota), quota)


@click.group(cls=Group)
def quota() -> None:
    """Project quotas: a limit and current usage per counted resource."""


@quota.command("show")
@click.argument("parent", type=PROJECT, metavar="PROJECT")
@pass_state
def show_quota(state: State, parent: str) -> None:
    """Show a project's limits and usage."""
    _print_quota(
        state, state.client().identity.GetQuota(pb.GetQuotaRequest(name=f"{parent}/quota"))
    )


@quota.command("set")
@click.argument("parent", type=PROJECT, metavar="PROJECT")
@click.argument("limits", nargs=-1, required=True, metavar="RESOURCE=LIMIT...")
@pass_state
def set_quota(state: State, parent: str, limits: tuple[str, ...]) -> None:
    """Set limits (cloud administrators); others stay. LIMIT may be `unlimited`."""
    parsed = dict(parse_limit(item) for item in limits)
    resource = resources_pb2.Quota(
        name=f"{parent}/quota",
        limits=[resources_pb2.QuotaLimit(resource=k, limit=v) for k, v in parsed.items()],
    )
    _print_quota(state, state.client().identity.UpdateQuota(pb.UpdateQuotaRequest(quota=resource)))


def register(cli: click.Group) -> None:
    for group in (project, role, quota):
        cli.add_command(group)
