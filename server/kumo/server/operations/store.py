"""Reading and writing operation rows, and rendering them as google.longrunning.Operation.

State machine: PENDING → RUNNING → SUCCEEDED | FAILED | CANCELLED. `done` is
true exactly in the last three. Only the controller holding the lease moves a
RUNNING operation on; cancellation of a PENDING one is immediate.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from google.longrunning import operations_pb2
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2
from sqlalchemy import Integer, LargeBinary, Update, bindparam, func, insert, update
from sqlalchemy.orm import Session

from kumo.server.api.convert import timestamp
from kumo.server.auth.principal import optional_principal
from kumo.server.db.base import utcnow
from kumo.server.db.engine import core
from kumo.server.db.models import OperationRow
from kumo.server.request_ids import current_request_id
from kumo.type.v1 import operation_metadata_pb2

PATTERN = "operations/{operation}"
TYPE_NAME = "longrunning.googleapis.com/Operation"


class OperationState(enum.IntEnum):
    """Where an operation is in its life."""

    PENDING = 0
    RUNNING = 1
    SUCCEEDED = 2
    FAILED = 3
    CANCELLED = 4


@dataclass
class Lease:
    """A running slot a controller offers to an operation about to be written: `create`
    writes the operation already leased to that controller (RUNNING, first attempt) and
    records it here, for the controller to start once the transaction has committed
    (no claim pass). Should the controller never start it, the lease runs out and any
    controller claims it as one whose controller died."""

    owner: str
    expire_time: datetime
    row: OperationRow | None = None


_INSERT = insert(OperationRow)
_COLUMNS = tuple(column.key for column in OperationRow.__table__.columns)


def create(
    session: Session,
    *,
    project_id: str,
    kind: str,
    target: str,
    target_uid: str = "",
    related: str = "",
    payload: bytes = b"",
    status_message: str = "queued",
    lease: Lease | None = None,
    detail: Message | None = None,
    method: str = "",
) -> OperationRow:
    """Adds an operation of `kind` (a registered handler) acting on `target` (`target_uid`:
    the uid of the target it creates, shown in its metadata; `related`: another resource it
    changes, such as the instance a volume is attached to): PENDING, or with `lease`
    RUNNING under that lease; `detail` is its metadata's first `detail`. Its verb is
    `method`, else the kind's last part; it records the request id and the user of the call
    being served (none outside a call). The row is written with a Core INSERT built once
    (docs/decisions.md, "Statements built once") and returned detached from `session`."""
    principal = optional_principal()
    now = utcnow()
    row = OperationRow(
        id=str(uuid.uuid4()),
        project_id=project_id,
        kind=kind,
        target=target,
        target_uid=target_uid,
        related=related,
        method=method,
        request_id=current_request_id(),
        requester=principal.user_id if principal is not None else "",
        payload=payload,
        state=OperationState.PENDING,
        status_message=status_message,
        progress_percent=0,
        cancel_requested=False,
        attempts=0,
        detail=None if detail is None else packed(detail),
        done=False,
        response=None,
        response_type="",
        error=None,
        lease_owner=None,
        lease_expire_time=None,
        create_time=now,
        update_time=now,
        end_time=None,
    )
    if lease is not None:
        row.state = OperationState.RUNNING
        row.lease_owner = lease.owner
        row.lease_expire_time = lease.expire_time
        row.attempts = 1
        lease.row = row
    core(session).execute(_INSERT, {column: getattr(row, column) for column in _COLUMNS})
    return row


def packed(detail: Message) -> bytes:
    """`detail` packed in an Any, serialized: what an operation row keeps as its detail."""
    wrapper = any_pb2.Any()
    wrapper.Pack(detail)
    return bytes(wrapper.SerializeToString())


def name_of(row: OperationRow) -> str:
    """The operation's resource name."""
    return f"operations/{row.id}"


def to_proto(row: OperationRow) -> operations_pb2.Operation:
    """Renders a row as an Operation with OperationMetadata and its result."""
    metadata = operation_metadata_pb2.OperationMetadata(
        create_time=timestamp(row.create_time),
        end_time=timestamp(row.end_time),
        target=row.target,
        target_uid=row.target_uid,
        related=row.related,
        verb=row.method or row.kind.rsplit(".", 1)[-1],
        request_id=row.request_id,
        requester=f"users/{row.requester}" if row.requester else "",
        status_message=row.status_message,
        requested_cancellation=row.cancel_requested,
        progress_percent=row.progress_percent,
        attempts=row.attempts,
    )
    if row.detail:
        metadata.detail.ParseFromString(row.detail)
    op = operations_pb2.Operation(name=name_of(row), done=row.done)
    op.metadata.Pack(metadata)
    if row.state == OperationState.SUCCEEDED and row.response is not None:
        op.response.type_url = "type.googleapis.com/" + row.response_type
        op.response.value = row.response
    elif row.done and row.error is not None:
        op.error.CopyFrom(status_pb2.Status.FromString(row.error))
    return op


def _finishing(held: bool) -> Update:
    return (
        update(OperationRow)
        .where(
            OperationRow.id == bindparam("operation"),
            OperationRow.done.is_(False),
            OperationRow.lease_owner == bindparam("owner")
            if held
            else OperationRow.lease_owner.is_(None),
        )
        .values(
            state=bindparam("new_state"),
            done=True,
            end_time=bindparam("now"),
            update_time=bindparam("now"),
            lease_owner=None,
            lease_expire_time=None,
            status_message=bindparam("message"),
            progress_percent=func.coalesce(
                bindparam("percent", type_=Integer), OperationRow.progress_percent
            ),
            response=bindparam("new_response", type_=LargeBinary),
            response_type=bindparam("new_response_type"),
            error=bindparam("new_error", type_=LargeBinary),
        )
    )


# Built once (docs/decisions.md, "Statements built once"): every operation ends with one.
_FINISH_HELD = _finishing(held=True)
_FINISH_UNHELD = _finishing(held=False)


def finish(
    session: Session,
    op_id: str,
    owner: str | None,
    state: OperationState,
    *,
    response: Message | None = None,
    error: status_pb2.Status | None = None,
    message: str = "",
) -> bool:
    """Ends an operation still held by `owner` (None: held by nobody). Returns whether it did.
    (A Core statement: an OperationRow of it loaded in `session` keeps its old values.)"""
    values: dict[str, Any] = {
        "operation": op_id,
        "owner": owner,
        "new_state": int(state),
        "now": utcnow(),
        "message": message or state.name.lower(),
        "percent": 100 if state == OperationState.SUCCEEDED else None,
        "new_response": None,
        "new_response_type": "",
        "new_error": None if error is None else error.SerializeToString(),
    }
    if response is not None:
        wrapped = any_pb2.Any()
        wrapped.Pack(response)
        values["new_response"] = wrapped.value
        values["new_response_type"] = response.DESCRIPTOR.full_name
    statement = _FINISH_UNHELD if owner is None else _FINISH_HELD
    return bool(core(session).execute(statement, values).rowcount)


def cancelled_status() -> status_pb2.Status:
    """The error of a cancelled operation, as google.longrunning prescribes."""
    return status_pb2.Status(code=code_pb2.CANCELLED, message="operation cancelled")
