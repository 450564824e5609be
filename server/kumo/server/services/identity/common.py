"""Collections, conversions and checks shared by the identity servicer's parts."""

from __future__ import annotations

from typing import cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.identity.v1 import resources_pb2 as pb
from kumo.server.api.convert import common_fields, timestamp
from kumo.server.api.filtering import enum_value
from kumo.server.api.resources import Collection, Filter, equals
from kumo.server.auth.principal import Principal
from kumo.server.db.models import AccessKeyRow, ProjectRow, RoleAssignmentRow, UserRow
from kumo.server.errors import FailedPrecondition, InvalidArgument, NotFound
from kumo.server.runtime import Runtime

ROLE_NAMES: dict[int, str] = {
    pb.ROLE_READER: "reader",
    pb.ROLE_MEMBER: "member",
    pb.ROLE_ADMIN: "admin",
}
ROLES_BY_NAME = {text: number for number, text in ROLE_NAMES.items()}
ACTIVE = pb.Project.STATE_ACTIVE
ACCESS_KEY_ID = "KUMO[A-Z2-7]{16}"


def _bool(value: str) -> bool:
    if value not in ("true", "false"):
        raise InvalidArgument.field("filter", "use true or false")
    return value == "true"


PROJECTS = Collection(
    "identity.kumo.dev/Project",
    "projects/{project}",
    ProjectRow,
    filters={"state": lambda v: ProjectRow.state == enum_value(pb.Project.State, v)},
)
USERS = Collection(
    "identity.kumo.dev/User",
    "users/{user}",
    UserRow,
    filters={
        "disabled": lambda v: UserRow.disabled.is_(_bool(v)),
        "email": equals(UserRow.email),
    },
)
ROLE_ASSIGNMENT_FILTERS: dict[str, Filter] = {
    "user": lambda v: RoleAssignmentRow.user_id == v.removeprefix("users/"),
    "role": lambda v: RoleAssignmentRow.role == enum_value(pb.Role, v),
}


class IdentityPart:
    """Base of each part of the identity servicer: holds the runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime


def project_to_proto(row: ProjectRow) -> pb.Project:
    """Renders a project row."""
    return pb.Project(
        **common_fields(row, PROJECTS.name_of(row.id)),
        description=row.description,
        state=cast(pb.Project.State, row.state),
    )


def user_to_proto(row: UserRow) -> pb.User:
    """Renders a user row (never with a password)."""
    return pb.User(
        **common_fields(row, USERS.name_of(row.id)), email=row.email, disabled=row.disabled
    )


def role_assignment_name(project_id: str, user_id: str, role: int) -> str:
    """`projects/{p}/roleAssignments/{user}-{role}`."""
    return f"projects/{project_id}/roleAssignments/{user_id}-{ROLE_NAMES[role]}"


def role_assignment_to_proto(row: RoleAssignmentRow) -> pb.RoleAssignment:
    """Renders a role assignment row."""
    return pb.RoleAssignment(
        name=role_assignment_name(row.project_id, row.user_id, row.role),
        user=USERS.name_of(row.user_id),
        role=cast(pb.Role, row.role),
        create_time=timestamp(row.create_time),
    )


def access_key_to_proto(row: AccessKeyRow, secret: str = "") -> pb.AccessKey:
    """Renders an access key; the secret only when given (at creation)."""
    return pb.AccessKey(
        name=f"users/{row.user_id}/accessKeys/{row.id}",
        access_key_id=row.id,
        secret_access_key=secret,
        project=PROJECTS.name_of(row.project_id),
        description=row.description,
        create_time=timestamp(row.create_time),
    )


def visible_project(session: Session, principal: Principal, name: str, field: str) -> ProjectRow:
    """The project named `name` if the caller may see it; NotFound otherwise."""
    project_id = PROJECTS.parse(name, field)
    principal.require_project(project_id, PROJECTS.type_name, name)
    return PROJECTS.get(session, name, field)


def require_active(project: ProjectRow) -> None:
    """FailedPrecondition unless the project is ACTIVE (not being deleted)."""
    require_active_state(project.id, project.state)


def require_active_state(project_id: str, state: int) -> None:
    """FailedPrecondition unless `state`, project `project_id`'s, is ACTIVE."""
    if state != ACTIVE:
        raise FailedPrecondition(
            f"projects/{project_id} is being deleted",
            type="PROJECT_DELETING",
            subject=f"projects/{project_id}",
        )


def self_or_admin(principal: Principal, user_id: str, name: str) -> None:
    """NotFound unless the caller is that user or a cloud administrator."""
    if not principal.cloud_admin and principal.user_id != user_id:
        raise NotFound(USERS.type_name, name)


def roles_on(session: Session, user_id: str, project_id: str) -> list[int]:
    """The roles the user holds on the project, lowest first."""
    return sorted(
        session.scalars(
            select(RoleAssignmentRow.role).where(
                RoleAssignmentRow.user_id == user_id, RoleAssignmentRow.project_id == project_id
            )
        )
    )
