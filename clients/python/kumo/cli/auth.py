"""`kumo login`, `kumo logout` and `kumo whoami`."""

from __future__ import annotations

from typing import IO, Any

import click
import grpc

from kumo.cli import errors
from kumo.cli.context import Command, Name, State, pass_state
from kumo.cli.output import enum_label, format_timestamp
from kumo.cli.session import Session, SessionError, delete_session, save_session
from kumo.client import Client, KumoError
from kumo.identity.v1 import identity_service_pb2, resources_pb2

BOOTSTRAP_PROJECT = "projects/admin"
"""Where `kumo up` makes the first administrator; the default of `login --project`."""
_DENIED = (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)


def read_password_file(stream: IO[str]) -> str:
    """The first line of a password file, without its line ending."""
    return stream.readline().rstrip("\r\n")


def token_rows(token: Any, endpoint: str) -> list[tuple[str, str]]:
    """What whoami and login show about a token (never the secret itself)."""
    roles = ", ".join(enum_label(resources_pb2.Role.DESCRIPTOR, r) for r in token.roles)
    return [
        ("endpoint", endpoint),
        ("user", token.user),
        ("project", token.project),
        ("roles", roles or "-"),
        ("cloud_admin", "true" if token.cloud_admin else "false"),
        ("expire_time", format_timestamp(token.expire_time)),
    ]


def _public(token: Any) -> Any:
    shown = resources_pb2.Token()
    shown.CopyFrom(token)
    shown.ClearField("token")
    return shown


@click.command(cls=Command)
@click.option("--endpoint", help="Server address, host:port (default: the global --endpoint).")
@click.option(
    "--user",
    type=Name("users"),
    help="User id or name (default: the session's; prompted if there is none).",
)
@click.option("--password", help="Password (prompted with hidden input if missing).")
@click.option(
    "--password-file",
    type=click.File("r"),
    help="Read the password from the first line of a file ('-': stdin).",
)
@click.option(
    "--project",
    type=Name("projects"),
    help="Project to work in (default: the session's, else the bootstrap project 'admin').",
)
@pass_state
def login(
    state: State,
    endpoint: str | None,
    user: str | None,
    password: str | None,
    password_file: IO[str] | None,
    project: str | None,
) -> None:
    """Sign in and save the session (endpoint, token, project) for later commands."""
    if password is not None and password_file is not None:
        raise click.UsageError("give --password or --password-file, not both")
    endpoint = endpoint or state.endpoint()
    previous = state.session()
    if previous is not None and previous.endpoint != endpoint:
        previous = None
    if previous is not None:  # signing in again: same user and project unless given
        user = user or previous.user or None
        project = project or previous.project or None
    if user is None:
        user = Name("users").convert(click.prompt("User"), None, None)
    project_defaulted = project is None
    project = project or BOOTSTRAP_PROJECT
    if password_file is not None:
        password = read_password_file(password_file)
    if password is None:
        password = click.prompt("Password", hide_input=True)
    try:
        client, token = Client.login(endpoint, user, password, project)
    except KumoError as error:
        failure = errors.CliError.from_kumo(error, endpoint, hint=False)
        if project_defaulted and error.code in _DENIED:
            failure.lines.append(f"  hint: {project} was assumed; choose a project with --project")
        raise failure from error
    client.close()
    session = Session(
        endpoint=endpoint,
        token=token.token,
        project=token.project,
        user=token.user,
        expire_time=format_timestamp(token.expire_time),
    )
    try:
        save_session(session)
    except SessionError as error:
        raise errors.CliError(str(error)) from error
    state.printer.done(
        f"signed in to {endpoint} as {token.user} in {token.project}"
        f" (until {session.expire_time or 'revoked'})",
        _public(token),
    )


@click.command(cls=Command)
@pass_state
def logout(state: State) -> None:
    """Revoke the saved session's token and delete the session file."""
    session = state.session()
    if session is None:
        click.echo("not signed in", err=True)
        return
    failure: KumoError | None = None
    with Client(session.endpoint, session.token) as client:
        try:
            client.identity.RevokeToken(
                identity_service_pb2.RevokeTokenRequest(token=session.token)
            )
        except KumoError as error:
            if error.code != grpc.StatusCode.UNAUTHENTICATED:  # else: already invalid
                failure = error
    try:
        delete_session()
    except SessionError as error:
        raise errors.CliError(str(error)) from error
    if failure is not None:
        raise errors.CliError.from_kumo(
            failure, session.endpoint, prefix="session removed, but the token was not revoked: "
        )
    state.printer.done(f"signed out of {session.endpoint}")


@click.command(cls=Command)
@pass_state
def whoami(state: State) -> None:
    """Show who the current token signs in as, in which project, with which roles."""
    client = state.client()
    token = client.identity.ValidateToken(
        identity_service_pb2.ValidateTokenRequest(token=client.token)
    ).token
    state.printer.item(_public(token), rows=token_rows(token, client.endpoint))


def register(cli: click.Group) -> None:
    for command in (login, logout, whoami):
        cli.add_command(command)
