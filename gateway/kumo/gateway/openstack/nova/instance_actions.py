"""Nova's `/servers/{id}/os-instance-actions[/{request_id}]`: a server's actions are the
operations on its instance (ListOperations by target), newest first.

An action's `request_id` is the request id of the call that started it (through this
gateway, the `x-openstack-request-id` the client got back; `req-<operation id>` for an
operation that recorded none) and `user_id` the user who made it. Events, one per action
(started, finished, result), are for cloud administrators only, as in Nova before 2.51.
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
from kumo.gateway.openstack.nova.base import NovaBase
from kumo.gateway.openstack.paging import MAX_SCAN, PAGE
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
}
_WORD = re.compile(r"(?<!^)(?=[A-Z])")


def _metadata(operation: operations_pb2.Operation) -> operation_metadata_pb2.OperationMetadata:
    metadata = operation_metadata_pb2.OperationMetadata()
    operation.metadata.Unpack(metadata)
    return metadata


def request_id_of(operation: operations_pb2.Operation) -> str:
    """The action's request id: the operation's, else one made from its id."""
    return _metadata(operation).request_id or f"req-{last_segment(operation.name)}"


def _view(operation: operations_pb2.Operation, server: cpb.Instance) -> dict[str, Any]:
    metadata = _metadata(operation)
    return {
        "action": _ACTIONS.get(metadata.verb, _WORD.sub("_", metadata.verb).lower()),
        "instance_uuid": server.uid,
        "message": "Error" if operation.HasField("error") else None,
        "project_id": server.name.split("/")[1],
        "request_id": request_id_of(operation),
        "start_time": iso(metadata.create_time, micro=True),
        "user_id": last_segment(metadata.requester) or None,
    }


def _event(operation: operations_pb2.Operation, action: str) -> dict[str, Any]:
    metadata = _metadata(operation)
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

    @property
    def operations(self) -> operations_pb2_grpc.OperationsStub:
        return self.backend.stub(operations_pb2_grpc.OperationsStub)

    async def _operations(self, scope: Scope, server: cpb.Instance) -> list[Any]:
        """The operations on this server (not on an earlier one of the same name), newest
        first."""
        request = operations_pb2.ListOperationsRequest(
            name="operations", filter=f'target = "{server.name}"', page_size=PAGE
        )
        found: list[Any] = []
        while len(found) < MAX_SCAN:
            answer = await self.call(self.operations.ListOperations, request, scope)
            found.extend(answer.operations)
            request.page_token = answer.next_page_token
            if not request.page_token:
                break
        since = server.create_time.ToNanoseconds()
        return [op for op in found if _metadata(op).create_time.ToNanoseconds() >= since]

    async def list(self, request: Request) -> Response:
        """GET /servers/{id}/os-instance-actions."""
        scope, version = await self.begin(request)
        server = await self.server_of(scope, request)
        actions = [_view(op, server) for op in await self._operations(scope, server)]
        return self.reply(version, {"instanceActions": actions})

    async def show(self, request: Request) -> Response:
        """GET /servers/{id}/os-instance-actions/{request_id}; 404 if no action has it."""
        scope, version = await self.begin(request)
        server = await self.server_of(scope, request)
        wanted = request.path_params["request_id"]
        for operation in await self._operations(scope, server):
            if request_id_of(operation) == wanted:
                action = _view(operation, server)
                if scope.cloud_admin:
                    action["events"] = [_event(operation, action["action"])]
                return self.reply(version, {"instanceAction": action})
        raise RpcFailure.of(
            grpc.StatusCode.NOT_FOUND,
            f"Action for request_id {wanted} on instance {server.uid} not found",
        )
