"""CreateServerGroup, GetServerGroup, ListServerGroups, DeleteServerGroup."""

from __future__ import annotations

from typing import cast

from google.protobuf import empty_pb2
from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.compute.v1 import compute_service_pb2 as api
from kumo.compute.v1 import resources_pb2 as pb
from kumo.server.api.convert import timestamp
from kumo.server.api.fields import check_required
from kumo.server.api.idempotency import idempotent
from kumo.server.auth.principal import current_principal
from kumo.server.db.models import InstanceRow, ServerGroupRow
from kumo.server.errors import FailedPrecondition
from kumo.server.interceptors.base import Context
from kumo.server.services.compute.common import INSTANCES, SERVER_GROUPS, ComputePart
from kumo.server.services.compute.key_pairs import own_project, visible
from kumo.server.services.identity.common import PROJECTS


class ServerGroupMethods(ComputePart):
    """Server groups: placement policies over sets of instances."""

    async def CreateServerGroup(
        self, request: api.CreateServerGroupRequest, context: Context
    ) -> pb.ServerGroup:
        project_id = own_project(current_principal(), request.parent)
        check_required(request.server_group, "server_group.")

        def create(session: Session) -> pb.ServerGroup:
            PROJECTS.get(session, request.parent, "parent")
            row = ServerGroupRow(project_id=project_id, policy=request.server_group.policy)
            SERVER_GROUPS.insert(session, request.server_group_id, "server_group_id", row)
            session.flush()
            return self._group(session, row)

        return await idempotent(
            self.runtime.db, "CreateServerGroup", request, pb.ServerGroup, create
        )

    def _group(self, session: Session, row: ServerGroupRow) -> pb.ServerGroup:
        members = session.scalars(
            select(InstanceRow).where(
                InstanceRow.project_id == row.project_id, InstanceRow.server_group_id == row.id
            )
        )
        return pb.ServerGroup(
            name=SERVER_GROUPS.name_of_row(row),
            uid=row.uid,
            policy=cast(pb.ServerGroup.Policy, row.policy),
            members=[INSTANCES.name_of_row(m) for m in members],
            create_time=timestamp(row.create_time),
        )

    async def GetServerGroup(
        self, request: api.GetServerGroupRequest, context: Context
    ) -> pb.ServerGroup:
        caller = current_principal()
        return await self.runtime.db.run(
            lambda s: self._group(s, visible(s, caller, SERVER_GROUPS, request.name))
        )

    async def ListServerGroups(
        self, request: api.ListServerGroupsRequest, context: Context
    ) -> api.ListServerGroupsResponse:
        project_id = own_project(current_principal(), request.parent)

        def page(session: Session) -> api.ListServerGroupsResponse:
            result = SERVER_GROUPS.list(
                session,
                self.runtime.pager,
                request,
                [ServerGroupRow.project_id == project_id],
                binding=request.parent,
            )
            return api.ListServerGroupsResponse(
                server_groups=[self._group(session, r) for r in result.rows],
                next_page_token=result.next_page_token,
            )

        return await self.runtime.db.run(page)

    async def DeleteServerGroup(
        self, request: api.DeleteServerGroupRequest, context: Context
    ) -> empty_pb2.Empty:
        caller = current_principal()

        def delete(session: Session) -> empty_pb2.Empty:
            row = visible(session, caller, SERVER_GROUPS, request.name)
            if self._group(session, row).members:
                raise FailedPrecondition(
                    f"{request.name} still has members", type="NOT_EMPTY", subject=request.name
                )
            session.delete(row)
            return empty_pb2.Empty()

        return await idempotent(
            self.runtime.db, "DeleteServerGroup", request, empty_pb2.Empty, delete
        )
