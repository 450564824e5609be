"""`kumo user` and `kumo access-key`: everything scoped to a user."""

from __future__ import annotations

from collections.abc import Callable

import click

from kumo.cli.context import (
    F,
    Group,
    Id,
    Name,
    State,
    label_options,
    list_all,
    list_options,
    pass_state,
    patch,
)
from kumo.cli.output import Column
from kumo.client import full_name
from kumo.identity.v1 import identity_service_pb2 as pb
from kumo.identity.v1 import resources_pb2

USER = Name("users")
PROJECT = Name("projects")

USER_COLUMNS = (
    Column("NAME", "name", short=True),
    Column("DISPLAY NAME", "display_name"),
    Column("EMAIL", "email"),
    Column("DISABLED", "disabled"),
    Column("CREATED", "create_time"),
)
ACCESS_KEY_COLUMNS = (
    Column("ACCESS KEY ID", "access_key_id"),
    Column("PROJECT", "project", short=True),
    Column("DESCRIPTION", "description"),
    Column("CREATED", "create_time"),
)

PROMPT = ""
"""The value of `--password` given without a value: ask for it."""


def password_option(help_text: str) -> Callable[[F], F]:
    return click.option(
        "--password",
        is_flag=False,
        flag_value=PROMPT,
        default=None,
        help=help_text,
    )


def resolve_password(password: str | None, required: bool) -> str | None:
    """The password given, or asked for (hidden, twice) when `--password` has no
    value or when `required` and it is missing."""
    if password == PROMPT or (password is None and required):
        return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))
    return password


@click.group(cls=Group)
def user() -> None:
    """Users: people and robots that sign in."""


@user.command("list")
@list_options()
@pass_state
def list_users(state: State, filter_: str, order_by: str, limit: int) -> None:
    """List users (cloud administrators)."""
    request = pb.ListUsersRequest(filter=filter_, order_by=order_by)
    items = list_all(state.client().identity.ListUsers, request, "users", limit)
    state.printer.items(items, USER_COLUMNS)


@user.command("show")
@click.argument("name", type=USER, metavar="USER")
@pass_state
def show_user(state: State, name: str) -> None:
    """Show a user."""
    state.printer.item(state.client().identity.GetUser(pb.GetUserRequest(name=name)))


@user.command("create")
@click.argument("user_id", type=Id("users"), metavar="USER")
@click.option("--display-name", help="Human-readable name.")
@click.option("--email", help="Contact e-mail address.")
@password_option("Initial password, 8 to 256 characters (prompted if missing).")
@click.option("--disabled", is_flag=True, help="Create the user disabled.")
@label_options()
@pass_state
def create_user(
    state: State,
    user_id: str,
    display_name: str | None,
    email: str | None,
    password: str | None,
    disabled: bool,
    labels: dict[str, str],
) -> None:
    """Create a user (cloud administrators)."""
    resource = resources_pb2.User(
        display_name=display_name or "",
        email=email or "",
        password=resolve_password(password, required=True) or "",
        disabled=disabled,
        labels=labels,
    )
    request = pb.CreateUserRequest(user=resource, user_id=user_id)
    state.printer.item(state.client().identity.CreateUser(request))


@user.command("update")
@click.argument("name", type=USER, metavar="USER")
@click.option("--display-name", help="New human-readable name.")
@click.option("--email", help="New e-mail address.")
@password_option("New password; `--password` alone prompts for it. Revokes the user's tokens.")
@click.option("--disable/--enable", "disabled", default=None, help="Disable or enable the user.")
@label_options(update=True)
@click.option("--etag", help="Fail unless the user still has this etag.")
@pass_state
def update_user(
    state: State,
    name: str,
    display_name: str | None,
    email: str | None,
    password: str | None,
    disabled: bool | None,
    labels: dict[str, str],
    remove_labels: tuple[str, ...],
    etag: str | None,
) -> None:
    """Change a user. Users may change their own name, e-mail and password."""
    identity = state.client().identity
    current = identity.GetUser(pb.GetUserRequest(name=name))
    changes = {
        "display_name": display_name,
        "email": email,
        "password": resolve_password(password, required=False),
        "disabled": disabled,
    }
    resource, mask = patch(current, changes, labels, remove_labels, etag)
    state.printer.item(identity.UpdateUser(pb.UpdateUserRequest(user=resource, update_mask=mask)))


@user.command("delete")
@click.argument("name", type=USER, metavar="USER")
@click.option("--etag", help="Fail unless the user still has this etag.")
@pass_state
def delete_user(state: State, name: str, etag: str | None) -> None:
    """Delete a user with its role assignments and access keys (cloud administrators)."""
    state.client().identity.DeleteUser(pb.DeleteUserRequest(name=name, etag=etag or ""))
    state.printer.done(f"deleted {name}")


@click.group("access-key", cls=Group)
def access_key() -> None:
    """Access keys: long-lived credentials of a user in one project."""


@access_key.command("list")
@click.argument("parent", type=USER, metavar="USER")
@click.option("--limit", type=click.IntRange(min=0), default=0, help="Show at most N (0: all).")
@pass_state
def list_access_keys(state: State, parent: str, limit: int) -> None:
    """List a user's access keys (without secrets)."""
    request = pb.ListAccessKeysRequest(parent=parent)
    method = state.client().identity.ListAccessKeys
    state.printer.items(list_all(method, request, "access_keys", limit), ACCESS_KEY_COLUMNS)


@access_key.command("create")
@click.argument("parent", type=USER, metavar="USER")
@click.option("--project", type=PROJECT, required=True, help="Project the key acts in.")
@click.option("--description", default="", help="Free text.")
@pass_state
def create_access_key(state: State, parent: str, project: str, description: str) -> None:
    """Create an access key. The secret is printed now and never again."""
    resource = resources_pb2.AccessKey(project=project, description=description)
    request = pb.CreateAccessKeyRequest(parent=parent, access_key=resource)
    key = state.client().identity.CreateAccessKey(request)
    state.printer.item(key)
    if state.output != "json":
        click.echo("Store the secret access key now: it cannot be shown again.", err=True)


@access_key.command("delete")
@click.argument("parent", type=USER, metavar="USER")
@click.argument("key_id", metavar="KEY_ID")
@pass_state
def delete_access_key(state: State, parent: str, key_id: str) -> None:
    """Delete an access key; it stops working at once."""
    try:
        name = full_name("accessKeys", key_id, parent=parent)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="'KEY_ID'") from None
    state.client().identity.DeleteAccessKey(pb.DeleteAccessKeyRequest(name=name))
    state.printer.done(f"deleted {name}")


def register(cli: click.Group) -> None:
    for group in (user, access_key):
        cli.add_command(group)
