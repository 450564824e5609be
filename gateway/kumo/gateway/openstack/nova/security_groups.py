"""A server's security groups in Nova's terms: the groups of its ports.

Nova names a group by its name or its Neutron id (the Kumo group's uid); a group's name is
its Kumo display name (its id when it has none). A create's `security_groups` go on every
interface Kumo makes for the server (an existing port keeps its own groups); an unknown
group there is 400. `addSecurityGroup` and `removeSecurityGroup` change every port of the
server, each port read and written under its etag, again while it changes meanwhile
(etag_retry); an unknown group, a server without ports, or a group on none of its ports
(remove) is 404; a port without port security the API's 400. Server views list each group
of the server's ports once, in port order, and leave `security_groups` out when there is
none, as Nova does; `/servers/{id}/os-security-groups` shows those groups whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

import grpc
from google.protobuf import field_mask_pb2

from kumo.compute.v1 import resources_pb2 as cpb
from kumo.gateway.dialect import invalid
from kumo.gateway.errors import RpcFailure
from kumo.gateway.etag_retry import aborted, until_written
from kumo.gateway.grpc_backend import Backend
from kumo.gateway.openstack.common import Scope, last_segment
from kumo.gateway.openstack.neutron.index import Index, rule_id
from kumo.gateway.openstack.neutron.views import group_name
from kumo.network.v1 import network_service_pb2 as napi
from kumo.network.v1 import network_service_pb2_grpc as nrpc
from kumo.network.v1 import resources_pb2 as npb


async def find_group(index: Index, given: Any, missing: grpc.StatusCode) -> str:
    """The resource name of the caller's group named (or with the id) `given`. An unknown
    group is `missing` (400 at create, 404 in the actions); a name several groups share,
    409."""
    if not isinstance(given, str) or not given:
        raise invalid("a security group needs a name")
    groups = await index.security_groups()
    found = [g for g in groups if g.uid == given] or [g for g in groups if group_name(g) == given]
    if not found:
        raise RpcFailure.of(
            missing, f"Security group {given} not found for project {index.scope.project}."
        )
    if len(found) > 1:
        raise RpcFailure.of(
            grpc.StatusCode.ALREADY_EXISTS,
            f"Multiple security groups found matching '{given}'. Use an ID to be more specific.",
        )
    return str(found[0].name)


async def requested_groups(index: Index, value: Any) -> list[str]:
    """The resource names of a create's `security_groups` (`[{"name": ...}, ...]`); none
    given: []. 400 for another shape or an unknown group."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise invalid("security_groups must be a list of objects with a name")
    names: list[str] = []
    for entry in value:
        name = await find_group(index, entry.get("name"), grpc.StatusCode.INVALID_ARGUMENT)
        if name not in names:
            names.append(name)
    return names


async def change_group(
    backend: Backend, scope: Scope, instance: cpb.Instance, given: Any, add: bool
) -> None:
    """Adds the group named `given` to every port of the server (or removes it). Raises
    RpcFailure as described in the module's docstring."""
    group = await find_group(Index(backend, scope), given, grpc.StatusCode.NOT_FOUND)
    ports = [i.port for i in instance.network_interfaces if i.port]
    if not ports:
        raise RpcFailure.of(
            grpc.StatusCode.NOT_FOUND,
            f"instance_id {instance.uid} could not be found as device id on any ports",
        )
    stub = backend.stub(nrpc.NetworkServiceStub)

    async def rewrite(port: str) -> bool:
        current = await backend.call(stub.GetPort, napi.GetPortRequest(name=port), scope.token)
        groups = list(current.security_groups)
        if (group in groups) == add:
            return False
        groups = [*groups, group] if add else [g for g in groups if g != group]
        update = napi.UpdatePortRequest(
            port=npb.Port(name=port, etag=current.etag, security_groups=groups),
            update_mask=field_mask_pb2.FieldMask(paths=["security_groups"]),
        )
        await backend.call(stub.UpdatePort, update, scope.token)
        return True

    changed = False
    for port in ports:
        changed |= await until_written(partial(rewrite, port), aborted)
    if not add and not changed:
        raise RpcFailure.of(
            grpc.StatusCode.NOT_FOUND,
            f"Security group {given} not associated with the instance {instance.uid}",
        )


def _nova_rule(
    group: npb.SecurityGroup, rule: npb.SecurityGroupRule, names: dict[str, str]
) -> dict[str, Any]:
    """An ingress rule as Nova shows it: a protocol without ports spans them all (1-65535
    for TCP and UDP, -1 otherwise); a remote group by name, else the remote CIDR."""
    protocol = rule.protocol or None
    low: int | None = rule.port_range_min or None
    high: int | None = rule.port_range_max or low  # (0: the one port `port_range_min`)
    if protocol and low is None and high is None:
        low, high = (1, 65535) if protocol.upper() in ("TCP", "UDP") else (-1, -1)
    shown: dict[str, Any] = {
        "id": rule_id(group, rule),
        "parent_group_id": group.uid,
        "ip_protocol": protocol,
        "from_port": low,
        "to_port": high,
        "group": {},
        "ip_range": {},
    }
    if rule.remote_group:
        remote = names.get(rule.remote_group, last_segment(rule.remote_group))
        shown["group"] = {"name": remote, "tenant_id": rule.remote_group.split("/")[1]}
    else:
        shown["ip_range"] = {"cidr": rule.remote_cidr or "0.0.0.0/0"}
    return shown


async def server_groups(backend: Backend, scope: Scope, instance: cpb.Instance) -> list[Any]:
    """GET /servers/{id}/os-security-groups: the groups of the server's ports (those the
    caller can list) with their ingress rules, in Nova's shape."""
    listed = await Index(backend, scope).security_groups()
    names = {g.name: group_name(g) for g in listed}
    by_name = {g.name: g for g in listed}
    wanted = {g: None for i in instance.network_interfaces for g in i.security_groups}
    return [
        {
            "id": group.uid,
            "name": group_name(group),
            "description": group.description,
            "tenant_id": group.name.split("/")[1],
            "rules": [
                _nova_rule(group, r, names)
                for r in group.rules
                if r.direction == npb.SecurityGroupRule.DIRECTION_INGRESS
            ],
        }
        for group in (by_name[g] for g in wanted if g in by_name)
    ]


class GroupNames:
    """The names of the groups of servers' ports, read (one listing) only when a port has
    groups; a group the caller cannot list shows its id."""

    def __init__(self, index: Index) -> None:
        self.index = index
        self._names: dict[str, str] = {}

    async def read(self, instances: Iterable[cpb.Instance]) -> None:
        """Reads the names the instances' ports need, if any."""
        if any(i.security_groups for s in instances for i in s.network_interfaces):
            self._names = {g.name: group_name(g) for g in await self.index.security_groups()}

    def view(self, instance: cpb.Instance) -> list[dict[str, str]]:
        """Nova's `security_groups` of the server (`read` first): each group once."""
        names = {
            self._names.get(g, last_segment(g)): None
            for i in instance.network_interfaces
            for g in i.security_groups
        }
        return [{"name": name} for name in names]
