"""EC2 ids of network and storage resources, and IpPermissions ↔ Kumo rules."""

from __future__ import annotations

import pytest

from kumo.gateway.aws import ids
from kumo.gateway.aws.errors import Ec2Error
from kumo.gateway.aws.operations.common import tag_map, tags_of
from kumo.gateway.aws.operations.permissions import key_of, permissions_of, rules_of
from kumo.network.v1 import resources_pb2 as npb

Rule = npb.SecurityGroupRule
IN, OUT = Rule.DIRECTION_INGRESS, Rule.DIRECTION_EGRESS


def test_ids_round_trip() -> None:
    made = ids.made_id("vpc")
    assert made.startswith("vpc-0") and len(made) == 21
    assert ids.ec2_id("vpc", made) == made and ids.kumo_id("vpc", made) == made
    assert ids.ec2_id("vpc", "main") == "vpc-main" and ids.kumo_id("vpc", "vpc-main") == "main"
    assert ids.kumo_id("vpc", "vpc-") is None and ids.kumo_id("vol", "vpc-x") is None
    assert ids.made_id("vol", "p/token") == ids.made_id("vol", "p/token")
    assert ids.made_id("vol", "p/token") != ids.made_id("vol", "q/token")
    assert ids.instance_ec2_id("web-1") == "i-web-1"
    assert ids.association_id("u", "p1") != ids.association_id("u", "p2")


def test_permissions_become_rules_and_back() -> None:
    permission = {
        "IpProtocol": "tcp",
        "FromPort": 22,
        "ToPort": 22,
        "IpRanges": [{"CidrIp": "10.0.0.0/8"}, {"CidrIp": "0.0.0.0/0"}],
        "UserIdGroupPairs": [{"GroupId": "sg-web"}],
    }
    rules = rules_of(permission, IN, "p")
    assert [(r.remote_cidr, r.remote_group) for r in rules] == [
        ("10.0.0.0/8", ""),
        ("", ""),
        ("", "projects/p/securityGroups/web"),
    ]
    assert all((r.protocol, r.port_range_min, r.port_range_max) == ("tcp", 22, 22) for r in rules)
    back = permissions_of(rules, IN, "p")
    assert back == [
        {
            "IpProtocol": "tcp",
            "FromPort": 22,
            "ToPort": 22,
            "IpRanges": [{"CidrIp": "10.0.0.0/8"}, {"CidrIp": "0.0.0.0/0"}],
            "Ipv6Ranges": [],
            "UserIdGroupPairs": [{"GroupId": "sg-web", "UserId": "p"}],
        }
    ]
    assert permissions_of(rules, OUT, "p") == []
    anywhere = {"IpRanges": [{"CidrIp": "1.2.3.4/32"}]}
    every = rules_of({"IpProtocol": "6", "FromPort": 0, "ToPort": 65535, **anywhere}, IN, "p")
    assert (every[0].port_range_min, every[0].port_range_max) == (0, 0)
    assert permissions_of(every, IN, "p")[0]["ToPort"] == 65535
    icmp6 = rules_of({"IpProtocol": "icmpv6", "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}, OUT, "p")
    assert (icmp6[0].protocol, icmp6[0].ip_version) == ("icmp", 6)
    assert permissions_of(icmp6, OUT, "p")[0]["IpProtocol"] == "icmpv6"
    assert key_of(Rule(direction=IN, remote_cidr="0.0.0.0/0")) == key_of(Rule(direction=IN))


@pytest.mark.parametrize(
    "permission",
    [
        {"IpProtocol": "gre", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "tcp", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "udp", "FromPort": 5, "ToPort": 1, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "icmp", "FromPort": 8, "ToPort": 0, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "::/0"}]},
        {"IpProtocol": "-1", "Ipv6Ranges": [{"CidrIpv6": "10.0.0.0/8"}]},
        {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": "vpc-1"}]},
        {"IpProtocol": "-1"},
        {"IpProtocol": "-1", "PrefixListIds": [{"PrefixListId": "pl-1"}]},
    ],
)
def test_bad_permissions(permission: dict[str, object]) -> None:
    with pytest.raises(Ec2Error):
        rules_of(permission, IN, "p")


def test_reserved_labels_are_not_tags() -> None:
    assert tags_of({"kumo:cidr-block": "10.0.0.0/16", "a": "b"}) == [{"Key": "a", "Value": "b"}]
    for key in ("aws:name", "kumo:cidr-block", "k" * 64):
        with pytest.raises(Ec2Error) as info:
            tag_map([{"Key": key, "Value": ""}], "Tag")
        assert info.value.code == "InvalidParameterValue"
    with pytest.raises(Ec2Error) as info:
        tag_map([{"Key": f"k{i}"} for i in range(51)], "Tag")
    assert info.value.code == "TagLimitExceeded"
