"""AttachNetworkInterface and DetachNetworkInterface: an instance's interfaces after its
create.

Both change a settled (RUNNING or STOPPED) instance in one transaction: attach gives the
new interface its port (interfaces.attach_interface: a new port through the network
service's path, so tenancy, IPAM, security groups and the `ports` quota apply, or an
existing unused port of the project, adopted) bound on the instance's host; detach
deletes the interface's port if Kumo made it (its quota given back) and frees an adopted
one. Either bumps the instance's generation, so its host's agent gets the new list of
NICs and plugs or unplugs the one that changed (hot-plugged into a running guest, and in
the guest's definition either way); the operation (an ACTION, as a power action) ends
once the host reports that generation carried out. The network reconciler, woken, makes,
changes or drops the port in OVN.

Raises FailedPrecondition (busy, migrating, locked, not RUNNING or STOPPED; PORT_IN_USE),
InvalidArgument (no network or port, a malformed name, a port named with a network or
security groups, eight interfaces already), NotFound (the instance, a network or port
the caller cannot use, a port that is not the instance's interface), and the `ports`
quota's ResourceExhausted.
"""

from __future__ import annotations

from google.longrunning import operations_pb2

from kumo.compute.v1 import compute_service_pb2 as api
from kumo.compute.v1 import resources_pb2 as pb
from kumo.server.auth.principal import current_principal
from kumo.server.db.models import InstanceRow
from kumo.server.errors import InvalidArgument
from kumo.server.interceptors.base import Context
from kumo.server.services.compute import interfaces
from kumo.server.services.compute.common import session_of
from kumo.server.services.compute.instances import InstanceMethods
from kumo.server.services.network.common import PORTS

_SETTLED = (pb.Instance.STATE_RUNNING, pb.Instance.STATE_STOPPED)


class InstanceInterfaceMethods(InstanceMethods):
    """Attaching and detaching network interfaces (a part of the compute servicer)."""

    async def AttachNetworkInterface(
        self, request: api.AttachNetworkInterfaceRequest, context: Context
    ) -> operations_pb2.Operation:
        if not request.HasField("network_interface"):
            raise InvalidArgument.field("network_interface", "describe the interface to add")
        caller = current_principal()

        def attach(row: InstanceRow) -> None:
            interfaces.attach_interface(session_of(row), caller, row, request.network_interface)

        operation = await self._action(request, "AttachNetworkInterface", attach, _SETTLED)
        self.runtime.network_changed()
        return operation

    async def DetachNetworkInterface(
        self, request: api.DetachNetworkInterfaceRequest, context: Context
    ) -> operations_pb2.Operation:
        if not request.port:
            raise InvalidArgument.field("port", "name the interface's port")
        PORTS.key(request.port, "port")  # InvalidArgument if malformed

        def detach(row: InstanceRow) -> None:
            interfaces.detach_interface(session_of(row), row, request.port)

        operation = await self._action(request, "DetachNetworkInterface", detach, _SETTLED)
        self.runtime.network_changed()
        return operation
