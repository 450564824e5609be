"""Waiting, within a request, for an operation a dialect started (as Nova waits for an
interface to be plugged or unplugged before it answers)."""

from __future__ import annotations

from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import duration_pb2

from kumo.gateway import context
from kumo.gateway.errors import RpcFailure
from kumo.gateway.grpc_backend import Backend
from kumo.gateway.openstack.common import Scope

#: The longest a request waits for an operation (the request's own deadline permitting).
WAIT_SECONDS = 50.0


async def settled(
    backend: Backend, scope: Scope, operation: operations_pb2.Operation
) -> operations_pb2.Operation:
    """The operation once done, or as it is after WAIT_SECONDS (less if the request has less
    time left). Raises its error (RpcFailure) if it failed."""
    left = min(WAIT_SECONDS, context.current().remaining() - 1.0)
    if left > 0 and not operation.done:
        operation = await backend.call(
            backend.stub(operations_pb2_grpc.OperationsStub).WaitOperation,
            operations_pb2.WaitOperationRequest(
                name=operation.name, timeout=duration_pb2.Duration(seconds=int(left))
            ),
            scope.token,
        )
    if operation.done and operation.HasField("error"):
        raise RpcFailure(operation.error)
    return operation
