"""Deleted instances, kept readable for a while (`compute.deleted_instance_retention_seconds`).

EC2 shows a terminated instance for about an hour, and its clients depend on it: the
`instance_terminated` waiter (boto3, `aws ec2 wait instance-terminated`) succeeds only on
seeing the instance `terminated`, and a DescribeInstances that answers NotFound instead
fails it. So when an instance's record is deleted, the transaction that deletes it also
writes its tombstone: the Instance as last shown, in STATE_DELETED, without host or
interfaces (both are gone). GetInstance with `show_deleted` reads it once no instance of
that name exists; ListInstances with `show_deleted` lists the tombstones after the live
instances (`page`). Tombstones older than the retention period are dropped by the next
deletion; a project's go with the project.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import ColumnElement, Connection, delete, false, select, true
from sqlalchemy.orm import Session

from kumo.compute.v1 import compute_service_pb2 as api
from kumo.compute.v1 import resources_pb2 as pb
from kumo.server.api.filtering import boolean_value, enum_value
from kumo.server.api.paging import Pager
from kumo.server.api.resources import (
    Collection,
    compared_time,
    element_matches,
    equals,
    has_element,
    matches,
    reference,
)
from kumo.server.db.base import utcnow
from kumo.server.db.models import InstanceRow, InstanceTombstoneRow
from kumo.server.services.compute.common import (
    FLAVORS,
    INSTANCES,
    image_filter,
    instance_to_proto,
)

T = InstanceTombstoneRow


def _always(holds: bool) -> ColumnElement[bool]:
    """A condition true of every tombstone, or of none."""
    return true() if holds else false()


_DELETED = pb.Instance.STATE_DELETED
# The tombstones as a collection of their own, with the instances' filters: those of the
# columns a tombstone keeps, and the others as what a deleted instance has (no host, not
# paused nor locked, its state DELETED).
DELETED = Collection(
    "compute.kumo.dev/Instance",
    INSTANCES.pattern,
    T,
    filters={
        "state": lambda v: _always(enum_value(pb.Instance.State, v) == _DELETED),
        "paused": lambda v: _always(boolean_value(v) is False),
        "locked": lambda v: _always(boolean_value(v) is False),
        "host": lambda v: _always(not v),
        "flavor": reference(T.flavor_id, FLAVORS.pattern),
        "pool": reference(T.pool_id, "pools/{pool}"),
        "uid": equals(T.uid),
        "display_name": equals(T.display_name),
        "image": image_filter(T.image_project_id, T.image_id),
    },
    has_filters={"tags": has_element(T.tags), "key_pairs": has_element(T.key_pairs)},
    # (a tombstone was last updated when its instance was deleted)
    ordered_filters={
        "create_time": compared_time(T.create_time),
        "update_time": compared_time(T.deleted_at),
    },
    matched_filters={
        "display_name": matches(T.display_name),
        "hostname": matches(T.hostname),
        "key_pairs": element_matches(T.key_pairs),
        "ip_addresses": lambda v: _always(False),  # (its ports went with it)
    },
    order_fields=INSTANCES.order_fields,
    order_columns={"update_time": T.deleted_at},
    key_columns=("project_id", "zone_id", "id"),
)
_COLUMNS = (
    T.project_id,
    T.zone_id,
    T.id,
    T.uid,
    T.create_time,
    T.deleted_at,
    T.display_name,
    T.instance,
)


def bury(session: Session, row: InstanceRow, retention_seconds: float) -> None:
    """Writes the tombstone of `row`, whose record this transaction deletes (so once per
    uid), and drops those past `retention_seconds` (with 0, every one, this one included:
    none is kept)."""
    now = utcnow()
    session.execute(delete(T).where(T.deleted_at < now - timedelta(seconds=retention_seconds)))
    if retention_seconds <= 0:
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
            display_name=row.display_name,
            labels=dict(row.labels),
            tags=list(row.tags),
            flavor_id=row.flavor_id,
            pool_id=row.pool_id,
            image_project_id=row.image_project_id,
            image_id=row.image_id,
            hostname=row.hostname,
            key_pairs=list(row.key_pairs),
            create_time=row.create_time,
            deleted_at=now,
            instance=instance.SerializeToString(),
        )
    )


def page(
    connection: Connection,
    pager: Pager,
    request: api.ListInstancesRequest,
    where: list[ColumnElement[bool]],
    retention_seconds: float,
) -> tuple[list[pb.Instance], str]:
    """One page of the tombstones `request` lists (its filter, order, size and token, which
    must be one of this listing's), those within `retention_seconds` matching `where`
    (over the tombstone table's project_id and zone_id), and the next page's token."""
    fresh = T.deleted_at >= utcnow() - timedelta(seconds=retention_seconds)
    result = DELETED.list(
        connection,
        pager,
        request,
        [*where, fresh],
        binding=f"deleted|{request.parent}",
        plain=True,
        columns=_COLUMNS,
    )
    return [pb.Instance.FromString(r.instance) for r in result.rows], result.next_page_token


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
