"""Instance locks (`Instance.locked`, `locked_reason`), set and cleared with UpdateInstance.

A locked instance refuses its actions, its deletion and volume attachments and detachments
(storage/volumes.py) unless a cloud administrator calls; a lock a cloud administrator set,
only a cloud administrator changes.
"""

from __future__ import annotations

from kumo.compute.v1 import resources_pb2 as pb
from kumo.server.auth.principal import Principal
from kumo.server.db.models import InstanceRow
from kumo.server.errors import FailedPrecondition, InvalidArgument, PermissionDenied

MAX_REASON = 255
LOCK_FIELDS = frozenset({"locked", "locked_reason"})


def refuse_if_locked(row: InstanceRow, caller: Principal, name: str) -> None:
    """FailedPrecondition `INSTANCE_LOCKED` when the instance is locked and the caller is
    not a cloud administrator."""
    if row.locked and not caller.cloud_admin:
        raise FailedPrecondition(
            f"{name} is locked: unlock it first", type="INSTANCE_LOCKED", subject=name
        )


def apply_lock(
    row: InstanceRow, caller: Principal, message: pb.Instance, paths: set[str], name: str
) -> None:
    """Applies the lock fields among `paths` (idempotent). InvalidArgument for a reason over
    MAX_REASON characters; PermissionDenied when a caller who is not a cloud administrator
    would change a lock a cloud administrator set."""
    paths = paths & LOCK_FIELDS
    if not paths:
        return
    if "locked_reason" in paths and len(message.locked_reason) > MAX_REASON:
        raise InvalidArgument.field("instance.locked_reason", f"at most {MAX_REASON} characters")
    locked = message.locked if "locked" in paths else row.locked
    reason = message.locked_reason if "locked_reason" in paths else row.locked_reason
    reason = reason if locked else ""
    if (locked, reason) == (row.locked, row.locked_reason):
        return
    if row.locked_by_admin and not caller.cloud_admin:
        raise PermissionDenied(f"{name} was locked by a cloud administrator")
    if locked and not row.locked:
        row.locked_by_admin = caller.cloud_admin
    elif not locked:
        row.locked_by_admin = False
    row.locked, row.locked_reason = locked, reason
