"""The controller that runs operations: claim by lease, run, renew, finish.

Each pass claims PENDING operations and RUNNING ones whose lease has expired
(their controller died), oldest first, up to the free concurrency. On
PostgreSQL the claim uses `FOR UPDATE SKIP LOCKED`, so several replicas share
the work without taking the same operation. A claimed operation is run by its
kind's handler while a side task renews the lease; if the lease is lost the
handler is stopped. An operation that keeps being resumed is failed after
`max_attempts`; an unknown kind fails as UNIMPLEMENTED. Shutdown releases the
leases of running operations so that the next process resumes them at once.
Handlers run as background work (kumo.server.priority): user-facing calls go first; lease
renewals do not wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import timedelta
from functools import partial

from google.rpc import code_pb2, status_pb2
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from kumo.server.config import OperationsConfig
from kumo.server.db.base import utcnow
from kumo.server.db.engine import Database
from kumo.server.db.models import OperationRow
from kumo.server.errors import KumoError
from kumo.server.notifier import Notifier
from kumo.server.operations import store
from kumo.server.operations.handlers import (
    Handler,
    HandlerRegistry,
    OperationCancelled,
    OperationContext,
)
from kumo.server.operations.store import OperationState
from kumo.server.priority import Foreground, background

log = logging.getLogger(__name__)


class OperationExecutor:
    """Runs operations in this process; one per API process with operations enabled."""

    def __init__(
        self,
        db: Database,
        registry: HandlerRegistry,
        notifier: Notifier,
        config: OperationsConfig,
        foreground: Foreground | None = None,
    ) -> None:
        self._db = db
        self._foreground = foreground
        self._registry = registry
        self._notifier = notifier
        self._config = config
        self.owner = str(uuid.uuid4())
        self._wakeup = asyncio.Event()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._saturated = False
        self._offered = 0  # leases offered and not yet handed back to `adopt`
        self._loop_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Starts the claim loop. Idempotent."""
        if self._loop_task is None:
            self._loop_task = asyncio.create_task(self._claim_loop(), name="kumo-operations")

    def wake(self) -> None:
        """Asks for a claim pass now (after a new operation was written)."""
        self._wakeup.set()

    def offer(self) -> store.Lease | None:
        """A lease for an operation about to be written, if a slot is free (None: write it
        PENDING for a claim pass). Hand it back to `adopt` once the write has ended."""
        if len(self._running) + self._offered >= self._config.concurrency:
            return None
        self._offered += 1
        expire = utcnow() + timedelta(seconds=self._config.lease_seconds)
        return store.Lease(self.owner, expire)

    async def adopt(self, lease: store.Lease | None, written: str | None) -> None:
        """Starts the operation named `written` if it was created under `lease` (and that
        transaction committed: the caller passes the name it returned, or None when it
        failed); otherwise frees the slot and asks for a claim pass."""
        if lease is None:
            self.wake()
            return
        self._offered -= 1
        row = lease.row
        if row is None or written != store.name_of(row):
            self.wake()
            return
        await self._start(row)

    async def stop(self) -> None:
        """Stops claiming, stops running handlers and releases their leases. Idempotent."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _claim_loop(self) -> None:
        while True:
            try:
                free = self._config.concurrency - len(self._running) - self._offered
                # With every slot taken, more may be waiting: claim when a slot frees.
                self._saturated = free <= 0
                if free > 0:
                    claimed = await self._db.run(partial(self._claim, limit=free))
                    self._saturated = len(claimed) == free
                    for row in claimed:
                        await self._start(row)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("operation claim pass failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._config.poll_seconds)
            self._wakeup.clear()

    async def expedite(self, op_id: str) -> None:
        """Runs the operation `op_id` here now, beyond the concurrency if need be, unless it
        is done or leased (running here or elsewhere). For a handler that waits for another
        operation to finish: were that one to wait for a free slot, handlers waiting like
        this could hold every slot and wait forever. Idempotent."""
        if op_id in self._running:
            return
        for row in await self._db.run(partial(self._claim, limit=1, only=op_id)):
            await self._start(row)

    def _claim(self, session: Session, limit: int, only: str | None = None) -> list[OperationRow]:
        """Leases up to `limit` claimable operations to this controller (`only` that one, if
        given), oldest first, in one UPDATE ... RETURNING (PostgreSQL: its subquery skips
        rows other replicas lock)."""
        now = utcnow()
        claimable = (
            select(OperationRow.id)
            .where(
                OperationRow.done.is_(False),
                or_(OperationRow.lease_expire_time.is_(None), OperationRow.lease_expire_time < now),
                OperationRow.id.not_in(list(self._running)),
            )
            .order_by(OperationRow.create_time)
            .limit(limit)
        )
        if only is not None:
            claimable = claimable.where(OperationRow.id == only)
        if not self._db.is_sqlite:
            claimable = claimable.with_for_update(skip_locked=True)
        claimed = session.scalars(
            update(OperationRow)
            .where(OperationRow.id.in_(claimable.scalar_subquery()))
            .values(
                lease_owner=self.owner,
                lease_expire_time=now + timedelta(seconds=self._config.lease_seconds),
                state=int(OperationState.RUNNING),
                attempts=OperationRow.attempts + 1,
                update_time=now,
            )
            .returning(OperationRow)
            .execution_options(synchronize_session=False)
        )
        return sorted(claimed, key=lambda row: row.create_time)

    async def _start(self, row: OperationRow) -> None:
        if row.id in self._running:  # adopted, then claimed as well after its lease ran out
            return
        handler = self._registry.get(row.kind)
        verdict: tuple[OperationState, status_pb2.Status] | None = None
        if row.cancel_requested:
            verdict = (OperationState.CANCELLED, store.cancelled_status())
        elif handler is None:
            verdict = (
                OperationState.FAILED,
                status_pb2.Status(
                    code=code_pb2.UNIMPLEMENTED, message=f"no handler for {row.kind} here"
                ),
            )
        elif row.attempts > self._config.max_attempts:
            verdict = (
                OperationState.FAILED,
                status_pb2.Status(
                    code=code_pb2.ABORTED,
                    message=f"gave up after {row.attempts - 1} attempts were interrupted",
                ),
            )
        if verdict is not None or handler is None:
            state, error = verdict if verdict is not None else (OperationState.FAILED, None)
            await self._finish(row.id, state, error=error)
            return
        context = OperationContext(
            db=self._db,
            op_id=row.id,
            project_id=row.project_id,
            target=row.target,
            payload=row.payload,
            attempt=row.attempts,
        )
        task = asyncio.create_task(self._run(context, handler), name=f"op-{row.id}")
        self._running[row.id] = task
        task.add_done_callback(partial(self._forget, row.id))

    def _forget(self, op_id: str, _task: asyncio.Task[None]) -> None:
        # A slot is free: if operations were left waiting for one, claim the next now,
        # not at the next poll.
        self._running.pop(op_id, None)
        if self._saturated:
            self.wake()

    async def _run(self, context: OperationContext, handler: Handler) -> None:
        renew = asyncio.create_task(self._renew(context, asyncio.current_task()))
        if self._foreground is not None:
            background(self._foreground)
        try:
            response = await handler(context)
        except OperationCancelled:
            await self._finish(
                context.op_id, OperationState.CANCELLED, error=store.cancelled_status()
            )
        except KumoError as error:
            await self._finish(context.op_id, OperationState.FAILED, error=error.to_status())
        except asyncio.CancelledError:
            await asyncio.shield(self._release(context.op_id, delay=0))
            raise
        except Exception:
            log.exception(
                "operation %s failed unexpectedly (attempt %d)", context.op_id, context.attempt
            )
            if context.attempt >= self._config.max_attempts:
                await self._finish(
                    context.op_id,
                    OperationState.FAILED,
                    error=status_pb2.Status(code=code_pb2.INTERNAL, message="internal error"),
                )
            else:
                await self._release(context.op_id, delay=min(2**context.attempt, 60))
        else:
            await self._finish(context.op_id, OperationState.SUCCEEDED, response=response)
        finally:
            renew.cancel()

    async def _renew(self, context: OperationContext, task: asyncio.Task[object] | None) -> None:
        background(None)  # a renewal must not wait (e.g. for an operation started by another)
        interval = self._config.lease_seconds / 3

        def renew(session: Session) -> tuple[bool, bool]:
            now = utcnow()
            result = session.execute(
                update(OperationRow)
                .where(OperationRow.id == context.op_id, OperationRow.lease_owner == self.owner)
                .values(lease_expire_time=now + timedelta(seconds=self._config.lease_seconds))
            )
            row = session.get(OperationRow, context.op_id)
            return bool(result.rowcount), bool(row and row.cancel_requested)  # type: ignore[attr-defined]

        while True:
            await asyncio.sleep(interval)
            held, cancel = await self._db.run(renew)
            context.cancel_requested = cancel
            if not held and task is not None:
                log.warning("lost the lease of operation %s; stopping it", context.op_id)
                task.cancel()
                return

    async def _release(self, op_id: str, delay: float) -> None:
        def release(session: Session) -> None:
            session.execute(
                update(OperationRow)
                .where(OperationRow.id == op_id, OperationRow.lease_owner == self.owner)
                .values(lease_owner=None, lease_expire_time=utcnow() + timedelta(seconds=delay))
            )

        await self._db.run(release)
        self.wake()

    async def _finish(self, op_id: str, state: OperationState, **result: object) -> None:
        if state == OperationState.CANCELLED:
            await self._db.run(lambda s: self._registry.cancel(s, op_id, self.owner))
        else:
            await self._db.run(
                lambda s: store.finish(s, op_id, self.owner, state, **result)  # type: ignore[arg-type]
            )
        self._notifier.notify(f"op:{op_id}")
