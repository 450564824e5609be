"""EC2 IpPermissions ↔ Kumo security group rules.

One IpPermission (protocol, ports, and a list of IPv4 ranges, IPv6 ranges and group
pairs) is one Kumo rule per range or group. Protocols: `tcp`/`6`, `udp`/`17`,
`icmp`/`1`, `icmpv6`/`58` (Kumo's icmp on an IPv6 range), `-1` (any). tcp/udp
FromPort-ToPort 0-65535 is any port; ICMP rules match every type and code in Kumo, so
FromPort/ToPort must be -1. Going back, rules with the same direction, protocol and
ports are grouped into one IpPermission; a rule without a remote is 0.0.0.0/0 (or ::/0).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from kumo.gateway.aws import ids
from kumo.gateway.aws.errors import Ec2Error, invalid
from kumo.network.v1 import resources_pb2 as npb

Rule = npb.SecurityGroupRule
RuleKey = tuple[int, int, str, int, int, str, str]
_PROTOCOLS = {
    "tcp": "tcp",
    "6": "tcp",
    "udp": "udp",
    "17": "udp",
    "icmp": "icmp",
    "1": "icmp",
    "icmpv6": "icmp",
    "58": "icmp",
    "-1": "",
    "all": "",
}
_EC2_PROTOCOL = {"tcp": "tcp", "udp": "udp", "icmp": "icmp", "": "-1"}
ANYWHERE = {4: "0.0.0.0/0", 6: "::/0"}


def _ports(permission: dict[str, Any], protocol: str) -> tuple[int, int]:
    low, high = permission.get("FromPort"), permission.get("ToPort")
    if protocol in ("tcp", "udp"):
        if low is None or high is None or not 0 <= low <= high <= 65535:
            raise invalid("FromPort", low, "tcp and udp need 0 <= FromPort <= ToPort <= 65535.")
        return (0, 0) if (low, high) in ((0, 65535), (0, 0)) else (max(low, 1), high)
    if protocol == "icmp" and (low, high) not in ((None, None), (-1, -1)):
        raise invalid("FromPort", low, "Kumo's ICMP rules match every type and code: use -1.")
    return 0, 0


def rules_of(permission: dict[str, Any], direction: int, project: str) -> list[Rule]:
    """The Kumo rules of one IpPermission. Raises InvalidParameterValue."""
    given = str(permission.get("IpProtocol", "")).lower()
    if given not in _PROTOCOLS:
        raise invalid("IpProtocol", given, "Kumo supports tcp, udp, icmp, icmpv6 and -1.")
    protocol = _PROTOCOLS[given]
    low, high = _ports(permission, protocol)
    if permission.get("PrefixListIds"):
        raise Ec2Error("InvalidParameterValue", "Prefix lists are not supported by Kumo.")
    rules: list[Rule] = []

    def add(version: int, **remote: str) -> None:
        rules.append(
            Rule(
                direction=direction,  # type: ignore[arg-type]
                ip_version=version,
                protocol=protocol,
                port_range_min=low,
                port_range_max=high,
                **remote,
            )
        )

    for item in permission.get("IpRanges") or []:
        add(4, remote_cidr=_cidr(item.get("CidrIp", ""), 4, "CidrIp"))
    for item in permission.get("Ipv6Ranges") or []:
        add(6, remote_cidr=_cidr(item.get("CidrIpv6", ""), 6, "CidrIpv6"))
    for pair in permission.get("UserIdGroupPairs") or []:
        group = pair.get("GroupId")
        if not group:
            raise Ec2Error("MissingParameter", "A group pair must name its GroupId.")
        kumo = ids.kumo_id("sg", group)
        if kumo is None:
            raise Ec2Error("InvalidGroupId.Malformed", f'Invalid id: "{group}"')
        add(4, remote_group=f"projects/{project}/securityGroups/{kumo}")
    if not rules:
        raise Ec2Error("MissingParameter", "An IpPermission needs IpRanges, Ipv6Ranges or groups.")
    return rules


def _cidr(text: str, version: int, parameter: str) -> str:
    try:
        block = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise invalid(parameter, text, "Not a CIDR block.") from None
    if block.version != version:
        raise invalid(parameter, text, f"Not an IPv{version} CIDR block.")
    return "" if block.prefixlen == 0 else str(block)


def key_of(rule: Rule) -> RuleKey:
    """What makes two rules the same (ids aside)."""
    low = rule.port_range_min
    return (
        int(rule.direction),
        rule.ip_version or 4,
        rule.protocol,
        low,
        rule.port_range_max or low,
        "" if rule.remote_cidr in ANYWHERE.values() else rule.remote_cidr,
        rule.remote_group.rsplit("/", 1)[-1],
    )


def permissions_of(rules: list[Rule], direction: int, project: str) -> list[dict[str, Any]]:
    """The IpPermissions of a group's rules in one direction."""
    grouped: dict[tuple[str, int, int], dict[str, Any]] = {}
    for rule in rules:
        if rule.direction != direction:
            continue
        low = rule.port_range_min
        high = rule.port_range_max or low
        version = rule.ip_version or 4
        protocol = _EC2_PROTOCOL.get(rule.protocol, rule.protocol)
        if protocol == "icmp" and version == 6:
            protocol = "icmpv6"
        permission = grouped.setdefault(
            (protocol, low, high),
            {"IpProtocol": protocol, "IpRanges": [], "Ipv6Ranges": [], "UserIdGroupPairs": []},
        )
        if rule.protocol in ("tcp", "udp"):
            permission["FromPort"], permission["ToPort"] = (low, high) if low else (0, 65535)
        elif rule.protocol:
            permission["FromPort"] = permission["ToPort"] = -1
        if rule.remote_group:
            permission["UserIdGroupPairs"].append(
                {
                    "GroupId": ids.ec2_id("sg", rule.remote_group.rsplit("/", 1)[-1]),
                    "UserId": project,
                }
            )
        elif version == 6:
            permission["Ipv6Ranges"].append({"CidrIpv6": rule.remote_cidr or ANYWHERE[6]})
        else:
            permission["IpRanges"].append({"CidrIp": rule.remote_cidr or ANYWHERE[4]})
    return list(grouped.values())
