"""Finding the caller's volumes and snapshots by EC2 id. Volume names carry their zone
and snapshot names their volume, EC2 ids neither: a volume is looked for in each zone
(the zone list is cached), a snapshot among the snapshots of the caller's volumes."""

from __future__ import annotations

from kumo.gateway.aws.backend import Backend, Caller, invoke
from kumo.gateway.aws.errors import Ec2Error
from kumo.gateway.aws.operations.common import kumo_id_of, list_all
from kumo.gateway.aws.operations.instance_views import zone_ids
from kumo.storage.v1 import resources_pb2 as spb
from kumo.storage.v1 import storage_service_pb2 as sapi


def zone_of(name: str) -> str:
    """The zone id in a volume's or snapshot's name."""
    return name.split("/zones/", 1)[1].split("/", 1)[0]


async def volumes(backend: Backend, caller: Caller) -> list[spb.Volume]:
    """The caller's volumes in every zone."""
    request = sapi.ListVolumesRequest(parent=f"{caller.project_name}/zones/-", page_size=1000)
    return await list_all(backend.storage.ListVolumes, request, "volumes", caller)


async def find_volume(backend: Backend, caller: Caller, volume_id: str) -> spb.Volume:
    """The caller's volume with this VolumeId. Raises InvalidVolume.Malformed / .NotFound."""
    kumo_id = kumo_id_of("vol", volume_id, "InvalidVolume.Malformed")
    for zone in await zone_ids(backend, caller):
        name = f"{caller.project_name}/zones/{zone}/volumes/{kumo_id}"
        try:
            found: spb.Volume = await invoke(
                backend.storage.GetVolume, sapi.GetVolumeRequest(name=name), caller
            )
        except Ec2Error as error:
            if error.code == "InvalidVolume.NotFound":
                continue
            raise
        return found
    raise Ec2Error("InvalidVolume.NotFound", f"The volume '{volume_id}' does not exist.")


async def snapshots(backend: Backend, caller: Caller) -> list[spb.Snapshot]:
    """The snapshots of the caller's volumes."""
    found: list[spb.Snapshot] = []
    for volume in await volumes(backend, caller):
        request = sapi.ListSnapshotsRequest(parent=volume.name, page_size=1000)
        found += await list_all(backend.storage.ListSnapshots, request, "snapshots", caller)
    return found


async def find_snapshot(backend: Backend, caller: Caller, snapshot_id: str) -> spb.Snapshot:
    """The caller's snapshot with this SnapshotId. Raises InvalidSnapshot.Malformed /
    .NotFound."""
    kumo_id = kumo_id_of("snap", snapshot_id, "InvalidSnapshot.Malformed")
    for snapshot in await snapshots(backend, caller):
        if snapshot.name.rsplit("/", 1)[-1] == kumo_id:
            return snapshot
    raise Ec2Error("InvalidSnapshot.NotFound", f"The snapshot '{snapshot_id}' does not exist.")
