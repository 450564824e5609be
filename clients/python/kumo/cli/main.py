"""The `kumo` command: the root group and its global options.

Command groups live in one module each and attach themselves through a
`register(cli: click.Group) -> None` function listed in COMMAND_MODULES.
OPTIONAL_MODULES are registered the same way when they are installed, so that
`kumo up` (`kumo.cli.up`) plugs in without changes here. A command can also be
attached directly: `cli.add_command(command)` or `@cli.command(...)`; it gets
the shared state (global options, session, client) with `@pass_state` from
`kumo.cli.context`.
"""

from __future__ import annotations

import importlib
import importlib.util

import click

from kumo.cli.context import RootGroup, State
from kumo.cli.errors import EPILOG
from kumo.cli.output import FORMATS

COMMAND_MODULES = (
    "kumo.cli.auth",
    "kumo.cli.projects",
    "kumo.cli.users",
    "kumo.cli.topology",
    "kumo.cli.operations",
    "kumo.cli.images",
    "kumo.cli.compute",
    "kumo.cli.instances",
    "kumo.cli.instance_interfaces",
    "kumo.cli.network",
    "kumo.cli.volumes",
)
OPTIONAL_MODULES = ("kumo.cli.up",)


@click.group(
    cls=RootGroup,
    epilog=EPILOG,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--endpoint",
    metavar="HOST:PORT",
    help="Kumo API address (default: the signed-in session's, else $KUMO_ENDPOINT, "
    "else 127.0.0.1:7900).",
)
@click.option(
    "--token",
    envvar="KUMO_TOKEN",
    metavar="TOKEN",
    help="Bearer token to use instead of the session's ($KUMO_TOKEN).",
)
@click.option(
    "-o",
    "--output",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.version_option(package_name="kumo", prog_name="kumo")
@click.pass_context
def cli(ctx: click.Context, endpoint: str | None, token: str | None, output: str) -> None:
    """Kumo private-cloud command-line client.

    Sign in with `kumo login`; later commands use the saved session. Resources
    may be given by id (`alice`) or by name (`users/alice`).
    """
    state = State(endpoint=endpoint, token=token, output=output)
    ctx.obj = state
    ctx.call_on_close(state.close)


def _register_all() -> None:
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(cli)
    for module in OPTIONAL_MODULES:
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module).register(cli)


_register_all()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="kumo")
