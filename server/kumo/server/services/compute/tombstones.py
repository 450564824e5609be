"""Deleted instances, kept readable for a while (`compute.deleted_instance_retention_seconds`).

EC2 shows a terminated instance for about an hour, and its clients depend on it: the
`instance_terminated` waiter (boto3, `aws ec2 wait instance-terminated`) succeeds only on
seeing the instance `terminated`, and a DescribeInstances that answers NotFound instead
fails it. So when an instance's record is deleted, the transaction that deletes it also
writes its tombstone: the Instance as last shown, in STATE_DELETED, without host or
interfaces (both are gone). GetInstance with `show_deleted` reads it once no instance of
that name exists. Tombstones older than the retention period are dropped by the next
deletion; a project's go with the project.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Connection, delete, select
from sqlalchemy.orm import Session

from kumo.compute.v1 import resources_pb2 as pb
from kumo.server.db.base import utcnow
from kumo.server.db.models import InstanceRow, InstanceTombstoneRow
from kumo.server.services.compute.common import INSTANCES, instance_to_proto

T = InstanceTombstoneRow


def bury(session: Session, row: InstanceRow, retention_seconds: float) -> None:
    """Writes the tombstone of `row`, whose record this transaction deletes, and drops
    those past `retention_seconds` (with 0, every one, this one included: none is kept).
    Idempotent per instance (one tombstone per uid)."""
    now = utcnow()
    session.execute(delete(T).where(T.deleted_at < now - timedelta(seconds=retention_seconds)))
    if retention_seconds <= 0 or session.get(T, row.uid) is not None:
        return
    instance = instance_to_proto(row)
    instance.state = pb.Instance.STATE_DELETED
    instance.ClearField("host")
    instance.ClearField("conditions")
    instance.update_time.FromDatetime(now)
    session.add(
        T(
            uid=row.uid,
            project_id=row.project_id,
            zone_id=row.zone_id,
            id=row.id,
            deleted_at=now,
            instance=instance.SerializeToString(),
        )
    )


def exhume(connection: Connection, name: str, retention_seconds: float) -> pb.Instance | None:
    """The last instance named `name` deleted within `retention_seconds`, or None."""
    project_id, zone_id, instance_id = INSTANCES.key(name)
    query = (
        select(T.instance)
        .where(
            T.project_id == project_id,
            T.zone_id == zone_id,
            T.id == instance_id,
            T.deleted_at >= utcnow() - timedelta(seconds=retention_seconds),
        )
        .order_by(T.deleted_at.desc())
        .limit(1)
    )
    data = connection.execute(query).scalar_one_or_none()
    return None if data is None else pb.Instance.FromString(data)
