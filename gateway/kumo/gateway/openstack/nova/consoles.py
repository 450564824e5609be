"""Nova's remote consoles: `POST /servers/{id}/remote-consoles` (2.6) and the older
`os-get{VNC,SPICE,RDP,Serial}Console` actions.

Kumo runs no console proxy (no VNC, SPICE, RDP, serial or MKS websocket): a guest's console
is its serial log, read with `os-getConsoleOutput`. Every console type is therefore
unavailable, which Nova answers with 400 `Unavailable console type <type>.` (what it says
when a type's proxy is not enabled), after the server is found and the body is checked.
"""

from __future__ import annotations

from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import Response

from kumo.compute.v1 import resources_pb2 as cpb
from kumo.gateway.dialect import invalid, json_body, object_at
from kumo.gateway.errors import RpcFailure
from kumo.gateway.openstack.common import Scope
from kumo.gateway.openstack.microversions import Version
from kumo.gateway.openstack.nova.base import NovaBase

V2_6 = Version(2, 6)
# Nova's schema: the protocols and types a remote console may ask for.
PROTOCOLS = {"vnc", "spice", "rdp", "serial", "mks"}
TYPES = {"novnc", "xvpvnc", "spice-html5", "spice-direct", "rdp-html5", "serial", "webmks"}
# The older actions and the types each takes.
ACTION_TYPES = {
    "os-getVNCConsole": {"novnc", "xvpvnc"},
    "os-getSPICEConsole": {"spice-html5"},
    "os-getRDPConsole": {"rdp-html5"},
    "os-getSerialConsole": {"serial"},
}


def unavailable(kind: Any, allowed: set[str]) -> RpcFailure:
    """The refusal of console type `kind`: a schema error (400) unless it is one of
    `allowed`, else Nova's 400 for a type it does not run."""
    if not isinstance(kind, str) or kind not in allowed:
        return invalid(f"Invalid input for field/attribute type. Value: {kind}.")
    return invalid(f"Unavailable console type {kind}.")


async def console_action(
    types: set[str], scope: Scope, version: Version, item: cpb.Instance, arg: dict[str, Any]
) -> Response:
    """A server action `os-getVNCConsole` and its kind (`types`: those the action takes),
    for servers.py's action table: 400 (the module's notes)."""
    raise unavailable(arg.get("type"), types)


class Consoles(NovaBase):
    """`POST /servers/{id}/remote-consoles`."""

    async def create(self, request: Request) -> Response:
        """404 before 2.6 (as Nova), for a server not found, else 400 (the module's notes)."""
        scope, version = await self.begin(request)
        if version < V2_6:
            raise RpcFailure.of(grpc.StatusCode.NOT_FOUND, "The resource could not be found.")
        await self.server_of(scope, request)
        asked = object_at(await json_body(request), "remote_console")
        protocol = asked.get("protocol")
        if not isinstance(protocol, str) or protocol not in PROTOCOLS:
            raise invalid(f"Invalid input for field/attribute protocol. Value: {protocol}.")
        raise unavailable(asked.get("type"), TYPES)
