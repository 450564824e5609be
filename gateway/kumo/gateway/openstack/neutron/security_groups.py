"""Neutron security groups and security group rules over Kumo's security groups (rules
are embedded in their group; a rule's Neutron id is derived from its group's uid)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from kumo.gateway.dialect import integer, invalid
from kumo.gateway.openstack.common import not_found, with_uid
from kumo.gateway.openstack.neutron import views
from kumo.gateway.openstack.neutron.base import NeutronBase, mask, new_id
from kumo.gateway.openstack.neutron.index import Index, rule_id
from kumo.network.v1 import network_service_pb2 as api
from kumo.network.v1 import resources_pb2 as pb

_PROTOCOLS = {"6": "tcp", "17": "udp", "1": "icmp", "any": "", "": ""}
_DIRECTIONS = {
    "ingress": pb.SecurityGroupRule.DIRECTION_INGRESS,
    "egress": pb.SecurityGroupRule.DIRECTION_EGRESS,
}


async def _rule(index: Index, body: dict[str, Any]) -> pb.SecurityGroupRule:
    direction = _DIRECTIONS.get(str(body.get("direction") or ""))
    if direction is None:
        raise invalid("direction must be ingress or egress")
    protocol = str(body.get("protocol") or "").lower()
    rule = pb.SecurityGroupRule(
        direction=direction,
        ip_version=6 if str(body.get("ethertype") or "IPv4") == "IPv6" else 4,
        protocol=_PROTOCOLS.get(protocol, protocol),
        port_range_min=integer(body.get("port_range_min"), "port_range_min"),
        port_range_max=integer(body.get("port_range_max"), "port_range_max"),
        remote_cidr=str(body.get("remote_ip_prefix") or ""),
    )
    if remote := body.get("remote_group_id"):
        rule.remote_group = with_uid(
            await index.security_groups(), str(remote), "Security group"
        ).name
    return rule


class SecurityGroups(NeutronBase):
    """`/v2.0/security-groups` and `/v2.0/security-group-rules`."""

    async def _views(self, index: Index) -> list[dict[str, Any]]:
        uids = await index.uids("security_groups")
        return [views.security_group(g, uids) for g in await index.security_groups()]

    async def list_groups(self, request: Request) -> Response:
        """GET /security-groups."""
        _, index = await self.begin(request)
        return self.listing(request, "security_groups", await self._views(index))

    async def show(self, request: Request) -> Response:
        """GET /security-groups/{id}."""
        _, index = await self.begin(request)
        groups = await index.security_groups()
        found = with_uid(groups, request.path_params["id"], "Security group")
        uids = await index.uids("security_groups")
        return self.one(request, "security_group", views.security_group(found, uids))

    async def create(self, request: Request) -> Response:
        """POST /security-groups: 201 (with Kumo's default egress rules)."""
        scope, index = await self.begin(request)
        body = await self.body_of(request, "security_group")
        created = await self.call(
            self.network.CreateSecurityGroup,
            api.CreateSecurityGroupRequest(
                parent=self.parent_of(scope, body),
                security_group_id=new_id("sg"),
                security_group=pb.SecurityGroup(
                    display_name=str(body.get("name") or ""),
                    description=str(body.get("description") or ""),
                ),
            ),
            scope,
        )
        uids = {**await index.uids("security_groups"), created.name: created.uid}
        return self.one(request, "security_group", views.security_group(created, uids), 201)

    async def update(self, request: Request) -> Response:
        """PUT /security-groups/{id}: name, description."""
        scope, index = await self.begin(request)
        body = await self.body_of(request, "security_group")
        groups = await index.security_groups()
        found = with_uid(groups, request.path_params["id"], "Security group")
        change = pb.SecurityGroup(name=found.name)
        paths = []
        for key, path in (("name", "display_name"), ("description", "description")):
            if key in body:
                setattr(change, path, str(body[key] or ""))
                paths.append(path)
        updated = found
        if paths:
            updated = await self.call(
                self.network.UpdateSecurityGroup,
                api.UpdateSecurityGroupRequest(security_group=change, update_mask=mask(*paths)),
                scope,
            )
        uids = await index.uids("security_groups")
        return self.one(request, "security_group", views.security_group(updated, uids))

    async def delete(self, request: Request) -> Response:
        """DELETE /security-groups/{id}: 204."""
        scope, index = await self.begin(request)
        groups = await index.security_groups()
        found = with_uid(groups, request.path_params["id"], "Security group")
        await self.call(
            self.network.DeleteSecurityGroup,
            api.DeleteSecurityGroupRequest(name=found.name),
            scope,
        )
        return self.gone()

    # --- rules ---------------------------------------------------------------------

    async def _rules(self, index: Index) -> list[tuple[pb.SecurityGroup, dict[str, Any]]]:
        uids = await index.uids("security_groups")
        return [
            (group, views.rule(group, rule, uids))
            for group in await index.security_groups()
            for rule in group.rules
        ]

    async def _find_rule(
        self, request: Request, index: Index
    ) -> tuple[pb.SecurityGroup, dict[str, Any]]:
        wanted = request.path_params["id"]
        for group, rendered in await self._rules(index):
            if rendered["id"] == wanted:
                return group, rendered
        raise not_found("Security group rule", wanted)

    async def list_rules(self, request: Request) -> Response:
        """GET /security-group-rules."""
        _, index = await self.begin(request)
        items = [rendered for _, rendered in await self._rules(index)]
        return self.listing(request, "security_group_rules", items)

    async def show_rule(self, request: Request) -> Response:
        """GET /security-group-rules/{id}."""
        _, index = await self.begin(request)
        _, rendered = await self._find_rule(request, index)
        return self.one(request, "security_group_rule", rendered)

    async def create_rule(self, request: Request) -> Response:
        """POST /security-group-rules: 201."""
        scope, index = await self.begin(request)
        body = await self.body_of(request, "security_group_rule")
        groups = await index.security_groups()
        group = with_uid(groups, str(body.get("security_group_id") or ""), "Security group")
        before = {r.id for r in group.rules}
        after = await self.call(
            self.network.CreateSecurityGroupRule,
            api.CreateSecurityGroupRuleRequest(
                security_group=group.name, rule=await _rule(index, body)
            ),
            scope,
        )
        added = [r for r in after.rules if r.id not in before]
        if not added:
            raise not_found("Security group rule", "just created")
        uids = await index.uids("security_groups")
        return self.one(request, "security_group_rule", views.rule(after, added[0], uids), 201)

    async def delete_rule(self, request: Request) -> Response:
        """DELETE /security-group-rules/{id}: 204."""
        scope, index = await self.begin(request)
        group, rendered = await self._find_rule(request, index)
        kumo_id = next(r.id for r in group.rules if rule_id(group, r) == rendered["id"])
        await self.call(
            self.network.DeleteSecurityGroupRule,
            api.DeleteSecurityGroupRuleRequest(security_group=group.name, rule_id=kumo_id),
            scope,
        )
        return self.gone()
