"""`kumo instance attach-interface` and `detach-interface`: an instance's network interfaces
after its create."""

from __future__ import annotations

import click

from kumo.cli.context import ProjectName, State, operation_options, pass_state
from kumo.cli.instances import act, instance, resolve, zone_option
from kumo.compute.v1 import compute_service_pb2 as pb
from kumo.compute.v1 import resources_pb2

PORT = ProjectName("ports")


@instance.command("attach-interface")
@click.argument("value", metavar="INSTANCE")
@click.option("--network", type=ProjectName("networks"), help="A new port on this network.")
@click.option("--ip", "ip_address", help="Its address (with --network).")
@click.option("--port", type=PORT, help="Or this existing, unused port of the project.")
@zone_option
@operation_options
@pass_state
def attach_interface(
    state: State,
    value: str,
    network: str | None,
    ip_address: str | None,
    port: str | None,
    zone: str | None,
    no_wait: bool,
    async_: bool,
    timeout: float | None,
) -> None:
    """Give a running or stopped instance one more network interface."""
    if bool(network) == bool(port):
        raise click.UsageError("give --network or --port")
    interface = resources_pb2.NetworkInterface(
        network=network or "", ip_address=ip_address or "", port=port or ""
    )
    request = pb.AttachNetworkInterfaceRequest(
        name=resolve(state, value, zone), network_interface=interface
    )
    act(state, "AttachNetworkInterface", request, no_wait, async_, timeout)


@instance.command("detach-interface")
@click.argument("value", metavar="INSTANCE")
@click.argument("port", type=PORT)
@zone_option
@operation_options
@pass_state
def detach_interface(
    state: State,
    value: str,
    port: str,
    zone: str | None,
    no_wait: bool,
    async_: bool,
    timeout: float | None,
) -> None:
    """Take the interface on PORT from an instance (a port Kumo made goes with it)."""
    request = pb.DetachNetworkInterfaceRequest(name=resolve(state, value, zone), port=port)
    act(state, "DetachNetworkInterface", request, no_wait, async_, timeout)


def register(cli: click.Group) -> None:
    """Nothing to add at the top: these commands joined `kumo instance` on import."""
