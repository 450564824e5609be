"""A server create's `block_device_mapping_v2`, read onto a Kumo instance.

Kumo boots from one volume, the mapping with boot index 0 and destination `volume`: an
existing one (source `volume`: `Instance.boot_volume`), or a new one the compute service
makes before it boots the server (`Instance.new_boot_volume`), from an image (source
`image`, with a `volume_size`, of the cloud's default type) or from a volume snapshot
(source `snapshot`; its size and type unless `volume_size` is given).
`delete_on_termination` deletes it with the server (`Instance.delete_boot_volume`). A blank
root volume, a chosen volume type and extra volumes at boot are refused with 400 (create
the volume with Cinder, boot from it, attach others after). An image mapping with a local
destination is the image boot.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

from kumo.gateway.dialect import invalid
from kumo.gateway.openstack.common import Scope
from kumo.gateway.openstack.paging import every
from kumo.storage.v1 import resources_pb2 as spb
from kumo.storage.v1 import storage_service_pb2 as sapi
from kumo.storage.v1 import storage_service_pb2_grpc as srpc

_SOURCES = (
    "Kumo boots from an existing volume or from a new one made from an image or a volume "
    "snapshot (source_type 'volume', 'image' or 'snapshot'): create the volume with the "
    "block storage API first"
)


@dataclass(frozen=True)
class BootDisk:
    """What the mappings ask for: a boot volume's id, or an image's id (either may be ''),
    the size of a new boot volume made from that image (0: none), or the id of a snapshot
    to make it from (its size: 0 for the snapshot's), and whether the boot volume goes with
    the server."""

    volume_uid: str = ""
    image_uid: str = ""
    new_volume_gib: int = 0
    snapshot_uid: str = ""
    delete_on_termination: bool = False


def _boot_index(mapping: dict[str, Any]) -> int | None:
    value = mapping.get("boot_index")
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid(f"Invalid boot_index {value!r}") from None


def _flag(mapping: dict[str, Any], key: str) -> bool:
    return mapping.get(key) in (True, "true", "True", "1", 1)


def _boot_volume(mapping: dict[str, Any], source: str) -> BootDisk:
    """The boot disk of a mapping with boot index 0 and destination `volume`."""
    uid = mapping.get("uuid")
    if not isinstance(uid, str) or not uid:
        raise invalid(f"a block device of source_type {source!r} needs the {source}'s uuid")
    if mapping.get("volume_type") is not None:
        raise invalid(
            "Kumo makes boot volumes of the default volume type: create the volume with "
            "the block storage API to choose another"
        )
    delete = _flag(mapping, "delete_on_termination")
    if source == "volume":
        return BootDisk(volume_uid=uid, delete_on_termination=delete)
    try:
        size = int(mapping.get("volume_size") or 0)
    except (TypeError, ValueError):
        raise invalid(f"Invalid volume_size {mapping.get('volume_size')!r}") from None
    if size < 0:
        raise invalid(f"Invalid volume_size {size}")
    if source == "snapshot":
        return BootDisk(snapshot_uid=uid, new_volume_gib=size, delete_on_termination=delete)
    if size == 0:
        raise invalid(
            "Images with destination_type 'volume' need to have a non-zero size specified"
        )
    return BootDisk(image_uid=uid, new_volume_gib=size, delete_on_termination=delete)


def read_mappings(mappings: Any) -> BootDisk:
    """The boot disk the mappings describe; 400 for what Kumo cannot do (see above)."""
    if mappings is None:
        return BootDisk()
    if not isinstance(mappings, list) or not all(isinstance(m, dict) for m in mappings):
        raise invalid("block_device_mapping_v2 must be a list of objects")
    disk = BootDisk()
    volume: BootDisk | None = None
    for mapping in mappings:
        source = mapping.get("source_type")
        destination = mapping.get("destination_type") or "volume"
        boot = _boot_index(mapping) == 0
        if destination == "local":
            if boot and source == "image" and mapping.get("uuid"):
                disk = BootDisk(image_uid=str(mapping["uuid"]))
            continue
        if destination != "volume":
            raise invalid(f"Invalid destination_type {destination!r}")
        if source not in ("volume", "image", "snapshot"):
            raise invalid(_SOURCES)
        if not boot:
            raise invalid("Kumo attaches extra volumes after the server is created")
        if volume is not None:
            raise invalid("only one block device may have boot_index 0")
        volume = _boot_volume(mapping, source)
    if volume is None:
        return disk
    return replace(volume, image_uid=volume.image_uid or disk.image_uid)


async def volumes_under(backend: Any, token: str, parent: str) -> AsyncIterator[spb.Volume]:
    """The volumes of `parent` (`projects/p/zones/z`, or `zones/-` for all the project's)."""
    stub = backend.stub(srpc.StorageServiceStub)
    request = sapi.ListVolumesRequest(parent=parent)
    async for volume in every(backend, stub.ListVolumes, request, "volumes", token):
        yield volume


async def find_volume(backend: Any, scope: Scope, uid: str) -> spb.Volume:
    """The caller's volume with this id, in any zone; 400 (a bad block device mapping, as
    in Nova) when there is none."""
    async for volume in volumes_under(backend, scope.token, f"{scope.parent}/zones/-"):
        if volume.uid == uid:
            return volume
    raise invalid(f"Block Device Mapping is Invalid: volume {uid} could not be found.")


async def find_snapshot(backend: Any, scope: Scope, uid: str) -> tuple[spb.Snapshot, spb.Volume]:
    """The caller's volume snapshot with this id and its volume, in any zone; 400 (as in
    Nova) when there is none."""
    stub = backend.stub(srpc.StorageServiceStub)
    async for volume in volumes_under(backend, scope.token, f"{scope.parent}/zones/-"):
        request = sapi.ListSnapshotsRequest(parent=volume.name)
        async for snapshot in every(backend, stub.ListSnapshots, request, "snapshots", scope.token):
            if snapshot.uid == uid:
                return snapshot, volume
    raise invalid(f"Block Device Mapping is Invalid: snapshot {uid} could not be found.")
