"""Collections and conversions shared by the compute servicer's parts."""

from __future__ import annotations

from typing import cast

from kumo.compute.v1 import resources_pb2 as pb
from kumo.server.api.convert import common_fields, etag, timestamp
from kumo.server.api.filtering import boolean_value, enum_value
from kumo.server.api.resources import Collection, equals, reference
from kumo.server.db.models import FlavorRow, InstanceRow, KeyPairRow, ServerGroupRow
from kumo.server.runtime import Runtime
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
        # Lookups by the REST gateway's OpenStack dialect (server UUID, server name).
        "uid": equals(InstanceRow.uid),
        "display_name": equals(InstanceRow.display_name),
    },
    key_columns=("project_id", "zone_id", "id"),
)


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
    )


def _condition(kind: str, holds: bool, reason: str) -> condition_pb2.Condition:
    status = condition_pb2.Condition.STATUS_TRUE if holds else condition_pb2.Condition.STATUS_FALSE
    return condition_pb2.Condition(type=kind, status=status, reason=reason)


def instance_conditions(row: InstanceRow) -> list[condition_pb2.Condition]:
    """`Scheduled` (placed on a host) and `Ready` (running at the current generation)."""
    ready = row.state == pb.Instance.STATE_RUNNING and row.observed_generation >= row.generation
    return [
        _condition("Scheduled", row.host_id is not None, "Placed" if row.host_id else "Unplaced"),
        _condition("Ready", ready, "Running" if ready else "Converging"),
    ]


def _shown_state(row: InstanceRow) -> pb.Instance.State:
    """The observed state, but RESIZED while a finished resize awaits confirmation."""
    if (
        row.resize_from is not None
        and row.observed_resize_serial >= row.resize_serial
        and row.state in (pb.Instance.STATE_RUNNING, pb.Instance.STATE_STOPPED)
    ):
        return pb.Instance.STATE_RESIZED
    return cast(pb.Instance.State, row.state)


def instance_to_proto(row: InstanceRow) -> pb.Instance:
    """Renders an instance row."""
    group = row.server_group_id
    return pb.Instance(
        **common_fields(row, INSTANCES.name_of_row(row)),
        flavor=FLAVORS.name_of(row.flavor_id),
        image=f"projects/{row.image_project_id}/images/{row.image_id}",
        hostname=row.hostname,
        key_pairs=row.key_pairs,
        server_group=SERVER_GROUPS.name_of(row.project_id, group) if group else "",
        pool=f"pools/{row.pool_id}" if row.pool_id else "",
        requested_host=f"hosts/{row.requested_host_id}" if row.requested_host_id else "",
        user_data=row.user_data,
        power_intent=cast(pb.Instance.PowerIntent, row.power_intent),
        paused=row.paused and row.power_intent == pb.Instance.POWER_INTENT_SUSPENDED,
        locked=row.locked,
        locked_reason=row.locked_reason,
        generation=row.generation,
        state=_shown_state(row),
        status_message=row.status_message,
        host=f"hosts/{row.host_id}" if row.host_id else "",
        vcpus=row.vcpus,
        memory_mib=row.memory_mib,
        disk_gib=row.disk_gib,
        conditions=instance_conditions(row),
        observed_generation=row.observed_generation,
        boot_volume=(
            f"projects/{row.project_id}/zones/{row.zone_id}/volumes/{row.boot_volume_id}"
            if row.boot_volume_id
            else ""
        ),
    )
