"""`kumo flavor`, `kumo keypair` and `kumo server-group`: what instances are made with.

Flavors are global (`flavors/small`); key pairs and server groups live in
projects, so `kumo keypair show mine` means
`projects/<signed-in project>/keyPairs/mine`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from kumo.cli import errors
from kumo.cli.context import (
    Group,
    Id,
    Name,
    ProjectName,
    State,
    label_options,
    list_all,
    list_options,
    pass_state,
    patch,
)
from kumo.cli.output import Column, enum_label, flatten
from kumo.client import short_id
from kumo.compute.v1 import compute_service_pb2 as pb
from kumo.compute.v1 import resources_pb2

FLAVOR = Name("flavors")
KEY_PAIR = ProjectName("keyPairs")
SERVER_GROUP = ProjectName("serverGroups")

FLAVOR_COLUMNS = (
    Column("NAME", "name", short=True),
    Column("VCPUS", "vcpus"),
    Column("MEMORY MIB", "memory_mib"),
    Column("DISK GIB", "disk_gib"),
    Column("DISPLAY NAME", "display_name"),
    Column("CREATED", "create_time"),
)
KEY_PAIR_COLUMNS = (
    Column("NAME", "name", short=True),
    Column("FINGERPRINT", "fingerprint"),
    Column("CREATED", "create_time"),
)


def policy_label(number: int) -> str:
    """`POLICY_SOFT_ANTI_AFFINITY` -> `soft-anti-affinity`, as --policy takes it."""
    return enum_label(resources_pb2.ServerGroup.Policy.DESCRIPTOR, number).replace("_", "-")


POLICIES: dict[str, Any] = {
    policy_label(value.number): value.number
    for value in resources_pb2.ServerGroup.Policy.DESCRIPTOR.values
    if value.number
}
"""`affinity`, `anti-affinity`, `soft-affinity`, `soft-anti-affinity` -> Policy."""

SERVER_GROUP_COLUMNS = (
    Column("NAME", "name", short=True),
    Column("POLICY", get=lambda group: policy_label(group.policy)),
    Column("MEMBERS", get=lambda group: ", ".join(short_id(m) for m in group.members)),
    Column("CREATED", "create_time"),
)


def server_group_rows(group: Any) -> list[tuple[str, str]]:
    """The table view of a server group, with the policy as --policy takes it."""
    return [
        (key, policy_label(group.policy) if key == "policy" else value)
        for key, value in flatten(group)
    ]


def split_name(name: str, collection: str) -> tuple[str, str]:
    """`projects/p/keyPairs/k` -> (`projects/p`, `k`)."""
    parent, _, resource_id = name.rpartition(f"/{collection}/")
    return parent, resource_id


# Flavors


@click.group(cls=Group)
def flavor() -> None:
    """Flavors: instance sizes (CPUs, memory, root disk), managed by cloud administrators."""


@flavor.command("list")
@list_options()
@pass_state
def list_flavors(state: State, filter_: str, order_by: str, limit: int) -> None:
    """List flavors. Any signed-in user."""
    request = pb.ListFlavorsRequest(filter=filter_, order_by=order_by)
    items = list_all(state.client().compute.ListFlavors, request, "flavors", limit)
    state.printer.items(items, FLAVOR_COLUMNS)


@flavor.command("show")
@click.argument("name", type=FLAVOR, metavar="FLAVOR")
@pass_state
def show_flavor(state: State, name: str) -> None:
    """Show a flavor."""
    state.printer.item(state.client().compute.GetFlavor(pb.GetFlavorRequest(name=name)))


@flavor.command("create")
@click.argument("flavor_id", type=Id("flavors"), metavar="FLAVOR")
@click.option("--vcpus", type=click.IntRange(min=1), required=True, help="Virtual CPUs.")
@click.option("--memory-mib", type=click.IntRange(min=1), required=True, help="Memory in MiB.")
@click.option("--disk-gib", type=click.IntRange(min=1), required=True, help="Root disk in GiB.")
@click.option("--display-name", help="Human-readable name.")
@click.option("--description", help="Free text.")
@label_options()
@pass_state
def create_flavor(
    state: State,
    flavor_id: str,
    vcpus: int,
    memory_mib: int,
    disk_gib: int,
    display_name: str | None,
    description: str | None,
    labels: dict[str, str],
) -> None:
    """Create a flavor (cloud administrators). Sizes cannot be changed later."""
    resource = resources_pb2.Flavor(
        vcpus=vcpus,
        memory_mib=memory_mib,
        disk_gib=disk_gib,
        display_name=display_name or "",
        description=description or "",
        labels=labels,
    )
    request = pb.CreateFlavorRequest(flavor=resource, flavor_id=flavor_id)
    state.printer.item(state.client().compute.CreateFlavor(request))


@flavor.command("update")
@click.argument("name", type=FLAVOR, metavar="FLAVOR")
@click.option("--display-name", help="New human-readable name.")
@click.option("--description", help="New description.")
@label_options(update=True)
@click.option("--etag", help="Fail unless the flavor still has this etag.")
@pass_state
def update_flavor(
    state: State,
    name: str,
    display_name: str | None,
    description: str | None,
    labels: dict[str, str],
    remove_labels: tuple[str, ...],
    etag: str | None,
) -> None:
    """Change a flavor's display name, description or labels (cloud administrators)."""
    compute = state.client().compute
    current = compute.GetFlavor(pb.GetFlavorRequest(name=name))
    changes = {"display_name": display_name, "description": description}
    resource, mask = patch(current, changes, labels, remove_labels, etag)
    state.printer.item(
        compute.UpdateFlavor(pb.UpdateFlavorRequest(flavor=resource, update_mask=mask))
    )


@flavor.command("delete")
@click.argument("name", type=FLAVOR, metavar="FLAVOR")
@click.option("--etag", help="Fail unless the flavor still has this etag.")
@pass_state
def delete_flavor(state: State, name: str, etag: str | None) -> None:
    """Delete a flavor; instances keep their sizes (cloud administrators)."""
    state.client().compute.DeleteFlavor(pb.DeleteFlavorRequest(name=name, etag=etag or ""))
    state.printer.done(f"deleted {name}")


# Key pairs


def write_private_key(path: Path, key: str) -> None:
    """Writes a private key to a new file with mode 0600.

    Raises CliError if the file exists or cannot be written.
    """
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            os.fchmod(stream.fileno(), 0o600)  # whatever the umask
            stream.write(key if key.endswith("\n") else key + "\n")
    except OSError as error:
        raise errors.CliError(f"cannot write {path}: {error.strerror or error}") from error


def _public(key_pair: Any) -> Any:
    shown = resources_pb2.KeyPair()
    shown.CopyFrom(key_pair)
    shown.ClearField("private_key")
    return shown


@click.group("keypair", cls=Group)
def keypair() -> None:
    """Key pairs: SSH public keys injected into instances.

    KEY_PAIR is an id in your project or a full name (`projects/p/keyPairs/k`).
    """


@keypair.command("list")
@list_options()
@pass_state
def list_key_pairs(state: State, filter_: str, order_by: str, limit: int) -> None:
    """List your project's key pairs."""
    request = pb.ListKeyPairsRequest(parent=state.project(), filter=filter_, order_by=order_by)
    items = list_all(state.client().compute.ListKeyPairs, request, "key_pairs", limit)
    state.printer.items(items, KEY_PAIR_COLUMNS)


@keypair.command("show")
@click.argument("name", type=KEY_PAIR, metavar="KEY_PAIR")
@pass_state
def show_key_pair(state: State, name: str) -> None:
    """Show a key pair (its public key and fingerprint)."""
    state.printer.item(state.client().compute.GetKeyPair(pb.GetKeyPairRequest(name=name)))


@keypair.command("create")
@click.argument("name", type=KEY_PAIR, metavar="KEY_PAIR")
@click.option(
    "--private-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the private key to this new file (mode 0600) instead of printing it.",
)
@pass_state
def create_key_pair(state: State, name: str, private_key_file: Path | None) -> None:
    """Generate an Ed25519 key pair. The private key is shown once: printed
    (alone, so that `> key.pem` keeps it) or written to --private-key-file."""
    if private_key_file is not None and private_key_file.exists():
        raise click.BadParameter(
            f"{private_key_file} exists; it is not overwritten", param_hint="'--private-key-file'"
        )
    parent, key_pair_id = split_name(name, "keyPairs")
    request = pb.CreateKeyPairRequest(
        parent=parent, key_pair=resources_pb2.KeyPair(), key_pair_id=key_pair_id
    )
    created = state.client().compute.CreateKeyPair(request)
    if private_key_file is not None:
        try:
            write_private_key(private_key_file, created.private_key)
        except errors.CliError as failure:  # do not lose the only copy
            click.echo(created.private_key.rstrip("\n"))
            failure.lines.append("  the private key is printed above: store it now")
            raise
        state.printer.item(_public(created))
        if state.output != "json":
            click.echo(f"The private key is in {private_key_file}.", err=True)
    elif state.output == "json":
        state.printer.item(created)
    else:
        key = created.private_key
        click.echo(key if key.endswith("\n") else key + "\n", nl=False)
        click.echo(
            f"Created {created.name} ({created.fingerprint}). "
            "Store the private key now: it cannot be shown again.",
            err=True,
        )


@keypair.command("import")
@click.argument("name", type=KEY_PAIR, metavar="KEY_PAIR")
@click.option(
    "--public-key-file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path),
    help="An OpenSSH public key (`ssh-ed25519 AAAA... comment`), e.g. ~/.ssh/id_ed25519.pub.",
)
@pass_state
def import_key_pair(state: State, name: str, public_key_file: Path) -> None:
    """Import an existing public key."""
    try:
        public_key = public_key_file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise errors.CliError(f"cannot read {public_key_file}: {error}") from error
    if not public_key:
        raise click.BadParameter(f"{public_key_file} is empty", param_hint="'--public-key-file'")
    parent, key_pair_id = split_name(name, "keyPairs")
    request = pb.CreateKeyPairRequest(
        parent=parent,
        key_pair=resources_pb2.KeyPair(public_key=public_key),
        key_pair_id=key_pair_id,
    )
    state.printer.item(state.client().compute.CreateKeyPair(request))


@keypair.command("delete")
@click.argument("name", type=KEY_PAIR, metavar="KEY_PAIR")
@pass_state
def delete_key_pair(state: State, name: str) -> None:
    """Delete a key pair; instances keep the keys they were given."""
    state.client().compute.DeleteKeyPair(pb.DeleteKeyPairRequest(name=name))
    state.printer.done(f"deleted {name}")


# Server groups


@click.group("server-group", cls=Group)
def server_group() -> None:
    """Server groups: instances placed together or apart.

    SERVER_GROUP is an id in your project or a full name.
    """


@server_group.command("list")
@list_options()
@pass_state
def list_server_groups(state: State, filter_: str, order_by: str, limit: int) -> None:
    """List your project's server groups."""
    request = pb.ListServerGroupsRequest(parent=state.project(), filter=filter_, order_by=order_by)
    items = list_all(state.client().compute.ListServerGroups, request, "server_groups", limit)
    state.printer.items(items, SERVER_GROUP_COLUMNS)


@server_group.command("show")
@click.argument("name", type=SERVER_GROUP, metavar="SERVER_GROUP")
@pass_state
def show_server_group(state: State, name: str) -> None:
    """Show a server group and its members."""
    found = state.client().compute.GetServerGroup(pb.GetServerGroupRequest(name=name))
    state.printer.item(found, rows=server_group_rows(found))


@server_group.command("create")
@click.argument("name", type=SERVER_GROUP, metavar="SERVER_GROUP")
@click.option(
    "--policy",
    required=True,
    type=click.Choice(list(POLICIES), case_sensitive=False),
    help="affinity/anti-affinity: one host/different hosts, or fail; "
    "soft-: preferably. Cannot be changed later.",
)
@pass_state
def create_server_group(state: State, name: str, policy: str) -> None:
    """Create a server group."""
    parent, group_id = split_name(name, "serverGroups")
    request = pb.CreateServerGroupRequest(
        parent=parent,
        server_group=resources_pb2.ServerGroup(policy=POLICIES[policy.lower()]),
        server_group_id=group_id,
    )
    created = state.client().compute.CreateServerGroup(request)
    state.printer.item(created, rows=server_group_rows(created))


@server_group.command("delete")
@click.argument("name", type=SERVER_GROUP, metavar="SERVER_GROUP")
@pass_state
def delete_server_group(state: State, name: str) -> None:
    """Delete an empty server group."""
    state.client().compute.DeleteServerGroup(pb.DeleteServerGroupRequest(name=name))
    state.printer.done(f"deleted {name}")


def register(cli: click.Group) -> None:
    for group in (flavor, keypair, server_group):
        cli.add_command(group)
