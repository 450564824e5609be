"""`kumo operation`: long-running operations (project deletion and, later, most
changes to instances, volumes and hosts)."""

from __future__ import annotations

import click
from google.longrunning import operations_pb2 as pb

from kumo.cli.context import Group, Name, State, finish, list_all, pass_state
from kumo.cli.output import OPERATION_COLUMNS, operation_rows

OPERATION = Name("operations")
COLLECTION = "operations"
"""The `name` of ListOperationsRequest: the collection holding every operation."""


@click.group(cls=Group)
def operation() -> None:
    """Long-running operations: list, inspect, wait for, cancel."""


@operation.command("list")
@click.option("--filter", "filter_", default="", help="Server-side filter.")
@click.option("--limit", type=click.IntRange(min=0), default=0, help="Show at most N (0: all).")
@pass_state
def list_operations(state: State, filter_: str, limit: int) -> None:
    """List the operations you may see."""
    request = pb.ListOperationsRequest(name=COLLECTION, filter=filter_)
    method = state.client().operations.ListOperations
    state.printer.items(list_all(method, request, "operations", limit), OPERATION_COLUMNS)


@operation.command("show")
@click.argument("name", type=OPERATION, metavar="OPERATION")
@pass_state
def show_operation(state: State, name: str) -> None:
    """Show an operation: its progress, and its result or error once done."""
    found = state.client().operations.GetOperation(pb.GetOperationRequest(name=name))
    state.printer.item(found, rows=operation_rows(found))


@operation.command("wait")
@click.argument("name", type=OPERATION, metavar="OPERATION")
@click.option(
    "--timeout", type=click.FloatRange(min=0), default=None, help="Stop waiting after N s."
)
@pass_state
def wait_operation(state: State, name: str, timeout: float | None) -> None:
    """Wait for an operation to finish, showing its progress.

    Exits 6 if the operation finished with an error.
    """
    found = state.client().operations.GetOperation(pb.GetOperationRequest(name=name))
    finish(state, found, f"{name} succeeded", timeout=timeout)


@operation.command("cancel")
@click.argument("name", type=OPERATION, metavar="OPERATION")
@pass_state
def cancel_operation(state: State, name: str) -> None:
    """Ask for an operation to be cancelled (best effort; it ends CANCELLED)."""
    state.client().operations.CancelOperation(pb.CancelOperationRequest(name=name))
    state.printer.done(f"cancellation of {name} requested")


@operation.command("delete")
@click.argument("name", type=OPERATION, metavar="OPERATION")
@pass_state
def delete_operation(state: State, name: str) -> None:
    """Forget a finished operation."""
    state.client().operations.DeleteOperation(pb.DeleteOperationRequest(name=name))
    state.printer.done(f"deleted {name}")


def register(cli: click.Group) -> None:
    cli.add_command(operation)
