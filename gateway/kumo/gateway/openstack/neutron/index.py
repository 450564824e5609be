"""The caller's network resources, listed once per request, and lookups by Neutron id."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from kumo.gateway.errors import RpcFailure
from kumo.gateway.grpc_backend import Backend
from kumo.gateway.openstack.common import Scope
from kumo.gateway.openstack.paging import MAX_SCAN, PAGE
from kumo.network.v1 import network_service_pb2 as api
from kumo.network.v1 import network_service_pb2_grpc as nrpc
from kumo.network.v1 import resources_pb2 as pb

_RULES = uuid.UUID("0b8e9a57-52a5-4f43-a1c7-6d2f4f8b1e3c")


def rule_id(group: pb.SecurityGroup, rule: pb.SecurityGroupRule) -> str:
    """A rule's Neutron id (Kumo rule ids are unique within their group only)."""
    return str(uuid.uuid5(_RULES, f"{group.uid}/{rule.id}"))


class Index:
    """Listings made with the caller's token, each at most once per request."""

    def __init__(self, backend: Backend, scope: Scope) -> None:
        self.backend = backend
        self.scope = scope
        self.stub = backend.stub(nrpc.NetworkServiceStub)
        self._cache: dict[str, list[Any]] = {}

    async def _all(self, key: str, fetch: Callable[[str], Awaitable[tuple[list[Any], str]]]) -> Any:
        if key not in self._cache:
            items: list[Any] = []
            token = ""
            while True:
                page, token = await fetch(token)
                items.extend(page)
                if not token or len(items) >= MAX_SCAN:
                    break
            self._cache[key] = items
        return self._cache[key]

    def forget(self) -> None:
        """Drops the listings (after a change made in this request)."""
        self._cache.clear()

    async def _list(self, method: Any, request: Any, plural: str) -> tuple[list[Any], str]:
        answer = await self.backend.call(method, request, self.scope.token)
        return list(getattr(answer, plural)), str(answer.next_page_token)

    async def networks(self) -> list[pb.Network]:
        """The caller's networks and every external one (all networks for administrators)."""
        return await self._all(  # type: ignore[no-any-return]
            "networks",
            lambda t: self._list(
                self.stub.ListNetworks,
                api.ListNetworksRequest(parent="projects/-", page_size=PAGE, page_token=t),
                "networks",
            ),
        )

    async def subnets(self) -> list[pb.Subnet]:
        """The subnets of the networks the caller may read."""
        if "subnets" not in self._cache:
            found: list[pb.Subnet] = []
            for network in await self.networks():
                try:
                    found.extend(await self._all("subnets:" + network.name, self._subnets(network)))
                except RpcFailure as failure:
                    # Another project's external network: its subnets are not the caller's.
                    if failure.code not in (
                        grpc.StatusCode.NOT_FOUND.value[0],
                        grpc.StatusCode.PERMISSION_DENIED.value[0],
                    ):
                        raise
            self._cache["subnets"] = found
        return self._cache["subnets"]

    def _subnets(self, network: pb.Network) -> Callable[[str], Awaitable[tuple[list[Any], str]]]:
        async def fetch(token: str) -> tuple[list[Any], str]:
            return await self._list(
                self.stub.ListSubnets,
                api.ListSubnetsRequest(parent=network.name, page_size=PAGE, page_token=token),
                "subnets",
            )

        return fetch

    def _project_list(self, key: str, method: Any, request_type: Any, plural: str) -> Any:
        return self._all(
            key,
            lambda t: self._list(
                method,
                request_type(parent=self.scope.parent, page_size=PAGE, page_token=t),
                plural,
            ),
        )

    async def ports(self) -> list[pb.Port]:
        """The project's ports."""
        return await self._project_list(  # type: ignore[no-any-return]
            "ports", self.stub.ListPorts, api.ListPortsRequest, "ports"
        )

    async def routers(self) -> list[pb.Router]:
        """The project's routers."""
        return await self._project_list(  # type: ignore[no-any-return]
            "routers", self.stub.ListRouters, api.ListRoutersRequest, "routers"
        )

    async def floating_ips(self) -> list[pb.FloatingIp]:
        """The project's floating IPs."""
        return await self._project_list(  # type: ignore[no-any-return]
            "floating_ips", self.stub.ListFloatingIps, api.ListFloatingIpsRequest, "floating_ips"
        )

    async def security_groups(self) -> list[pb.SecurityGroup]:
        """The project's security groups."""
        return await self._project_list(  # type: ignore[no-any-return]
            "security_groups",
            self.stub.ListSecurityGroups,
            api.ListSecurityGroupsRequest,
            "security_groups",
        )

    async def uids(self, *kinds: str) -> dict[str, str]:
        """uid by resource name over the listings of `kinds` (networks, subnets, ports,
        routers, security_groups, floating_ips)."""
        found: dict[str, str] = {}
        for kind in kinds:
            for item in await getattr(self, kind)():
                found[item.name] = item.uid
        return found
