"""google.longrunning.Operations over Kumo's operation store.

Callers see the operations started from their project (cloud administrators
see all); anything else is NOT_FOUND. Cancel is best effort: a queued
operation is cancelled at once, a running one at its handler's next
checkpoint; cancelling a finished operation changes nothing. Only finished
operations can be deleted.
"""

from __future__ import annotations

import time

from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import empty_pb2
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from kumo.server.api.filtering import clause_condition, parse_filter
from kumo.server.api.names import parse_one
from kumo.server.api.paging import Order
from kumo.server.api.resources import Filter
from kumo.server.auth.principal import Principal, current_principal
from kumo.server.db.models import OperationRow
from kumo.server.errors import FailedPrecondition, InvalidArgument, NotFound
from kumo.server.interceptors.base import Context
from kumo.server.operations import store
from kumo.server.operations.store import OperationState
from kumo.server.runtime import Runtime

_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
DEFAULT_WAIT_SECONDS = 30.0
MAX_WAIT_SECONDS = 300.0
POLL_SECONDS = 1.0


def _bool(value: str) -> bool:
    if value not in ("true", "false"):
        raise InvalidArgument.field("filter", "done takes true or false")
    return value == "true"


FILTERS: dict[str, Filter] = {
    "done": lambda v: OperationRow.done.is_(_bool(v)),
    "target": lambda v: OperationRow.target == v,
    "related": lambda v: OperationRow.related == v,
}


def _visible(session: Session, caller: Principal, name: str) -> OperationRow:
    op_id = parse_one("name", name, store.PATTERN, operation=_UUID)
    row = session.get(OperationRow, op_id)
    if row is None or not caller.can_see_project(row.project_id):
        raise NotFound(store.TYPE_NAME, name)
    return row


class OperationsService(operations_pb2_grpc.OperationsServicer):
    """The Operations servicer."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def GetOperation(
        self, request: operations_pb2.GetOperationRequest, context: Context
    ) -> operations_pb2.Operation:
        caller = current_principal()
        return await self.runtime.db.run(
            lambda s: store.to_proto(_visible(s, caller, request.name))
        )

    async def ListOperations(
        self, request: operations_pb2.ListOperationsRequest, context: Context
    ) -> operations_pb2.ListOperationsResponse:
        caller = current_principal()
        if request.name not in ("", "operations"):
            raise InvalidArgument.field("name", "use 'operations' or leave it empty")
        where: list[ColumnElement[bool]] = []
        if not caller.cloud_admin:
            where.append(OperationRow.project_id == caller.project_id)
        for clause in parse_filter(request.filter, FILTERS.keys()):
            if any(term.label is not None for term in clause):
                raise InvalidArgument.field("filter", "operations have no labels")
            where.append(clause_condition(clause, lambda t: FILTERS[t.field](t.value)))

        def page(session: Session) -> operations_pb2.ListOperationsResponse:
            query = select(OperationRow)
            for condition in where:
                query = query.where(condition)
            result = self.runtime.pager.page(
                session,
                query,
                key=OperationRow.create_time,
                id_column=OperationRow.id,
                order=Order("create_time", descending=True),
                page_size=request.page_size,
                page_token=request.page_token,
                binding=f"operations|{caller.project_id}|{request.filter}",
            )
            return operations_pb2.ListOperationsResponse(
                operations=[store.to_proto(r) for r in result.rows],
                next_page_token=result.next_page_token,
            )

        return await self.runtime.db.run(page)

    async def DeleteOperation(
        self, request: operations_pb2.DeleteOperationRequest, context: Context
    ) -> empty_pb2.Empty:
        caller = current_principal()

        def delete(session: Session) -> empty_pb2.Empty:
            row = _visible(session, caller, request.name)
            if not row.done:
                raise FailedPrecondition(
                    f"{request.name} is still running: cancel it or wait",
                    type="OPERATION_RUNNING",
                    subject=request.name,
                )
            session.delete(row)
            return empty_pb2.Empty()

        return await self.runtime.db.run(delete)

    async def CancelOperation(
        self, request: operations_pb2.CancelOperationRequest, context: Context
    ) -> empty_pb2.Empty:
        caller = current_principal()

        def cancel(session: Session) -> bool:
            row = _visible(session, caller, request.name)
            if row.done:
                return False
            row.cancel_requested = True
            if row.state == OperationState.PENDING and row.lease_owner is None:
                return self.runtime.handlers.cancel(session, row.id, None)
            return False

        if await self.runtime.db.run(cancel):
            op_id = parse_one("name", request.name, store.PATTERN, operation=_UUID)
            self.runtime.notifier.notify(f"op:{op_id}")
        return empty_pb2.Empty()

    async def WaitOperation(
        self, request: operations_pb2.WaitOperationRequest, context: Context
    ) -> operations_pb2.Operation:
        caller = current_principal()
        wait = request.timeout.ToTimedelta().total_seconds() if request.HasField("timeout") else 0
        if wait < 0:
            raise InvalidArgument.field("timeout", "must not be negative")
        wait = min(wait or DEFAULT_WAIT_SECONDS, MAX_WAIT_SECONDS)
        remaining = context.time_remaining()
        if remaining is not None:
            wait = min(wait, max(remaining - 0.05, 0))
        deadline = time.monotonic() + wait
        while True:
            row = await self.runtime.db.run(lambda s: _visible(s, caller, request.name))
            left = deadline - time.monotonic()
            if row.done or left <= 0:
                return store.to_proto(row)
            await self.runtime.notifier.wait(f"op:{row.id}", min(left, POLL_SECONDS))
