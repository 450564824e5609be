"""The volume types a new all-in-one cloud starts with, created through the API. Idempotent.

`local` (qcow2 files under `<data_dir>/volumes/volumes`, the default type) always; `ceph`
(RBD, in `storage.rbd.pool`) when a Ceph cluster is configured.
"""

from __future__ import annotations

import grpc

from kumo.server.config import Config
from kumo.storage.v1 import resources_pb2 as spb
from kumo.storage.v1 import storage_service_pb2 as sapi
from kumo.storage.v1 import storage_service_pb2_grpc as srpc

LOCAL_POOL = "volumes"


async def seed_volume_types(
    channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...], config: Config
) -> list[str]:
    """Creates the missing default volume types; returns the names of all of them."""
    wanted = [(config.storage.default_type, spb.BACKEND_QCOW2, LOCAL_POOL, "Local qcow2 files")]
    if config.storage.rbd is not None:
        wanted.append(("ceph", spb.BACKEND_RBD, config.storage.rbd.pool, "Ceph RBD"))
    service = srpc.StorageServiceStub(channel)
    names = []
    for type_id, backend, pool, title in wanted:
        try:
            await service.CreateVolumeType(
                sapi.CreateVolumeTypeRequest(
                    volume_type_id=type_id,
                    volume_type=spb.VolumeType(backend=backend, pool=pool, display_name=title),
                ),
                metadata=metadata,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.ALREADY_EXISTS:
                raise
        names.append(f"volumeTypes/{type_id}")
    return names
