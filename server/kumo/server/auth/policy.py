"""The policy table: who may call each method.

Every RPC of every Kumo service has exactly one rule here; the server refuses
to start if one is missing (fail closed). A rule is checked against the role
the caller's token holds on its own project; services then check that the
resource touched belongs to that project (or that the caller is a cloud
administrator) and answer NOT_FOUND otherwise, so that other tenants'
resources cannot even be probed.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from kumo.server.auth.principal import ADMIN, MEMBER, READER, Principal
from kumo.server.errors import PermissionDenied, Unauthenticated


class Rule(enum.Enum):
    """What a caller needs."""

    PUBLIC = "public"  # no token
    AUTHENTICATED = "authenticated"  # any valid token; the service narrows to self
    READER = "reader"  # READER or more on the token's project
    MEMBER = "member"  # MEMBER or more
    ADMIN = "admin"  # ADMIN on the token's project
    CLOUD_ADMIN = "cloud_admin"  # ADMIN on the bootstrap project


_ROLE_NEEDED = {Rule.READER: READER, Rule.MEMBER: MEMBER, Rule.ADMIN: ADMIN}

_IDENTITY = "/kumo.identity.v1.IdentityService/"
_TOPOLOGY = "/kumo.topology.v1.TopologyService/"
_OPERATIONS = "/google.longrunning.Operations/"
_IMAGE = "/kumo.image.v1.ImageService/"
_COMPUTE = "/kumo.compute.v1.ComputeService/"
_AGENT = "/kumo.agent.v1.AgentService/"
_NETWORK = "/kumo.network.v1.NetworkService/"
_STORAGE = "/kumo.storage.v1.StorageService/"

POLICY: dict[str, Rule] = {
    _IDENTITY + "IssueToken": Rule.PUBLIC,
    _IDENTITY + "AuthenticateSignature": Rule.PUBLIC,
    _IDENTITY + "ValidateToken": Rule.AUTHENTICATED,
    _IDENTITY + "RevokeToken": Rule.AUTHENTICATED,
    _IDENTITY + "CreateProject": Rule.CLOUD_ADMIN,
    _IDENTITY + "GetProject": Rule.READER,
    _IDENTITY + "ListProjects": Rule.AUTHENTICATED,
    _IDENTITY + "UpdateProject": Rule.ADMIN,
    _IDENTITY + "DeleteProject": Rule.CLOUD_ADMIN,
    _IDENTITY + "CreateUser": Rule.CLOUD_ADMIN,
    _IDENTITY + "GetUser": Rule.AUTHENTICATED,
    _IDENTITY + "ListUsers": Rule.CLOUD_ADMIN,
    _IDENTITY + "UpdateUser": Rule.AUTHENTICATED,
    _IDENTITY + "DeleteUser": Rule.CLOUD_ADMIN,
    _IDENTITY + "CreateRoleAssignment": Rule.ADMIN,
    _IDENTITY + "GetRoleAssignment": Rule.READER,
    _IDENTITY + "ListRoleAssignments": Rule.READER,
    _IDENTITY + "DeleteRoleAssignment": Rule.ADMIN,
    _IDENTITY + "CreateAccessKey": Rule.MEMBER,
    _IDENTITY + "GetAccessKey": Rule.READER,
    _IDENTITY + "ListAccessKeys": Rule.READER,
    _IDENTITY + "DeleteAccessKey": Rule.MEMBER,
    _IDENTITY + "GetQuota": Rule.READER,
    _IDENTITY + "UpdateQuota": Rule.CLOUD_ADMIN,
    _OPERATIONS + "GetOperation": Rule.READER,
    _OPERATIONS + "ListOperations": Rule.READER,
    _OPERATIONS + "WaitOperation": Rule.READER,
    _OPERATIONS + "CancelOperation": Rule.MEMBER,
    _OPERATIONS + "DeleteOperation": Rule.MEMBER,
    _IMAGE + "CreateImage": Rule.MEMBER,
    _IMAGE + "UploadImageData": Rule.MEMBER,
    _IMAGE + "DownloadImageData": Rule.READER,
    _IMAGE + "GetImage": Rule.READER,
    _IMAGE + "ListImages": Rule.READER,
    _IMAGE + "UpdateImage": Rule.MEMBER,
    _IMAGE + "DeleteImage": Rule.MEMBER,
    _IMAGE + "CreateImageMember": Rule.MEMBER,
    _IMAGE + "ListImageMembers": Rule.READER,
    _IMAGE + "UpdateImageMember": Rule.MEMBER,
    _IMAGE + "DeleteImageMember": Rule.MEMBER,
    # Provider (VLAN, FLAT) and external networks: cloud administrators only, checked by
    # CreateNetwork on the fields (a member gets PERMISSION_DENIED).
    _NETWORK + "CreateNetwork": Rule.MEMBER,
    _NETWORK + "GetNetwork": Rule.READER,
    _NETWORK + "ListNetworks": Rule.READER,
    _NETWORK + "UpdateNetwork": Rule.MEMBER,
    _NETWORK + "DeleteNetwork": Rule.MEMBER,
    _NETWORK + "CreateSubnet": Rule.MEMBER,
    _NETWORK + "GetSubnet": Rule.READER,
    _NETWORK + "ListSubnets": Rule.READER,
    _NETWORK + "UpdateSubnet": Rule.MEMBER,
    _NETWORK + "DeleteSubnet": Rule.MEMBER,
    _NETWORK + "CreatePort": Rule.MEMBER,
    _NETWORK + "GetPort": Rule.READER,
    _NETWORK + "ListPorts": Rule.READER,
    _NETWORK + "UpdatePort": Rule.MEMBER,
    _NETWORK + "DeletePort": Rule.MEMBER,
    _NETWORK + "CreateRouter": Rule.MEMBER,
    _NETWORK + "GetRouter": Rule.READER,
    _NETWORK + "ListRouters": Rule.READER,
    _NETWORK + "UpdateRouter": Rule.MEMBER,
    _NETWORK + "DeleteRouter": Rule.MEMBER,
    _NETWORK + "CreateFloatingIp": Rule.MEMBER,
    _NETWORK + "GetFloatingIp": Rule.READER,
    _NETWORK + "ListFloatingIps": Rule.READER,
    _NETWORK + "UpdateFloatingIp": Rule.MEMBER,
    _NETWORK + "DeleteFloatingIp": Rule.MEMBER,
    _NETWORK + "CreateSecurityGroup": Rule.MEMBER,
    _NETWORK + "GetSecurityGroup": Rule.READER,
    _NETWORK + "ListSecurityGroups": Rule.READER,
    _NETWORK + "UpdateSecurityGroup": Rule.MEMBER,
    _NETWORK + "DeleteSecurityGroup": Rule.MEMBER,
    _NETWORK + "AddRouterInterface": Rule.MEMBER,
    _NETWORK + "RemoveRouterInterface": Rule.MEMBER,
    _NETWORK + "CreateSecurityGroupRule": Rule.MEMBER,
    _NETWORK + "DeleteSecurityGroupRule": Rule.MEMBER,
    "/grpc.health.v1.Health/Check": Rule.PUBLIC,
    "/grpc.health.v1.Health/Watch": Rule.PUBLIC,
    "/grpc.health.v1.Health/List": Rule.PUBLIC,
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": Rule.PUBLIC,
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": Rule.PUBLIC,
}
for _kind in ("Region", "Zone", "Pool", "Rack", "Host"):
    POLICY[f"{_TOPOLOGY}Get{_kind}"] = Rule.AUTHENTICATED
    POLICY[f"{_TOPOLOGY}List{_kind}s"] = Rule.AUTHENTICATED
    for _verb in ("Create", "Update", "Delete"):
        POLICY[f"{_TOPOLOGY}{_verb}{_kind}"] = Rule.CLOUD_ADMIN
POLICY[_TOPOLOGY + "EnableHost"] = Rule.CLOUD_ADMIN
POLICY[_TOPOLOGY + "EnterHostMaintenance"] = Rule.CLOUD_ADMIN
POLICY[_TOPOLOGY + "ExitHostMaintenance"] = Rule.CLOUD_ADMIN
POLICY[_COMPUTE + "GetFlavor"] = Rule.AUTHENTICATED
POLICY[_COMPUTE + "ListFlavors"] = Rule.AUTHENTICATED
for _verb in ("Create", "Update", "Delete"):
    POLICY[f"{_COMPUTE}{_verb}Flavor"] = Rule.CLOUD_ADMIN
for _kind in ("KeyPair", "ServerGroup", "Instance"):
    POLICY[f"{_COMPUTE}Get{_kind}"] = Rule.READER
    POLICY[f"{_COMPUTE}List{_kind}s"] = Rule.READER
    for _verb in ("Create", "Update", "Delete"):
        POLICY[f"{_COMPUTE}{_verb}{_kind}"] = Rule.MEMBER
for _action in (
    "Start",
    "Stop",
    "Reboot",
    "Suspend",
    "Resume",
    "Resize",
    "ConfirmResize",
    "RevertResize",
    "Rebuild",
    "Snapshot",
):
    POLICY[f"{_COMPUTE}{_action}Instance"] = Rule.MEMBER
POLICY[_COMPUTE + "AttachNetworkInterface"] = Rule.MEMBER
POLICY[_COMPUTE + "DetachNetworkInterface"] = Rule.MEMBER
POLICY[_COMPUTE + "GetSerialPortOutput"] = Rule.READER
# Moving guests between hosts is the operators' business (as Nova's default policies).
POLICY[_COMPUTE + "MigrateInstance"] = Rule.CLOUD_ADMIN
POLICY[_COMPUTE + "EvacuateInstance"] = Rule.CLOUD_ADMIN
# Host agents sign in with cloud-administrator credentials.
for _method in (
    "RegisterHost",
    "Heartbeat",
    "WatchAssignments",
    "ReportInstanceStatus",
    "AppendSerialPortOutput",
    "ReportMigrationStatus",
):
    POLICY[_AGENT + _method] = Rule.CLOUD_ADMIN
POLICY[_TOPOLOGY + "DisableHost"] = Rule.CLOUD_ADMIN

POLICY[_STORAGE + "GetVolumeType"] = Rule.AUTHENTICATED
POLICY[_STORAGE + "ListVolumeTypes"] = Rule.AUTHENTICATED
for _verb in ("Create", "Update", "Delete"):
    POLICY[f"{_STORAGE}{_verb}VolumeType"] = Rule.CLOUD_ADMIN
for _kind in ("Volume", "Snapshot", "Backup", "VolumeTransfer"):
    POLICY[f"{_STORAGE}Get{_kind}"] = Rule.READER
    POLICY[f"{_STORAGE}List{_kind}s"] = Rule.READER
    for _verb in ("Create", "Update", "Delete"):
        POLICY[f"{_STORAGE}{_verb}{_kind}"] = Rule.MEMBER
for _action in ("Extend", "Retype", "Attach", "Detach"):
    POLICY[f"{_STORAGE}{_action}Volume"] = Rule.MEMBER
POLICY[_STORAGE + "AcceptVolumeTransfer"] = Rule.MEMBER
POLICY[_STORAGE + "UpdateAttachment"] = Rule.MEMBER


def missing_rules(methods: Iterable[str]) -> list[str]:
    """Methods among `methods` that have no rule."""
    return sorted(m for m in methods if m not in POLICY)


def authorize(rule: Rule, principal: Principal | None) -> None:
    """Raises Unauthenticated or PermissionDenied unless `principal` satisfies `rule`."""
    if rule is Rule.PUBLIC:
        return
    if principal is None:
        raise Unauthenticated("this call needs a token: send 'authorization: Bearer <token>'")
    if principal.cloud_admin or rule is Rule.AUTHENTICATED:
        return
    if rule is Rule.CLOUD_ADMIN:
        raise PermissionDenied("only cloud administrators may do this")
    if principal.role < _ROLE_NEEDED[rule]:
        raise PermissionDenied(f"this needs the {rule.value} role on the project")
