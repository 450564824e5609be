"""Create/Describe/DeleteSecurityGroup, Authorize/RevokeSecurityGroupIngress/Egress over
Kumo security groups (rules as `permissions.py` maps them).

GroupName is the Kumo group's display name (unique per project, as EC2 wants it per
VPC; at most 63 characters); GroupId its id as `ids` says (the project's `default`
group is `sg-default`). Kumo groups belong to the project, not to a network: the VpcId
given at creation is checked and kept in the reserved label `kumo:vpc-id`. A new group
allows all IPv4 egress, as EC2's do. Authorizing a rule the group has is
InvalidPermission.Duplicate; revoking one it lacks is InvalidPermission.NotFound. Each
call replaces the rule list in one UpdateSecurityGroup with the etag read (read and
written again while the group changes in between: etag_retry).
"""

from __future__ import annotations

from typing import Any

from kumo.gateway.aws import ids
from kumo.gateway.aws.backend import Backend, Caller, invoke, rewrite
from kumo.gateway.aws.errors import Ec2Error, invalid
from kumo.gateway.aws.operations.common import (
    Params,
    described,
    kumo_id_of,
    list_all,
    spec_tags,
    tags_of,
)
from kumo.gateway.aws.operations.permissions import key_of, permissions_of, rules_of
from kumo.gateway.aws.operations.vpcs import get_network
from kumo.network.v1 import network_service_pb2 as napi
from kumo.network.v1 import resources_pb2 as npb

VPC_LABEL = "kumo:vpc-id"
MAX_NAME = 63
INGRESS = npb.SecurityGroupRule.DIRECTION_INGRESS
EGRESS = npb.SecurityGroupRule.DIRECTION_EGRESS
FILTER_FIELDS = {
    "group-id": lambda g: [g["GroupId"]],
    "group-name": lambda g: [g["GroupName"]],
    "description": lambda g: [g["Description"]],
    "vpc-id": lambda g: [g.get("VpcId", "")],
    "owner-id": lambda g: [g["OwnerId"]],
}


def group_view(group: npb.SecurityGroup, project: str) -> dict[str, Any]:
    """The EC2 `SecurityGroup` of a Kumo security group."""
    kumo_id = group.name.rsplit("/", 1)[-1]
    view: dict[str, Any] = {
        "GroupId": ids.ec2_id("sg", kumo_id),
        "GroupName": group.display_name or kumo_id,
        "Description": group.description,
        "OwnerId": project,
        "IpPermissions": permissions_of(list(group.rules), INGRESS, project),
        "IpPermissionsEgress": permissions_of(list(group.rules), EGRESS, project),
        "Tags": tags_of(group.labels),
    }
    if VPC_LABEL in group.labels:
        view["VpcId"] = group.labels[VPC_LABEL]
    return view


async def groups(backend: Backend, caller: Caller) -> list[npb.SecurityGroup]:
    """The caller's security groups."""
    request = napi.ListSecurityGroupsRequest(parent=caller.project_name, page_size=1000)
    return await list_all(backend.network.ListSecurityGroups, request, "security_groups", caller)


async def find_group(backend: Backend, caller: Caller, params: Params) -> npb.SecurityGroup:
    """The group named by GroupId or else GroupName. Raises InvalidGroup.NotFound,
    InvalidGroupId.Malformed, MissingParameter."""
    if params.get("GroupId"):
        kumo_id = kumo_id_of("sg", params["GroupId"], "InvalidGroupId.Malformed")
        group: npb.SecurityGroup = await invoke(
            backend.network.GetSecurityGroup,
            napi.GetSecurityGroupRequest(name=f"{caller.project_name}/securityGroups/{kumo_id}"),
            caller,
        )
        return group
    name = params.get("GroupName")
    if not name:
        raise Ec2Error("MissingParameter", "The request must contain GroupId or GroupName")
    for group in await groups(backend, caller):
        if group_view(group, caller.project)["GroupName"] == name:
            return group
    raise Ec2Error("InvalidGroup.NotFound", f"The security group '{name}' does not exist")


async def create_security_group(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """CreateSecurityGroup (GroupName, Description, VpcId, TagSpecifications)."""
    name, description = params["GroupName"], params["Description"]
    if not name or len(name) > MAX_NAME or name.startswith("sg-"):
        raise invalid("GroupName", name, f"1 to {MAX_NAME} characters, not starting with sg-.")
    if len(description) > 255:
        raise invalid("GroupDescription", "...", "At most 255 characters.")
    labels = spec_tags(params, "security-group")
    if params.get("VpcId"):
        await get_network(backend, caller, params["VpcId"])
        labels[VPC_LABEL] = params["VpcId"]
    taken = [group_view(g, caller.project)["GroupName"] for g in await groups(backend, caller)]
    if name in taken:
        raise Ec2Error("InvalidGroup.Duplicate", f"The security group '{name}' already exists")
    group_id = ids.made_id("sg")
    await invoke(
        backend.network.CreateSecurityGroup,
        napi.CreateSecurityGroupRequest(
            parent=caller.project_name,
            security_group_id=group_id,
            security_group=npb.SecurityGroup(
                display_name=name,
                description=description,
                labels=labels,
                rules=[npb.SecurityGroupRule(direction=EGRESS, ip_version=4)],
            ),
        ),
        caller,
    )
    return {"GroupId": group_id}


async def describe_security_groups(
    backend: Backend, caller: Caller, params: Params
) -> dict[str, Any]:
    """DescribeSecurityGroups (GroupIds, GroupNames, Filters)."""
    views = [group_view(g, caller.project) for g in await groups(backend, caller)]
    views = described(views, params, "GroupIds", "GroupId", "InvalidGroup.NotFound", FILTER_FIELDS)
    views = described(
        views, params, "GroupNames", "GroupName", "InvalidGroup.NotFound", FILTER_FIELDS
    )
    return {"SecurityGroups": views}


async def delete_security_group(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """DeleteSecurityGroup: DependencyViolation while in use; `default` is CannotDelete."""
    if params.get("GroupId") == "sg-default" or (
        not params.get("GroupId") and params.get("GroupName") == "default"
    ):  # Kumo makes it on first use and never deletes it
        raise Ec2Error("CannotDelete", "The default security group cannot be deleted.")
    group = await find_group(backend, caller, params)
    await invoke(
        backend.network.DeleteSecurityGroup,
        napi.DeleteSecurityGroupRequest(name=group.name),
        caller,
        precondition="DependencyViolation",
    )
    return {"Return": True}


def _permissions(params: Params) -> list[dict[str, Any]]:
    """IpPermissions, or the old single-permission form (IpProtocol, ports, CidrIp)."""
    given = params.get("IpPermissions") or []
    if given:
        return list(given)
    if params.get("SourceSecurityGroupName") or params.get("SourceSecurityGroupOwnerId"):
        raise Ec2Error("InvalidParameterValue", "Use IpPermissions with UserIdGroupPairs.")
    if not params.get("IpProtocol"):
        raise Ec2Error("MissingParameter", "The request must contain IpPermissions")
    return [
        {
            "IpProtocol": params["IpProtocol"],
            "FromPort": params.get("FromPort"),
            "ToPort": params.get("ToPort"),
            "IpRanges": [{"CidrIp": params.get("CidrIp") or "0.0.0.0/0"}],
        }
    ]


async def _change(
    backend: Backend, caller: Caller, params: Params, direction: int, add: bool
) -> dict[str, Any]:
    wanted = [r for p in _permissions(params) for r in rules_of(p, direction, caller.project)]
    keys = {key_of(r) for r in wanted}

    async def attempt() -> None:
        group = await find_group(backend, caller, params)
        have = {key_of(r): r for r in group.rules}
        if add:
            if keys & have.keys():
                raise Ec2Error("InvalidPermission.Duplicate", "The specified rule already exists")
            rules = [*group.rules, *wanted]
        else:
            if keys - have.keys():
                raise Ec2Error(
                    "InvalidPermission.NotFound",
                    "The specified rule does not exist in this security group.",
                )
            rules = [r for r in group.rules if key_of(r) not in keys]
        # One update of the whole list with the etag read: all or nothing, done again
        # (with the rules read again) when the group changed in between.
        update = napi.UpdateSecurityGroupRequest(
            security_group=npb.SecurityGroup(name=group.name, etag=group.etag, rules=rules)
        )
        update.update_mask.paths.append("rules")
        await backend.network.UpdateSecurityGroup(update, metadata=caller.metadata)

    await rewrite(attempt)
    return {"Return": True}


async def authorize_ingress(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """AuthorizeSecurityGroupIngress."""
    return await _change(backend, caller, params, INGRESS, add=True)


async def authorize_egress(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """AuthorizeSecurityGroupEgress."""
    return await _change(backend, caller, params, EGRESS, add=True)


async def revoke_ingress(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """RevokeSecurityGroupIngress."""
    return await _change(backend, caller, params, INGRESS, add=False)


async def revoke_egress(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """RevokeSecurityGroupEgress."""
    return await _change(backend, caller, params, EGRESS, add=False)
