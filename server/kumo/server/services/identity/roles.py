"""CreateRoleAssignment, GetRoleAssignment, ListRoleAssignments, DeleteRoleAssignment."""

from __future__ import annotations

from google.protobuf import empty_pb2
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kumo.identity.v1 import identity_service_pb2 as api
from kumo.identity.v1 import resources_pb2 as pb
from kumo.server.api.fields import check_required
from kumo.server.api.filtering import clause_condition, parse_filter
from kumo.server.api.idempotency import idempotent
from kumo.server.api.names import parse
from kumo.server.api.paging import Order
from kumo.server.auth.principal import Principal, current_principal
from kumo.server.db.models import RoleAssignmentRow
from kumo.server.errors import AlreadyExists, FailedPrecondition, NotFound
from kumo.server.interceptors.base import Context
from kumo.server.services.identity.common import (
    ROLE_ASSIGNMENT_FILTERS,
    ROLES_BY_NAME,
    USERS,
    IdentityPart,
    require_active,
    role_assignment_name,
    role_assignment_to_proto,
    visible_project,
)

TYPE_NAME = "identity.kumo.dev/RoleAssignment"
PATTERN = "projects/{project}/roleAssignments/{role_assignment}"
_ROLE_ASSIGNMENT_ID = r"[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?-(?:reader|member|admin)"


def _key(name: str, field: str = "name") -> tuple[str, str, int]:
    project_id, assignment = parse(field, name, PATTERN, role_assignment=_ROLE_ASSIGNMENT_ID)
    user_id, _, role = assignment.rpartition("-")
    return project_id, user_id, ROLES_BY_NAME[role]


def _visible(session: Session, caller: Principal, name: str) -> RoleAssignmentRow:
    project_id, user_id, role = _key(name)
    visible_project(session, caller, f"projects/{project_id}", "name")
    row = session.get(RoleAssignmentRow, (project_id, user_id, role))
    if row is None:
        raise NotFound(TYPE_NAME, name)
    return row


class RoleMethods(IdentityPart):
    """Role assignments: who holds which role on a project."""

    async def CreateRoleAssignment(
        self, request: api.CreateRoleAssignmentRequest, context: Context
    ) -> pb.RoleAssignment:
        caller = current_principal()
        check_required(request.role_assignment, "role_assignment.")
        user_id = USERS.parse(request.role_assignment.user, "role_assignment.user")
        role = request.role_assignment.role

        def create(session: Session) -> pb.RoleAssignment:
            project = visible_project(session, caller, request.parent, "parent")
            require_active(project)
            USERS.get(session, request.role_assignment.user, "role_assignment.user")
            row = RoleAssignmentRow(project_id=project.id, user_id=user_id, role=role)
            try:
                with session.begin_nested():
                    session.add(row)
            except IntegrityError as exc:
                raise AlreadyExists(
                    TYPE_NAME, role_assignment_name(project.id, user_id, role)
                ) from exc
            return role_assignment_to_proto(row)

        result = await idempotent(
            self.runtime.db, "CreateRoleAssignment", request, pb.RoleAssignment, create
        )
        self.runtime.authenticator.invalidate()
        return result

    async def GetRoleAssignment(
        self, request: api.GetRoleAssignmentRequest, context: Context
    ) -> pb.RoleAssignment:
        caller = current_principal()
        return await self.runtime.db.run(
            lambda s: role_assignment_to_proto(_visible(s, caller, request.name))
        )

    async def ListRoleAssignments(
        self, request: api.ListRoleAssignmentsRequest, context: Context
    ) -> api.ListRoleAssignmentsResponse:
        caller = current_principal()
        clauses = parse_filter(request.filter, ROLE_ASSIGNMENT_FILTERS.keys())

        def page(session: Session) -> api.ListRoleAssignmentsResponse:
            project = visible_project(session, caller, request.parent, "parent")
            query = select(RoleAssignmentRow).where(RoleAssignmentRow.project_id == project.id)
            for clause in clauses:
                query = query.where(
                    clause_condition(clause, lambda t: ROLE_ASSIGNMENT_FILTERS[t.field](t.value))
                )
            result = self.runtime.pager.page(
                session,
                query,
                key=RoleAssignmentRow.user_id,
                id_column=RoleAssignmentRow.role,
                order=Order("user"),
                page_size=request.page_size,
                page_token=request.page_token,
                binding=f"{TYPE_NAME}|{request.parent}|{request.filter}",
            )
            return api.ListRoleAssignmentsResponse(
                role_assignments=[role_assignment_to_proto(r) for r in result.rows],
                next_page_token=result.next_page_token,
            )

        return await self.runtime.db.run(page)

    async def DeleteRoleAssignment(
        self, request: api.DeleteRoleAssignmentRequest, context: Context
    ) -> empty_pb2.Empty:
        caller = current_principal()
        bootstrap = self.runtime.config.bootstrap.project

        def delete(session: Session) -> empty_pb2.Empty:
            row = _visible(session, caller, request.name)
            if row.project_id == bootstrap and row.role == pb.ROLE_ADMIN:
                admins = session.scalar(
                    select(func.count()).where(
                        RoleAssignmentRow.project_id == bootstrap,
                        RoleAssignmentRow.role == pb.ROLE_ADMIN,
                    )
                )
                if admins == 1:
                    raise FailedPrecondition(
                        "this is the last cloud administrator",
                        type="LAST_CLOUD_ADMIN",
                        subject=request.name,
                    )
            session.delete(row)
            return empty_pb2.Empty()

        result = await idempotent(
            self.runtime.db, "DeleteRoleAssignment", request, empty_pb2.Empty, delete
        )
        self.runtime.authenticator.invalidate()
        return result
