"""Create/Describe/Delete/Attach/DetachVolume over Kumo volumes.

A volume lives in a zone (`projects/{p}/zones/{z}/volumes/{v}`); VolumeIds do not carry
it, so a volume is found by asking each zone (the zone list is cached). VolumeType names
a Kumo volume type (`volumeTypes/{VolumeType}`; absent: the cloud's default), shown back
by its id. ClientToken makes the volume id and request_id, so a repeat returns the same
volume. Kumo picks the guest device: the Device given to AttachVolume is the attachment's
recorded device name (`Attachment.device`), shown back by DescribeVolumes. Attach answers
`attaching`, detach `detaching`; DescribeVolumes shows the attachment once it is recorded.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from kumo.gateway.aws import ids
from kumo.gateway.aws.backend import Backend, Caller, invoke
from kumo.gateway.aws.errors import Ec2Error, invalid
from kumo.gateway.aws.operations.common import Params, described, spec_tags, tags_of, time_of
from kumo.gateway.aws.operations.instance_views import find_instance, zone_ids
from kumo.gateway.aws.operations.storage_lookup import (
    find_snapshot,
    find_volume,
    volumes,
    zone_of,
)
from kumo.storage.v1 import resources_pb2 as spb
from kumo.storage.v1 import storage_service_pb2 as sapi

V = spb.Volume
_TOKEN_NAMESPACE = uuid.UUID("0d3c9a4e-51a2-4d8e-bf0e-7f6c2a9b1e44")
_STATES = {
    V.STATE_CREATING: "creating",
    V.STATE_AVAILABLE: "available",
    V.STATE_IN_USE: "in-use",
    V.STATE_DELETING: "deleting",
    V.STATE_ERROR: "error",
}
FILTER_FIELDS = {
    "volume-id": lambda v: [v["VolumeId"]],
    "status": lambda v: [v["State"]],
    "size": lambda v: [str(v["Size"])],
    "availability-zone": lambda v: [v["AvailabilityZone"]],
    "volume-type": lambda v: [v["VolumeType"]],
    "snapshot-id": lambda v: [v.get("SnapshotId", "")],
    "attachment.instance-id": lambda v: [a["InstanceId"] for a in v["Attachments"]],
    "attachment.status": lambda v: [a["State"] for a in v["Attachments"]],
    "multi-attach-enabled": lambda v: [str(v["MultiAttachEnabled"]).lower()],
}


def volume_view(volume: spb.Volume) -> dict[str, Any]:
    """The EC2 `Volume` of a Kumo volume."""
    volume_id = ids.volume_ec2_id(volume.name)
    state = _STATES.get(volume.state, "in-use" if volume.attachments else "available")
    view: dict[str, Any] = {
        "VolumeId": volume_id,
        "Size": volume.size_gib,
        "AvailabilityZone": zone_of(volume.name),
        "State": state,
        "CreateTime": time_of(volume.create_time),
        "VolumeType": volume.volume_type.rsplit("/", 1)[-1],
        "Encrypted": False,
        "MultiAttachEnabled": volume.multi_attach,
        "Attachments": [
            {
                "VolumeId": volume_id,
                "InstanceId": ids.instance_ec2_id(a.instance.rsplit("/", 1)[-1]),
                "State": "attached",
                "AttachTime": time_of(a.attach_time),
                "DeleteOnTermination": a.delete_with_instance,
                **({"Device": a.device} if a.device else {}),
            }
            for a in volume.attachments
        ],
        "Tags": tags_of(volume.labels),
    }
    if volume.source_snapshot:
        view["SnapshotId"] = ids.ec2_id("snap", volume.source_snapshot.rsplit("/", 1)[-1])
    return view


async def create_volume(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """CreateVolume (AvailabilityZone, Size, SnapshotId, VolumeType, ClientToken, tags).

    MultiAttachEnabled is Kumo's multi_attach; Iops, Throughput, KmsKeyId and Encrypted
    are InvalidParameterValue (Kumo volume types carry QoS; volumes are not encrypted)."""
    zone = params.get("AvailabilityZone")
    if not zone:
        raise Ec2Error("MissingParameter", "The request must name an AvailabilityZone")
    if zone not in await zone_ids(backend, caller):
        raise Ec2Error("InvalidZone.NotFound", f"The zone '{zone}' does not exist.")
    for unsupported in ("Iops", "Throughput", "KmsKeyId", "OutpostArn"):
        if params.get(unsupported):
            raise invalid(unsupported, params[unsupported], "Kumo volume types set this.")
    if params.get("Encrypted"):
        raise invalid("Encrypted", True, "Kumo volumes are not encrypted.")
    volume = spb.Volume(
        labels=spec_tags(params, "volume"),
        multi_attach=bool(params.get("MultiAttachEnabled")),
    )
    if params.get("VolumeType"):
        volume.volume_type = f"volumeTypes/{params['VolumeType']}"
    size = params.get("Size")
    if params.get("SnapshotId"):
        snapshot = await find_snapshot(backend, caller, params["SnapshotId"])
        volume.source_snapshot = snapshot.name
        size = snapshot.size_gib if size is None else size
    if size is None:
        raise Ec2Error("MissingParameter", "The request must contain the parameter Size")
    if not 1 <= size <= 16384:
        raise invalid("Size", size, "1 to 16384 GiB.")
    volume.size_gib = size
    token = params.get("ClientToken", "")
    seed = f"{caller.project}/{token}" if token else ""
    volume_id = ids.made_id("vol", seed)
    parent = f"{caller.project_name}/zones/{zone}"
    await invoke(
        backend.storage.CreateVolume,
        sapi.CreateVolumeRequest(
            parent=parent,
            volume_id=volume_id,
            volume=volume,
            request_id=str(uuid.uuid5(_TOKEN_NAMESPACE, seed)) if seed else "",
        ),
        caller,
    )
    created = await invoke(
        backend.storage.GetVolume,
        sapi.GetVolumeRequest(name=f"{parent}/volumes/{volume_id}"),
        caller,
    )
    return volume_view(created)


async def describe_volumes(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """DescribeVolumes (VolumeIds, Filters)."""
    views = [volume_view(v) for v in await volumes(backend, caller)]
    return {
        "Volumes": described(
            views, params, "VolumeIds", "VolumeId", "InvalidVolume.NotFound", FILTER_FIELDS
        )
    }


async def delete_volume(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """DeleteVolume: VolumeInUse while attached (or busy)."""
    volume = await find_volume(backend, caller, params["VolumeId"])
    await invoke(
        backend.storage.DeleteVolume,
        sapi.DeleteVolumeRequest(name=volume.name),
        caller,
        precondition="VolumeInUse",
    )
    return {}


def _attachment(volume_id: str, instance_id: str, device: str, state: str) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "VolumeId": volume_id,
        "InstanceId": instance_id,
        "State": state,
        "AttachTime": datetime.now(UTC),
        "DeleteOnTermination": False,
    }
    if device:
        answer["Device"] = device
    return answer


async def attach_volume(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """AttachVolume: the volume and instance must be in one zone (InvalidVolume.ZoneMismatch)."""
    volume = await find_volume(backend, caller, params["VolumeId"])
    instance = await find_instance(backend, caller, params["InstanceId"])
    if zone_of(volume.name) != zone_of(instance.name):
        raise Ec2Error(
            "InvalidVolume.ZoneMismatch",
            "The volume and the instance are not in the same availability zone.",
        )
    await invoke(
        backend.storage.AttachVolume,
        sapi.AttachVolumeRequest(name=volume.name, instance=instance.name, device=params["Device"]),
        caller,
        precondition="VolumeInUse",
    )
    return _attachment(params["VolumeId"], params["InstanceId"], params["Device"], "attaching")


async def detach_volume(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """DetachVolume from InstanceId, or from the volume's only instance."""
    volume = await find_volume(backend, caller, params["VolumeId"])
    if params.get("InstanceId"):
        instance = (await find_instance(backend, caller, params["InstanceId"])).name
    elif len(volume.attachments) == 1:
        instance = volume.attachments[0].instance
    else:
        why = "attached to several instances" if volume.attachments else "not attached"
        raise Ec2Error("IncorrectState", f"Volume '{params['VolumeId']}' is {why}.")
    await invoke(
        backend.storage.DetachVolume,
        sapi.DetachVolumeRequest(name=volume.name, instance=instance),
        caller,
        precondition="IncorrectState",
    )
    instance_id = ids.instance_ec2_id(instance.rsplit("/", 1)[-1])
    return _attachment(params["VolumeId"], instance_id, params.get("Device", ""), "detaching")
