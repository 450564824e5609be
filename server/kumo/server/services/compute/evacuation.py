"""EvacuateInstance: rebuild an instance whose host is DOWN on another host.

In one transaction the instance lets go of its dead host (claims released, no
host) and a BUILD operation starts, which places and builds it again as for a
new instance (instance_operations.py), from its image: the content of its local
disk is lost, as with Nova's evacuate without shared storage. A stopped instance
is built and left stopped. The instance's requested host becomes `host` (or
none). The old host, if it returns, no longer has the
instance among its assignments and destroys its copy at its first full resync.

Raises FailedPrecondition (its host is not DOWN, it is being deleted or migrated,
or it has no host), InvalidArgument (`host` is its own), NotFound.
"""

from __future__ import annotations

from google.longrunning import operations_pb2
from sqlalchemy.orm import Session

from kumo.compute.v1 import compute_service_pb2 as api
from kumo.compute.v1 import resources_pb2 as pb
from kumo.server.api.idempotency import idempotent
from kumo.server.api.names import parse_one
from kumo.server.auth.principal import current_principal
from kumo.server.controllers import claims
from kumo.server.db.models import HostRow
from kumo.server.errors import FailedPrecondition, InvalidArgument
from kumo.server.interceptors.base import Context
from kumo.server.operations import store
from kumo.server.services.compute.instance_operations import BUILD
from kumo.server.services.compute.instances import (
    InstanceMethods,
    refuse_while_migrating,
    visible_instance,
)
from kumo.server.services.topology import host_state
from kumo.topology.v1 import resources_pb2 as tpb


class InstanceEvacuationMethods(InstanceMethods):
    """EvacuateInstance (a part of the compute servicer)."""

    async def EvacuateInstance(
        self, request: api.EvacuateInstanceRequest, context: Context
    ) -> operations_pb2.Operation:
        caller = current_principal()
        wanted = parse_one("host", request.host, "hosts/{host}") if request.host else None

        def start(session: Session) -> operations_pb2.Operation:
            row = visible_instance(session, caller, request.name)
            refuse_while_migrating(row, request.name)
            if row.deleting or row.host_id is None:
                raise FailedPrecondition(
                    f"{request.name} is not on a host to evacuate from",
                    type="INSTANCE_STATE",
                    subject=request.name,
                )
            host = session.get(HostRow, row.host_id)
            if host is not None and host_state(host, self.runtime) != tpb.Host.STATE_DOWN:
                raise FailedPrecondition(
                    f"host {row.host_id} is up: migrate the instance instead",
                    type="HOST_NOT_DOWN",
                    subject=f"hosts/{row.host_id}",
                )
            if wanted == row.host_id:
                raise InvalidArgument.field("host", "that is the host it is evacuated from")
            old = row.host_id
            claims.release(session, row.uid)
            row.host_id = None
            row.requested_host_id = wanted  # the old request named the dead host, maybe
            row.resize_from = None  # a pending resize is kept: it is rebuilt at its new size
            row.state = pb.Instance.STATE_PROVISIONING
            row.status_message = f"evacuating from host {old}"
            row.generation += 1
            row.version += 1
            operation = store.create(
                session,
                project_id=caller.project_id,
                kind=BUILD,
                target=request.name,
                payload=row.uid.encode(),
                status_message="EvacuateInstance",
                method="EvacuateInstance",
            )
            return store.to_proto(operation)

        operation = await idempotent(
            self.runtime.db, "EvacuateInstance", request, operations_pb2.Operation, start
        )
        self.runtime.operation_written()
        return operation
