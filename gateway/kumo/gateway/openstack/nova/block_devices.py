"""A server create's `block_device_mapping_v2`, read onto a Kumo instance.

Kumo boots from an existing volume (`Instance.boot_volume`): the mapping with boot index 0,
source `volume` and destination `volume`. Nova's other ways to make a root volume (from an
image, a snapshot or blank) would have the gateway create and await a volume itself, and
Kumo keeps a boot volume when its server is deleted, so those, `delete_on_termination`
and extra volumes at boot are refused with 400 (create the volume with Cinder, boot from
it, attach others after). An image mapping with a local destination is the image boot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kumo.gateway.dialect import invalid
from kumo.gateway.openstack.common import Scope
from kumo.gateway.openstack.paging import PAGE
from kumo.storage.v1 import resources_pb2 as spb
from kumo.storage.v1 import storage_service_pb2 as sapi
from kumo.storage.v1 import storage_service_pb2_grpc as srpc

_ONLY_VOLUMES = (
    "Kumo boots from an existing volume only (source_type and destination_type 'volume'): "
    "create the volume with the block storage API first"
)


@dataclass(frozen=True)
class BootDisk:
    """What the mappings ask for: a boot volume's id, or an image's id (either may be '')."""

    volume_uid: str = ""
    image_uid: str = ""


def _boot_index(mapping: dict[str, Any]) -> int | None:
    value = mapping.get("boot_index")
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid(f"Invalid boot_index {value!r}") from None


def read_mappings(mappings: Any) -> BootDisk:
    """The boot disk the mappings describe; 400 for what Kumo cannot do (see above)."""
    if mappings is None:
        return BootDisk()
    if not isinstance(mappings, list) or not all(isinstance(m, dict) for m in mappings):
        raise invalid("block_device_mapping_v2 must be a list of objects")
    disk = BootDisk()
    for mapping in mappings:
        source = mapping.get("source_type")
        destination = mapping.get("destination_type") or "volume"
        boot = _boot_index(mapping) == 0
        if destination == "local":
            if boot and source == "image" and mapping.get("uuid"):
                disk = BootDisk(disk.volume_uid, str(mapping["uuid"]))
            continue
        if destination != "volume":
            raise invalid(f"Invalid destination_type {destination!r}")
        if source != "volume":
            raise invalid(_ONLY_VOLUMES)
        if not boot:
            raise invalid("Kumo attaches extra volumes after the server is created")
        if disk.volume_uid:
            raise invalid("only one block device may have boot_index 0")
        if mapping.get("delete_on_termination") in (True, "true", "True", "1", 1):
            raise invalid("Kumo keeps a boot volume when its server is deleted")
        uid = mapping.get("uuid")
        if not isinstance(uid, str) or not uid:
            raise invalid("a volume block device needs the volume's uuid")
        disk = BootDisk(uid, disk.image_uid)
    return disk


async def find_volume(backend: Any, scope: Scope, uid: str) -> spb.Volume:
    """The caller's volume with this id, in any zone; 400 (a bad block device mapping, as
    in Nova) when there is none."""
    request = sapi.ListVolumesRequest(parent=f"{scope.parent}/zones/-", page_size=PAGE)
    while True:
        answer = await backend.call(
            backend.stub(srpc.StorageServiceStub).ListVolumes, request, scope.token
        )
        for volume in answer.volumes:
            if volume.uid == uid:
                return volume  # type: ignore[no-any-return]
        request.page_token = answer.next_page_token
        if not request.page_token:
            raise invalid(f"Block Device Mapping is Invalid: volume {uid} could not be found.")
