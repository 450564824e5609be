"""UpdateAttachment: how a volume is attached to an instance (whether it goes with it)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from kumo.server.api.idempotency import idempotent
from kumo.server.auth.principal import current_principal
from kumo.server.db.models import InstanceRow
from kumo.server.interceptors.base import Context
from kumo.server.services.compute.locks import refuse_if_locked
from kumo.server.services.storage.attachments import attachment_of
from kumo.server.services.storage.common import StoragePart, render_volume, visible_volume
from kumo.storage.v1 import resources_pb2 as pb
from kumo.storage.v1 import storage_service_pb2 as api


class AttachmentUpdates(StoragePart):
    """The UpdateAttachment handler."""

    async def UpdateAttachment(
        self, request: api.UpdateAttachmentRequest, context: Context
    ) -> pb.Volume:
        """Sets the attachment's `delete_with_instance` (and for the instance's boot volume
        its `delete_boot_volume`, which says the same) in one transaction; idempotent.
        NotFound (the volume, or its project, hidden), InvalidArgument (a malformed
        instance name), FailedPrecondition (not attached to it: VOLUME_NOT_ATTACHED; the
        instance locked: INSTANCE_LOCKED)."""
        caller = current_principal()

        def update(session: Session) -> pb.Volume:
            row = visible_volume(session, caller, request.name, lock=True)
            instance_id, attachment = attachment_of(session, row, request.name, request.instance)
            instance = session.get(InstanceRow, (row.project_id, row.zone_id, instance_id))
            if instance is not None:
                refuse_if_locked(instance, caller, request.instance)
                if instance.boot_volume_id == row.id:
                    instance.delete_boot_volume = request.delete_with_instance
                    instance.version += 1
            attachment.delete_with_instance = request.delete_with_instance
            row.version += 1
            session.flush()
            return render_volume(session, row)

        return await idempotent(self.runtime.db, "UpdateAttachment", request, pb.Volume, update)
