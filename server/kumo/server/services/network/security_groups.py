"""Security groups and their rules (an embedded list; rules get server ids).

Semantics, as OVN enforces them: a port with port security drops every packet
that no rule of its groups allows (stateful: replies to allowed traffic pass).
A rule names direction, IP version, protocol, port range and the other end (a
CIDR or the members of a group, followed as membership changes). Each
project's `default` group, made on first use, allows all egress and ingress
from its own members. A group still used by ports or named by another group's
rules cannot be deleted (FAILED_PRECONDITION).
"""

from __future__ import annotations

import uuid
from typing import Any

from google.protobuf import empty_pb2
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kumo.network.v1 import network_service_pb2 as api
from kumo.network.v1 import resources_pb2 as pb
from kumo.server.api.convert import check_etag
from kumo.server.api.fields import update_paths
from kumo.server.api.idempotency import idempotent
from kumo.server.api.resources import apply_common
from kumo.server.auth.principal import current_principal
from kumo.server.db.models import PortRow, SecurityGroupRow
from kumo.server.errors import FailedPrecondition, InvalidArgument, NotFound
from kumo.server.interceptors.base import Context
from kumo.server.network import ipam
from kumo.server.quota import charge
from kumo.server.services.identity.common import PROJECTS, require_active
from kumo.server.services.network.common import (
    DEFAULT_GROUP,
    SECURITY_GROUPS,
    NetworkPart,
    bump,
    own_project,
    owned,
    security_group_to_proto,
)

PROTOCOLS = ("", "tcp", "udp", "icmp")
MAX_RULES = 100
Direction = pb.SecurityGroupRule.Direction


def group_ids(session: Session, project_id: str, names: list[str]) -> list[str]:
    """The ids of named groups of `project_id`; NotFound for any other."""
    ids = []
    for name in names:
        key = SECURITY_GROUPS.key(name, "security_groups")
        if key[0] != project_id or session.get(SecurityGroupRow, key) is None:
            raise NotFound(SECURITY_GROUPS.type_name, name)
        if key[1] not in ids:
            ids.append(key[1])
    return ids


def _rule(rule_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": rule_id, **fields}


def ensure_default_group(session: Session, project_id: str) -> str:
    """Makes the project's `default` group if missing; returns its id. Idempotent."""
    if session.get(SecurityGroupRow, (project_id, DEFAULT_GROUP)) is None:
        rules = [
            _rule(uuid.uuid4().hex[:8], direction=Direction.DIRECTION_EGRESS, ip_version=version)
            for version in (4, 6)
        ] + [
            _rule(
                uuid.uuid4().hex[:8],
                direction=Direction.DIRECTION_INGRESS,
                ip_version=version,
                remote_group=DEFAULT_GROUP,
            )
            for version in (4, 6)
        ]
        row = SecurityGroupRow(
            project_id=project_id,
            id=DEFAULT_GROUP,
            description="default: all egress, ingress from members",
            rules=rules,
        )
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            pass  # a concurrent transaction made it first
    return DEFAULT_GROUP


def check_rule(
    session: Session, project_id: str, group_id: str, rule: pb.SecurityGroupRule, field: str
) -> dict[str, Any]:
    """A rule as stored (with a fresh id); InvalidArgument or NotFound naming `field`."""
    if rule.direction not in (Direction.DIRECTION_INGRESS, Direction.DIRECTION_EGRESS):
        raise InvalidArgument.field(f"{field}.direction", "INGRESS or EGRESS")
    version = rule.ip_version or 4
    if version not in (4, 6):
        raise InvalidArgument.field(f"{field}.ip_version", "4 or 6")
    protocol = rule.protocol.lower()
    if protocol not in PROTOCOLS:
        raise InvalidArgument.field(f"{field}.protocol", "tcp, udp, icmp or empty")
    low, high = rule.port_range_min, rule.port_range_max or rule.port_range_min
    if low or high:
        if protocol not in ("tcp", "udp"):
            raise InvalidArgument.field(f"{field}.port_range_min", "port ranges need tcp or udp")
        if not 1 <= low <= high <= 65535:
            raise InvalidArgument.field(f"{field}.port_range_min", "1 <= min <= max <= 65535")
    stored: dict[str, Any] = {
        "direction": int(rule.direction),
        "ip_version": version,
        "protocol": protocol,
        "port_range_min": low,
        "port_range_max": high,
    }
    if rule.remote_cidr and rule.remote_group:
        raise InvalidArgument.field(f"{field}.remote_cidr", "a CIDR or a group, not both")
    if rule.remote_cidr:
        cidr = ipam.parse_cidr(f"{field}.remote_cidr", rule.remote_cidr)
        if cidr.version != version:
            raise InvalidArgument.field(f"{field}.remote_cidr", "wrong IP version")
        stored["remote_cidr"] = str(cidr)
    if rule.remote_group:
        key = SECURITY_GROUPS.key(rule.remote_group, f"{field}.remote_group")
        if key[0] != project_id or (
            key[1] != group_id and session.get(SecurityGroupRow, key) is None
        ):
            raise NotFound(SECURITY_GROUPS.type_name, rule.remote_group)
        stored["remote_group"] = key[1]
    return _rule(uuid.uuid4().hex[:8], **stored)


def _check_rules(
    session: Session, project_id: str, group_id: str, rules: list[pb.SecurityGroupRule]
) -> list[dict[str, Any]]:
    if len(rules) > MAX_RULES:
        raise InvalidArgument.field("security_group.rules", f"at most {MAX_RULES}")
    return [
        check_rule(session, project_id, group_id, r, f"security_group.rules[{i}]")
        for i, r in enumerate(rules)
    ]


def _users(session: Session, row: SecurityGroupRow) -> str | None:
    for port in session.scalars(select(PortRow).where(PortRow.project_id == row.project_id)):
        if row.id in port.security_groups:
            return "ports"
    for group in session.scalars(
        select(SecurityGroupRow).where(
            SecurityGroupRow.project_id == row.project_id, SecurityGroupRow.id != row.id
        )
    ):
        if any(r.get("remote_group") == row.id for r in group.rules):
            return "other groups' rules"
    return None


class SecurityGroupMethods(NetworkPart):
    """Security groups: stateful allow-lists applied to ports."""

    async def CreateSecurityGroup(
        self, request: api.CreateSecurityGroupRequest, context: Context
    ) -> pb.SecurityGroup:
        caller = current_principal()
        project_id = own_project(caller, request.parent)

        def create(session: Session) -> pb.SecurityGroup:
            require_active(PROJECTS.get(session, request.parent, "parent"))
            charge(session, project_id, {"security_groups": 1})
            spec = request.security_group
            row = SecurityGroupRow(
                project_id=project_id,
                rules=_check_rules(
                    session, project_id, request.security_group_id, list(spec.rules)
                ),
            )
            apply_common(row, spec, {"display_name", "description", "labels"}, "security_group")
            SECURITY_GROUPS.insert(session, request.security_group_id, "security_group_id", row)
            session.flush()
            return security_group_to_proto(row)

        result = await idempotent(
            self.runtime.db, "CreateSecurityGroup", request, pb.SecurityGroup, create
        )
        self.changed()
        return result

    async def GetSecurityGroup(
        self, request: api.GetSecurityGroupRequest, context: Context
    ) -> pb.SecurityGroup:
        caller = current_principal()
        return await self.runtime.db.run(
            lambda s: security_group_to_proto(owned(s, caller, SECURITY_GROUPS, request.name))
        )

    async def ListSecurityGroups(
        self, request: api.ListSecurityGroupsRequest, context: Context
    ) -> api.ListSecurityGroupsResponse:
        project_id = own_project(current_principal(), request.parent)

        def page(session: Session) -> api.ListSecurityGroupsResponse:
            ensure_default_group(session, project_id)
            result = SECURITY_GROUPS.list(
                session,
                self.runtime.pager,
                request,
                [SecurityGroupRow.project_id == project_id],
                binding=request.parent,
            )
            return api.ListSecurityGroupsResponse(
                security_groups=[security_group_to_proto(r) for r in result.rows],
                next_page_token=result.next_page_token,
            )

        return await self.runtime.db.run(page)

    async def UpdateSecurityGroup(
        self, request: api.UpdateSecurityGroupRequest, context: Context
    ) -> pb.SecurityGroup:
        caller = current_principal()
        spec = request.security_group
        paths = update_paths(spec, request.update_mask, "security_group")

        def update(session: Session) -> pb.SecurityGroup:
            row = owned(session, caller, SECURITY_GROUPS, spec.name, "security_group.name")
            check_etag(spec.etag, row.version, spec.name)
            apply_common(row, spec, paths, "security_group")
            if "rules" in paths:
                row.rules = _check_rules(session, row.project_id, row.id, list(spec.rules))
            bump(row)
            session.flush()
            return security_group_to_proto(row)

        result = await idempotent(
            self.runtime.db, "UpdateSecurityGroup", request, pb.SecurityGroup, update
        )
        self.changed()
        return result

    async def DeleteSecurityGroup(
        self, request: api.DeleteSecurityGroupRequest, context: Context
    ) -> empty_pb2.Empty:
        caller = current_principal()

        def remove(session: Session) -> empty_pb2.Empty:
            row = owned(session, caller, SECURITY_GROUPS, request.name)
            check_etag(request.etag, row.version, request.name)
            if (what := _users(session, row)) is not None:
                raise FailedPrecondition(
                    f"{request.name} is still used by {what}",
                    type="SECURITY_GROUP_IN_USE",
                    subject=request.name,
                )
            if row.id != DEFAULT_GROUP:  # (the default group is not counted)
                charge(session, row.project_id, {"security_groups": -1})
            session.delete(row)
            return empty_pb2.Empty()

        result = await idempotent(
            self.runtime.db, "DeleteSecurityGroup", request, empty_pb2.Empty, remove
        )
        self.changed()
        return result

    async def CreateSecurityGroupRule(
        self, request: api.CreateSecurityGroupRuleRequest, context: Context
    ) -> pb.SecurityGroup:
        caller = current_principal()

        def add(session: Session) -> pb.SecurityGroup:
            row = owned(session, caller, SECURITY_GROUPS, request.security_group, "security_group")
            if len(row.rules) >= MAX_RULES:
                raise InvalidArgument.field("rule", f"a group has at most {MAX_RULES} rules")
            rule = check_rule(session, row.project_id, row.id, request.rule, "rule")
            row.rules = [*row.rules, rule]
            bump(row)
            session.flush()
            return security_group_to_proto(row)

        result = await idempotent(
            self.runtime.db, "CreateSecurityGroupRule", request, pb.SecurityGroup, add
        )
        self.changed()
        return result

    async def DeleteSecurityGroupRule(
        self, request: api.DeleteSecurityGroupRuleRequest, context: Context
    ) -> pb.SecurityGroup:
        caller = current_principal()

        def remove(session: Session) -> pb.SecurityGroup:
            row = owned(session, caller, SECURITY_GROUPS, request.security_group, "security_group")
            kept = [r for r in row.rules if r["id"] != request.rule_id]
            if len(kept) == len(row.rules):
                raise NotFound(
                    "network.kumo.dev/SecurityGroupRule",
                    f"{request.security_group}/rules/{request.rule_id}",
                )
            row.rules = kept
            bump(row)
            session.flush()
            return security_group_to_proto(row)

        result = await idempotent(
            self.runtime.db, "DeleteSecurityGroupRule", request, pb.SecurityGroup, remove
        )
        self.changed()
        return result
