"""What an operation handler is given, and the registry of handlers by kind.

A handler does the work of one kind of operation (`identity.DeleteProject`).
It must be resumable: the controller may run it again from the start after a
crash, so each step checks what is already done (level-based) and commits on
its own. At each checkpoint it records progress and learns whether
cancellation was asked. It returns the response message, or raises a KumoError
(the operation fails with that status) or OperationCancelled.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial

from google.protobuf.message import Message
from sqlalchemy import bindparam, update
from sqlalchemy.orm import Session

from kumo.server.db.engine import Database, core
from kumo.server.db.models import OperationRow
from kumo.server.operations import store

# Built once (docs/decisions.md, "Statements built once"): every handler step records progress.
_PROGRESS = (
    update(OperationRow)
    .where(OperationRow.id == bindparam("operation"))
    .values(progress_percent=bindparam("percent"), status_message=bindparam("message"))
    .returning(OperationRow.cancel_requested)
)


class OperationCancelled(Exception):
    """Raised by a handler (through `checkpoint`) when cancellation was requested."""


@dataclass
class OperationContext:
    """One run of one operation."""

    db: Database
    op_id: str
    project_id: str
    target: str
    payload: bytes
    attempt: int
    cancel_requested: bool = field(default=False)

    async def checkpoint(self, percent: int, message: str) -> None:
        """Records progress in a transaction of its own; raises OperationCancelled if
        cancellation was asked."""
        await self.db.run(partial(self.progress, percent=percent, message=message))

    def progress(self, session: Session, percent: int, message: str) -> None:
        """Records progress in the caller's transaction (one statement); raises
        OperationCancelled if cancellation was asked, which rolls that transaction back."""
        asked = (
            core(session)
            .execute(
                _PROGRESS,
                {
                    "operation": self.op_id,
                    "percent": max(0, min(percent, 100)),
                    "message": message[:255],
                },
            )
            .scalar()
        )
        if asked or self.cancel_requested:
            raise OperationCancelled()

    async def report_detail(self, detail: Message) -> None:
        """Shows `detail` (packed in an Any) as the metadata's `detail`; replaces the last."""
        data = store.packed(detail)

        def write(session: Session) -> None:
            session.execute(
                update(OperationRow).where(OperationRow.id == self.op_id).values(detail=data)
            )

        await self.db.run(write)


Handler = Callable[[OperationContext], Awaitable[Message]]
# Undoes what accepting an operation did (e.g. a state set to DELETING), in the
# transaction that marks it CANCELLED, whether or not its handler ever ran.
CancelHook = Callable[[Session, OperationRow], None]


class HandlerRegistry:
    """Handlers (and cancel hooks) by operation kind; services register theirs when built."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}
        self._cancel_hooks: dict[str, CancelHook] = {}

    def register(self, kind: str, handler: Handler, on_cancel: CancelHook | None = None) -> None:
        """Registers `handler` (and `on_cancel`) for `kind`; ValueError if the kind is taken."""
        if kind in self._handlers:
            raise ValueError(f"operation kind {kind!r} registered twice")
        self._handlers[kind] = handler
        if on_cancel is not None:
            self._cancel_hooks[kind] = on_cancel

    def get(self, kind: str) -> Handler | None:
        """The handler for `kind`, or None."""
        return self._handlers.get(kind)

    def cancel(self, session: Session, op_id: str, owner: str | None) -> bool:
        """Ends the operation as CANCELLED if `owner` holds it (None: nobody does) and runs
        its kind's cancel hook in the same transaction. Returns whether it did."""
        row = session.get(OperationRow, op_id)
        if row is None or not store.finish(
            session, op_id, owner, store.OperationState.CANCELLED, error=store.cancelled_status()
        ):
            return False
        if (hook := self._cancel_hooks.get(row.kind)) is not None:
            hook(session, row)
        return True
