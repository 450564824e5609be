"""A server create's `block_device_mapping_v2`, read onto a Kumo instance.

Kumo boots from one volume, the mapping with boot index 0 and destination `volume`: an
existing one (source `volume`: `Instance.boot_volume`), or a new one the compute service
makes before it boots the server (`Instance.new_boot_volume`), from an image (source
`image`, with a `volume_size`) or from a volume snapshot (source `snapshot`; its size
unless `volume_size` is given), of the `volume_type` given, else the snapshot's or the
cloud's default. `delete_on_termination` deletes it with the server
(`Instance.delete_boot_volume`). The other mappings to a volume are attached as the server
is made (`Instance.volumes_at_boot`): existing volumes (source `volume`), new empty ones
(source `blank`, with a `volume_size`) and copies of snapshots. A blank root volume, and a
new volume other than the root made from an image, are refused with 400, as Nova refuses
the first. An image mapping with a local destination is the image boot (boot index 0; any
other is Nova's 400, "Mapping image to local is not supported"). Kumo's flavors
have no swap and no ephemeral disk, so a blank mapping with a local destination that asks
for swap or for a size is Nova's 400 for a disk larger than the flavor allows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

from kumo.gateway.dialect import invalid
from kumo.gateway.openstack.common import Scope
from kumo.gateway.openstack.lookup import is_volume_type
from kumo.gateway.openstack.paging import every
from kumo.storage.v1 import resources_pb2 as spb
from kumo.storage.v1 import storage_service_pb2 as sapi
from kumo.storage.v1 import storage_service_pb2_grpc as srpc

_SOURCES = (
    "Kumo boots from an existing volume or from a new one made from an image or a volume "
    "snapshot (source_type 'volume', 'image' or 'snapshot'): create the volume with the "
    "block storage API first"
)
_OTHER_SOURCES = (
    "Kumo attaches existing volumes, new empty ones and copies of volume snapshots as it "
    "makes a server (source_type 'volume', 'blank' or 'snapshot')"
)


@dataclass(frozen=True)
class ExtraVolume:
    """A volume mapping other than the boot one: an existing volume's id, or a new volume
    (empty, of `size_gib`, or a copy of the snapshot `snapshot_uid`, of that size unless
    0), of the type `volume_type` (an id or a name; '': the default); whether the volume
    goes with the server, and the device name asked for ('' for none)."""

    volume_uid: str = ""
    snapshot_uid: str = ""
    size_gib: int = 0
    volume_type: str = ""
    delete_on_termination: bool = False
    device_name: str = ""


@dataclass(frozen=True)
class BootDisk:
    """What the mappings ask for: a boot volume's id, or an image's id (either may be ''),
    the size of a new boot volume made from that image (0: none), or the id of a snapshot
    to make it from (its size: 0 for the snapshot's), a new boot volume's type (an id or a
    name; '': the default), whether the boot volume goes with the server, and the other
    volumes to attach."""

    volume_uid: str = ""
    image_uid: str = ""
    new_volume_gib: int = 0
    snapshot_uid: str = ""
    volume_type: str = ""
    delete_on_termination: bool = False
    extra: tuple[ExtraVolume, ...] = ()


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


def _uid(mapping: dict[str, Any], source: str) -> str:
    uid = mapping.get("uuid")
    if not isinstance(uid, str) or not uid:
        raise invalid(f"a block device of source_type {source!r} needs the {source}'s uuid")
    return uid


def _size(mapping: dict[str, Any]) -> int:
    try:
        size = int(mapping.get("volume_size") or 0)
    except (TypeError, ValueError):
        raise invalid(f"Invalid volume_size {mapping.get('volume_size')!r}") from None
    if size < 0:
        raise invalid(f"Invalid volume_size {size}")
    return size


def _volume_type(mapping: dict[str, Any], source: str) -> str:
    """The mapping's `volume_type` ('' for none); 400 with an existing volume (as in Nova:
    the type is for the volumes it makes)."""
    wanted = mapping.get("volume_type")
    if wanted is None:
        return ""
    if source == "volume" or not isinstance(wanted, str):
        raise invalid(
            "volume_type is for the volumes made from a block device mapping of "
            "source_type 'blank', 'image' or 'snapshot'"
        )
    return wanted


def _boot_volume(mapping: dict[str, Any], source: str) -> BootDisk:
    """The boot disk of a mapping with boot index 0 and destination `volume`."""
    uid = _uid(mapping, source)
    kind = _volume_type(mapping, source)
    delete = _flag(mapping, "delete_on_termination")
    if source == "volume":
        return BootDisk(volume_uid=uid, delete_on_termination=delete)
    size = _size(mapping)
    if source == "snapshot":
        return BootDisk(
            snapshot_uid=uid, new_volume_gib=size, volume_type=kind, delete_on_termination=delete
        )
    if size == 0:
        raise invalid(
            "Images with destination_type 'volume' need to have a non-zero size specified"
        )
    return BootDisk(
        image_uid=uid, new_volume_gib=size, volume_type=kind, delete_on_termination=delete
    )


def _extra_volume(mapping: dict[str, Any], source: str) -> ExtraVolume:
    """The volume of a mapping to a volume that is not the boot one."""
    if source not in ("volume", "blank", "snapshot"):
        raise invalid(_OTHER_SOURCES)
    kind = _volume_type(mapping, source)
    delete = _flag(mapping, "delete_on_termination")
    device = mapping.get("device_name") or ""
    if not isinstance(device, str):
        raise invalid(f"Invalid device_name {device!r}")
    if source == "volume":
        uid = _uid(mapping, source)
        return ExtraVolume(volume_uid=uid, delete_on_termination=delete, device_name=device)
    size = _size(mapping)
    if source == "blank" and size == 0:
        raise invalid("a block device of source_type 'blank' needs a volume_size")
    snapshot = _uid(mapping, source) if source == "snapshot" else ""
    return ExtraVolume(
        snapshot_uid=snapshot, size_gib=size, volume_type=kind,
        delete_on_termination=delete, device_name=device,
    )  # fmt: skip


def _refuse_local_disk(mapping: dict[str, Any]) -> None:
    """400 for a swap or ephemeral disk of some size: Kumo's flavors allow none."""
    if mapping.get("guest_format") == "swap":
        raise invalid("Swap drive requested is larger than instance type allows.")
    if _size(mapping):
        raise invalid("Ephemeral disks requested are larger than the instance type allows.")


def read_mappings(mappings: Any) -> BootDisk:
    """The boot disk the mappings describe; 400 for what Kumo cannot do (see above)."""
    if mappings is None:
        return BootDisk()
    if not isinstance(mappings, list) or not all(isinstance(m, dict) for m in mappings):
        raise invalid("block_device_mapping_v2 must be a list of objects")
    disk = BootDisk()
    volume: BootDisk | None = None
    extra: list[ExtraVolume] = []
    for mapping in mappings:
        source = mapping.get("source_type")
        destination = mapping.get("destination_type") or "volume"
        boot = _boot_index(mapping) == 0
        if destination == "local":
            if source == "image" and not boot:
                raise invalid("Mapping image to local is not supported.")
            if boot and source == "image" and mapping.get("uuid"):
                disk = BootDisk(image_uid=str(mapping["uuid"]))
            elif source == "blank":
                _refuse_local_disk(mapping)
            continue
        if destination != "volume":
            raise invalid(f"Invalid destination_type {destination!r}")
        if not boot:
            extra.append(_extra_volume(mapping, source))
            continue
        if source not in ("volume", "image", "snapshot"):
            raise invalid(_SOURCES)
        if volume is not None:
            raise invalid("only one block device may have boot_index 0")
        volume = _boot_volume(mapping, source)
    if volume is None:
        return replace(disk, extra=tuple(extra))
    return replace(volume, image_uid=volume.image_uid or disk.image_uid, extra=tuple(extra))


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


async def find_volume_type(backend: Any, scope: Scope, wanted: str) -> str:
    """The name of the volume type with this id, Kumo id or name; 400 (a bad block device
    mapping) when there is none."""
    stub = backend.stub(srpc.StorageServiceStub)
    request = sapi.ListVolumeTypesRequest()
    async for kind in every(backend, stub.ListVolumeTypes, request, "volume_types", scope.token):
        if is_volume_type(kind, wanted):
            return str(kind.name)
    raise invalid(f"Block Device Mapping is Invalid: volume type {wanted} could not be found.")


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
