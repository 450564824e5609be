"""What every command shares: global state, the signed-in client, resource-name
arguments, paging, read-modify-write updates and waiting for operations."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click
from google.protobuf import field_mask_pb2

from kumo.cli import errors
from kumo.cli.output import FORMATS, Printer, ProgressDisplay, operation_rows
from kumo.cli.session import Session, SessionError, load_session
from kumo.client import (
    Client,
    KumoError,
    OperationTimeoutError,
    full_name,
    project_resource_name,
    short_id,
)
from kumo.identity.v1 import identity_service_pb2

DEFAULT_ENDPOINT = "127.0.0.1:7900"
F = TypeVar("F", bound=Callable[..., Any])

if TYPE_CHECKING:
    _StrParamType = click.ParamType[str]
else:  # click before 8.4 has no generic ParamType
    _StrParamType = click.ParamType


class State:
    """Global options and the lazily opened client, shared by every command."""

    def __init__(
        self, endpoint: str | None = None, token: str | None = None, output: str = "table"
    ) -> None:
        self.endpoint_option = endpoint
        self.token_option = token
        self.output = output
        self._session: Session | None = None
        self._session_loaded = False
        self._clients: dict[tuple[str, str | None], Client] = {}
        self._project: str | None = None

    @property
    def printer(self) -> Printer:
        return Printer(self.output)

    def session(self) -> Session | None:
        """The saved session, or None. Raises CliError for an unreadable file."""
        if not self._session_loaded:
            try:
                self._session = load_session()
            except SessionError as error:
                raise errors.CliError(str(error)) from error
            self._session_loaded = True
        return self._session

    def endpoint(self) -> str:
        """--endpoint, else the session's endpoint, else $KUMO_ENDPOINT, else the default."""
        if self.endpoint_option:
            return self.endpoint_option
        session = self.session()
        if session is not None and session.endpoint:
            return session.endpoint
        return os.environ.get("KUMO_ENDPOINT") or DEFAULT_ENDPOINT

    def token(self) -> str | None:
        """--token, else the session's token if the session is for this endpoint.

        A session's token is never sent to another endpoint than its own.
        """
        if self.token_option:
            return self.token_option
        session = self.session()
        if session is not None and session.endpoint == self.endpoint():
            return session.token
        return None

    def client(self, *, signed_in: bool = True) -> Client:
        """The client for this invocation. Raises CliError (exit 4) if
        `signed_in` and there is no token for the endpoint."""
        endpoint, token = self.endpoint(), self.token()
        if signed_in and not token:
            raise errors.CliError(f"not signed in to {endpoint}; run `kumo login`", errors.DENIED)
        key = (endpoint, token if signed_in else None)
        if key not in self._clients:
            self._clients[key] = Client(endpoint, key[1])
        return self._clients[key]

    def project(self) -> str:
        """The project commands work in, `projects/{id}`: the session's when its
        token is used, else the one the token (--token) signs in to.

        Raises CliError (exit 4) if not signed in, KumoError if the token cannot
        be checked.
        """
        if self._project is None:
            session = self.session()
            client = self.client()
            if (
                session is not None
                and session.project
                and client.token == session.token
                and session.endpoint == client.endpoint
            ):
                self._project = session.project
            else:
                request = identity_service_pb2.ValidateTokenRequest(token=client.token or "")
                self._project = str(client.identity.ValidateToken(request).token.project)
        return self._project

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()


pass_state = click.make_pass_decorator(State, ensure=True)


def _set_output(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(State).output = value


def output_option() -> click.Option:
    """`-o/--output`, also accepted after a command's name."""
    return click.Option(
        ["-o", "--output"],
        type=click.Choice(FORMATS),
        default=None,
        expose_value=False,
        callback=_set_output,
        help="Output format: table (default) or json.",
    )


class Command(click.Command):
    """A command that also accepts -o/--output after its name."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        taken = {opt for param in self.params for opt in getattr(param, "opts", ())}
        if not taken & {"-o", "--output"}:
            self.params.append(output_option())


class Group(click.Group):
    """A group whose commands are `Command`s and whose subgroups are `Group`s."""

    command_class = Command
    group_class = type


class RootGroup(Group):
    """The `kumo` group: turns KumoError from any command into its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KumoError as error:
            state = ctx.find_object(State)
            endpoint = state.endpoint() if state is not None else ""
            raise errors.CliError.from_kumo(error, endpoint) from error


class Name(_StrParamType):
    """A resource given as a short id or a full name; converts to the full name."""

    name = "name"

    def __init__(self, collection: str, parent: str = "") -> None:
        self.collection = collection
        self.parent = parent

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return full_name(self.collection, str(value), self.parent)
        except ValueError as error:
            self.fail(str(error), param, ctx)


class ProjectName(_StrParamType):
    """A resource of a project (`images`, `keyPairs`): an id in the signed-in
    project (`foo` -> `projects/<session project>/images/foo`) or a full name
    (`projects/admin/images/kumo-tiny`); converts to the full name."""

    name = "name"

    def __init__(self, collection: str) -> None:
        self.collection = collection

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip()
        project = ""
        if text and "/" not in text:  # the project is looked up only when needed
            state = ctx.find_object(State) if ctx is not None else None
            project = (state or State()).project()
        try:
            return project_resource_name(self.collection, text, project)
        except ValueError as error:
            self.fail(str(error), param, ctx)


class Id(Name):
    """Like Name, but converts to the short id (for create's `<resource>_id`)."""

    name = "id"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        return short_id(super().convert(value, param, ctx))


def parse_labels(values: Sequence[str]) -> dict[str, str]:
    """`["env=prod", "team=a"]` -> `{"env": "prod", "team": "a"}`.

    Raises click.BadParameter for an item without `=` or with an empty key.
    """
    labels: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="'--label'")
        labels[key.strip()] = value
    return labels


def _labels_callback(_ctx: click.Context, _param: click.Parameter, value: Any) -> dict[str, str]:
    return parse_labels(value or ())


def label_options(update: bool = False) -> Callable[[F], F]:
    """`--label KEY=VALUE` (repeatable); with `update`, also `--remove-label KEY`."""

    def decorate(function: F) -> F:
        if update:
            function = click.option(
                "--remove-label",
                "remove_labels",
                multiple=True,
                metavar="KEY",
                help="Remove a label (repeatable).",
            )(function)
        verb = "Add or change" if update else "Set"
        return click.option(
            "--label",
            "labels",
            multiple=True,
            metavar="KEY=VALUE",
            callback=_labels_callback,
            help=f"{verb} a label (repeatable).",
        )(function)

    return decorate


def tag_options(update: bool = False) -> Callable[[F], F]:
    """`--tag TAG` (repeatable); with `update`, also `--remove-tag TAG`."""

    def decorate(function: F) -> F:
        if update:
            function = click.option(
                "--remove-tag",
                "remove_tags",
                multiple=True,
                metavar="TAG",
                help="Remove a tag (repeatable).",
            )(function)
        return click.option(
            "--tag", "tags", multiple=True, metavar="TAG", help="Add a tag (repeatable)."
        )(function)

    return decorate


def list_options(order_by: bool = True) -> Callable[[F], F]:
    """`--filter`, `--order-by` and `--limit` for list commands."""

    def decorate(function: F) -> F:
        function = click.option(
            "--limit", type=click.IntRange(min=0), default=0, help="Show at most N (0: all)."
        )(function)
        if order_by:
            function = click.option(
                "--order-by", default="", help="`name` or `create_time`, optionally `desc`."
            )(function)
        return click.option(
            "--filter", "filter_", default="", help="Server-side filter, e.g. 'state = \"active\"'."
        )(function)

    return decorate


def list_all(method: Callable[..., Any], request: Any, field: str, limit: int = 0) -> list[Any]:
    """Every item of a paged List call (at most `limit`, if not 0).

    Raises KumoError if a page fails.
    """
    items: list[Any] = []
    while True:
        response = method(request)
        items.extend(getattr(response, field))
        if limit and len(items) >= limit:
            return items[:limit]
        if not response.next_page_token:
            return items
        request.page_token = response.next_page_token


def set_field(message: Any, path: str, value: Any) -> None:
    """Sets dotted `path` (`capacity.vcpus`) of `message` to `value`."""
    *parents, last = path.split(".")
    for part in parents:
        message = getattr(message, part)
    setattr(message, last, value)


def patch(
    current: Any,
    changes: Mapping[str, Any],
    labels: Mapping[str, str] | None = None,
    remove_labels: Sequence[str] = (),
    etag: str | None = None,
    tags: Sequence[str] = (),
    remove_tags: Sequence[str] = (),
) -> tuple[Any, Any]:
    """Applies `changes` (dotted path -> value; None means unchanged) and label and
    tag edits to a copy of `current`, and returns the resource to send and its mask.

    The resource carries the name, the etag (`etag` or the current one, so a
    concurrent change is ABORTED) and the changed top-level fields. Raises
    click.UsageError if nothing would change.
    """
    edited = type(current)()
    edited.CopyFrom(current)
    paths: set[str] = set()
    for path, value in changes.items():
        if value is not None:
            set_field(edited, path, value)
            paths.add(path.split(".", 1)[0])
    if labels or remove_labels:
        edited.labels.update(labels or {})
        for key in remove_labels:
            edited.labels.pop(key, None)
        paths.add("labels")
    if tags or remove_tags:
        kept = [t for t in dict.fromkeys([*current.tags, *tags]) if t not in remove_tags]
        edited.tags[:] = kept
        paths.add("tags")
    if not paths:
        raise click.UsageError("nothing to change: give at least one option to update")
    mask = field_mask_pb2.FieldMask(paths=sorted(paths))
    result = type(current)(name=current.name, etag=etag or current.etag)
    mask.MergeMessage(edited, result, replace_message_field=True, replace_repeated_field=True)
    return result, mask


def operation_options(function: F) -> F:
    """`--no-wait`, `--async` and `--timeout` for commands returning an operation.

    Giving both --no-wait and --async is a usage error before the command starts
    anything.
    """

    command = function

    @functools.wraps(command)
    def checked(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("no_wait") and kwargs.get("async_"):
            raise click.UsageError("--no-wait and --async cannot be used together")
        return command(*args, **kwargs)

    function = cast(F, checked)
    function = click.option(
        "--timeout", type=click.FloatRange(min=0), default=None, help="Stop waiting after N s."
    )(function)
    function = click.option(
        "--async",
        "async_",
        is_flag=True,
        help="Do not wait; print only the operation name.",
    )(function)
    return click.option(
        "--no-wait", is_flag=True, help="Do not wait; print the operation as it is now."
    )(function)


def wait_for(
    state: State,
    operation: Any,
    *,
    no_wait: bool = False,
    async_: bool = False,
    timeout: float | None = None,
) -> Any | None:
    """Waits for an operation a command started or named, with a progress
    display on stderr, and returns it done and successful; or reports it at
    once and returns None (`no_wait`: the operation; `async_`: its name).

    Raises CliError: exit 6 if the operation failed, 1 on timeout, 130 if
    interrupted (the operation goes on).
    """
    if no_wait and async_:
        raise click.UsageError("--no-wait and --async cannot be used together")
    if async_:
        click.echo(operation.name)
        return None
    if no_wait:
        state.printer.item(operation, rows=operation_rows(operation))
        return None
    display = ProgressDisplay(short_id(operation.name))
    try:
        operation = state.client().wait(operation, timeout=timeout, on_progress=display)
    except OperationTimeoutError as error:
        raise errors.CliError(
            f"{error.operation.name} is still running after {error.timeout:g} s; "
            f"run `kumo operation wait {short_id(error.operation.name)}` to keep waiting"
        ) from error
    except KeyboardInterrupt:
        raise errors.CliError(
            f"stopped waiting; {operation.name} goes on "
            f"(`kumo operation wait {short_id(operation.name)}`)",
            130,
        ) from None
    finally:
        display.close()
    if operation.HasField("error"):
        failure = KumoError.from_status(operation.error)
        raise errors.CliError(
            f"{operation.name} failed: {failure.message} ({failure.code.name})",
            errors.OPERATION_FAILED,
            lines=errors.detail_lines(failure.details),
        )
    return operation


def finish(
    state: State,
    operation: Any,
    done_text: str,
    *,
    no_wait: bool = False,
    async_: bool = False,
    timeout: float | None = None,
) -> None:
    """Reports an operation a command started or named: at once (`no_wait`:
    the operation; `async_`: its name), or after waiting for it with a progress
    display on stderr (`done_text`, or the operation in JSON).

    Raises CliError: exit 6 if the operation failed, 1 on timeout, 130 if
    interrupted (the operation goes on).
    """
    done = wait_for(state, operation, no_wait=no_wait, async_=async_, timeout=timeout)
    if done is not None:
        state.printer.done(done_text, done)
