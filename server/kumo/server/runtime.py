"""Everything the services and controllers of one API process share."""

from __future__ import annotations

from dataclasses import dataclass

from kumo.server.api.paging import Pager
from kumo.server.auth.authenticator import Authenticator
from kumo.server.auth.keys import ServerKeys
from kumo.server.config import Config
from kumo.server.controllers.operations import OperationExecutor
from kumo.server.db.engine import Database
from kumo.server.images.store import ImageStore
from kumo.server.operations.handlers import HandlerRegistry
from kumo.server.operations.notifier import OperationNotifier


@dataclass
class Runtime:
    """The process-wide objects, built once by `create_server`."""

    config: Config
    db: Database
    keys: ServerKeys
    pager: Pager
    authenticator: Authenticator
    handlers: HandlerRegistry
    notifier: OperationNotifier
    executor: OperationExecutor | None
    images: ImageStore

    def operation_written(self) -> None:
        """Tells the local controller, if any, that a new operation is waiting."""
        if self.executor is not None:
            self.executor.wake()
