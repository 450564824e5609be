"""Nova's `/servers/{id}/os-interface[/{port_id}]`: the server's network interfaces, read
from its ports. Kumo plugs an instance's interfaces when it is created; attaching or
detaching one later is not offered (501).
"""

from __future__ import annotations

from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import Response

from kumo.compute.v1 import resources_pb2 as cpb
from kumo.gateway.errors import RpcFailure
from kumo.gateway.openstack.common import Scope
from kumo.gateway.openstack.nova.base import NovaBase, not_offered
from kumo.network.v1 import network_service_pb2 as napi
from kumo.network.v1 import network_service_pb2_grpc as nrpc
from kumo.network.v1 import resources_pb2 as npb


class Interfaces(NovaBase):
    """GET `/os-interface` and `/os-interface/{port_id}`; POST and DELETE answer 501."""

    async def _views(self, scope: Scope, server: cpb.Instance) -> list[dict[str, Any]]:
        network = self.backend.stub(nrpc.NetworkServiceStub)
        uids: dict[str, str] = {}

        async def uid_of(name: str, get: Any, request_type: Any) -> str:
            if name not in uids:
                uids[name] = (await self.call(get, request_type(name=name), scope)).uid
            return uids[name]

        views = []
        for nic in server.network_interfaces:
            if not nic.port:
                continue
            port: npb.Port = await self.call(
                network.GetPort, napi.GetPortRequest(name=nic.port), scope
            )
            net_id = await uid_of(port.network, network.GetNetwork, napi.GetNetworkRequest)
            views.append(
                {
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
            )
        return views

    async def list(self, request: Request) -> Response:
        """GET /servers/{id}/os-interface."""
        scope, version = await self.begin(request)
        server = await self.server_of(scope, request)
        return self.reply(version, {"interfaceAttachments": await self._views(scope, server)})

    async def show(self, request: Request) -> Response:
        """GET /servers/{id}/os-interface/{port_id}; 404 unless the server has that port."""
        scope, version = await self.begin(request)
        server = await self.server_of(scope, request)
        wanted = request.path_params["port_id"]
        for view in await self._views(scope, server):
            if view["port_id"] == wanted:
                return self.reply(version, {"interfaceAttachment": view})
        raise RpcFailure.of(
            grpc.StatusCode.NOT_FOUND,
            f"Instance {server.uid} is not attached to port {wanted}.",
        )

    async def change(self, request: Request) -> Response:
        """POST /os-interface and DELETE /os-interface/{port_id}: 501 (after the server's
        lookup, so an unknown server is 404)."""
        scope, _ = await self.begin(request)
        await self.server_of(scope, request)
        raise not_offered("Attaching or detaching a network interface of a running server")
