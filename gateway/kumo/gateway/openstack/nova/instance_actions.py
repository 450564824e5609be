"""Nova's `/servers/{id}/os-instance-actions[/{request_id}]`: a server's actions are the
operations on its instance (ListOperations by target), newest first.

An action's `request_id` is the request id of the call that started it (through this
gateway, the `x-openstack-request-id` the client got back; `req-<operation id>` for an
operation that recorded none) and `user_id` the user who made it. Events, one per action
(started, finished, result), are for cloud administrators only before microversion 2.51,
then for everyone (without `traceback`), as in Nova.
Operations on the server's volumes (attach, detach) target the volumes and are not listed.
"""

from __future__ import annotations

import re
from typing import Any

import grpc
from google.longrunning import operations_pb2, operations_pb2_grpc
from starlette.requests import Request
from starlette.responses import Response

from kumo.compute.v1 import resources_pb2 as cpb
from kumo.gateway.errors import RpcFailure
from kumo.gateway.openstack.common import Scope, iso, last_segment
from kumo.gateway.openstack.microversions import Version
from kumo.gateway.openstack.nova.base import NovaBase
from kumo.gateway.openstack.paging import every
from kumo.type.v1 import operation_metadata_pb2

# Kumo method -> Nova action
_ACTIONS = {
    "CreateInstance": "create",
    "DeleteInstance": "delete",
    "StartInstance": "start",
    "StopInstance": "stop",
    "RebootInstance": "reboot",
    "SuspendInstance": "suspend",
    "ResumeInstance": "resume",
    "ResizeInstance": "resize",
    "ConfirmResizeInstance": "confirmResize",
    "RevertResizeInstance": "revertResize",
    "RebuildInstance": "rebuild",
    "SnapshotInstance": "createImage",
    "MigrateInstance": "migrate",
    "EvacuateInstance": "evacuate",
    "UpdateInstance": "update",
    "AttachNetworkInterface": "attach_interface",
    "DetachNetworkInterface": "detach_interface",
}
_WORD = re.compile(r"(?<!^)(?=[A-Z])")


Metadata = operation_metadata_pb2.OperationMetadata


def request_id_of(operation: operations_pb2.Operation, metadata: Metadata) -> str:
    """The action's request id: the operation's, else one made from its id."""
    return metadata.request_id or f"req-{last_segment(operation.name)}"


def _view(
    operation: operations_pb2.Operation, metadata: Metadata, server: cpb.Instance
) -> dict[str, Any]:
    return {
        "action": _ACTIONS.get(metadata.verb, _WORD.sub("_", metadata.verb).lower()),
        "instance_uuid": server.uid,
        "message": "Error" if operation.HasField("error") else None,
        "project_id": server.name.split("/")[1],
        "request_id": request_id_of(operation, metadata),
        "start_time": iso(metadata.create_time, micro=True),
        "user_id": last_segment(metadata.requester) or None,
    }


def _event(operation: operations_pb2.Operation, metadata: Metadata, action: str) -> dict[str, Any]:
    result = None
    if operation.done:
        result = "Error" if operation.HasField("error") else "Success"
    return {
        "event": "compute_" + _WORD.sub("_", action).lower(),
        "start_time": iso(metadata.create_time, micro=True),
        "finish_time": iso(metadata.end_time, micro=True),
        "result": result,
        "traceback": None,
    }


class InstanceActions(NovaBase):
    """GET `/os-instance-actions` and `/os-instance-actions/{request_id}`."""

    async def _operations(
        self, scope: Scope, server: cpb.Instance
    ) -> list[tuple[operations_pb2.Operation, Metadata]]:
        """The operations on this server (not on an earlier one of the same name) with
        their metadata, newest first."""
        request = operations_pb2.ListOperationsRequest(
            name="operations", filter=f'target = "{server.name}"'
        )
        stub = self.backend.stub(operations_pb2_grpc.OperationsStub)
        since = server.create_time.ToNanoseconds()
        found = []
        async for operation in every(
            self.backend, stub.ListOperations, request, "operations", scope.token
        ):
            metadata = Metadata()
            operation.metadata.Unpack(metadata)
            if metadata.create_time.ToNanoseconds() >= since:
                found.append((operation, metadata))
        return found

    async def list(self, request: Request) -> Response:
        """GET /servers/{id}/os-instance-actions."""
        scope, version = await self.begin(request)
        server = await self.server_of(scope, request)
        actions = [_view(op, meta, server) for op, meta in await self._operations(scope, server)]
        return self.reply(version, {"instanceActions": actions})

    async def show(self, request: Request) -> Response:
        """GET /servers/{id}/os-instance-actions/{request_id}; 404 if no action has it."""
        scope, version = await self.begin(request)
        server = await self.server_of(scope, request)
        wanted = request.path_params["request_id"]
        for operation, metadata in await self._operations(scope, server):
            if request_id_of(operation, metadata) == wanted:
                action = _view(operation, metadata, server)
                if scope.cloud_admin or version >= Version(2, 51):
                    event = _event(operation, metadata, action["action"])
                    if not scope.cloud_admin:
                        del event["traceback"]
                    action["events"] = [event]
                return self.reply(version, {"instanceAction": action})
        raise RpcFailure.of(
            grpc.StatusCode.NOT_FOUND,
            f"Action for request_id {wanted} on instance {server.uid} not found",
        )
