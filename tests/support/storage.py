"""Helpers for block storage tests: stubs, volume types and volumes over a real channel."""

from __future__ import annotations

import grpc
from google.longrunning import operations_pb2

from kumo.storage.v1 import resources_pb2 as spb
from kumo.storage.v1 import storage_service_pb2 as sapi
from kumo.storage.v1 import storage_service_pb2_grpc as srpc
from tests.support.cloud import Stubs, unique


def storage(stubs: Stubs) -> srpc.StorageServiceStub:
    """The storage stub on the stubs' (authenticated) channel."""
    return srpc.StorageServiceStub(stubs.channel)


def wait(stubs: Stubs, operation: operations_pb2.Operation) -> operations_pb2.Operation:
    """The operation once done (fails the test if it is not done within the wait)."""
    done: operations_pb2.Operation = stubs.operations.WaitOperation(
        operations_pb2.WaitOperationRequest(name=operation.name)
    )
    assert done.done, done
    return done


def succeed(stubs: Stubs, operation: operations_pb2.Operation) -> operations_pb2.Operation:
    """The operation once done; fails the test with its error if it failed."""
    done = wait(stubs, operation)
    assert not done.HasField("error"), done.error
    return done


def make_type(admin: Stubs, backend: int, pool: str, **fields: object) -> str:
    """Creates a volume type; returns its name."""
    created = storage(admin).CreateVolumeType(
        sapi.CreateVolumeTypeRequest(
            volume_type_id=unique("vt"),
            volume_type=spb.VolumeType(backend=backend, pool=pool, **fields),  # type: ignore[arg-type]
        )
    )
    return str(created.name)


def create_volume(
    stubs: Stubs, parent: str, volume_type: str, size_gib: int = 1, **fields: object
) -> spb.Volume:
    """Creates a volume and waits for it; returns it (AVAILABLE, or ERROR with the reason)."""
    volume_id = unique("vol")
    operation = storage(stubs).CreateVolume(
        sapi.CreateVolumeRequest(
            parent=parent,
            volume_id=volume_id,
            volume=spb.Volume(volume_type=volume_type, size_gib=size_gib, **fields),  # type: ignore[arg-type]
        )
    )
    wait(stubs, operation)
    volume: spb.Volume = storage(stubs).GetVolume(
        sapi.GetVolumeRequest(name=f"{parent}/volumes/{volume_id}")
    )
    return volume


def ensure_default_type(admin: Stubs) -> str:
    """Makes the cloud's default volume type `local` (qcow2; `kumo up` makes it) unless it
    exists; returns its id."""
    try:
        storage(admin).CreateVolumeType(
            sapi.CreateVolumeTypeRequest(
                volume_type_id="local",
                volume_type=spb.VolumeType(backend=spb.BACKEND_QCOW2, pool="local"),
            )
        )
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.ALREADY_EXISTS, error
    return "local"
