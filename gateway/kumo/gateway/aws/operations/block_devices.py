"""RunInstances' `BlockDeviceMappings`, read onto a Kumo instance's volumes.

An AMI's root device is `/dev/vda` (DescribeImages' RootDeviceName). A mapping of that
device with `Ebs` makes the instance boot from a new volume (`Instance.new_boot_volume`)
made from the image, or from the snapshot `SnapshotId`. Any other device with `Ebs` is a
new volume attached as the instance is made (`Instance.volumes_at_boot`): empty, or a copy
of `SnapshotId`. Each is `VolumeSize` GiB (absent: its source's size; required for an
empty one), of the Kumo volume type `VolumeType` (absent: the snapshot's volume's, else
the cloud's default), and deleted with the instance unless `DeleteOnTermination` is false
(EC2's default is true for the volumes it makes at launch). Kumo picks the guest device
of the others; DeviceName is recorded as their attachments' device name (shown by
DescribeInstances and DescribeVolumes). Iops and Throughput belong to
Kumo's volume types, so they are not read. What Kumo cannot do at launch is refused, never
ignored: instance store (`VirtualName`), encryption, suppressing the root device.
"""

from __future__ import annotations

from typing import Any

from kumo.compute.v1 import resources_pb2 as cpb
from kumo.gateway.aws.backend import Backend, Caller
from kumo.gateway.aws.errors import Ec2Error, invalid, missing
from kumo.gateway.aws.operations.common import ROOT_DEVICE
from kumo.gateway.aws.operations.storage_lookup import find_snapshot


def _unsupported(what: str) -> Ec2Error:
    return Ec2Error("Unsupported", f"{what} is not supported at launch by this cloud.")


async def read_block_devices(
    backend: Backend, caller: Caller, mappings: list[dict[str, Any]] | None, instance: cpb.Instance
) -> None:
    """Sets `instance`'s new boot volume and the other new volumes from the mappings.
    Raises MissingParameter (a mapping without DeviceName), InvalidBlockDeviceMapping (a
    device mapped twice, a mapping without Ebs, an empty volume without VolumeSize),
    InvalidParameterValue (VolumeSize below 1), InvalidSnapshot.NotFound / .Malformed,
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
        if "NoDevice" in mapping:
            if device == ROOT_DEVICE:
                raise Ec2Error("InvalidBlockDeviceMapping", "The root device cannot be suppressed.")
            continue  # (an AMI of Kumo's maps no other device)
        ebs = mapping.get("Ebs")
        if not ebs:
            raise Ec2Error(
                "InvalidBlockDeviceMapping", f"The mapping of {device} needs an Ebs structure."
            )
        if ebs.get("Encrypted") or ebs.get("KmsKeyId"):
            raise _unsupported("An encrypted volume (Ebs.Encrypted, Ebs.KmsKeyId)")
        size = ebs.get("VolumeSize", 0)
        if "VolumeSize" in ebs and size < 1:
            raise invalid(f"BlockDeviceMapping.{index}.Ebs.VolumeSize", size, "Expected 1 or more.")
        snapshot = ""
        if snapshot_id := ebs.get("SnapshotId"):
            snapshot = (await find_snapshot(backend, caller, snapshot_id)).name
        kind = f"volumeTypes/{ebs['VolumeType']}" if ebs.get("VolumeType") else ""
        doomed = ebs.get("DeleteOnTermination", True)
        if device == ROOT_DEVICE:
            instance.new_boot_volume.size_gib = size
            instance.new_boot_volume.volume_type = kind
            instance.new_boot_volume.source_snapshot = snapshot
            instance.delete_boot_volume = doomed
            continue
        if not (size or snapshot):
            raise Ec2Error(
                "InvalidBlockDeviceMapping",
                f"The mapping of {device} needs Ebs.VolumeSize or Ebs.SnapshotId.",
            )
        instance.volumes_at_boot.add(
            size_gib=size, volume_type=kind, source_snapshot=snapshot,
            delete_with_instance=doomed, device=device,
        )  # fmt: skip
