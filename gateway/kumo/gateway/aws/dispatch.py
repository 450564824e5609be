"""The implemented EC2 operations: action name → handler. Every other action of the model
answers UnsupportedOperation. `docs/ec2-operations.md` is generated from this table
(`scripts/gen-ec2-operations`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from kumo.gateway.aws.backend import Backend, Caller
from kumo.gateway.aws.operations import images, instances, key_pairs, tags, topology

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
}


def read_only(action: str) -> bool:
    """Whether an action only reads (Describe*, Get*): exempt from the header-signature
    replay check (see replay.py)."""
    return action.startswith(("Describe", "Get"))
