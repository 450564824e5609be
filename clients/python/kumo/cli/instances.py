"""`kumo instance`: virtual machines, their power actions and serial console.

Instances live in a project and a zone,
`projects/{project}/zones/{zone}/instances/{id}`. INSTANCE is an id in the
signed-in project and the zone of `--zone` (default: $KUMO_ZONE, else the only
zone if there is exactly one), or a full name.
"""

from __future__ import annotations

import signal
import threading
from typing import IO, Any

import click
from google.protobuf import field_mask_pb2

from kumo.cli.context import (
    F,
    Group,
    Name,
    ProjectName,
    State,
    finish,
    label_options,
    list_all,
    list_options,
    operation_options,
    pass_state,
    patch,
    tag_options,
    wait_for,
)
from kumo.cli.output import Column
from kumo.client import instance_name, operation_metadata, short_id
from kumo.compute.v1 import compute_service_pb2 as pb
from kumo.compute.v1 import resources_pb2
from kumo.topology.v1 import topology_service_pb2

ALL_ZONES = "-"
ZONE_ENV = "KUMO_ZONE"
FOLLOW_INTERVAL = 1.0
"""Seconds between reads of `kumo instance console --follow`."""


def zone_of(name: str) -> str:
    """`projects/p/zones/z1/instances/vm` -> `z1`."""
    parts = name.split("/")
    return parts[3] if len(parts) == 6 else ""


INSTANCE_COLUMNS = (
    Column("NAME", "name", short=True),
    Column("ZONE", get=lambda instance: zone_of(instance.name)),
    Column("STATE", "state"),
    Column("HOST", "host", short=True),
    Column("FLAVOR", "flavor", short=True),
    Column("IMAGE", "image", short=True),
    Column("CREATED", "create_time"),
)


def zone_id(value: str | None) -> str | None:
    """A zone given as `z1` or `zones/z1` -> `z1` (None stays None).

    Raises click.BadParameter for another shape.
    """
    if value is None or value == ALL_ZONES:
        return value
    try:
        return short_id(Name("zones").convert(value, None, None))
    except click.BadParameter as error:
        raise click.BadParameter(error.message, param_hint="'--zone'") from None


def default_zone(state: State) -> str:
    """The only zone, if exactly one exists.

    Raises click.UsageError if there is none or there are several.
    """
    request = topology_service_pb2.ListZonesRequest(page_size=2)
    zones = list_all(state.client().topology.ListZones, request, "zones", limit=2)
    if len(zones) == 1:
        return short_id(zones[0].name)
    if not zones:
        raise click.UsageError("there are no zones yet; a cloud administrator creates them")
    raise click.UsageError(f"there are several zones: give --zone ZONE (or set ${ZONE_ENV})")


def resolve(state: State, value: str, zone: str | None) -> str:
    """The full name of INSTANCE given as an id or a full name, and --zone.

    Raises click.BadParameter for a malformed name or one outside --zone.
    """
    try:
        if "/" in value:
            return instance_name(value, "", zone or "")
        return instance_name(value, state.project(), zone or default_zone(state))
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="'INSTANCE'") from None


def zone_option(function: F) -> F:
    """`--zone` of commands acting on one instance (default: $KUMO_ZONE, the only zone)."""
    return click.option(
        "--zone",
        envvar=ZONE_ENV,
        callback=lambda _ctx, _param, value: zone_id(value),
        metavar="ZONE",
        help=f"The instance's zone (default: ${ZONE_ENV}, else the only zone).",
    )(function)


def print_instance(state: State, operation: Any) -> None:
    """Prints the instance a finished operation returned (fetched if it returned none)."""
    instance = resources_pb2.Instance()
    if not (operation.HasField("response") and operation.response.Unpack(instance)):
        name = operation_metadata(operation).target
        instance = state.client().compute.GetInstance(pb.GetInstanceRequest(name=name))
    state.printer.item(instance)


def act(
    state: State,
    method: str,
    request: Any,
    no_wait: bool,
    async_: bool,
    timeout: float | None,
) -> None:
    """Starts an instance action and reports it: the instance once done."""
    if no_wait and async_:
        raise click.UsageError("--no-wait and --async cannot be used together")
    operation = getattr(state.client().compute, method)(request)
    done = wait_for(state, operation, no_wait=no_wait, async_=async_, timeout=timeout)
    if done is not None:
        print_instance(state, done)


@click.group(cls=Group)
def instance() -> None:
    """Instances: virtual machines.

    INSTANCE is an id (in your project and the zone of --zone) or a full name,
    `projects/PROJECT/zones/ZONE/instances/ID`.
    """


@instance.command("list")
@click.option(
    "--zone",
    default=ALL_ZONES,
    show_default=True,
    callback=lambda _ctx, _param, value: zone_id(value),
    metavar="ZONE",
    help="Only this zone's instances; `-`: every zone.",
)
@list_options()
@pass_state
def list_instances(state: State, zone: str, filter_: str, order_by: str, limit: int) -> None:
    """List your project's instances."""
    parent = f"{state.project()}/zones/{zone}"
    request = pb.ListInstancesRequest(parent=parent, filter=filter_, order_by=order_by)
    items = list_all(state.client().compute.ListInstances, request, "instances", limit)
    state.printer.items(items, INSTANCE_COLUMNS)


@instance.command("show")
@click.argument("value", metavar="INSTANCE")
@zone_option
@pass_state
def show_instance(state: State, value: str, zone: str | None) -> None:
    """Show an instance: its spec, state, host and conditions."""
    name = resolve(state, value, zone)
    found = state.client().compute.GetInstance(pb.GetInstanceRequest(name=name))
    state.printer.item(found)


key_pair_option = click.option(
    "--key-pair",
    "key_pairs",
    type=ProjectName("keyPairs"),
    multiple=True,
    help="Inject this key pair's public key (repeatable).",
)
user_data_option = click.option(
    "--user-data-file",
    type=click.File("rb"),
    help="Hand this file to the guest as user data (at most 64 KiB).",
)


@instance.command("create")
@click.argument("value", metavar="INSTANCE")
@zone_option
@click.option("--flavor", type=Name("flavors"), required=True, help="Size: a flavor.")
@click.option("--image", type=ProjectName("images"), required=True, help="Boot image.")
@key_pair_option
@click.option("--server-group", type=ProjectName("serverGroups"), help="Join a server group.")
@click.option(
    "--network",
    "networks",
    type=ProjectName("networks"),
    multiple=True,
    help="Give the guest an interface on this network (repeatable; the first is eth0).",
)
@click.option(
    "--port",
    "ports",
    type=ProjectName("ports"),
    multiple=True,
    help="Give the guest an interface on this existing, unused port (repeatable; after the "
    "--network ones).",
)
@click.option(
    "--boot-volume",
    help="Boot from this bootable volume of the instance's zone (an id or a full name); "
    "--image then says what it holds.",
)
@click.option(
    "--boot-volume-size",
    type=click.IntRange(min=1),
    help="Boot from a new volume of this many GiB made from --image with the instance.",
)
@click.option(
    "--boot-volume-snapshot",
    help="Boot from a new volume copied from this snapshot of a bootable volume (its full "
    "name); --boot-volume-size may make it larger.",
)
@click.option(
    "--boot-volume-type",
    type=Name("volumeTypes"),
    help="The new boot volume's type (default: the cloud's default type).",
)
@click.option(
    "--delete-boot-volume",
    is_flag=True,
    help="Delete the boot volume with the instance (default: keep it).",
)
@click.option(
    "--volume",
    "volumes",
    multiple=True,
    help="Attach this volume of the instance's zone (an id or a full name) as the instance "
    "is made (repeatable; kept when the instance is deleted).",
)
@click.option(
    "--new-volume",
    "new_volumes",
    type=click.IntRange(min=1),
    multiple=True,
    help="Attach a new empty volume of this many GiB, made with the instance (repeatable; "
    "deleted with it unless --keep-new-volumes).",
)
@click.option(
    "--new-volume-type",
    type=Name("volumeTypes"),
    help="The new volumes' type (default: the cloud's default type).",
)
@click.option(
    "--keep-new-volumes",
    is_flag=True,
    help="Keep the --new-volume volumes, AVAILABLE, when the instance is deleted.",
)
@click.option("--hostname", help="The guest's host name (default: the instance id).")
@user_data_option
@click.option("--pool", type=Name("pools"), help="Place only in this resource pool.")
@click.option("--host", type=Name("hosts"), help="Place on this host (cloud administrators).")
@click.option("--display-name", help="Human-readable name.")
@label_options()
@tag_options()
@operation_options
@pass_state
def create_instance(
    state: State,
    value: str,
    zone: str | None,
    flavor: str,
    image: str,
    key_pairs: tuple[str, ...],
    server_group: str | None,
    networks: tuple[str, ...],
    ports: tuple[str, ...],
    boot_volume: str | None,
    boot_volume_size: int | None,
    boot_volume_snapshot: str | None,
    boot_volume_type: str | None,
    delete_boot_volume: bool,
    volumes: tuple[str, ...],
    new_volumes: tuple[int, ...],
    new_volume_type: str | None,
    keep_new_volumes: bool,
    hostname: str | None,
    user_data_file: IO[bytes] | None,
    pool: str | None,
    host: str | None,
    display_name: str | None,
    labels: dict[str, str],
    tags: tuple[str, ...],
    no_wait: bool,
    async_: bool,
    timeout: float | None,
) -> None:
    """Create an instance and wait until it runs, showing progress.

    Exits 6 if it cannot be built (for example when no host has room).
    """
    name = resolve(state, value, zone)
    parent, _, instance_id = name.rpartition("/instances/")
    resource = resources_pb2.Instance(
        flavor=flavor,
        image=image,
        key_pairs=key_pairs,
        server_group=server_group or "",
        hostname=hostname or "",
        user_data=user_data_file.read() if user_data_file is not None else b"",
        pool=pool or "",
        requested_host=host or "",
        display_name=display_name or "",
        labels=labels,
        tags=tags,
        network_interfaces=[
            *(resources_pb2.NetworkInterface(network=n) for n in networks),
            *(resources_pb2.NetworkInterface(port=p) for p in ports),
        ],
        delete_boot_volume=delete_boot_volume,
    )
    if boot_volume_size is not None or boot_volume_snapshot:
        resource.new_boot_volume.size_gib = boot_volume_size or 0
        resource.new_boot_volume.volume_type = boot_volume_type or ""
        resource.new_boot_volume.source_snapshot = boot_volume_snapshot or ""
    if boot_volume:
        resource.boot_volume = (
            boot_volume if "/" in boot_volume else f"{parent}/volumes/{boot_volume}"
        )
    for volume in volumes:
        resource.volumes_at_boot.add(
            volume=volume if "/" in volume else f"{parent}/volumes/{volume}"
        )
    for size in new_volumes:
        resource.volumes_at_boot.add(
            size_gib=size,
            volume_type=new_volume_type or "",
            delete_with_instance=not keep_new_volumes,
        )
    request = pb.CreateInstanceRequest(parent=parent, instance=resource, instance_id=instance_id)
    act(state, "CreateInstance", request, no_wait, async_, timeout)


@instance.command("update")
@click.argument("value", metavar="INSTANCE")
@zone_option
@click.option("--display-name", help="New human-readable name.")
@label_options(update=True)
@tag_options(update=True)
@click.option("--etag", help="Fail unless the instance still has this etag.")
@pass_state
def update_instance(
    state: State,
    value: str,
    zone: str | None,
    display_name: str | None,
    labels: dict[str, str],
    remove_labels: tuple[str, ...],
    tags: tuple[str, ...],
    remove_tags: tuple[str, ...],
    etag: str | None,
) -> None:
    """Change an instance's display name, labels or tags."""
    compute = state.client().compute
    current = compute.GetInstance(pb.GetInstanceRequest(name=resolve(state, value, zone)))
    resource, mask = patch(
        current, {"display_name": display_name}, labels, remove_labels, etag, tags, remove_tags
    )
    updated = compute.UpdateInstance(pb.UpdateInstanceRequest(instance=resource, update_mask=mask))
    state.printer.item(updated)


@instance.command("delete")
@click.argument("value", metavar="INSTANCE")
@zone_option
@click.option("--etag", help="Fail unless the instance still has this etag.")
@operation_options
@pass_state
def delete_instance(
    state: State,
    value: str,
    zone: str | None,
    etag: str | None,
    no_wait: bool,
    async_: bool,
    timeout: float | None,
) -> None:
    """Delete an instance and its disks."""
    name = resolve(state, value, zone)
    operation = state.client().compute.DeleteInstance(
        pb.DeleteInstanceRequest(name=name, etag=etag or "")
    )
    finish(state, operation, f"deleted {name}", no_wait=no_wait, async_=async_, timeout=timeout)


def _action(verb: str, method: str, doc: str) -> None:
    """Adds `kumo instance VERB INSTANCE` calling METHOD, which takes only a name."""

    @instance.command(verb, help=doc)
    @click.argument("value", metavar="INSTANCE")
    @zone_option
    @operation_options
    @pass_state
    def command(
        state: State,
        value: str,
        zone: str | None,
        no_wait: bool,
        async_: bool,
        timeout: float | None,
    ) -> None:
        request = getattr(pb, f"{method}Request")(name=resolve(state, value, zone))
        act(state, method, request, no_wait, async_, timeout)


_action("start", "StartInstance", "Power on a stopped instance.")
_action("suspend", "SuspendInstance", "Pause a running instance in memory.")
_action("resume", "ResumeInstance", "Continue a suspended instance.")
_action("confirm-resize", "ConfirmResizeInstance", "Keep the new flavor after a resize.")
_action("revert-resize", "RevertResizeInstance", "Return to the old flavor after a resize.")


MODE = resources_pb2.MigrationOptions.Mode


@instance.command("migrate")
@click.argument("value", metavar="INSTANCE")
@zone_option
@click.option("--host", type=Name("hosts"), help="Destination (default: the scheduler's pick).")
@click.option(
    "--live/--cold",
    default=None,
    help="Move it running, or shut it down and start it there (default: live if it runs).",
)
@click.option(
    "--max-downtime-ms", type=click.IntRange(1, 10_000), help="Longest pause (default 50)."
)
@click.option("--bandwidth-mibps", type=click.IntRange(min=1), help="Transfer cap.")
@click.option("--auto-converge", is_flag=True, help="Throttle a guest that dirties memory fast.")
@click.option("--post-copy", is_flag=True, help="Switch to post-copy after the first pass.")
@click.option(
    "--migration-timeout",
    type=click.IntRange(1, 86_400),
    help="Abort after N s (default 600).",
)
@operation_options
@pass_state
def migrate_instance(
    state: State,
    value: str,
    zone: str | None,
    host: str | None,
    live: bool | None,
    max_downtime_ms: int | None,
    bandwidth_mibps: int | None,
    auto_converge: bool,
    post_copy: bool,
    migration_timeout: int | None,
    no_wait: bool,
    async_: bool,
    timeout: float | None,
) -> None:
    """Move an instance to another host (cloud administrators): live while it runs, cold
    when it is stopped or with --cold."""
    modes = {None: MODE.MODE_UNSPECIFIED, True: MODE.MODE_LIVE, False: MODE.MODE_COLD}
    options = resources_pb2.MigrationOptions(
        mode=modes[live],
        max_downtime_ms=max_downtime_ms or 0,
        bandwidth_mibps=bandwidth_mibps or 0,
        auto_converge=auto_converge,
        post_copy=post_copy,
        timeout_seconds=migration_timeout or 0,
    )
    request = pb.MigrateInstanceRequest(
        name=resolve(state, value, zone), host=host or "", options=options
    )
    act(state, "MigrateInstance", request, no_wait, async_, timeout)


@instance.command("evacuate")
@click.argument("value", metavar="INSTANCE")
@zone_option
@click.option("--host", type=Name("hosts"), help="New host (default: the scheduler's pick).")
@operation_options
@pass_state
def evacuate_instance(
    state: State,
    value: str,
    zone: str | None,
    host: str | None,
    no_wait: bool,
    async_: bool,
    timeout: float | None,
) -> None:
    """Rebuild an instance of a DOWN host on another one, from its image (cloud
    administrators; its local disk's data is lost)."""
    request = pb.EvacuateInstanceRequest(name=resolve(state, value, zone), host=host or "")
    act(state, "EvacuateInstance", request, no_wait, async_, timeout)


@instance.command("resize")
@click.argument("value", metavar="INSTANCE")
@click.argument("flavor", type=Name("flavors"))
@zone_option
@operation_options
@pass_state
def resize_instance(
    state: State,
    value: str,
    flavor: str,
    zone: str | None,
    no_wait: bool,
    async_: bool,
    timeout: float | None,
) -> None:
    """Give an instance another flavor (it restarts); then confirm-resize or revert-resize."""
    request = pb.ResizeInstanceRequest(name=resolve(state, value, zone), flavor=flavor)
    act(state, "ResizeInstance", request, no_wait, async_, timeout)


@instance.command("stop")
@click.argument("value", metavar="INSTANCE")
@zone_option
@click.option(
    "--timeout",
    "shutdown_timeout",
    type=click.IntRange(min=1),
    help="Seconds the guest has to shut down cleanly before it is forced off (default 60).",
)
@click.option("--no-wait", is_flag=True, help="Do not wait; print the operation as it is now.")
@click.option("--async", "async_", is_flag=True, help="Do not wait; print only the operation name.")
@click.option(
    "--wait-timeout",
    "timeout",
    type=click.FloatRange(min=0),
    default=None,
    help="Stop waiting after N s.",
)
@pass_state
def stop_instance(
    state: State,
    value: str,
    zone: str | None,
    shutdown_timeout: int | None,
    no_wait: bool,
    async_: bool,
    timeout: float | None,
) -> None:
    """Shut an instance off: ACPI first, forced after --timeout seconds."""
    request = pb.StopInstanceRequest(
        name=resolve(state, value, zone), timeout_seconds=shutdown_timeout or 0
    )
    act(state, "StopInstance", request, no_wait, async_, timeout)


@instance.command("reboot")
@click.argument("value", metavar="INSTANCE")
@zone_option
@click.option("--hard", is_flag=True, help="Reset at once instead of asking the guest.")
@operation_options
@pass_state
def reboot_instance(
    state: State,
    value: str,
    zone: str | None,
    hard: bool,
    no_wait: bool,
    async_: bool,
    timeout: float | None,
) -> None:
    """Restart a running instance (over ACPI, or --hard)."""
    reboot_type = pb.REBOOT_TYPE_HARD if hard else pb.REBOOT_TYPE_SOFT
    request = pb.RebootInstanceRequest(name=resolve(state, value, zone), type=reboot_type)
    act(state, "RebootInstance", request, no_wait, async_, timeout)


@instance.command("rebuild")
@click.argument("value", metavar="INSTANCE")
@zone_option
@click.option(
    "--image", type=ProjectName("images"), help="Rebuild from this image (default: its own)."
)
@key_pair_option
@click.option("--no-key-pairs", is_flag=True, help="Rebuild with no key pair at all.")
@user_data_option
@click.option("--display-name", help="A new human-readable name.")
@operation_options
@pass_state
def rebuild_instance(
    state: State,
    value: str,
    zone: str | None,
    image: str | None,
    key_pairs: tuple[str, ...],
    no_key_pairs: bool,
    user_data_file: IO[bytes] | None,
    display_name: str | None,
    no_wait: bool,
    async_: bool,
    timeout: float | None,
) -> None:
    """Recreate an instance's root disk from an image (its data is lost), with other key
    pairs (--key-pair replaces them), user data or name if given."""
    if key_pairs and no_key_pairs:
        raise click.UsageError("--key-pair and --no-key-pairs exclude each other")
    changes = resources_pb2.Instance(key_pairs=key_pairs, display_name=display_name or "")
    paths = []
    if key_pairs or no_key_pairs:
        paths.append("key_pairs")
    if user_data_file is not None:
        changes.user_data = user_data_file.read()
        paths.append("user_data")
    if display_name is not None:
        paths.append("display_name")
    request = pb.RebuildInstanceRequest(
        name=resolve(state, value, zone),
        image=image or "",
        instance=changes,
        update_mask=field_mask_pb2.FieldMask(paths=paths),
    )
    act(state, "RebuildInstance", request, no_wait, async_, timeout)


@instance.command("console")
@click.argument("value", metavar="INSTANCE")
@zone_option
@click.option(
    "-f", "--follow", is_flag=True, help="Keep printing new output every second until Ctrl-C."
)
@pass_state
def console(state: State, value: str, zone: str | None, follow: bool) -> None:
    """Print what the guest wrote to its serial console (the last 1 MiB)."""
    if follow and state.output == "json":
        raise click.UsageError("--follow prints text; it cannot be used with -o json")
    name = resolve(state, value, zone)
    compute = state.client().compute

    def read(start: int) -> Any:
        return compute.GetSerialPortOutput(pb.GetSerialPortOutputRequest(name=name, start=start))

    if not follow:
        output = read(0)
        if state.output == "json":
            state.printer.item(output)
        elif output.contents:
            click.echo(output.contents, nl=not output.contents.endswith("\n"))
        return
    # Ctrl-C is how --follow ends: it only flags the end, so that it never interrupts a
    # gRPC call half-way (a KeyboardInterrupt inside one can leave the process hanging).
    stopped = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stopped.set())
    try:
        start = 0
        while not stopped.is_set():
            output = read(start)
            if output.contents:
                click.echo(output.contents, nl=False)
            start = output.next
            stopped.wait(FOLLOW_INTERVAL)
    finally:
        signal.signal(signal.SIGINT, previous)


def register(cli: click.Group) -> None:
    """Adds `kumo instance`, also reachable as `kumo server` (OpenStack's word)."""
    cli.add_command(instance)
    cli.add_command(instance, name="server")
