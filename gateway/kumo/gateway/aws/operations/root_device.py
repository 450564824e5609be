"""RunInstances' `BlockDeviceMappings`, read onto a Kumo instance's boot volume.

An AMI's root device is `/dev/vda` (DescribeImages' RootDeviceName). A mapping of that
device with `Ebs` makes the instance boot from a new volume made from the image
(`Instance.new_boot_volume`): `VolumeSize` GiB (absent: the image's size), of the Kumo
volume type `VolumeType` (absent: the cloud's default), deleted with the instance unless
`DeleteOnTermination` is false (EC2's default for a root volume is true). Iops and
Throughput belong to Kumo's volume types, so they are not read. What Kumo cannot do at
launch is refused, never ignored: other devices (attach volumes after launch), instance
store (`VirtualName`), a root from a snapshot, encryption.
"""

from __future__ import annotations

from typing import Any

from kumo.compute.v1 import resources_pb2 as cpb
from kumo.gateway.aws.errors import Ec2Error, invalid, missing

ROOT_DEVICE = "/dev/vda"


def _unsupported(what: str) -> Ec2Error:
    return Ec2Error("Unsupported", f"{what} is not supported at launch by this cloud.")


def read_root_device(mappings: list[dict[str, Any]] | None, instance: cpb.Instance) -> None:
    """Sets `instance`'s new boot volume from the root device's mapping, if any. Raises
    MissingParameter (a mapping without DeviceName), InvalidBlockDeviceMapping (a device
    mapped twice, a root mapping without Ebs), InvalidParameterValue (VolumeSize below 1),
    Unsupported (see the module docstring)."""
    seen: set[str] = set()
    for index, mapping in enumerate(mappings or [], 1):
        device = mapping.get("DeviceName")
        if not device:
            raise missing(f"BlockDeviceMapping.{index}.DeviceName")
        if device in seen:
            raise Ec2Error(
                "InvalidBlockDeviceMapping", f"The device {device} is mapped more than once."
            )
        seen.add(device)
        if mapping.get("VirtualName"):
            raise _unsupported("An instance store volume (VirtualName)")
        if device != ROOT_DEVICE:
            raise _unsupported(
                f"The device {device} (the root device is {ROOT_DEVICE}; attach other "
                "volumes after launch)"
            )
        if "NoDevice" in mapping:
            raise Ec2Error("InvalidBlockDeviceMapping", "The root device cannot be suppressed.")
        ebs = mapping.get("Ebs")
        if not ebs:
            raise Ec2Error(
                "InvalidBlockDeviceMapping", f"The mapping of {device} needs an Ebs structure."
            )
        if ebs.get("SnapshotId"):
            raise _unsupported("A root volume from a snapshot (Ebs.SnapshotId)")
        if ebs.get("Encrypted") or ebs.get("KmsKeyId"):
            raise _unsupported("An encrypted volume (Ebs.Encrypted, Ebs.KmsKeyId)")
        size = ebs.get("VolumeSize", 0)
        if "VolumeSize" in ebs and size < 1:
            raise invalid(f"BlockDeviceMapping.{index}.Ebs.VolumeSize", size, "Expected 1 or more.")
        instance.new_boot_volume.size_gib = size
        if kind := ebs.get("VolumeType"):
            instance.new_boot_volume.volume_type = f"volumeTypes/{kind}"
        instance.delete_boot_volume = ebs.get("DeleteOnTermination", True)
