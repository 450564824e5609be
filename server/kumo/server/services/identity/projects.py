"""CreateProject, GetProject, ListProjects, UpdateProject, DeleteProject (an operation)."""

from __future__ import annotations

from functools import partial
from typing import Any

from google.longrunning import operations_pb2
from google.protobuf import empty_pb2
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kumo.identity.v1 import identity_service_pb2 as api
from kumo.identity.v1 import resources_pb2 as pb
from kumo.server.api.convert import check_etag
from kumo.server.api.fields import check_required, update_paths
from kumo.server.api.idempotency import idempotent
from kumo.server.api.resources import apply_common
from kumo.server.auth.principal import current_principal
from kumo.server.db.models import (
    AccessKeyRow,
    OperationRow,
    ProjectRow,
    QuotaRow,
    RoleAssignmentRow,
)
from kumo.server.errors import FailedPrecondition
from kumo.server.interceptors.base import Context
from kumo.server.operations import store
from kumo.server.operations.handlers import OperationContext
from kumo.server.quota import create_project_quota
from kumo.server.services.identity.common import (
    ACTIVE,
    PROJECTS,
    IdentityPart,
    project_to_proto,
    require_active,
    visible_project,
)

DELETE_PROJECT = "identity.DeleteProject"
_EDITABLE = {"display_name", "description", "labels"}


class ProjectMethods(IdentityPart):
    """Projects and their deletion operation."""

    def register_handlers(self) -> None:
        """Registers the DeleteProject operation handler."""
        self.runtime.handlers.register(DELETE_PROJECT, self._delete_project, _reactivate)

    async def CreateProject(
        self, request: api.CreateProjectRequest, context: Context
    ) -> pb.Project:
        check_required(request.project, "project.")

        def create(session: Session) -> pb.Project:
            row = ProjectRow(state=ACTIVE)
            apply_common(row, request.project, _EDITABLE, "project")
            PROJECTS.insert(session, request.project_id, "project_id", row)
            create_project_quota(session, row.id, self.runtime.config.quota_defaults)
            session.flush()
            return project_to_proto(row)

        return await idempotent(self.runtime.db, "CreateProject", request, pb.Project, create)

    async def GetProject(self, request: api.GetProjectRequest, context: Context) -> pb.Project:
        caller = current_principal()
        caller.require_project(PROJECTS.parse(request.name), PROJECTS.type_name, request.name)
        return await self.runtime.db.read(
            lambda c: project_to_proto(PROJECTS.fetch(c, request.name))  # type: ignore[arg-type]
        )

    async def ListProjects(
        self, request: api.ListProjectsRequest, context: Context
    ) -> api.ListProjectsResponse:
        caller = current_principal()
        where = []
        if not caller.cloud_admin:
            mine = select(RoleAssignmentRow.project_id).where(
                RoleAssignmentRow.user_id == caller.user_id
            )
            where.append(ProjectRow.id.in_(mine))

        def page(session: Session) -> api.ListProjectsResponse:
            result = PROJECTS.list(
                session, self.runtime.pager, request, where, binding=caller.user_id
            )
            return api.ListProjectsResponse(
                projects=[project_to_proto(r) for r in result.rows],
                next_page_token=result.next_page_token,
            )

        return await self.runtime.db.run(page)

    async def UpdateProject(
        self, request: api.UpdateProjectRequest, context: Context
    ) -> pb.Project:
        caller = current_principal()
        paths = update_paths(request.project, request.update_mask, "project")

        def update(session: Session) -> pb.Project:
            row = visible_project(session, caller, request.project.name, "project.name")
            check_etag(request.project.etag, row.version, request.project.name)
            require_active(row)
            apply_common(row, request.project, paths, "project")
            row.version += 1
            session.flush()
            return project_to_proto(row)

        return await idempotent(self.runtime.db, "UpdateProject", request, pb.Project, update)

    async def DeleteProject(
        self, request: api.DeleteProjectRequest, context: Context
    ) -> operations_pb2.Operation:
        caller = current_principal()

        def start(session: Session) -> operations_pb2.Operation:
            row = visible_project(session, caller, request.name, "name")
            check_etag(request.etag, row.version, request.name)
            if row.id == self.runtime.config.bootstrap.project:
                raise FailedPrecondition(
                    "the bootstrap project cannot be deleted",
                    type="BOOTSTRAP_PROJECT",
                    subject=request.name,
                )
            require_active(row)
            row.state = pb.Project.STATE_DELETING
            row.version += 1
            op = store.create(
                session,
                project_id=caller.project_id,
                kind=DELETE_PROJECT,
                target=request.name,
                payload=row.id.encode(),
            )
            return store.to_proto(op)

        operation = await idempotent(
            self.runtime.db, "DeleteProject", request, operations_pb2.Operation, start
        )
        self.runtime.authenticator.invalidate()
        self.runtime.operation_written()
        return operation

    async def _delete_project(self, ctx: OperationContext) -> empty_pb2.Empty:
        """Removes what the project holds, one kind per step, then the project.

        Resumable: every step deletes whatever is left. Cancelled before the last
        step, the project returns to ACTIVE (the cancel hook, `_reactivate`).
        """
        project_id = ctx.payload.decode()
        for cleanup in self.runtime.project_cleanups:
            await cleanup(ctx, project_id)
        steps = [
            ("access keys", AccessKeyRow.project_id),
            ("role assignments", RoleAssignmentRow.project_id),
            ("quota", QuotaRow.project_id),
        ]
        for index, (label, column) in enumerate(steps):
            await ctx.checkpoint(index * 100 // (len(steps) + 1), f"deleting {label}")
            await ctx.db.run(partial(_delete_where, column, project_id))
        await ctx.checkpoint(90, "deleting the project")
        await ctx.db.run(lambda s: s.execute(delete(ProjectRow).where(ProjectRow.id == project_id)))
        self.runtime.authenticator.invalidate()
        return empty_pb2.Empty()


def _delete_where(column: Any, value: str, session: Session) -> None:
    session.execute(delete(column.class_).where(column == value))


def _reactivate(session: Session, operation: OperationRow) -> None:
    """Cancel hook of DeleteProject: the project, if still there, is ACTIVE again."""
    row = session.get(ProjectRow, operation.payload.decode())
    if row is not None:
        row.state = ACTIVE
        row.version += 1
