"""Backups (in the contract; not implemented yet: every method answers UNIMPLEMENTED).

The design they will follow: a backup is an RBD export-diff (or qcow2 copy) into the volume
type's `backup_pool`, incremental over the previous backup's snapshot.
"""

from __future__ import annotations

from typing import NoReturn

from kumo.server.errors import Unimplemented
from kumo.server.services.storage.common import StoragePart


def _unimplemented(method: str) -> NoReturn:
    raise Unimplemented(f"{method} is not implemented yet")


class Backups(StoragePart):
    """Backup methods (a part of the storage servicer)."""

    async def CreateBackup(self, request: object, context: object) -> NoReturn:
        _unimplemented("CreateBackup")

    async def GetBackup(self, request: object, context: object) -> NoReturn:
        _unimplemented("GetBackup")

    async def ListBackups(self, request: object, context: object) -> NoReturn:
        _unimplemented("ListBackups")

    async def DeleteBackup(self, request: object, context: object) -> NoReturn:
        _unimplemented("DeleteBackup")
