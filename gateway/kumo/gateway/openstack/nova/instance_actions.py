"""Nova's `/servers/{id}/os-instance-actions[/{request_id}]`: a server's actions are the
operations on its instance (ListOperations by target), newest first.

An action's `request_id` is the request id of the call that started it (through this
gateway, the `x-openstack-request-id` the client got back; `req-<operation id>` for an
operation that recorded none) and `user_id` the user who made it. Events, one per action
(started, finished, result), are for cloud administrators only before microversion 2.51,
then for everyone (without `traceback`), as in Nova. From 2.58 an action has `updated_at`
(its end, or its start while it runs) and the list takes `changes-since` (from 2.66
`changes-before` too), `marker` (a request id) and `limit`, with a `next` link when a
page is full. From 2.62 an event has
`hostId` (and `host`, for cloud administrators): the server's host, where the action ran
unless the server has moved since. From 2.84 an event has `details`: a failed one's error
message (the operation's), null otherwise.
Attaching a volume to the server or detaching one (AttachVolume, DetachVolume: operations
on the volume, with the server as their `related` resource) are its `attach_volume` and
`detach_volume` actions, as in Nova.
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import timestamp_pb2
from starlette.requests import Request
from starlette.responses import Response

from kumo.compute.v1 import resources_pb2 as cpb
from kumo.gateway.dialect import invalid
from kumo.gateway.errors import RpcFailure
from kumo.gateway.openstack.common import Scope, iso, last_segment
from kumo.gateway.openstack.microversions import Version
from kumo.gateway.openstack.nova import views
from kumo.gateway.openstack.nova.base import NovaBase
from kumo.gateway.openstack.nova.changes import changes
from kumo.gateway.openstack.paging import Page, every
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
    "AttachVolume": "attach_volume",
    "DetachVolume": "detach_volume",
}
_WORD = re.compile(r"(?<!^)(?=[A-Z])")
V2_58, V2_62, V2_84 = Version(2, 58), Version(2, 62), Version(2, 84)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


Metadata = operation_metadata_pb2.OperationMetadata


def request_id_of(operation: operations_pb2.Operation, metadata: Metadata) -> str:
    """The action's request id: the operation's, else one made from its id."""
    return metadata.request_id or f"req-{last_segment(operation.name)}"


def _updated(metadata: Metadata) -> timestamp_pb2.Timestamp:
    """When the action last changed: its end, or its start while it runs."""
    return metadata.end_time if metadata.HasField("end_time") else metadata.create_time


def _view(
    operation: operations_pb2.Operation,
    metadata: Metadata,
    server: cpb.Instance,
    version: Version,
) -> dict[str, Any]:
    view = {
        "action": _ACTIONS.get(metadata.verb, _WORD.sub("_", metadata.verb).lower()),
        "instance_uuid": server.uid,
        "message": "Error" if operation.HasField("error") else None,
        "project_id": server.name.split("/")[1],
        "request_id": request_id_of(operation, metadata),
        "start_time": iso(metadata.create_time, micro=True),
        "user_id": last_segment(metadata.requester) or None,
    }
    if version >= V2_58:
        view["updated_at"] = iso(_updated(metadata), micro=True)
    return view


def _micros(when: datetime) -> int:
    """Microseconds since the epoch: the precision of the times an action shows."""
    return (when - _EPOCH) // timedelta(microseconds=1)


def _page(
    found: list[tuple[operations_pb2.Operation, Metadata]], request: Request, version: Version
) -> list[tuple[operations_pb2.Operation, Metadata]]:
    """Microversion 2.58's filter and paging of the actions (newest first): those updated at
    or after `changes-since` (and from 2.66 at or before `changes-before`), after the action
    whose request id is `marker` (400 if none has it), at most `limit` (400 unless a
    positive integer)."""
    window = changes(request.query_params, version)
    if window.asked:
        low = _micros(window.since) if window.since else 0
        high = _micros(window.before) if window.before else sys.maxsize
        found = [(op, m) for op, m in found if low <= _updated(m).ToMicroseconds() <= high]
    if marker := request.query_params.get("marker"):
        ids = [request_id_of(op, meta) for op, meta in found]
        if marker not in ids:
            raise invalid(f"Marker {marker} could not be found.")
        found = found[ids.index(marker) + 1 :]
    if (limit := request.query_params.get("limit")) is not None:
        if not limit.isdigit() or int(limit) < 1:
            raise invalid(f"Invalid input for query parameters limit. Value: {limit}.")
        found = found[: int(limit)]
    return found


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
        """The operations on this server, or that attach volumes to it or detach them (not
        on an earlier server of the same name), with their metadata, newest first."""
        request = operations_pb2.ListOperationsRequest(
            name="operations", filter=f'(target = "{server.name}" OR related = "{server.name}")'
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
        found = await self._operations(scope, server)
        if version >= V2_58:
            found = _page(found, request, version)
        actions = [_view(op, meta, server, version) for op, meta in found]
        body: dict[str, Any] = {"instanceActions": actions}
        limit = request.query_params.get("limit")
        if version >= V2_58 and actions and limit is not None and len(actions) == int(limit):
            page = Page(actions, str(actions[-1]["request_id"]))
            path = f"{self.base(request)}/compute/v2.1/servers/{server.uid}/os-instance-actions"
            body["links"] = [{"rel": "next", "href": page.next_href(request, path)}]
        return self.reply(version, body)

    async def show(self, request: Request) -> Response:
        """GET /servers/{id}/os-instance-actions/{request_id}; 404 if no action has it."""
        scope, version = await self.begin(request)
        server = await self.server_of(scope, request)
        wanted = request.path_params["request_id"]
        for operation, metadata in await self._operations(scope, server):
            if request_id_of(operation, metadata) == wanted:
                action = _view(operation, metadata, server, version)
                if scope.cloud_admin or version >= Version(2, 51):
                    event = _event(operation, metadata, action["action"])
                    if not scope.cloud_admin:
                        del event["traceback"]
                    if version >= V2_62:  # the server's host (where it ran, unless moved)
                        host = server.host
                        if scope.cloud_admin:
                            event["host"] = last_segment(host) or None
                        event["hostId"] = views.host_id(action["project_id"], host) if host else ""
                    if version >= V2_84:
                        failed = operation.HasField("error")
                        event["details"] = (operation.error.message or None) if failed else None
                    action["events"] = [event]
                return self.reply(version, {"instanceAction": action})
        raise RpcFailure.of(
            grpc.StatusCode.NOT_FOUND,
            f"Action for request_id {wanted} on instance {server.uid} not found",
        )
