"""Neutron ports over Kumo's ports (fixed IPs, security groups, address pairs)."""

from __future__ import annotations

from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import Response

from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import compute_service_pb2_grpc as crpc
from kumo.gateway.dialect import invalid, list_at
from kumo.gateway.errors import RpcFailure
from kumo.gateway.openstack.common import Scope, with_uid
from kumo.gateway.openstack.neutron import views
from kumo.gateway.openstack.neutron.base import NeutronBase, mask, new_id
from kumo.gateway.openstack.neutron.index import Index
from kumo.gateway.openstack.operations import settled
from kumo.network.v1 import network_service_pb2 as api
from kumo.network.v1 import resources_pb2 as pb

_KINDS = ("networks", "subnets", "security_groups", "routers")


def _pairs(value: Any) -> list[pb.AllowedAddressPair]:
    if not isinstance(value, list):
        raise invalid("allowed_address_pairs must be a list")
    return [
        pb.AllowedAddressPair(
            ip_address=str(p.get("ip_address", "")), mac_address=str(p.get("mac_address") or "")
        )
        for p in value
        if isinstance(p, dict)
    ]


async def group_names(index: Index, ids: Any) -> list[str]:
    """Security group names of Neutron ids; 404 for one the caller has not."""
    if not isinstance(ids, list):
        raise invalid("security_groups must be a list of ids")
    groups = await index.security_groups()
    return [with_uid(groups, str(i), "Security group").name for i in ids]


class Ports(NeutronBase):
    """`/v2.0/ports`."""

    async def _render(self, index: Index) -> list[dict[str, Any]]:
        ports = await index.ports()
        uids = await index.uids(*_KINDS)
        return [views.port(p, uids) for p in ports]

    async def list(self, request: Request) -> Response:
        """GET /ports."""
        _, index = await self.begin(request)
        return self.listing(request, "ports", await self._render(index))

    async def show(self, request: Request) -> Response:
        """GET /ports/{id}."""
        _, index = await self.begin(request)
        found = with_uid(await index.ports(), request.path_params["id"], "Port")
        return self.one(request, "port", views.port(found, await index.uids(*_KINDS)))

    async def create(self, request: Request) -> Response:
        """POST /ports: 201."""
        scope, index = await self.begin(request)
        body = await self.body_of(request, "port")
        network = with_uid(await index.networks(), str(body.get("network_id") or ""), "Network")
        subnets = await index.subnets()
        port = pb.Port(
            display_name=str(body.get("name") or ""),
            description=str(body.get("description") or ""),
            network=network.name,
            mac_address=str(body.get("mac_address") or ""),
            device_owner=str(body.get("device_owner") or ""),
            device_id=str(body.get("device_id") or ""),
            allowed_address_pairs=_pairs(body.get("allowed_address_pairs") or []),
        )
        for fixed in list_at(body, "fixed_ips"):
            if not isinstance(fixed, dict):
                raise invalid("fixed_ips must be a list of objects")
            subnet = ""
            if fixed.get("subnet_id"):
                subnet = with_uid(subnets, str(fixed["subnet_id"]), "Subnet").name
            port.fixed_ips.append(
                pb.FixedIp(subnet=subnet, ip_address=str(fixed.get("ip_address") or ""))
            )
        if "security_groups" in body:
            port.security_groups.extend(await group_names(index, body["security_groups"] or []))
        if "port_security_enabled" in body:
            port.port_security_enabled = bool(body["port_security_enabled"])
        created = await self.call(
            self.network.CreatePort,
            api.CreatePortRequest(
                parent=self.parent_of(scope, body), port_id=new_id("port"), port=port
            ),
            scope,
        )
        return self.one(request, "port", views.port(created, await index.uids(*_KINDS)), 201)

    async def update(self, request: Request) -> Response:
        """PUT /ports/{id}: name, description, security groups, port security, address
        pairs, device owner and id."""
        scope, index = await self.begin(request)
        body = await self.body_of(request, "port")
        found = with_uid(await index.ports(), request.path_params["id"], "Port")
        change = pb.Port(name=found.name)
        paths = []
        for key, path in (
            ("name", "display_name"),
            ("description", "description"),
            ("device_owner", "device_owner"),
            ("device_id", "device_id"),
        ):
            if key in body:
                setattr(change, path, str(body[key] or ""))
                paths.append(path)
        if "security_groups" in body:
            change.security_groups.extend(await group_names(index, body["security_groups"] or []))
            paths.append("security_groups")
        if "port_security_enabled" in body:
            change.port_security_enabled = bool(body["port_security_enabled"])
            paths.append("port_security_enabled")
        if "allowed_address_pairs" in body:
            change.allowed_address_pairs.extend(_pairs(body["allowed_address_pairs"] or []))
            paths.append("allowed_address_pairs")
        updated = found
        if paths:
            updated = await self.call(
                self.network.UpdatePort,
                api.UpdatePortRequest(port=change, update_mask=mask(*paths)),
                scope,
            )
        return self.one(request, "port", views.port(updated, await index.uids(*_KINDS)))

    async def delete(self, request: Request) -> Response:
        """DELETE /ports/{id}: 204. A server's port is detached from the server first (as Nova
        does when Neutron deletes one), waiting for the host to unplug it: the port Kumo made
        for the server goes with the detach, a port the server took is deleted after. 409
        if the server cannot let it go now (neither running nor stopped) or the detach takes
        longer than the request may wait."""
        scope, index = await self.begin(request)
        found = with_uid(await index.ports(), request.path_params["id"], "Port")
        if found.device_uid:
            detach = capi.DetachNetworkInterfaceRequest(name=found.device_id, port=found.name)
            compute = self.backend.stub(crpc.ComputeServiceStub)
            operation = await self.call(compute.DetachNetworkInterface, detach, scope)
            if not (await settled(self.backend, scope, operation)).done:
                raise RpcFailure.of(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"Port {found.uid} is still being detached from its server; retry.",
                )
            if not await self._exists(scope, found.name):
                return self.gone()
        await self.call(self.network.DeletePort, api.DeletePortRequest(name=found.name), scope)
        return self.gone()

    async def _exists(self, scope: Scope, name: str) -> bool:
        try:
            await self.call(self.network.GetPort, api.GetPortRequest(name=name), scope)
        except RpcFailure as failure:
            if failure.code == grpc.StatusCode.NOT_FOUND.value[0]:
                return False
            raise
        return True
