"""Everything the services and controllers of one API process share."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from kumo.server.api.paging import Pager
from kumo.server.auth.authenticator import Authenticator
from kumo.server.auth.keys import ServerKeys
from kumo.server.config import Config
from kumo.server.controllers.operations import OperationExecutor
from kumo.server.db.engine import Database
from kumo.server.images.store import ImageStore
from kumo.server.notifier import NETWORK, OPERATIONS, Notifier
from kumo.server.operations.handlers import HandlerRegistry, OperationContext
from kumo.server.operations.store import Lease
from kumo.server.storage.backends import Backends

# Removes what one service holds for a project being deleted; resumable.
ProjectCleanup = Callable[[OperationContext, str], Awaitable[None]]


@dataclass
class Runtime:
    """The process-wide objects, built once by `create_server`."""

    config: Config
    db: Database
    keys: ServerKeys
    pager: Pager
    authenticator: Authenticator
    handlers: HandlerRegistry
    notifier: Notifier
    executor: OperationExecutor | None
    images: ImageStore
    # Block storage drivers by backend (built lazily from `config.storage`).
    storage: Backends
    # Run by DeleteProject, in registration order, before the project's own records go.
    project_cleanups: list[ProjectCleanup] = field(default_factory=list)

    def network_changed(self) -> None:
        """Tells the network reconcilers (of every replica: one of them holds the lease)
        that desired state changed."""
        self.notifier.notify(NETWORK)

    def operation_written(self) -> None:
        """Tells the operation controllers (of every replica) that a new operation waits
        to be claimed."""
        self.notifier.notify(OPERATIONS)

    @contextlib.asynccontextmanager
    async def writing_operation(self) -> AsyncIterator[OperationSlot]:
        """A slot for an operation the block writes: give `slot.lease` to `store.create`
        and set `slot.written` to the name of the operation the block returns. On leaving,
        the local controller starts it at once (no claim pass) if it was written under
        the lease; otherwise (no free slot, an error, a repeated request) it is told, as by
        `operation_written`, and frees the slot."""
        slot = OperationSlot(self.executor.offer() if self.executor is not None else None)
        try:
            yield slot
        finally:
            if self.executor is not None:
                await self.executor.adopt(slot.lease, slot.written)


@dataclass
class OperationSlot:
    """What `Runtime.writing_operation` lends a block writing an operation."""

    lease: Lease | None
    written: str | None = None
