"""StorageService: volume types, volumes, snapshots, attachments, backups, transfers.

Split into parts by resource (as the compute servicer is); the handlers of the long
operations are in volume_operations.py, the backend drivers in kumo.server.storage.
"""

from __future__ import annotations

from kumo.server.runtime import Runtime
from kumo.server.services.storage.attachment_updates import AttachmentUpdates
from kumo.server.services.storage.backups import Backups
from kumo.server.services.storage.project_cleanup import ProjectCleanup
from kumo.server.services.storage.snapshots import Snapshots
from kumo.server.services.storage.transfers import Transfers
from kumo.server.services.storage.volume_types import VolumeTypes
from kumo.server.services.storage.volumes import Volumes
from kumo.storage.v1 import storage_service_pb2_grpc as rpc


class StorageService(
    VolumeTypes,
    Volumes,
    AttachmentUpdates,
    Snapshots,
    Transfers,
    Backups,
    ProjectCleanup,
    rpc.StorageServiceServicer,
):
    """The storage servicer."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self.register_handlers()
        self.register_backup_handlers()
        runtime.project_cleanups.append(self._delete_project_storage)
