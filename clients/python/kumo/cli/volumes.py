"""`kumo volume`, `kumo snapshot` and `kumo volume-type`: block storage.

Volumes live in a project and a zone, `projects/{project}/zones/{zone}/volumes/{id}`;
VOLUME is an id (in the signed-in project and the zone of --zone: default $KUMO_ZONE, else
the only zone) or a full name. Snapshots are children of their volume. Volume types are
global (`volumeTypes/local`) and managed by cloud administrators.
"""

from __future__ import annotations

from typing import Any

import click

from kumo.cli.context import (
    Group,
    Id,
    Name,
    State,
    finish,
    label_options,
    list_all,
    list_options,
    operation_options,
    pass_state,
    wait_for,
)
from kumo.cli.instances import ALL_ZONES, default_zone, zone_id, zone_option
from kumo.cli.output import Column, enum_label
from kumo.client import instance_name, operation_metadata, short_id
from kumo.storage.v1 import resources_pb2
from kumo.storage.v1 import storage_service_pb2 as pb

VOLUME_TYPE = Name("volumeTypes")
BACKENDS = {"qcow2": resources_pb2.BACKEND_QCOW2, "rbd": resources_pb2.BACKEND_RBD}


def _state(message: Any) -> str:
    return enum_label(type(message).State.DESCRIPTOR, message.state)


VOLUME_COLUMNS = (
    Column("NAME", "name", short=True),
    Column("ZONE", get=lambda v: v.name.split("/")[3]),
    Column("SIZE GIB", "size_gib"),
    Column("TYPE", get=lambda v: short_id(v.volume_type)),
    Column("STATE", get=_state),
    Column("ATTACHED TO", get=lambda v: ", ".join(short_id(a.instance) for a in v.attachments)),
)
SNAPSHOT_COLUMNS = (
    Column("NAME", "name", short=True),
    Column("SIZE GIB", "size_gib"),
    Column("STATE", get=_state),
    Column("CREATED", "create_time"),
)
TYPE_COLUMNS = (
    Column("NAME", "name", short=True),
    Column(
        "BACKEND",
        get=lambda t: enum_label(resources_pb2.Backend.DESCRIPTOR, t.backend),
    ),
    Column("POOL", "pool"),
    Column("MAX IOPS", get=lambda t: t.qos.max_iops or "-"),
    Column("DISPLAY NAME", "display_name"),
)


def volume_name(state: State, value: str, zone: str | None) -> str:
    """The full name of VOLUME given as an id or a full name, and --zone."""
    if "/" in value:
        parts = value.split("/")
        if not (
            len(parts) == 6
            and (parts[0], parts[2], parts[4]) == ("projects", "zones", "volumes")
            and all(parts)
        ):
            raise click.BadParameter(
                f"{value!r} is not a volume id or 'projects/P/zones/Z/volumes/ID'",
                param_hint="VOLUME",
            )
        return value
    return f"{state.project()}/zones/{zone or default_zone(state)}/volumes/{value}"


def _print_volume(state: State, operation: Any) -> None:
    volume = resources_pb2.Volume()
    if not (operation.HasField("response") and operation.response.Unpack(volume)):
        volume = state.client().storage.GetVolume(
            pb.GetVolumeRequest(name=operation_metadata(operation).target)
        )
    state.printer.item(volume)


def _run(state: State, operation: Any, no_wait: bool, async_: bool, timeout: float | None) -> None:
    done = wait_for(state, operation, no_wait=no_wait, async_=async_, timeout=timeout)
    if done is not None:
        _print_volume(state, done)


# Volume types


@click.group("volume-type", cls=Group)
def volume_type() -> None:
    """Volume types: backend (qcow2, rbd), pool and QoS limits (cloud administrators)."""


@volume_type.command("list")
@list_options()
@pass_state
def list_types(state: State, filter_: str, order_by: str, limit: int) -> None:
    """List volume types."""
    request = pb.ListVolumeTypesRequest(filter=filter_, order_by=order_by)
    items = list_all(state.client().storage.ListVolumeTypes, request, "volume_types", limit)
    state.printer.items(items, TYPE_COLUMNS)


@volume_type.command("show")
@click.argument("name", type=VOLUME_TYPE, metavar="TYPE")
@pass_state
def show_type(state: State, name: str) -> None:
    """Show a volume type."""
    state.printer.item(state.client().storage.GetVolumeType(pb.GetVolumeTypeRequest(name=name)))


@volume_type.command("create")
@click.argument("type_id", type=Id("volumeTypes"), metavar="TYPE")
@click.option("--backend", type=click.Choice(sorted(BACKENDS)), required=True)
@click.option("--pool", required=True, help="RBD pool, or qcow2 directory name.")
@click.option("--max-iops", type=click.IntRange(min=0), default=0, help="QoS: total IOPS.")
@click.option("--display-name", help="Human-readable name.")
@label_options()
@pass_state
def create_type(
    state: State,
    type_id: str,
    backend: str,
    pool: str,
    max_iops: int,
    display_name: str | None,
    labels: dict[str, str],
) -> None:
    """Create a volume type (cloud administrators)."""
    resource = resources_pb2.VolumeType(
        backend=BACKENDS[backend],
        pool=pool,
        qos=resources_pb2.QosLimits(max_iops=max_iops),
        display_name=display_name or "",
        labels=labels,
    )
    created = state.client().storage.CreateVolumeType(
        pb.CreateVolumeTypeRequest(volume_type_id=type_id, volume_type=resource)
    )
    state.printer.item(created)


@volume_type.command("delete")
@click.argument("name", type=VOLUME_TYPE, metavar="TYPE")
@pass_state
def delete_type(state: State, name: str) -> None:
    """Delete a volume type no volume uses."""
    state.client().storage.DeleteVolumeType(pb.DeleteVolumeTypeRequest(name=name))
    state.printer.done(f"deleted {name}")


# Volumes


@click.group(cls=Group)
def volume() -> None:
    """Volumes: block devices instances attach.

    VOLUME is an id (in your project and the zone of --zone) or a full name,
    `projects/PROJECT/zones/ZONE/volumes/ID`.
    """


@volume.command("list")
@click.option(
    "--zone",
    default=ALL_ZONES,
    show_default=True,
    callback=lambda _ctx, _param, value: zone_id(value),
    metavar="ZONE",
    help="Only this zone's volumes; `-`: every zone.",
)
@list_options()
@pass_state
def list_volumes(state: State, zone: str, filter_: str, order_by: str, limit: int) -> None:
    """List your project's volumes."""
    request = pb.ListVolumesRequest(
        parent=f"{state.project()}/zones/{zone}", filter=filter_, order_by=order_by
    )
    items = list_all(state.client().storage.ListVolumes, request, "volumes", limit)
    state.printer.items(items, VOLUME_COLUMNS)


@volume.command("show")
@click.argument("value", metavar="VOLUME")
@zone_option
@pass_state
def show_volume(state: State, value: str, zone: str | None) -> None:
    """Show a volume, its state and attachments."""
    name = volume_name(state, value, zone)
    state.printer.item(state.client().storage.GetVolume(pb.GetVolumeRequest(name=name)))


@volume.command("create")
@click.argument("value", metavar="VOLUME")
@zone_option
@click.option("--size-gib", type=int, required=True, help="Size in GiB (1-16384).")
@click.option("--type", "type_", type=VOLUME_TYPE, help="Volume type (default: the cloud's).")
@click.option("--image", help="Start from this image (projects/P/images/I); bootable.")
@click.option("--snapshot", help="Start from this snapshot (full name).")
@click.option("--source-volume", help="Start as a copy of this volume (full name).")
@click.option("--multi-attach", is_flag=True, help="Allow several instances at once.")
@click.option("--display-name", help="Human-readable name.")
@label_options()
@operation_options
@pass_state
def create_volume(
    state: State,
    value: str,
    zone: str | None,
    size_gib: int,
    type_: str | None,
    image: str | None,
    snapshot: str | None,
    source_volume: str | None,
    multi_attach: bool,
    display_name: str | None,
    labels: dict[str, str],
    no_wait: bool,
    async_: bool,
    timeout: float | None,
) -> None:
    """Create a volume and wait until it is AVAILABLE. Exits 6 if it fails."""
    if sum(x is not None for x in (image, snapshot, source_volume)) > 1:
        raise click.UsageError("give at most one of --image, --snapshot, --source-volume")
    name = volume_name(state, value, zone)
    parent, _, volume_id = name.rpartition("/volumes/")
    resource = resources_pb2.Volume(
        size_gib=size_gib,
        volume_type=type_ or "",
        multi_attach=multi_attach,
        display_name=display_name or "",
        labels=labels,
    )
    if image is not None:
        resource.source_image = image
    if snapshot is not None:
        resource.source_snapshot = snapshot
    if source_volume is not None:
        resource.source_volume = source_volume
    request = pb.CreateVolumeRequest(parent=parent, volume_id=volume_id, volume=resource)
    _run(state, state.client().storage.CreateVolume(request), no_wait, async_, timeout)


@volume.command("delete")
@click.argument("value", metavar="VOLUME")
@zone_option
@operation_options
@pass_state
def delete_volume(
    state: State, value: str, zone: str | None, no_wait: bool, async_: bool, timeout: float | None
) -> None:
    """Delete a volume (refused while it has snapshots or attachments)."""
    name = volume_name(state, value, zone)
    operation = state.client().storage.DeleteVolume(pb.DeleteVolumeRequest(name=name))
    finish(state, operation, f"deleted {name}", no_wait=no_wait, async_=async_, timeout=timeout)


@volume.command("extend")
@click.argument("value", metavar="VOLUME")
@zone_option
@click.option("--size-gib", type=int, required=True, help="The new, larger size.")
@operation_options
@pass_state
def extend_volume(
    state: State,
    value: str,
    zone: str | None,
    size_gib: int,
    no_wait: bool,
    async_: bool,
    timeout: float | None,
) -> None:
    """Grow a volume (volumes never shrink)."""
    request = pb.ExtendVolumeRequest(name=volume_name(state, value, zone), size_gib=size_gib)
    _run(state, state.client().storage.ExtendVolume(request), no_wait, async_, timeout)


@volume.command("attach")
@click.argument("value", metavar="VOLUME")
@click.argument("instance", metavar="INSTANCE")
@zone_option
@click.option("--read-only", is_flag=True, help="The guest may only read it.")
@click.option(
    "--delete-with-instance", is_flag=True, help="Delete the volume when the instance is deleted."
)
@operation_options
@pass_state
def attach_volume(
    state: State,
    value: str,
    instance: str,
    zone: str | None,
    read_only: bool,
    delete_with_instance: bool,
    no_wait: bool,
    async_: bool,
    timeout: float | None,
) -> None:
    """Attach a volume to an instance of the same zone."""
    name = volume_name(state, value, zone)
    mode = resources_pb2.ATTACH_MODE_READ_WRITE
    if read_only:
        mode = resources_pb2.ATTACH_MODE_READ_ONLY
    request = pb.AttachVolumeRequest(
        name=name,
        instance=instance_name(instance, state.project(), name.split("/")[3]),
        mode=mode,
        delete_with_instance=delete_with_instance,
    )
    _run(state, state.client().storage.AttachVolume(request), no_wait, async_, timeout)


@volume.command("detach")
@click.argument("value", metavar="VOLUME")
@click.argument("instance", metavar="INSTANCE")
@zone_option
@operation_options
@pass_state
def detach_volume(
    state: State,
    value: str,
    instance: str,
    zone: str | None,
    no_wait: bool,
    async_: bool,
    timeout: float | None,
) -> None:
    """Detach a volume from an instance."""
    name = volume_name(state, value, zone)
    request = pb.DetachVolumeRequest(
        name=name, instance=instance_name(instance, state.project(), name.split("/")[3])
    )
    _run(state, state.client().storage.DetachVolume(request), no_wait, async_, timeout)


# Snapshots


@click.group(cls=Group)
def snapshot() -> None:
    """Snapshots of volumes: `kumo snapshot create VOLUME SNAPSHOT`."""


@snapshot.command("list")
@click.argument("value", metavar="VOLUME")
@zone_option
@pass_state
def list_snapshots(state: State, value: str, zone: str | None) -> None:
    """List a volume's snapshots."""
    request = pb.ListSnapshotsRequest(parent=volume_name(state, value, zone))
    items = list_all(state.client().storage.ListSnapshots, request, "snapshots")
    state.printer.items(items, SNAPSHOT_COLUMNS)


@snapshot.command("create")
@click.argument("value", metavar="VOLUME")
@click.argument("snapshot_id", metavar="SNAPSHOT")
@zone_option
@operation_options
@pass_state
def create_snapshot(
    state: State,
    value: str,
    snapshot_id: str,
    zone: str | None,
    no_wait: bool,
    async_: bool,
    timeout: float | None,
) -> None:
    """Take a snapshot of a volume."""
    request = pb.CreateSnapshotRequest(
        parent=volume_name(state, value, zone),
        snapshot_id=snapshot_id,
        snapshot=resources_pb2.Snapshot(),
    )
    operation = state.client().storage.CreateSnapshot(request)
    done = wait_for(state, operation, no_wait=no_wait, async_=async_, timeout=timeout)
    if done is not None:
        taken = resources_pb2.Snapshot()
        done.response.Unpack(taken)
        state.printer.item(taken)


@snapshot.command("delete")
@click.argument("value", metavar="VOLUME")
@click.argument("snapshot_id", metavar="SNAPSHOT")
@zone_option
@operation_options
@pass_state
def delete_snapshot(
    state: State,
    value: str,
    snapshot_id: str,
    zone: str | None,
    no_wait: bool,
    async_: bool,
    timeout: float | None,
) -> None:
    """Delete a snapshot (volumes cloned from it are flattened first)."""
    name = f"{volume_name(state, value, zone)}/snapshots/{snapshot_id}"
    operation = state.client().storage.DeleteSnapshot(pb.DeleteSnapshotRequest(name=name))
    finish(state, operation, f"deleted {name}", no_wait=no_wait, async_=async_, timeout=timeout)


def register(cli: click.Group) -> None:
    """Adds `kumo volume`, `kumo snapshot` and `kumo volume-type`."""
    cli.add_command(volume)
    cli.add_command(snapshot)
    cli.add_command(volume_type)
