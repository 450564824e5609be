"""What a new all-in-one cloud starts with, created through the API. Idempotent.

A region `local` → zone `local-1` → KVM pool `local-kvm` → rack `local-rack`,
three flavors (`tiny`, `small`, `medium`) and, when the tiny guest image has
been built (scripts/build-image), the public image `projects/admin/images/kumo-tiny`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import grpc

from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import compute_service_pb2_grpc as crpc
from kumo.compute.v1 import resources_pb2 as cpb
from kumo.image.v1 import image_service_pb2 as iapi
from kumo.image.v1 import image_service_pb2_grpc as irpc
from kumo.image.v1 import resources_pb2 as ipb
from kumo.topology.v1 import resources_pb2 as tpb
from kumo.topology.v1 import topology_service_pb2 as tapi
from kumo.topology.v1 import topology_service_pb2_grpc as trpc

REGION, ZONE, POOL, RACK = "local", "local-1", "local-kvm", "local-rack"
FLAVORS = {"tiny": (1, 128, 1), "small": (1, 512, 5), "medium": (2, 2048, 20)}
IMAGE_ID = "kumo-tiny"
CHUNK = 1 << 20


async def _exists_ok(call: Awaitable[Any]) -> None:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.ALREADY_EXISTS:
            raise


async def seed(
    channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...], image: Path | None
) -> str:
    """Creates the defaults that are missing; returns the default image's name ('' if none)."""
    topology = trpc.TopologyServiceStub(channel)
    await _exists_ok(
        topology.CreateRegion(
            tapi.CreateRegionRequest(
                region_id=REGION, region=tpb.Region(display_name="This machine")
            ),
            metadata=metadata,
        )
    )
    await _exists_ok(
        topology.CreateZone(
            tapi.CreateZoneRequest(zone_id=ZONE, zone=tpb.Zone(region=f"regions/{REGION}")),
            metadata=metadata,
        )
    )
    await _exists_ok(
        topology.CreatePool(
            tapi.CreatePoolRequest(
                pool_id=POOL,
                pool=tpb.Pool(zone=f"zones/{ZONE}", hypervisor_kind=tpb.HYPERVISOR_KIND_KVM),
            ),
            metadata=metadata,
        )
    )
    await _exists_ok(
        topology.CreateRack(
            tapi.CreateRackRequest(rack_id=RACK, rack=tpb.Rack(pool=f"pools/{POOL}")),
            metadata=metadata,
        )
    )
    compute = crpc.ComputeServiceStub(channel)
    for flavor_id, (vcpus, memory, disk) in FLAVORS.items():
        flavor = cpb.Flavor(vcpus=vcpus, memory_mib=memory, disk_gib=disk)
        await _exists_ok(
            compute.CreateFlavor(
                capi.CreateFlavorRequest(flavor_id=flavor_id, flavor=flavor), metadata=metadata
            )
        )
    if image is None or not image.exists():
        return ""
    return await _seed_image(irpc.ImageServiceStub(channel), metadata, image)


async def _seed_image(
    images: irpc.ImageServiceStub, metadata: tuple[tuple[str, str], ...], path: Path
) -> str:
    name = f"projects/admin/images/{IMAGE_ID}"
    try:
        current = await images.GetImage(iapi.GetImageRequest(name=name), metadata=metadata)
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
        current = None
    if current is not None and current.state == ipb.Image.STATE_ACTIVE:
        return name
    if current is not None and current.state != ipb.Image.STATE_PENDING_UPLOAD:
        return ""  # ERROR or DELETING: an administrator's call
    if current is None:
        facts = (
            json.loads(path.with_suffix(".json").read_text())
            if path.with_suffix(".json").exists()
            else {}
        )
        await images.CreateImage(
            iapi.CreateImageRequest(
                parent="projects/admin",
                image_id=IMAGE_ID,
                image=ipb.Image(
                    display_name="Kumo tiny test guest",
                    description="Debian kernel + busybox: prints KUMO_BOOT_OK and its "
                    "hostname on the serial console",
                    disk_format=ipb.DISK_FORMAT_QCOW2,
                    visibility=ipb.VISIBILITY_PUBLIC,
                    min_ram_mib=int(facts.get("min_ram_mib", 128)),
                    min_disk_gib=int(facts.get("min_disk_gib", 1)),
                ),
            ),
            metadata=metadata,
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()

    async def chunks() -> AsyncIterator[iapi.UploadImageDataRequest]:
        yield iapi.UploadImageDataRequest(name=name, expected_sha256=digest)
        with path.open("rb") as handle:
            while data := handle.read(CHUNK):
                yield iapi.UploadImageDataRequest(data=data)

    await images.UploadImageData(chunks(), metadata=metadata)
    return name
