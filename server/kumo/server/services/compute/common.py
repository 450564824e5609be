"""Collections and conversions shared by the compute servicer's parts."""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter
from typing import Any

from sqlalchemy import ColumnElement, bindparam, select
from sqlalchemy.engine import Connection, Row
from sqlalchemy.orm import Session, object_session

from kumo.compute.v1 import resources_pb2 as pb
from kumo.server.api.convert import common_fields, etag, timestamp
from kumo.server.api.filtering import boolean_value, enum_value
from kumo.server.api.names import parse
from kumo.server.api.resources import (
    Collection,
    Filter,
    compared_time,
    element_matches,
    equals,
    has_element,
    matches,
    reference,
)
from kumo.server.db.models import (
    FlavorRow,
    InstanceRow,
    IpAllocationRow,
    KeyPairRow,
    PortRow,
    ServerGroupRow,
)
from kumo.server.runtime import Runtime
from kumo.server.services.network.ports import INSTANCE_OWNER
from kumo.type.v1 import condition_pb2

FLAVORS = Collection("compute.kumo.dev/Flavor", "flavors/{flavor}", FlavorRow)
KEY_PAIRS = Collection(
    "compute.kumo.dev/KeyPair",
    "projects/{project}/keyPairs/{key_pair}",
    KeyPairRow,
    key_columns=("project_id", "id"),
)
SERVER_GROUPS = Collection(
    "compute.kumo.dev/ServerGroup",
    "projects/{project}/serverGroups/{server_group}",
    ServerGroupRow,
    filters={"policy": lambda v: ServerGroupRow.policy == enum_value(pb.ServerGroup.Policy, v)},
    key_columns=("project_id", "id"),
)
IMAGE_PATTERN = "projects/{project}/images/{image}"


def image_filter(project_column: Any, id_column: Any) -> Filter:
    """A filter of `image = "projects/P/images/I"` terms over the columns holding an
    image's project and id; InvalidArgument if the value is no image name."""

    def condition(value: str) -> ColumnElement[bool]:
        project, image = parse("filter", value, IMAGE_PATTERN)
        return (project_column == project) & (id_column == image)  # type: ignore[no-any-return]

    return condition


def _with_address(pattern: str) -> ColumnElement[bool]:
    """Instances with an interface address (a fixed IP, not a floating one) matching
    `pattern`."""
    addressed = (
        select(PortRow.instance_uid)
        .join(IpAllocationRow, IpAllocationRow.owner_uid == PortRow.uid)
        .where(
            PortRow.device_owner == INSTANCE_OWNER,
            IpAllocationRow.ip_address.regexp_match(pattern),
        )
    )
    return InstanceRow.uid.in_(addressed)


INSTANCES = Collection(
    "compute.kumo.dev/Instance",
    "projects/{project}/zones/{zone}/instances/{instance}",
    InstanceRow,
    filters={
        "state": lambda v: InstanceRow.state == enum_value(pb.Instance.State, v),
        "paused": lambda v: (
            (InstanceRow.paused == boolean_value(v))
            & (InstanceRow.power_intent == pb.Instance.POWER_INTENT_SUSPENDED)
        ),
        "host": reference(InstanceRow.host_id, "hosts/{host}"),
        "flavor": reference(InstanceRow.flavor_id, FLAVORS.pattern),
        "pool": reference(InstanceRow.pool_id, "pools/{pool}"),
        "locked": lambda v: InstanceRow.locked == boolean_value(v),
        # Lookups by the REST gateway's OpenStack dialect (server UUID, server name).
        "uid": equals(InstanceRow.uid),
        "display_name": equals(InstanceRow.display_name),
        "image": image_filter(InstanceRow.image_project_id, InstanceRow.image_id),
    },
    order_fields=("name", "create_time", "update_time", "display_name", "uid"),
    key_columns=("project_id", "zone_id", "id"),
    has_filters={
        "tags": has_element(InstanceRow.tags),
        "key_pairs": has_element(InstanceRow.key_pairs),
    },
    ordered_filters={
        "create_time": compared_time(InstanceRow.create_time),
        "update_time": compared_time(InstanceRow.update_time),
    },
    matched_filters={
        "display_name": matches(InstanceRow.display_name),
        "hostname": matches(InstanceRow.hostname),
        "key_pairs": element_matches(InstanceRow.key_pairs),
        "ip_addresses": _with_address,
    },
)


# Built once (docs/decisions.md, "Statements built once"): builds, reports and actions read
# instances by uid all the time.
_BY_UID = select(InstanceRow).where(InstanceRow.uid == bindparam("uid"))
_VALUES_BY_UID = select(InstanceRow.__table__).where(
    InstanceRow.__table__.c.uid == bindparam("uid")
)


def instance_by_uid(session: Session, uid: str) -> InstanceRow | None:
    """The instance whose uid is `uid`, or None."""
    return session.scalar(_BY_UID, {"uid": uid})


def instance_values_by_uid(connection: Connection, uid: str) -> Row[Any] | None:
    """The columns of the instance whose uid is `uid` as a plain Core row (attributes as an
    InstanceRow's; for reads, a third of the ORM object's cost), or None."""
    return connection.execute(_VALUES_BY_UID, {"uid": uid}).one_or_none()


def session_of(row: InstanceRow) -> Session:
    """The session `row` was loaded in: the transaction an instance action's `change` runs
    in (it is handed the row alone)."""
    session = object_session(row)
    assert session is not None, "the row is not in a session"
    return session


class ComputePart:
    """Base of each part of the compute servicer: holds the runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime


def flavor_to_proto(row: FlavorRow) -> pb.Flavor:
    """Renders a flavor row."""
    return pb.Flavor(
        **common_fields(row, FLAVORS.name_of(row.id)),
        description=row.description,
        vcpus=row.vcpus,
        memory_mib=row.memory_mib,
        disk_gib=row.disk_gib,
    )


def key_pair_to_proto(row: KeyPairRow, private_key: str = "") -> pb.KeyPair:
    """Renders a key pair row; the private key only when just generated."""
    return pb.KeyPair(
        name=KEY_PAIRS.name_of_row(row),
        uid=row.uid,
        public_key=row.public_key,
        private_key=private_key,
        fingerprint=row.fingerprint,
        create_time=timestamp(row.create_time),
        labels=row.labels,
        etag=etag(row.version),
        display_name=row.display_name or row.id,
    )


def _condition(kind: str, holds: bool, reason: str) -> condition_pb2.Condition:
    status = condition_pb2.Condition.STATUS_TRUE if holds else condition_pb2.Condition.STATUS_FALSE
    return condition_pb2.Condition(type=kind, status=status, reason=reason)


# An instance's two conditions by (placed, ready): the four possible pairs, made once.
_CONDITIONS = {
    (placed, ready): (
        _condition("Scheduled", placed, "Placed" if placed else "Unplaced"),
        _condition("Ready", ready, "Running" if ready else "Converging"),
    )
    for placed in (True, False)
    for ready in (True, False)
}
_RUNNING = pb.Instance.STATE_RUNNING
_STOPPED = pb.Instance.STATE_STOPPED
_RESIZED = pb.Instance.STATE_RESIZED
_SUSPENDED = pb.Instance.POWER_INTENT_SUSPENDED

# What an instance's message is made of, in the order `instance_from_values` takes them.
INSTANCE_FIELDS = (
    *("project_id", "zone_id", "id", "uid", "display_name", "labels", "create_time"),
    *("update_time", "version", "flavor_id", "image_project_id", "image_id", "hostname"),
    *("key_pairs", "server_group_id", "pool_id", "requested_host_id", "user_data"),
    *("power_intent", "paused", "locked", "locked_reason", "generation", "state"),
    *("resize_from", "observed_resize_serial", "resize_serial", "status_message"),
    *("host_id", "vcpus", "memory_mib", "disk_gib", "observed_generation", "boot_volume_id"),
    *("migration_host_id", "delete_boot_volume", "tags"),
)
# Those columns, to select: each row of such a select is `instance_from_values`' argument
# (the table's columns: a third cheaper to select than the mapped attributes).
INSTANCE_COLUMNS = tuple(InstanceRow.__table__.c[field] for field in INSTANCE_FIELDS)
_instance_values = attrgetter(*INSTANCE_FIELDS)


def instance_to_proto(row: InstanceRow | Row[Any]) -> pb.Instance:
    """Renders an instance row (an ORM object, or a Core row with at least those columns)."""
    return instance_from_values(_instance_values(row))


def instance_from_values(values: Sequence[Any]) -> pb.Instance:
    """Renders an instance from its `INSTANCE_FIELDS` values, in that order (a Core row
    of `INSTANCE_COLUMNS` is one).

    On every read of every instance, so written for speed: the values are unpacked at once
    (a Core row's attributes cost a lookup each), empty repeated and map fields are left
    alone rather than set empty, and the two conditions are made once (`_CONDITIONS`)."""
    project, zone, instance_id, uid, display_name, labels, create_time = values[:7]
    update_time, version, flavor_id, image_project_id, image_id, hostname = values[7:13]
    key_pairs, group, pool, requested_host, user_data = values[13:18]
    power_intent, paused, locked, locked_reason, generation, state = values[18:24]
    resize_from, observed_resize_serial, resize_serial, status_message = values[24:28]
    host, vcpus, memory_mib, disk_gib, observed_generation, boot_volume = values[28:34]
    migration_host, delete_boot_volume, tags = values[34:37]
    ready = state == _RUNNING and observed_generation >= generation
    if (
        resize_from is not None
        and observed_resize_serial >= resize_serial
        and state in (_RUNNING, _STOPPED)
    ):
        state = _RESIZED  # a finished resize awaits confirmation
    instance = pb.Instance(
        name=INSTANCES.name_of(project, zone, instance_id),
        uid=uid,
        display_name=display_name,
        create_time=timestamp(create_time),
        update_time=timestamp(update_time),
        etag=etag(version),
        flavor=FLAVORS.name_of(flavor_id),
        image=f"projects/{image_project_id}/images/{image_id}",
        hostname=hostname,
        server_group=SERVER_GROUPS.name_of(project, group) if group else "",
        pool=f"pools/{pool}" if pool else "",
        requested_host=f"hosts/{requested_host}" if requested_host else "",
        user_data=user_data,
        power_intent=power_intent,
        paused=paused and power_intent == _SUSPENDED,
        locked=locked,
        locked_reason=locked_reason,
        generation=generation,
        state=state,
        status_message=status_message,
        host=f"hosts/{host}" if host else "",
        vcpus=vcpus,
        memory_mib=memory_mib,
        disk_gib=disk_gib,
        # `Scheduled` (placed on a host) and `Ready` (running at the current generation)
        conditions=_CONDITIONS[(host is not None, ready)],
        observed_generation=observed_generation,
        boot_volume=(
            f"projects/{project}/zones/{zone}/volumes/{boot_volume}" if boot_volume else ""
        ),
        migration_host=f"hosts/{migration_host}" if migration_host else "",
        delete_boot_volume=delete_boot_volume,
    )
    if labels:
        instance.labels.update(labels)
    if key_pairs:
        instance.key_pairs.extend(key_pairs)
    if tags:
        instance.tags.extend(tags)
    return instance
