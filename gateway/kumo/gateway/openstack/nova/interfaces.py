"""Nova's `/servers/{id}/os-interface[/{port_id}]`: the server's network interfaces, read
from its ports, attached (AttachNetworkInterface) and detached (DetachNetworkInterface).

POST takes an existing port (`port_id`) or makes one on a network (`net_id`, or the
project's only network); DELETE deletes the port if Kumo made it, and leaves a port given
by `port_id` (or at the server's create) in place, free, as Nova does. POST answers 200
with the new interface once the host has plugged it (as Nova, which waits for the
interface to be plugged), or once `operations.WAIT_SECONDS` have passed: the port then
belongs to the server and the host plugs it soon after. DELETE answers 202 at once.
"""

from __future__ import annotations

from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import Response

from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import resources_pb2 as cpb
from kumo.gateway.dialect import invalid, json_body
from kumo.gateway.errors import RpcFailure
from kumo.gateway.openstack.common import Scope
from kumo.gateway.openstack.microversions import Version
from kumo.gateway.openstack.neutron.index import Index
from kumo.gateway.openstack.nova.addresses import (
    interface_on,
    interface_with_port,
    the_only_network,
)
from kumo.gateway.openstack.nova.base import NovaBase
from kumo.gateway.openstack.operations import settled
from kumo.network.v1 import network_service_pb2 as napi
from kumo.network.v1 import network_service_pb2_grpc as nrpc
from kumo.network.v1 import resources_pb2 as npb

V2_70 = Version(2, 70)  # a device `tag` in the view


class Interfaces(NovaBase):
    """`/servers/{id}/os-interface[/{port_id}]` (see the module docstring)."""

    async def _views(
        self, scope: Scope, server: cpb.Instance, version: Version
    ) -> dict[str, dict[str, Any]]:
        """Nova's view of each of the server's interfaces, by Kumo port name, in order (from
        2.70 with a `tag`: none, Kumo keeps no device tags)."""
        network = self.backend.stub(nrpc.NetworkServiceStub)
        uids: dict[str, str] = {}

        async def uid_of(name: str, get: Any, request_type: Any) -> str:
            if name not in uids:
                uids[name] = (await self.call(get, request_type(name=name), scope)).uid
            return uids[name]

        views: dict[str, dict[str, Any]] = {}
        for nic in server.network_interfaces:
            if not nic.port:
                continue
            port: npb.Port = await self.call(
                network.GetPort, napi.GetPortRequest(name=nic.port), scope
            )
            net_id = await uid_of(port.network, network.GetNetwork, napi.GetNetworkRequest)
            views[nic.port] = {
                "port_id": port.uid,
                "net_id": net_id,
                "mac_addr": port.mac_address,
                "port_state": "ACTIVE" if port.status == npb.Port.STATUS_ACTIVE else "DOWN",
                "fixed_ips": [
                    {
                        "ip_address": fixed.ip_address,
                        "subnet_id": await uid_of(
                            fixed.subnet, network.GetSubnet, napi.GetSubnetRequest
                        ),
                    }
                    for fixed in port.fixed_ips
                ],
            }
            if version >= V2_70:
                views[nic.port]["tag"] = None
        return views

    async def list(self, request: Request) -> Response:
        """GET /servers/{id}/os-interface."""
        scope, version = await self.begin(request)
        server = await self.server_of(scope, request)
        views = await self._views(scope, server, version)
        return self.reply(version, {"interfaceAttachments": list(views.values())})

    async def show(self, request: Request) -> Response:
        """GET /servers/{id}/os-interface/{port_id}; 404 unless the server has that port."""
        scope, version = await self.begin(request)
        server = await self.server_of(scope, request)
        wanted = request.path_params["port_id"]
        for view in (await self._views(scope, server, version)).values():
            if view["port_id"] == wanted:
                return self.reply(version, {"interfaceAttachment": view})
        raise _not_attached(server, wanted)

    async def _interface(self, scope: Scope, body: dict[str, Any]) -> cpb.NetworkInterface:
        """The interface an attach asks for: on the port `port_id`, on `net_id` (with the
        address of `fixed_ips`, one at most), or on the only network the project may use."""
        index = Index(self.backend, scope)
        port_id = body.get("port_id")
        if port_id is not None:
            if not isinstance(port_id, str) or "net_id" in body or "fixed_ips" in body:
                raise invalid("port_id is a port's id, and excludes net_id and fixed_ips")
            return await interface_with_port(index, port_id)
        fixed_ips = body.get("fixed_ips")
        if fixed_ips is not None and (
            not isinstance(fixed_ips, list)
            or len(fixed_ips) > 1
            or not all(isinstance(f, dict) and "ip_address" in f for f in fixed_ips)
        ):
            raise invalid("fixed_ips must be a list of one {'ip_address': ...} at most")
        net_id = body.get("net_id")
        if net_id is None:
            if fixed_ips:
                raise invalid("fixed_ips needs a net_id")
            found = await the_only_network(index, scope)
            if not found:
                raise invalid("the project has no network to attach to: give a net_id")
            return found[0]
        if not isinstance(net_id, str):
            raise invalid("net_id must be a string")
        return await interface_on(index, net_id, fixed_ips[0]["ip_address"] if fixed_ips else None)

    async def attach(self, request: Request) -> Response:
        """POST /servers/{id}/os-interface: 200 with the new interface (see the module
        docstring); 400 for a malformed body or unusable network, 404 for no server, 409
        for a server neither ACTIVE nor SHUTOFF, 403 over the port quota."""
        scope, version = await self.begin(request)
        server = await self.server_of(scope, request)
        body = (await json_body(request)).get("interfaceAttachment", {})
        if not isinstance(body, dict):
            raise invalid("interfaceAttachment must be an object")
        interface = await self._interface(scope, body)
        operation = await self.call(
            self.compute.AttachNetworkInterface,
            capi.AttachNetworkInterfaceRequest(name=server.name, network_interface=interface),
            scope,
        )
        await settled(self.backend, scope, operation)
        before = {nic.port for nic in server.network_interfaces}
        server = await self.server_of(scope, request)
        added = cpb.Instance()
        added.network_interfaces.extend(
            nic
            for nic in server.network_interfaces
            if nic.port not in before
            and (nic.port == interface.port if interface.port else nic.network == interface.network)
        )
        del added.network_interfaces[1:]  # (attaches to the same network meanwhile: the first)
        views = list((await self._views(scope, added, version)).values())
        if not views:  # detached again meanwhile
            raise RpcFailure.of(grpc.StatusCode.ABORTED, "The interface was detached meanwhile.")
        return self.reply(version, {"interfaceAttachment": views[0]})

    async def detach(self, request: Request) -> Response:
        """DELETE /servers/{id}/os-interface/{port_id}: 202; 404 unless the server has that
        port, 409 for a server neither ACTIVE nor SHUTOFF."""
        scope, version = await self.begin(request)
        server = await self.server_of(scope, request)
        wanted = request.path_params["port_id"]
        for port, view in (await self._views(scope, server, version)).items():
            if view["port_id"] == wanted:
                await self.call(
                    self.compute.DetachNetworkInterface,
                    capi.DetachNetworkInterfaceRequest(name=server.name, port=port),
                    scope,
                )
                return self.reply(version, status=202)
        raise _not_attached(server, wanted)


def _not_attached(server: cpb.Instance, port_id: str) -> RpcFailure:
    return RpcFailure.of(
        grpc.StatusCode.NOT_FOUND, f"Instance {server.uid} is not attached to port {port_id}."
    )
