"""The implemented EC2 operations: action name → handler. Every other action of the model
answers UnsupportedOperation. `docs/ec2-operations.md` is generated from this table
(`scripts/gen-ec2-operations`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from kumo.gateway.aws.backend import Backend, Caller
from kumo.gateway.aws.operations import (
    addresses,
    images,
    instances,
    key_pairs,
    security_groups,
    snapshots,
    subnets,
    tags,
    topology,
    volumes,
    vpcs,
)

Handler = Callable[[Backend, Caller, dict[str, Any]], Awaitable[dict[str, Any]]]

HANDLERS: dict[str, Handler] = {
    "RunInstances": instances.run_instances,
    "DescribeInstances": instances.describe_instances,
    "DescribeInstanceStatus": instances.describe_instance_status,
    "StartInstances": instances.start_instances,
    "StopInstances": instances.stop_instances,
    "RebootInstances": instances.reboot_instances,
    "TerminateInstances": instances.terminate_instances,
    "DescribeImages": images.describe_images,
    "CreateImage": images.create_image,
    "CreateKeyPair": key_pairs.create_key_pair,
    "ImportKeyPair": key_pairs.import_key_pair,
    "DeleteKeyPair": key_pairs.delete_key_pair,
    "DescribeKeyPairs": key_pairs.describe_key_pairs,
    "DescribeRegions": topology.describe_regions,
    "DescribeAvailabilityZones": topology.describe_availability_zones,
    "CreateTags": tags.create_tags,
    "DeleteTags": tags.delete_tags,
    "DescribeTags": tags.describe_tags,
    "CreateVpc": vpcs.create_vpc,
    "DescribeVpcs": vpcs.describe_vpcs,
    "DeleteVpc": vpcs.delete_vpc,
    "CreateSubnet": subnets.create_subnet,
    "DescribeSubnets": subnets.describe_subnets,
    "DeleteSubnet": subnets.delete_subnet,
    "CreateSecurityGroup": security_groups.create_security_group,
    "DescribeSecurityGroups": security_groups.describe_security_groups,
    "DeleteSecurityGroup": security_groups.delete_security_group,
    "AuthorizeSecurityGroupIngress": security_groups.authorize_ingress,
    "AuthorizeSecurityGroupEgress": security_groups.authorize_egress,
    "RevokeSecurityGroupIngress": security_groups.revoke_ingress,
    "RevokeSecurityGroupEgress": security_groups.revoke_egress,
    "AllocateAddress": addresses.allocate_address,
    "AssociateAddress": addresses.associate_address,
    "DisassociateAddress": addresses.disassociate_address,
    "ReleaseAddress": addresses.release_address,
    "DescribeAddresses": addresses.describe_addresses,
    "CreateVolume": volumes.create_volume,
    "DescribeVolumes": volumes.describe_volumes,
    "DeleteVolume": volumes.delete_volume,
    "AttachVolume": volumes.attach_volume,
    "DetachVolume": volumes.detach_volume,
    "CreateSnapshot": snapshots.create_snapshot,
    "DescribeSnapshots": snapshots.describe_snapshots,
    "DeleteSnapshot": snapshots.delete_snapshot,
}


def read_only(action: str) -> bool:
    """Whether an action only reads (Describe*, Get*): exempt from the header-signature
    replay check (see replay.py)."""
    return action.startswith(("Describe", "Get"))
