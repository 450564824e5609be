"""CreateSubnet, GetSubnet, ListSubnets, UpdateSubnet, DeleteSubnet.

A subnet must not overlap another subnet of its network (the network row is
written in the same transaction, so concurrent creates on one network are
serialised and cannot both pass the check). Its gateway and allocation pools
must lie inside it. A subnet with addresses in use cannot be deleted.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from google.protobuf import empty_pb2
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from kumo.network.v1 import network_service_pb2 as api
from kumo.network.v1 import resources_pb2 as pb
from kumo.server.api.convert import check_etag
from kumo.server.api.fields import check_required, update_paths
from kumo.server.api.idempotency import idempotent
from kumo.server.api.resources import Collection, apply_common
from kumo.server.auth.principal import Principal, current_principal
from kumo.server.db.models import IpAllocationRow, NetworkRow, SubnetRow
from kumo.server.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound
from kumo.server.interceptors.base import Context
from kumo.server.network import ipam
from kumo.server.quota import charge
from kumo.server.services.network.common import (
    NETWORKS,
    SUBNETS,
    NetworkPart,
    bump,
    owned,
    subnet_to_proto,
    subnets_of,
)

MAX_DNS_SERVERS = 5
MAX_HOST_ROUTES = 20


def _check_dns(servers: list[str], version: int) -> list[FieldViolation]:
    violations = []
    if len(servers) > MAX_DNS_SERVERS:
        violations.append(FieldViolation("subnet.dns_servers", f"at most {MAX_DNS_SERVERS}"))
    for server in servers:
        try:
            if ipaddress.ip_address(server).version != version:
                violations.append(FieldViolation("subnet.dns_servers", f"{server}: wrong version"))
        except ValueError:
            violations.append(FieldViolation("subnet.dns_servers", f"{server}: not an address"))
    return violations


def check_routes(routes: list[pb.Route], field: str, version: int | None) -> list[dict[str, str]]:
    """Routes as stored dicts; InvalidArgument naming `field` if one is malformed."""
    if len(routes) > MAX_HOST_ROUTES:
        raise InvalidArgument.field(field, f"at most {MAX_HOST_ROUTES} routes")
    result = []
    for route in routes:
        destination = ipam.parse_cidr(f"{field}.destination", route.destination)
        hop = ipam.parse_address(f"{field}.next_hop", route.next_hop)
        if destination.version != hop.version or (version and hop.version != version):
            raise InvalidArgument.field(
                field, f"{route.destination} via {route.next_hop}: mixed IP versions"
            )
        result.append({"destination": str(destination), "next_hop": str(hop)})
    return result


def _layout(spec: pb.Subnet) -> tuple[ipam.IpNetwork, str, list[ipam.Pool]]:
    network = ipam.parse_cidr("subnet.cidr", spec.cidr)
    first, _ = ipam.host_range(network)
    gateway = (
        ipam.parse_address("subnet.gateway_ip", spec.gateway_ip)
        if spec.gateway_ip
        else ipaddress.ip_address(ipam.text(first, network.version))
    )
    if gateway.version != network.version or gateway not in network:
        raise InvalidArgument.field("subnet.gateway_ip", f"{gateway} is not inside {network}")
    if spec.allocation_pools:
        pools = [
            ipam.Pool.of(
                ipam.parse_address("subnet.allocation_pools.start", p.start),
                ipam.parse_address("subnet.allocation_pools.end", p.end),
            )
            for p in spec.allocation_pools
        ]
        ipam.check_pools(network, gateway, pools)
    else:
        pools = ipam.default_pools(network, gateway)
    violations = _check_dns(list(spec.dns_servers), network.version)
    if violations:
        raise InvalidArgument(violations)
    return network, str(gateway), pools


def _require_readable(
    session: Session,
    caller: Principal,
    project_id: str,
    network_id: str,
    collection: Collection[Any],
    name: str,
) -> None:
    """NotFound (for `name`, of `collection`) unless the caller may read the subnets of
    network `network_id` of `project_id`: its project's, or a shared network's."""
    network = session.get(NetworkRow, (project_id, network_id))
    if network is None or not (network.shared or caller.can_see_project(project_id)):
        raise NotFound(collection.type_name, name)


class SubnetMethods(NetworkPart):
    """Subnets: address ranges of a network, with DHCP settings."""

    async def CreateSubnet(self, request: api.CreateSubnetRequest, context: Context) -> pb.Subnet:
        caller = current_principal()
        NETWORKS.key(request.parent, "parent")
        check_required(request.subnet, "subnet.")
        network, gateway, pools = _layout(request.subnet)
        routes = check_routes(
            list(request.subnet.host_routes), "subnet.host_routes", network.version
        )

        def create(session: Session) -> pb.Subnet:
            parent = owned(session, caller, NETWORKS, request.parent, "parent")
            # Written first: serialises subnet creates on this network (overlap check).
            parent.version += 1
            session.flush()
            clash = ipam.overlapping(network, (s.cidr for s in subnets_of(session, parent)))
            if clash is not None:
                raise InvalidArgument.field(
                    "subnet.cidr", f"{network} overlaps {clash} on {request.parent}"
                )
            charge(session, parent.project_id, {"subnets": 1})
            spec = request.subnet
            row = SubnetRow(
                project_id=parent.project_id,
                network_id=parent.id,
                cidr=str(network),
                ip_version=network.version,
                gateway_ip=gateway,
                allocation_pools=[{"start": p.text(p.start), "end": p.text(p.end)} for p in pools],
                dns_servers=list(spec.dns_servers),
                dhcp_enabled=spec.dhcp_enabled if spec.HasField("dhcp_enabled") else True,
                host_routes=routes,
            )
            apply_common(row, spec, {"display_name", "description", "labels"}, "subnet")
            SUBNETS.insert(session, request.subnet_id, "subnet_id", row)
            session.flush()
            return subnet_to_proto(row)

        result = await idempotent(self.runtime.db, "CreateSubnet", request, pb.Subnet, create)
        self.changed()
        return result

    async def GetSubnet(self, request: api.GetSubnetRequest, context: Context) -> pb.Subnet:
        caller = current_principal()

        def read(session: Session) -> pb.Subnet:
            project_id, network_id, _ = SUBNETS.key(request.name)
            _require_readable(session, caller, project_id, network_id, SUBNETS, request.name)
            return subnet_to_proto(SUBNETS.get(session, request.name))

        return await self.runtime.db.run(read)

    async def ListSubnets(
        self, request: api.ListSubnetsRequest, context: Context
    ) -> api.ListSubnetsResponse:
        caller = current_principal()

        def page(session: Session) -> api.ListSubnetsResponse:
            project_id, network_id = NETWORKS.key(request.parent, "parent")
            _require_readable(session, caller, project_id, network_id, NETWORKS, request.parent)
            result = SUBNETS.list(
                session,
                self.runtime.pager,
                request,
                [SubnetRow.project_id == project_id, SubnetRow.network_id == network_id],
                binding=request.parent,
            )
            return api.ListSubnetsResponse(
                subnets=[subnet_to_proto(r) for r in result.rows],
                next_page_token=result.next_page_token,
            )

        return await self.runtime.db.run(page)

    async def UpdateSubnet(self, request: api.UpdateSubnetRequest, context: Context) -> pb.Subnet:
        caller = current_principal()
        spec = request.subnet
        paths = update_paths(spec, request.update_mask, "subnet")

        def update(session: Session) -> pb.Subnet:
            row = owned(session, caller, SUBNETS, spec.name, "subnet.name")
            check_etag(spec.etag, row.version, spec.name)
            apply_common(row, spec, paths, "subnet")
            if "dns_servers" in paths:
                if violations := _check_dns(list(spec.dns_servers), row.ip_version):
                    raise InvalidArgument(violations)
                row.dns_servers = list(spec.dns_servers)
            if "host_routes" in paths:
                row.host_routes = check_routes(
                    list(spec.host_routes), "subnet.host_routes", row.ip_version
                )
            if "dhcp_enabled" in paths:
                row.dhcp_enabled = spec.dhcp_enabled if spec.HasField("dhcp_enabled") else True
            bump(row)
            session.flush()
            return subnet_to_proto(row)

        result = await idempotent(self.runtime.db, "UpdateSubnet", request, pb.Subnet, update)
        self.changed()
        return result

    async def DeleteSubnet(
        self, request: api.DeleteSubnetRequest, context: Context
    ) -> empty_pb2.Empty:
        caller = current_principal()

        def remove(session: Session) -> empty_pb2.Empty:
            row = owned(session, caller, SUBNETS, request.name)
            check_etag(request.etag, row.version, request.name)
            if session.scalar(select(exists().where(IpAllocationRow.subnet_uid == row.uid))):
                raise FailedPrecondition(
                    f"{request.name} has addresses in use",
                    type="SUBNET_IN_USE",
                    subject=request.name,
                )
            charge(session, row.project_id, {"subnets": -1})
            session.delete(row)
            return empty_pb2.Empty()

        result = await idempotent(self.runtime.db, "DeleteSubnet", request, empty_pb2.Empty, remove)
        self.changed()
        return result
