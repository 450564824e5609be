"""`kumo region|zone|pool|rack|host`: the physical layout, one table row per kind.

Every kind gets list, show, create, update and delete from `make_group`; its
row in KINDS says which fields become options. Hosts also get enable,
disable and maintenance enter/exit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
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
    patch,
    set_field,
)
from kumo.cli.output import Column, enum_label
from kumo.topology.v1 import resources_pb2
from kumo.topology.v1 import topology_service_pb2 as pb

HYPERVISORS: dict[str, int] = {
    enum_label(resources_pb2.HypervisorKind.DESCRIPTOR, value.number): value.number
    for value in resources_pb2.HypervisorKind.DESCRIPTOR.values
    if value.number
}


@dataclass(frozen=True)
class Field:
    """A resource field offered as an option of create (and update, unless immutable)."""

    option: str
    path: str
    help: str
    ref: str = ""
    """The collection a reference names (`regions`), so short ids are accepted."""
    choices: Mapping[str, int] | None = None
    integer: bool = False
    required: bool = False
    immutable: bool = False

    @property
    def dest(self) -> str:
        return self.option.lstrip("-").replace("-", "_")

    def param_type(self) -> Any:
        if self.ref:
            return Name(self.ref)
        if self.choices is not None:
            return click.Choice(list(self.choices), case_sensitive=False)
        return click.IntRange(min=0) if self.integer else str

    def value(self, given: Any) -> Any:
        if given is None or self.choices is None:
            return given
        return self.choices[str(given).lower()]


@dataclass(frozen=True)
class Kind:
    """One topology resource: its noun, message type, options and table columns."""

    noun: str
    message: str
    help: str
    fields: tuple[Field, ...]
    columns: tuple[Column, ...]

    @property
    def plural(self) -> str:
        return self.noun + "s"

    @property
    def message_class(self) -> Any:
        return getattr(resources_pb2, self.message)

    def request(self, verb: str, **kwargs: Any) -> Any:
        suffix = "s" if verb == "List" else ""
        return getattr(pb, f"{verb}{self.message}{suffix}Request")(**kwargs)

    def method(self, state: State, verb: str) -> Callable[..., Any]:
        suffix = "s" if verb == "List" else ""
        method: Callable[..., Any] = getattr(
            state.client().topology, f"{verb}{self.message}{suffix}"
        )
        return method

    def all_fields(self) -> tuple[Field, ...]:
        """The kind's own fields, then display name and (where it has one) description."""
        common = [Field("--display-name", "display_name", "Human-readable name.")]
        if "description" in self.message_class.DESCRIPTOR.fields_by_name:
            common.append(Field("--description", "description", "Free text."))
        return (*self.fields, *common)


def _created(header: str = "CREATED") -> Column:
    return Column(header, "create_time")


KINDS = (
    Kind(
        "region",
        "Region",
        "Regions: one control plane's failure domain.",
        fields=(),
        columns=(Column("NAME", "name", short=True), Column("DISPLAY NAME", "display_name"),
                 Column("DESCRIPTION", "description"), _created()),
    ),
    Kind(
        "zone",
        "Zone",
        "Availability zones: hosts sharing power and network failure domains.",
        fields=(
            Field("--region", "region", "Region of the zone.", ref="regions", required=True,
                  immutable=True),
        ),
        columns=(Column("NAME", "name", short=True), Column("REGION", "region", short=True),
                 Column("DISPLAY NAME", "display_name"), _created()),
    ),
    Kind(
        "pool",
        "Pool",
        "Resource pools: hosts of one hypervisor kind in one zone.",
        fields=(
            Field("--zone", "zone", "Zone of the pool.", ref="zones", required=True,
                  immutable=True),
            Field("--hypervisor", "hypervisor_kind", "What every host runs.", choices=HYPERVISORS,
                  required=True, immutable=True),
        ),
        columns=(Column("NAME", "name", short=True), Column("ZONE", "zone", short=True),
                 Column("HYPERVISOR", "hypervisor_kind"), Column("DISPLAY NAME", "display_name"),
                 _created()),
    ),
    Kind(
        "rack",
        "Rack",
        "Racks: a power and top-of-rack switch failure domain in a pool.",
        fields=(
            Field("--pool", "pool", "Pool of the rack.", ref="pools", required=True,
                  immutable=True),
            Field("--location", "location", "Where the rack stands (room, row, position)."),
        ),
        columns=(Column("NAME", "name", short=True), Column("POOL", "pool", short=True),
                 Column("LOCATION", "location"), Column("DISPLAY NAME", "display_name"),
                 _created()),
    ),
    Kind(
        "host",
        "Host",
        "Hosts: physical servers in racks.",
        fields=(
            Field("--rack", "rack", "Rack of the host.", ref="racks", required=True,
                  immutable=True),
            Field("--address", "address", "Management address (IP address or DNS name)."),
            Field("--vcpus", "capacity.vcpus", "Logical CPUs offered to guests.", integer=True),
            Field("--memory-mib", "capacity.memory_mib", "Memory for guests in MiB.",
                  integer=True),
            Field("--disk-gib", "capacity.disk_gib", "Local disk for guests in GiB.",
                  integer=True),
        ),
        columns=(Column("NAME", "name", short=True), Column("RACK", "rack", short=True),
                 Column("ZONE", "zone", short=True), Column("HYPERVISOR", "hypervisor_kind"),
                 Column("STATE", "state"), Column("ADDRESS", "address"),
                 Column("VCPUS", "capacity.vcpus"), Column("MEMORY MIB", "capacity.memory_mib"),
                 Column("DISK GIB", "capacity.disk_gib"),
                 Column("INSTANCES", "instance_count")),
    ),
)  # fmt: skip


def _options(fields: tuple[Field, ...], create: bool) -> Callable[[Any], Any]:
    def decorate(function: Any) -> Any:
        for field in reversed(fields):
            if field.immutable and not create:
                continue
            function = click.option(
                field.option,
                field.dest,
                type=field.param_type(),
                metavar=field.ref[:-1].upper() if field.ref else None,
                required=create and field.required,
                help=field.help + (" Cannot be changed later." if field.immutable else ""),
            )(function)
        return function

    return decorate


def make_group(kind: Kind) -> click.Group:
    """The command group for one topology kind, with list/show/create/update/delete."""
    fields = kind.all_fields()
    name_type = Name(kind.plural)
    metavar = kind.noun.upper()

    @click.group(kind.noun, cls=Group, help=kind.help)
    def group() -> None:
        pass

    @group.command("list", help=f"List {kind.plural}. Any signed-in user.")
    @list_options()
    @pass_state
    def list_(state: State, filter_: str, order_by: str, limit: int) -> None:
        request = kind.request("List", filter=filter_, order_by=order_by)
        items = list_all(kind.method(state, "List"), request, kind.plural, limit)
        state.printer.items(items, kind.columns)

    @group.command("show", help=f"Show a {kind.noun}.")
    @click.argument("name", type=name_type, metavar=metavar)
    @pass_state
    def show(state: State, name: str) -> None:
        state.printer.item(kind.method(state, "Get")(kind.request("Get", name=name)))

    @group.command("create", help=f"Create a {kind.noun} (cloud administrators).")
    @click.argument("resource_id", type=Id(kind.plural), metavar=metavar)
    @_options(fields, create=True)
    @label_options()
    @pass_state
    def create(state: State, /, resource_id: str, labels: dict[str, str], **given: Any) -> None:
        resource = kind.message_class(labels=labels)
        for field in fields:
            if (value := field.value(given.get(field.dest))) is not None:
                set_field(resource, field.path, value)
        request = kind.request("Create", **{kind.noun: resource, f"{kind.noun}_id": resource_id})
        state.printer.item(kind.method(state, "Create")(request))

    @group.command("update", help=f"Change a {kind.noun}'s writable fields.")
    @click.argument("name", type=name_type, metavar=metavar)
    @_options(fields, create=False)
    @label_options(update=True)
    @click.option("--etag", help=f"Fail unless the {kind.noun} still has this etag.")
    @pass_state
    def update(
        state: State,
        /,
        name: str,
        labels: dict[str, str],
        remove_labels: tuple[str, ...],
        etag: str | None,
        **given: Any,
    ) -> None:
        current = kind.method(state, "Get")(kind.request("Get", name=name))
        changes = {
            field.path: field.value(given.get(field.dest))
            for field in fields
            if not field.immutable
        }
        resource, mask = patch(current, changes, labels, remove_labels, etag)
        request = kind.request("Update", **{kind.noun: resource, "update_mask": mask})
        state.printer.item(kind.method(state, "Update")(request))

    @group.command("delete", help=f"Delete a {kind.noun} (cloud administrators).")
    @click.argument("name", type=name_type, metavar=metavar)
    @click.option("--etag", help=f"Fail unless the {kind.noun} still has this etag.")
    @pass_state
    def delete(state: State, name: str, etag: str | None) -> None:
        kind.method(state, "Delete")(kind.request("Delete", name=name, etag=etag or ""))
        state.printer.done(f"deleted {name}")

    return group


GROUPS = {kind.noun: make_group(kind) for kind in KINDS}
host = GROUPS["host"]


@host.command("enable")
@click.argument("name", type=Name("hosts"), metavar="HOST")
@pass_state
def enable_host(state: State, name: str) -> None:
    """Let the scheduler place new instances on HOST again."""
    state.printer.item(state.client().topology.EnableHost(pb.EnableHostRequest(name=name)))


@host.command("disable")
@click.argument("name", type=Name("hosts"), metavar="HOST")
@click.option("--reason", default="", help="Why, for operators (up to 255 characters).")
@pass_state
def disable_host(state: State, name: str, reason: str) -> None:
    """Stop new placements on HOST; its instances keep running."""
    request = pb.DisableHostRequest(name=name, reason=reason)
    state.printer.item(state.client().topology.DisableHost(request))


@host.group("maintenance", cls=Group)
def maintenance() -> None:
    """Maintenance mode: drain a host by live migration, then release it."""


@maintenance.command("enter")
@click.argument("name", type=Name("hosts"), metavar="HOST")
@click.option(
    "--max-concurrent",
    type=click.IntRange(1, 16),
    default=2,
    show_default=True,
    help="Live migrations at once.",
)
@operation_options
@pass_state
def enter_maintenance(
    state: State,
    name: str,
    max_concurrent: int,
    no_wait: bool,
    async_: bool,
    timeout: float | None,
) -> None:
    """Stop placements on HOST and live-migrate its running instances away."""
    request = pb.EnterHostMaintenanceRequest(name=name, max_concurrent_migrations=max_concurrent)
    operation = state.client().topology.EnterHostMaintenance(request)
    finish(state, operation, f"{name} is empty", no_wait=no_wait, async_=async_, timeout=timeout)


@maintenance.command("exit")
@click.argument("name", type=Name("hosts"), metavar="HOST")
@pass_state
def exit_maintenance(state: State, name: str) -> None:
    """Take HOST out of maintenance mode (instances do not move back)."""
    request = pb.ExitHostMaintenanceRequest(name=name)
    state.printer.item(state.client().topology.ExitHostMaintenance(request))


def register(cli: click.Group) -> None:
    for group in GROUPS.values():
        cli.add_command(group)
