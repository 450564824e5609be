"""The EC2 dialect over the network and storage services, with the real clients (boto3,
the aws CLI) against a real API server, fake compute hosts and the gateway (the fixtures
of test_ec2.py).

What it proves: VPC / subnet / security group life cycles (CIDR checks, rules from CIDRs
and group pairs, duplicates, dependencies), Elastic IPs allocated on the external network
and associated with a port through a router, volumes (types, snapshots, volumes from
snapshots, attach to and detach from an instance), tags on every taggable resource, one
project's key never seeing another's resources, and bad input answered with EC2 codes.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import compute_service_pb2_grpc as crpc
from kumo.gateway.aws import ids
from kumo.network.v1 import network_service_pb2 as napi
from kumo.network.v1 import resources_pb2 as npb
from kumo.storage.v1 import resources_pb2 as spb
from tests.integration.test_ec2 import (  # noqa: F401  (module fixtures)
    _ami,
    _code,
    _in_zone,
    _next_second,
    gateway,
    site,
)
from tests.support.cloud import Stubs, Tenant, unique
from tests.support.ec2 import access_key, aws_cli, cli_json, ec2_client
from tests.support.network import make_external, net
from tests.support.storage import ensure_default_type, make_type
from tests.support.topology import Site

WAIT_SECONDS = 60


def _until(what: str, check: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"no {what} within {WAIT_SECONDS} s"
        time.sleep(0.3)


def _volume_state(ec2: Any, volume_id: str, state: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        volume: dict[str, Any] = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
        return volume if volume["State"] == state else None

    return dict(_until(f"{volume_id} {state}", check))


@pytest.fixture(scope="module")
def default_type(admin: Stubs) -> str:
    """The cloud's default volume type `local` (qcow2; `kumo up` makes it)."""
    return ensure_default_type(admin)


def test_vpc_subnet_security_group_life_cycle(
    gateway: str,  # noqa: F811
    site: tuple[Site, str],  # noqa: F811
    tenant: Tenant,
) -> None:
    ec2 = ec2_client(gateway, access_key(tenant))
    zone = site[0].zone
    vpc = ec2.create_vpc(
        CidrBlock="10.20.0.0/16",
        TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "main"}]}],
    )["Vpc"]
    vpc_id = vpc["VpcId"]
    assert vpc_id.startswith("vpc-0") and vpc["CidrBlock"] == "10.20.0.0/16"
    assert vpc["Tags"] == [{"Key": "Name", "Value": "main"}]  # the CIDR label is no tag
    described = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["main"]}])["Vpcs"]
    assert [v["VpcId"] for v in described] == [vpc_id]
    assert described[0]["CidrBlockAssociationSet"][0]["CidrBlock"] == "10.20.0.0/16"
    subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.20.1.0/24", AvailabilityZone=zone)[
        "Subnet"
    ]
    subnet_id = subnet["SubnetId"]
    assert subnet["VpcId"] == vpc_id and subnet["AvailabilityZone"] == zone
    assert subnet["CidrBlock"] == "10.20.1.0/24" and subnet["AvailableIpAddressCount"] == 253
    assert _code(lambda: ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.99.0.0/24")) == (
        "InvalidSubnet.Range"
    )
    assert _code(lambda: ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.20.1.128/25")) == (
        "InvalidSubnet.Conflict"
    )
    assert _code(
        lambda: ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.20.2.0/24", AvailabilityZone="nope")
    ) == ("InvalidParameterValue")
    found = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    assert [s["SubnetId"] for s in found] == [subnet_id]
    assert _code(lambda: ec2.delete_vpc(VpcId=vpc_id)) == "DependencyViolation"

    group_id = ec2.create_security_group(GroupName="web", Description="web tier", VpcId=vpc_id)[
        "GroupId"
    ]
    peer_id = ec2.create_security_group(GroupName="peers", Description="peers")["GroupId"]
    assert _code(lambda: ec2.create_security_group(GroupName="web", Description="again")) == (
        "InvalidGroup.Duplicate"
    )
    ssh = {
        "IpProtocol": "tcp",
        "FromPort": 22,
        "ToPort": 22,
        "IpRanges": [{"CidrIp": "10.0.0.0/8"}],
    }
    from_peers = {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": peer_id}]}
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[ssh, from_peers])
    assert _code(
        lambda: ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[ssh])
    ) == ("InvalidPermission.Duplicate")
    https = {
        "IpProtocol": "tcp",
        "FromPort": 443,
        "ToPort": 443,
        "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
    }
    ghost = {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": "sg-0000000000000000f"}]}
    assert _code(
        lambda: ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[https, ghost])
    ) == ("InvalidGroup.NotFound")  # and nothing of the call is kept:
    # Concurrent rule changes of one group all land (each rewrites the list it read again).
    egress = [{**https, "FromPort": port, "ToPort": port} for port in range(9000, 9006)]
    with ThreadPoolExecutor(6) as pool:
        list(
            pool.map(
                lambda p: ec2.authorize_security_group_egress(GroupId=group_id, IpPermissions=[p]),
                egress,
            )
        )
    group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    ports = {p.get("FromPort") for p in group["IpPermissionsEgress"]}
    assert ports >= set(range(9000, 9006))
    ec2.revoke_security_group_egress(GroupId=group_id, IpPermissions=egress)
    group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    assert group["GroupName"] == "web" and group["VpcId"] == vpc_id
    assert len(group["IpPermissions"]) == 2
    ingress = {p["IpProtocol"]: p for p in group["IpPermissions"]}
    assert ingress["tcp"]["FromPort"] == 22 and ingress["tcp"]["ToPort"] == 22
    assert ingress["tcp"]["IpRanges"] == [{"CidrIp": "10.0.0.0/8"}]
    assert [p["GroupId"] for p in ingress["-1"]["UserIdGroupPairs"]] == [peer_id]
    assert group["IpPermissionsEgress"][0]["IpRanges"] == [{"CidrIp": "0.0.0.0/0"}]
    by_name = ec2.describe_security_groups(GroupNames=["web"])["SecurityGroups"]
    assert [g["GroupId"] for g in by_name] == [group_id]
    assert _code(lambda: ec2.delete_security_group(GroupId=peer_id)) == "DependencyViolation"
    _next_second()
    ec2.revoke_security_group_ingress(GroupId=group_id, IpPermissions=[ssh, from_peers])
    assert _code(
        lambda: ec2.revoke_security_group_ingress(GroupId=group_id, IpPermissions=[ssh])
    ) == ("InvalidPermission.NotFound")
    ec2.revoke_security_group_egress(
        GroupId=group_id,
        IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    ec2.authorize_security_group_egress(
        GroupId=group_id,
        IpPermissions=[
            {
                "IpProtocol": "udp",
                "FromPort": 53,
                "ToPort": 53,
                "IpRanges": [{"CidrIp": "10.0.0.2/32"}],
            },
            {
                "IpProtocol": "icmpv6",
                "FromPort": -1,
                "ToPort": -1,
                "Ipv6Ranges": [{"CidrIpv6": "fd00::/8"}],
            },
        ],
    )
    egress = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    assert group_egress(egress) == {("udp", 53, 53, "10.0.0.2/32"), ("icmpv6", -1, -1, "fd00::/8")}
    assert egress["IpPermissions"] == []
    ec2.delete_security_group(GroupId=peer_id)
    ec2.delete_security_group(GroupName="web")
    assert _code(lambda: ec2.describe_security_groups(GroupIds=[group_id])) == (
        "InvalidGroup.NotFound"
    )
    assert _code(lambda: ec2.delete_security_group(GroupName="default")) == "CannotDelete"
    ec2.delete_subnet(SubnetId=subnet_id)
    ec2.delete_vpc(VpcId=vpc_id)
    assert _code(lambda: ec2.describe_vpcs(VpcIds=[vpc_id])) == "InvalidVpcID.NotFound"
    _next_second()  # the very DeleteSubnet again: not a replay
    assert _code(lambda: ec2.delete_subnet(SubnetId=subnet_id)) == "InvalidSubnetID.NotFound"


def group_egress(group: dict[str, Any]) -> set[tuple[str, int, int, str]]:
    """(protocol, from, to, cidr) of each egress range of a described group."""
    return {
        (
            p["IpProtocol"],
            p.get("FromPort", 0),
            p.get("ToPort", 0),
            r.get("CidrIp") or r["CidrIpv6"],
        )
        for p in group["IpPermissionsEgress"]
        for r in p["IpRanges"] + p["Ipv6Ranges"]
    }


def _routed_network(tenant: Tenant, vpc_id: str, subnet_id: str, external: str) -> str:
    """Routes the VPC's subnet to `external` (natively: EC2 has no routers here); returns
    the VPC's Kumo network."""
    stub = net(tenant.stubs["member"])
    network = f"{tenant.name}/networks/{ids.kumo_id('vpc', vpc_id)}"
    router = stub.CreateRouter(
        napi.CreateRouterRequest(
            parent=tenant.name,
            router_id=unique("rt"),
            router=npb.Router(external_gateway=npb.ExternalGateway(network=external)),
        )
    )
    stub.AddRouterInterface(
        napi.AddRouterInterfaceRequest(
            router=router.name, subnet=f"{network}/subnets/{ids.kumo_id('subnet', subnet_id)}"
        )
    )
    return network


def _port(tenant: Tenant, network: str) -> str:
    """A new port on `network`; its EC2 network interface id."""
    port_id = unique("port")
    net(tenant.stubs["member"]).CreatePort(
        napi.CreatePortRequest(parent=tenant.name, port_id=port_id, port=npb.Port(network=network))
    )
    return ids.ec2_id("eni", port_id)


def test_elastic_ips(
    gateway: str,  # noqa: F811
    site: tuple[Site, str],  # noqa: F811
    tenant: Tenant,
    admin: Stubs,
) -> None:
    make_external(admin, f"172.{20 + uuid.uuid4().int % 8}.{uuid.uuid4().int % 250}.0/24")
    ec2 = ec2_client(gateway, access_key(tenant))
    allocated = ec2.allocate_address(Domain="vpc")
    allocation_id, public_ip = allocated["AllocationId"], allocated["PublicIp"]
    assert allocation_id.startswith("eipalloc-0") and allocated["Domain"] == "vpc"
    member = net(tenant.stubs["member"])
    floating = member.GetFloatingIp(
        napi.GetFloatingIpRequest(name=f"{tenant.name}/floatingIps/{allocation_id}")
    )
    assert floating.ip_address == public_ip
    vpc_id = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.30.0.0/24")["Subnet"]["SubnetId"]
    network = _routed_network(tenant, vpc_id, subnet_id, floating.network)
    eni, other_eni = _port(tenant, network), _port(tenant, network)
    address = ec2.describe_addresses(AllocationIds=[allocation_id])["Addresses"][0]
    assert address["PublicIp"] == public_ip and "AssociationId" not in address
    assert _code(
        lambda: ec2.associate_address(AllocationId=allocation_id, InstanceId="i-0123456789abcdef0")
    ) == ("InvalidInstanceID.NotFound")
    association = ec2.associate_address(AllocationId=allocation_id, NetworkInterfaceId=eni)[
        "AssociationId"
    ]
    assert association.startswith("eipassoc-")
    address = ec2.describe_addresses(PublicIps=[public_ip])["Addresses"][0]
    assert address["AssociationId"] == association and address["NetworkInterfaceId"] == eni
    assert address["PrivateIpAddress"].startswith("10.30.0.")
    assert _code(lambda: ec2.release_address(AllocationId=allocation_id)) == (
        "InvalidIPAddress.InUse"
    )
    assert _code(
        lambda: ec2.associate_address(AllocationId=allocation_id, NetworkInterfaceId=other_eni)
    ) == ("Resource.AlreadyAssociated")
    moved = ec2.associate_address(
        AllocationId=allocation_id, NetworkInterfaceId=other_eni, AllowReassociation=True
    )["AssociationId"]
    assert moved != association
    assert _code(lambda: ec2.disassociate_address(AssociationId=association)) == (
        "InvalidAssociationID.NotFound"
    )
    ec2.disassociate_address(AssociationId=moved)
    assert "AssociationId" not in ec2.describe_addresses()["Addresses"][0]
    # An instance launched into the subnet gets a port there; the address follows it.
    group_id = ec2.create_security_group(GroupName="web", Description="w", VpcId=vpc_id)["GroupId"]
    run = ec2.run_instances(
        ImageId=_ami(tenant),
        InstanceType=site[1],
        MinCount=1,
        MaxCount=1,
        SubnetId=subnet_id,
        SecurityGroupIds=[group_id],
        **_in_zone(site),
    )
    instance_id = run["Instances"][0]["InstanceId"]
    on_instance = ec2.associate_address(AllocationId=allocation_id, InstanceId=instance_id)
    address = ec2.describe_addresses(AllocationIds=[allocation_id])["Addresses"][0]
    assert address["AssociationId"] == on_instance["AssociationId"]
    assert address["PrivateIpAddress"].startswith("10.30.0.")
    # DescribeInstances shows both addresses and filters on them.
    (described,) = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    shown = described["Instances"][0]
    assert (shown["PrivateIpAddress"], shown["PublicIpAddress"]) == (
        address["PrivateIpAddress"],
        public_ip,
    )
    for name, value in (
        ("ip-address", public_ip),
        ("private-ip-address", address["PrivateIpAddress"]),
    ):
        found = ec2.describe_instances(Filters=[{"Name": name, "Values": [value]}])
        assert [r["Instances"][0]["InstanceId"] for r in found["Reservations"]] == [instance_id]
    ec2.disassociate_address(AssociationId=on_instance["AssociationId"])
    shown = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    assert "PublicIpAddress" not in shown and shown["PrivateIpAddress"]
    ec2.terminate_instances(InstanceIds=[instance_id])
    assert _code(
        lambda: ec2.associate_address(
            AllocationId="eipalloc-0000000000000000f", NetworkInterfaceId=eni
        )
    ) == ("InvalidAllocationID.NotFound")
    _next_second()  # the very ReleaseAddress refused before: not a replay
    ec2.release_address(AllocationId=allocation_id)
    assert ec2.describe_addresses()["Addresses"] == []
    assert _code(lambda: ec2.release_address(PublicIp=public_ip)) == "InvalidAddress.NotFound"


def test_volumes_snapshots_attach_detach(
    gateway: str,  # noqa: F811
    site: tuple[Site, str],  # noqa: F811
    tenant: Tenant,
    admin: Stubs,
    default_type: str,
) -> None:
    ec2 = ec2_client(gateway, access_key(tenant))
    zone = site[0].zone
    fast = make_type(admin, spb.BACKEND_QCOW2, "local").removeprefix("volumeTypes/")
    volume = ec2.create_volume(
        AvailabilityZone=zone,
        Size=1,
        TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "app", "Value": "db"}]}],
    )
    volume_id = volume["VolumeId"]
    assert volume["State"] == "creating" and volume["Size"] == 1
    assert volume["VolumeType"] == default_type and volume["Tags"] == [
        {"Key": "app", "Value": "db"}
    ]
    _volume_state(ec2, volume_id, "available")
    typed = ec2.create_volume(AvailabilityZone=zone, Size=2, VolumeType=fast, ClientToken="t1")
    _next_second()  # the very request again: not a replay
    again = ec2.create_volume(AvailabilityZone=zone, Size=2, VolumeType=fast, ClientToken="t1")
    assert again["VolumeId"] == typed["VolumeId"] and typed["VolumeType"] == fast

    snapshot = ec2.create_snapshot(VolumeId=volume_id, Description="before")
    snapshot_id = snapshot["SnapshotId"]
    assert snapshot["VolumeId"] == volume_id and snapshot["VolumeSize"] == 1

    def completed() -> bool:
        found = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
        return bool(found[0]["State"] == "completed")

    _until("completed snapshot", completed)
    assert [s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]] == [
        snapshot_id
    ]
    restored = ec2.create_volume(AvailabilityZone=zone, SnapshotId=snapshot_id)
    assert restored["SnapshotId"] == snapshot_id and restored["Size"] == 1
    _volume_state(ec2, restored["VolumeId"], "available")

    run = ec2.run_instances(
        ImageId=_ami(tenant), InstanceType=site[1], MinCount=1, MaxCount=1, **_in_zone(site)
    )
    instance_id = run["Instances"][0]["InstanceId"]
    attached = ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device="/dev/vdb")
    assert attached["State"] == "attaching" and attached["Device"] == "/dev/vdb"
    in_use = _volume_state(ec2, volume_id, "in-use")
    assert [(a["InstanceId"], a["Device"]) for a in in_use["Attachments"]] == [
        (instance_id, "/dev/vdb")
    ]
    found = ec2.describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}]
    )["Volumes"]
    assert [v["VolumeId"] for v in found] == [volume_id]
    assert _code(lambda: ec2.delete_volume(VolumeId=volume_id)) == "VolumeInUse"
    _next_second()
    assert _code(
        lambda: ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device="/dev/vdb")
    ) == ("VolumeInUse")
    detached = ec2.detach_volume(VolumeId=volume_id)
    assert detached["State"] == "detaching" and detached["InstanceId"] == instance_id
    _volume_state(ec2, volume_id, "available")
    _next_second()
    assert _code(lambda: ec2.detach_volume(VolumeId=volume_id)) == "IncorrectState"

    ec2.delete_volume(VolumeId=restored["VolumeId"])
    ec2.delete_volume(VolumeId=typed["VolumeId"])

    def snapshot_deletable() -> bool:
        try:
            ec2.delete_snapshot(SnapshotId=snapshot_id)
        except Exception:  # the restored volume may still be going
            time.sleep(1.0)
            return False
        return True

    _until("snapshot deleted", snapshot_deletable)
    _until("volume deleted", lambda: _delete_volume(ec2, volume_id))
    _until("volumes gone", lambda: ec2.describe_volumes()["Volumes"] == [])
    assert _code(lambda: ec2.describe_volumes(VolumeIds=[volume_id])) == "InvalidVolume.NotFound"
    ec2.terminate_instances(InstanceIds=[instance_id])


def test_run_instances_with_a_root_ebs_volume(
    gateway: str,  # noqa: F811
    site: tuple[Site, str],  # noqa: F811
    tenant: Tenant,
    default_type: str,
) -> None:
    """A BlockDeviceMappings entry for the AMI's root device (/dev/vda) makes the instance
    boot from a new volume of that size made from the AMI, shown in the instance's
    BlockDeviceMappings and in DescribeVolumes (in-use, attached); entries for other
    devices are new volumes attached as it is made. Terminating the instance deletes each
    (DeleteOnTermination defaults to true) unless its DeleteOnTermination is false.
    Mappings Kumo cannot serve at launch are errors, not ignored."""
    ec2 = ec2_client(gateway, access_key(tenant))
    image = ec2.describe_images(ImageIds=[_ami(tenant)])["Images"][0]
    assert (image["RootDeviceName"], image["RootDeviceType"]) == ("/dev/vda", "ebs")
    launch = {"ImageId": image["ImageId"], "InstanceType": site[1], "MinCount": 1, "MaxCount": 1,
              **_in_zone(site)}  # fmt: skip
    root = {"DeviceName": "/dev/vda", "Ebs": {"VolumeSize": 2}}
    for mappings, code in (
        ([{"DeviceName": "/dev/sdf", "Ebs": {"DeleteOnTermination": True}}],
         "InvalidBlockDeviceMapping"),
        ([{"DeviceName": "/dev/sdf", "Ebs": {"SnapshotId": "snap-0123456789abcdef0"}}],
         "InvalidSnapshot.NotFound"),
        ([root, {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 1, "Encrypted": True}}],
         "Unsupported"),
        ([{"DeviceName": "/dev/vda", "VirtualName": "ephemeral0"}], "Unsupported"),
        ([{**root, "Ebs": {"VolumeSize": 2, "Encrypted": True}}], "Unsupported"),
        ([root, root], "InvalidBlockDeviceMapping"),
        ([{"DeviceName": "/dev/vda"}], "InvalidBlockDeviceMapping"),
        ([{"DeviceName": "/dev/vda", "Ebs": {"VolumeSize": 0}}], "InvalidParameterValue"),
        ([{"DeviceName": "/dev/vda", "Ebs": {"VolumeType": "no-such-type"}}],
         "InvalidParameterValue"),
    ):  # fmt: skip
        assert _code(lambda m=mappings: ec2.run_instances(BlockDeviceMappings=m, **launch)) == (
            code
        ), mappings
    assert ec2.describe_volumes()["Volumes"] == []

    data = [
        {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 1}},
        {"DeviceName": "/dev/sdg", "Ebs": {"VolumeSize": 3, "DeleteOnTermination": False}},
    ]
    made = ec2.run_instances(BlockDeviceMappings=[root, *data], **launch)["Instances"][0]
    _until("running", lambda: _state_of(ec2, made["InstanceId"]) == "running")
    shown = ec2.describe_instances(InstanceIds=[made["InstanceId"]])
    instance = shown["Reservations"][0]["Instances"][0]
    assert (instance["RootDeviceType"], instance["RootDeviceName"]) == ("ebs", "/dev/vda")
    mapping = instance["BlockDeviceMappings"][0]  # the root first (the others: below)
    volume_id = mapping["Ebs"]["VolumeId"]
    assert (mapping["DeviceName"], mapping["Ebs"]["DeleteOnTermination"]) == ("/dev/vda", True)
    volume = _volume_state(ec2, volume_id, "in-use")
    assert (volume["Size"], volume["VolumeType"]) == (2, default_type)
    assert [a["InstanceId"] for a in volume["Attachments"]] == [made["InstanceId"]]
    attached = {
        v["Size"]: (
            v["State"],
            [
                (a["InstanceId"], a["DeleteOnTermination"], a.get("Device"))
                for a in v["Attachments"]
            ],
        )
        for v in ec2.describe_volumes()["Volumes"]
    }
    assert attached == {
        2: ("in-use", [(made["InstanceId"], True, None)]),
        1: ("in-use", [(made["InstanceId"], True, "/dev/sdf")]),
        3: ("in-use", [(made["InstanceId"], False, "/dev/sdg")]),
    }
    shown = ec2.describe_instances(InstanceIds=[made["InstanceId"]])["Reservations"][0]
    mapped = {
        m["DeviceName"]: m["Ebs"]["DeleteOnTermination"]
        for m in shown["Instances"][0]["BlockDeviceMappings"]
    }
    assert mapped == {"/dev/vda": True, "/dev/sdf": True, "/dev/sdg": False}
    ec2.terminate_instances(InstanceIds=[made["InstanceId"]])
    _until("volumes deleted", lambda: len(ec2.describe_volumes()["Volumes"]) == 1)
    (left,) = ec2.describe_volumes()["Volumes"]
    assert (left["Size"], left["State"], left["Attachments"]) == (3, "available", [])
    ec2.delete_volume(VolumeId=left["VolumeId"])

    kept_root = {"DeviceName": "/dev/vda", "Ebs": {"DeleteOnTermination": False}}
    kept = ec2.run_instances(BlockDeviceMappings=[kept_root], **launch)["Instances"][0]
    _until("running", lambda: _state_of(ec2, kept["InstanceId"]) == "running")
    instance = ec2.describe_instances(InstanceIds=[kept["InstanceId"]])["Reservations"][0]
    ((mapping,),) = [instance["Instances"][0]["BlockDeviceMappings"]]
    assert mapping["Ebs"]["DeleteOnTermination"] is False
    ec2.terminate_instances(InstanceIds=[kept["InstanceId"]])
    volume = _volume_state(ec2, mapping["Ebs"]["VolumeId"], "available")
    assert volume["Size"] == 1  # no VolumeSize: the image's size
    ec2.delete_volume(VolumeId=volume["VolumeId"])


def _state_of(ec2: Any, instance_id: str) -> str:
    found = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return str(found[0]["Instances"][0]["State"]["Name"])


def _delete_volume(ec2: Any, volume_id: str) -> bool:
    try:
        ec2.delete_volume(VolumeId=volume_id)
    except Exception:  # still has a snapshot being deleted
        time.sleep(1.0)
        return False
    return True


def test_run_instances_with_security_group_names(
    gateway: str,  # noqa: F811
    site: tuple[Site, str],  # noqa: F811
    tenant: Tenant,
) -> None:
    """SecurityGroup.N names groups of the caller's project usable in the subnet's VPC (made
    for it or for no VPC), beside SecurityGroupId.N; a name unknown there is
    InvalidGroup.NotFound, and names without a subnet InvalidParameterCombination."""
    ec2 = ec2_client(gateway, access_key(tenant))
    vpc_id = ec2.create_vpc(CidrBlock="10.50.0.0/16")["Vpc"]["VpcId"]
    other_vpc = ec2.create_vpc(CidrBlock="10.51.0.0/16")["Vpc"]["VpcId"]
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.50.0.0/24")["Subnet"]["SubnetId"]
    web = ec2.create_security_group(GroupName="web", Description="w", VpcId=vpc_id)["GroupId"]
    free = ec2.create_security_group(GroupName="free", Description="f")["GroupId"]
    ec2.create_security_group(GroupName="elsewhere", Description="e", VpcId=other_vpc)
    ssh = ec2.create_security_group(GroupName="ssh", Description="s", VpcId=vpc_id)["GroupId"]
    launch = {
        "ImageId": _ami(tenant),
        "InstanceType": site[1],
        "MinCount": 1,
        "MaxCount": 1,
        "SubnetId": subnet_id,
        **_in_zone(site),
    }
    run = ec2.run_instances(SecurityGroups=["web", "free"], SecurityGroupIds=[ssh], **launch)
    instance_id = run["Instances"][0]["InstanceId"]
    compute = crpc.ComputeServiceStub(tenant.stubs["member"].channel)
    kumo_name = f"{tenant.name}/zones/{site[0].zone}/instances/{ids.instance_kumo_id(instance_id)}"
    instance = compute.GetInstance(capi.GetInstanceRequest(name=kumo_name))
    assert [g.rsplit("/", 1)[-1] for g in instance.network_interfaces[0].security_groups] == [
        ids.kumo_id("sg", group) for group in (ssh, web, free)
    ]
    # `default` before Kumo made it is Kumo's default group (made with the port); after, a name.
    groups_of = {}
    for names in (["default"], ["default", "web"]):
        made = ec2.run_instances(SecurityGroups=names, **launch)["Instances"][0]["InstanceId"]
        name = f"{kumo_name.rsplit('/', 1)[0]}/{ids.instance_kumo_id(made)}"
        got = compute.GetInstance(capi.GetInstanceRequest(name=name)).network_interfaces[0]
        groups_of[tuple(names)] = [g.rsplit("/", 1)[-1] for g in got.security_groups]
        ec2.terminate_instances(InstanceIds=[made])
    assert groups_of == {
        ("default",): ["default"],
        ("default", "web"): ["default", ids.kumo_id("sg", web)],
    }
    every_zone = capi.ListInstancesRequest(parent=f"{tenant.name}/zones/-")
    before = {i.name for i in compute.ListInstances(every_zone).instances}
    for names in (["nope"], ["web", "elsewhere"]):
        assert _code(lambda names=names: ec2.run_instances(SecurityGroups=names, **launch)) == (
            "InvalidGroup.NotFound"
        )
    no_subnet = {k: v for k, v in launch.items() if k != "SubnetId"}
    assert _code(lambda: ec2.run_instances(SecurityGroups=["web"], **no_subnet)) == (
        "InvalidParameterCombination"
    )
    after = {i.name for i in compute.ListInstances(every_zone).instances}
    assert after <= before  # the refusals made no instance
    ec2.terminate_instances(InstanceIds=[instance_id])


def test_tags_on_every_taggable_resource(
    gateway: str,  # noqa: F811
    site: tuple[Site, str],  # noqa: F811
    tenant: Tenant,
    admin: Stubs,
    default_type: str,
) -> None:
    make_external(admin, f"172.{28 + uuid.uuid4().int % 3}.{uuid.uuid4().int % 250}.0/24")
    ec2 = ec2_client(gateway, access_key(tenant))
    vpc_id = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.40.0.0/24")["Subnet"]["SubnetId"]
    group_id = ec2.create_security_group(GroupName="tagged", Description="t")["GroupId"]
    allocation_id = ec2.allocate_address()["AllocationId"]
    volume_id = ec2.create_volume(AvailabilityZone=site[0].zone, Size=1)["VolumeId"]
    resources = [vpc_id, subnet_id, group_id, allocation_id, volume_id]
    ec2.create_tags(Resources=resources, Tags=[{"Key": "team", "Value": "blue"}])
    tags = ec2.describe_tags(Filters=[{"Name": "key", "Values": ["team"]}])["Tags"]
    assert {(t["ResourceId"], t["ResourceType"]) for t in tags} == {
        (vpc_id, "vpc"),
        (subnet_id, "subnet"),
        (group_id, "security-group"),
        (allocation_id, "elastic-ip"),
        (volume_id, "volume"),
    }
    assert ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]["Tags"] == [
        {"Key": "team", "Value": "blue"}
    ]
    assert ec2.describe_subnets(Filters=[{"Name": "tag:team", "Values": ["blue"]}])["Subnets"]
    assert ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]["CidrBlock"] == "10.40.0.0/16"
    _next_second()
    ec2.delete_tags(Resources=resources, Tags=[{"Key": "team", "Value": "red"}])  # no match
    assert len(ec2.describe_tags(Filters=[{"Name": "key", "Values": ["team"]}])["Tags"]) == 5
    ec2.delete_tags(Resources=resources)
    assert ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": resources}])["Tags"] == []
    # DeleteTags without Tags leaves the reserved labels: the VPC keeps its CIDR.
    assert ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]["CidrBlock"] == "10.40.0.0/16"
    snapshot = ec2.create_snapshot(
        VolumeId=_volume_state(ec2, volume_id, "available")["VolumeId"],
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "k", "Value": "v"}]}],
    )
    assert snapshot["Tags"] == [{"Key": "k", "Value": "v"}]
    snapshot_id = snapshot["SnapshotId"]

    def snapshot_tags() -> list[dict[str, str]] | None:
        found = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
        return found["Tags"] if found["State"] == "completed" else None

    _until("completed snapshot", snapshot_tags)
    ec2.create_tags(Resources=[snapshot_id], Tags=[{"Key": "a", "Value": "b"}])
    assert snapshot_tags() == [{"Key": "a", "Value": "b"}, {"Key": "k", "Value": "v"}]
    assert ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [snapshot_id]}])[
        "Tags"
    ] == [
        {"ResourceId": snapshot_id, "ResourceType": "snapshot", "Key": "a", "Value": "b"},
        {"ResourceId": snapshot_id, "ResourceType": "snapshot", "Key": "k", "Value": "v"},
    ]
    _next_second()
    ec2.delete_tags(Resources=[snapshot_id], Tags=[{"Key": "k"}])
    assert snapshot_tags() == [{"Key": "a", "Value": "b"}]
    for bad in ({"Key": "aws:x", "Value": "v"}, {"Key": "kumo:cidr-block", "Value": "v"}):
        assert _code(lambda bad=bad: ec2.create_tags(Resources=[vpc_id], Tags=[bad])) == (
            "InvalidParameterValue"
        )
    too_long = {"Key": "k", "Value": "v" * 64}
    assert _code(lambda: ec2.create_tags(Resources=[vpc_id], Tags=[too_long])) == (
        "InvalidParameterValue"
    )
    many = [{"Key": f"k{i}", "Value": ""} for i in range(51)]
    assert _code(lambda: ec2.create_tags(Resources=[vpc_id], Tags=many)) == "TagLimitExceeded"
    assert _code(
        lambda: ec2.create_tags(Resources=["vpc-0000000000000000f"], Tags=[{"Key": "a"}])
    ) == ("InvalidVpcID.NotFound")


def test_aws_cli_network_and_storage(
    gateway: str,  # noqa: F811
    site: tuple[Site, str],  # noqa: F811
    tenant: Tenant,
    default_type: str,
) -> None:
    key = access_key(tenant)
    vpc = cli_json(aws_cli(gateway, key, "create-vpc", "--cidr-block", "10.50.0.0/16"))["Vpc"]
    subnet = cli_json(
        aws_cli(
            gateway,
            key,
            "create-subnet",
            "--vpc-id",
            vpc["VpcId"],
            "--cidr-block",
            "10.50.1.0/24",
            "--availability-zone",
            site[0].zone,
        )
    )["Subnet"]
    group = cli_json(
        aws_cli(
            gateway,
            key,
            "create-security-group",
            "--group-name",
            "cli",
            "--description",
            "from the CLI",
            "--vpc-id",
            vpc["VpcId"],
        )
    )
    cli_json(
        aws_cli(
            gateway,
            key,
            "authorize-security-group-ingress",
            "--group-id",
            group["GroupId"],
            "--protocol",
            "tcp",
            "--port",
            "443",
            "--cidr",
            "0.0.0.0/0",
        )
    )
    described = cli_json(
        aws_cli(gateway, key, "describe-security-groups", "--group-ids", group["GroupId"])
    )["SecurityGroups"][0]
    assert described["IpPermissions"][0]["FromPort"] == 443
    volume = cli_json(
        aws_cli(gateway, key, "create-volume", "--availability-zone", site[0].zone, "--size", "1")
    )
    listed = cli_json(aws_cli(gateway, key, "describe-volumes"))["Volumes"]
    assert [v["VolumeId"] for v in listed] == [volume["VolumeId"]]
    assert [
        s["SubnetId"] for s in cli_json(aws_cli(gateway, key, "describe-subnets"))["Subnets"]
    ] == [subnet["SubnetId"]]
    failed = aws_cli(gateway, key, "delete-vpc", "--vpc-id", vpc["VpcId"])
    assert failed.returncode != 0 and "DependencyViolation" in failed.stderr


def test_projects_are_isolated(
    gateway: str,  # noqa: F811
    site: tuple[Site, str],  # noqa: F811
    tenant: Tenant,
    other_tenant: Tenant,
    admin: Stubs,
    default_type: str,
) -> None:
    make_external(admin, f"172.{24 + uuid.uuid4().int % 3}.{uuid.uuid4().int % 250}.0/24")
    mine = ec2_client(gateway, access_key(tenant))
    theirs = ec2_client(gateway, access_key(other_tenant))
    vpc_id = mine.create_vpc(CidrBlock="10.60.0.0/16")["Vpc"]["VpcId"]
    subnet_id = mine.create_subnet(VpcId=vpc_id, CidrBlock="10.60.0.0/24")["Subnet"]["SubnetId"]
    group_id = mine.create_security_group(GroupName="mine", Description="m")["GroupId"]
    allocation = mine.allocate_address()
    volume_id = mine.create_volume(AvailabilityZone=site[0].zone, Size=1)["VolumeId"]
    assert theirs.describe_vpcs()["Vpcs"] == []
    assert theirs.describe_subnets()["Subnets"] == []
    assert theirs.describe_addresses()["Addresses"] == []
    assert theirs.describe_volumes()["Volumes"] == []
    assert [g["GroupName"] for g in theirs.describe_security_groups()["SecurityGroups"]] in (
        [],
        ["default"],
    )
    assert theirs.describe_tags()["Tags"] == []
    cases: list[tuple[Callable[[], Any], str]] = [
        (lambda: theirs.describe_vpcs(VpcIds=[vpc_id]), "InvalidVpcID.NotFound"),
        (lambda: theirs.delete_vpc(VpcId=vpc_id), "InvalidVpcID.NotFound"),
        (
            lambda: theirs.create_subnet(VpcId=vpc_id, CidrBlock="10.60.1.0/24"),
            "InvalidVpcID.NotFound",
        ),
        (lambda: theirs.delete_subnet(SubnetId=subnet_id), "InvalidSubnetID.NotFound"),
        (lambda: theirs.delete_security_group(GroupId=group_id), "InvalidGroup.NotFound"),
        (
            lambda: theirs.authorize_security_group_ingress(
                GroupId=group_id,
                IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
            ),
            "InvalidGroup.NotFound",
        ),
        (
            lambda: theirs.release_address(AllocationId=allocation["AllocationId"]),
            "InvalidAllocationID.NotFound",
        ),
        (
            lambda: theirs.release_address(PublicIp=allocation["PublicIp"]),
            "InvalidAddress.NotFound",
        ),
        (lambda: theirs.delete_volume(VolumeId=volume_id), "InvalidVolume.NotFound"),
        (lambda: theirs.create_snapshot(VolumeId=volume_id), "InvalidVolume.NotFound"),
        (
            lambda: theirs.create_tags(Resources=[volume_id], Tags=[{"Key": "a", "Value": "b"}]),
            "InvalidVolume.NotFound",
        ),
    ]
    for call, code in cases:
        assert _code(call) == code
    assert [v["VpcId"] for v in mine.describe_vpcs()["Vpcs"]] == [vpc_id]


def test_bad_input_is_an_ec2_error(
    gateway: str,  # noqa: F811
    site: tuple[Site, str],  # noqa: F811
    tenant: Tenant,
    default_type: str,
) -> None:
    ec2 = ec2_client(gateway, access_key(tenant))
    zone = site[0].zone
    cases: list[tuple[Callable[[], Any], str]] = [
        (lambda: ec2.create_vpc(CidrBlock="10.0.0.0/8"), "InvalidVpc.Range"),
        (lambda: ec2.create_vpc(CidrBlock="fd00::/48"), "InvalidVpc.Range"),
        (lambda: ec2.create_vpc(CidrBlock="banana"), "InvalidParameterValue"),
        (lambda: ec2.create_vpc(), "MissingParameter"),
        (lambda: ec2.describe_vpcs(VpcIds=["vpc-"]), "InvalidVpcID.NotFound"),
        (lambda: ec2.delete_vpc(VpcId="vpc-"), "InvalidVpcID.Malformed"),
        (lambda: ec2.delete_vpc(VpcId="vpc-UPPER"), "InvalidVpcID.Malformed"),
        (
            lambda: ec2.create_subnet(VpcId="nope", CidrBlock="10.0.0.0/24"),
            "InvalidVpcID.Malformed",
        ),
        (
            lambda: ec2.delete_subnet(SubnetId="subnet-0000000000000000f"),
            "InvalidSubnetID.NotFound",
        ),
        (
            lambda: ec2.create_security_group(GroupName="x" * 64, Description="d"),
            "InvalidParameterValue",
        ),
        (
            lambda: ec2.create_security_group(GroupName="sg-x", Description="d"),
            "InvalidParameterValue",
        ),
        (
            lambda: ec2.create_security_group(
                GroupName="g", Description="d", VpcId="vpc-0000000000000000f"
            ),
            "InvalidVpcID.NotFound",
        ),
        (
            lambda: ec2.delete_security_group(GroupId="sg-0000000000000000f"),
            "InvalidGroup.NotFound",
        ),
        (lambda: ec2.delete_security_group(), "MissingParameter"),
        (
            lambda: ec2.authorize_security_group_ingress(
                GroupName="default",
                IpPermissions=[{"IpProtocol": "gre", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
            ),
            "InvalidParameterValue",
        ),
        (
            lambda: ec2.authorize_security_group_ingress(
                GroupName="default",
                IpPermissions=[
                    {
                        "IpProtocol": "tcp",
                        "FromPort": 9,
                        "ToPort": 1,
                        "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                    }
                ],
            ),
            "InvalidParameterValue",
        ),
        (
            lambda: ec2.authorize_security_group_ingress(
                GroupName="default",
                IpPermissions=[
                    {
                        "IpProtocol": "tcp",
                        "FromPort": 1,
                        "ToPort": 2,
                        "IpRanges": [{"CidrIp": "300.0.0.0/8"}],
                    }
                ],
            ),
            "InvalidParameterValue",
        ),
        (
            lambda: ec2.authorize_security_group_ingress(
                GroupName="default",
                IpPermissions=[
                    {
                        "IpProtocol": "icmp",
                        "FromPort": 8,
                        "ToPort": 0,
                        "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                    }
                ],
            ),
            "InvalidParameterValue",
        ),
        (
            lambda: ec2.authorize_security_group_ingress(
                GroupName="default",
                IpPermissions=[
                    {
                        "IpProtocol": "tcp",
                        "FromPort": 1,
                        "ToPort": 2,
                        "UserIdGroupPairs": [{"GroupId": "sg-0000000000000000f"}],
                    }
                ],
            ),
            "InvalidGroup.NotFound",
        ),
        (lambda: ec2.allocate_address(Address="203.0.113.9"), "InvalidParameterValue"),
        (
            lambda: ec2.associate_address(AllocationId="eipalloc-0000000000000000f"),
            "MissingParameter",
        ),
        (
            lambda: ec2.disassociate_address(AssociationId="eipassoc-nope"),
            "InvalidAssociationID.NotFound",
        ),
        (lambda: ec2.release_address(), "MissingParameter"),
        (lambda: ec2.release_address(AllocationId="eipalloc-!"), "InvalidAllocationID.Malformed"),
        (lambda: ec2.create_volume(Size=1), "MissingParameter"),
        (lambda: ec2.create_volume(AvailabilityZone=zone), "MissingParameter"),
        (lambda: ec2.create_volume(AvailabilityZone=zone, Size=0), "InvalidParameterValue"),
        (lambda: ec2.create_volume(AvailabilityZone=zone, Size=20000), "InvalidParameterValue"),
        (lambda: ec2.create_volume(AvailabilityZone="nowhere", Size=1), "InvalidZone.NotFound"),
        (
            lambda: ec2.create_volume(AvailabilityZone=zone, Size=1, VolumeType="gp9"),
            "InvalidParameterValue",
        ),
        (
            lambda: ec2.create_volume(AvailabilityZone=zone, Size=1, Encrypted=True),
            "InvalidParameterValue",
        ),
        (
            lambda: ec2.create_volume(AvailabilityZone=zone, SnapshotId="snap-0000000000000000f"),
            "InvalidSnapshot.NotFound",
        ),
        (lambda: ec2.delete_volume(VolumeId="vol-0000000000000000f"), "InvalidVolume.NotFound"),
        (lambda: ec2.delete_volume(VolumeId="volume-1"), "InvalidVolume.Malformed"),
        (
            lambda: ec2.attach_volume(
                VolumeId="vol-0000000000000000f",
                InstanceId="i-0000000000000000f",
                Device="/dev/vdb",
            ),
            "InvalidVolume.NotFound",
        ),
        (lambda: ec2.detach_volume(VolumeId="vol-x"), "InvalidVolume.NotFound"),
        (
            lambda: ec2.delete_snapshot(SnapshotId="snap-0000000000000000f"),
            "InvalidSnapshot.NotFound",
        ),
        (lambda: ec2.create_snapshot(VolumeId="vol-0000000000000000f"), "InvalidVolume.NotFound"),
        (lambda: ec2.describe_snapshots(SnapshotIds=["snap-x"]), "InvalidSnapshot.NotFound"),
        (
            lambda: ec2.describe_volumes(Filters=[{"Name": "bogus", "Values": ["x"]}]),
            "InvalidParameterValue",
        ),
        (
            lambda: ec2.run_instances(
                ImageId="ami-x", InstanceType="t", MinCount=1, MaxCount=1, SubnetId="subnet-x"
            ),
            "InvalidSubnetID.NotFound",
        ),
    ]
    for index, (call, code) in enumerate(cases):
        assert _code(call) == code, index
    assert ec2.describe_volumes()["Volumes"] == []
    assert ec2.describe_vpcs()["Vpcs"] == []
