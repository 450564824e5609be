"""Create/Describe/DeleteSnapshot over Kumo volume snapshots (children of their volume).

States: creating → `pending`, available → `completed` (Progress 100%), error → `error`.
DescribeSnapshots lists the snapshots of the caller's own volumes (OwnerIds may be
`self` or the caller's project id; Kumo has no public snapshots).
"""

from __future__ import annotations

from typing import Any

from kumo.gateway.aws import ids
from kumo.gateway.aws.backend import Backend, Caller, invoke
from kumo.gateway.aws.errors import invalid
from kumo.gateway.aws.operations.common import Params, described, spec_tags, tags_of, time_of
from kumo.gateway.aws.operations.storage_lookup import find_snapshot, find_volume, snapshots
from kumo.storage.v1 import resources_pb2 as spb
from kumo.storage.v1 import storage_service_pb2 as sapi

S = spb.Snapshot
_STATES = {S.STATE_AVAILABLE: "completed", S.STATE_ERROR: "error"}
FILTER_FIELDS = {
    "snapshot-id": lambda s: [s["SnapshotId"]],
    "volume-id": lambda s: [s["VolumeId"]],
    "status": lambda s: [s["State"]],
    "owner-id": lambda s: [s["OwnerId"]],
    "description": lambda s: [s["Description"]],
    "volume-size": lambda s: [str(s["VolumeSize"])],
}


def snapshot_view(snapshot: spb.Snapshot, project: str) -> dict[str, Any]:
    """The EC2 `Snapshot` of a Kumo snapshot."""
    state = _STATES.get(snapshot.state, "pending")
    view: dict[str, Any] = {
        "SnapshotId": ids.ec2_id("snap", snapshot.name.rsplit("/", 1)[-1]),
        "VolumeId": ids.volume_ec2_id(snapshot.name.split("/snapshots/", 1)[0]),
        "State": state,
        "StartTime": time_of(snapshot.create_time),
        "Progress": "100%" if state == "completed" else "0%",
        "OwnerId": project,
        "Description": snapshot.description,
        "VolumeSize": snapshot.size_gib,
        "Encrypted": False,
        "Tags": tags_of(snapshot.labels),
    }
    if snapshot.state_message:
        view["StateMessage"] = snapshot.state_message
    return view


async def create_snapshot(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """CreateSnapshot (VolumeId, Description, TagSpecifications)."""
    description = params.get("Description", "")
    if len(description) > 255:
        raise invalid("Description", "...", "At most 255 characters.")
    volume = await find_volume(backend, caller, params["VolumeId"])
    snapshot_id = ids.made_id("snap")
    await invoke(
        backend.storage.CreateSnapshot,
        sapi.CreateSnapshotRequest(
            parent=volume.name,
            snapshot_id=snapshot_id,
            snapshot=spb.Snapshot(description=description, labels=spec_tags(params, "snapshot")),
        ),
        caller,
        precondition="IncorrectState",
    )
    snapshot = await invoke(
        backend.storage.GetSnapshot,
        sapi.GetSnapshotRequest(name=f"{volume.name}/snapshots/{snapshot_id}"),
        caller,
    )
    return snapshot_view(snapshot, caller.project)


async def describe_snapshots(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """DescribeSnapshots (SnapshotIds, OwnerIds, Filters)."""
    owners = set(params.get("OwnerIds") or [])
    if owners - {"self", caller.project}:
        return {"Snapshots": []}
    views = [snapshot_view(s, caller.project) for s in await snapshots(backend, caller)]
    return {
        "Snapshots": described(
            views, params, "SnapshotIds", "SnapshotId", "InvalidSnapshot.NotFound", FILTER_FIELDS
        )
    }


async def delete_snapshot(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """DeleteSnapshot: InvalidSnapshot.InUse while a volume is being made from it."""
    snapshot = await find_snapshot(backend, caller, params["SnapshotId"])
    await invoke(
        backend.storage.DeleteSnapshot,
        sapi.DeleteSnapshotRequest(name=snapshot.name),
        caller,
        precondition="InvalidSnapshot.InUse",
    )
    return {}
