"""ComputeService: flavors, key pairs, server groups and instances.

The servicer is assembled from one part per concern; each part's module says
what its methods check and raise.
"""

from __future__ import annotations

from kumo.compute.v1 import compute_service_pb2_grpc as rpc
from kumo.server.runtime import Runtime
from kumo.server.services.compute.evacuation import InstanceEvacuationMethods
from kumo.server.services.compute.flavors import FlavorMethods
from kumo.server.services.compute.interface_actions import InstanceInterfaceMethods
from kumo.server.services.compute.key_pairs import KeyPairMethods
from kumo.server.services.compute.maintenance import HostMaintenanceMethods
from kumo.server.services.compute.migration import InstanceMigrationMethods
from kumo.server.services.compute.resize import InstanceResizeMethods
from kumo.server.services.compute.server_groups import ServerGroupMethods


class ComputeService(
    FlavorMethods,
    KeyPairMethods,
    ServerGroupMethods,
    InstanceResizeMethods,
    InstanceMigrationMethods,
    HostMaintenanceMethods,
    InstanceEvacuationMethods,
    InstanceInterfaceMethods,
    rpc.ComputeServiceServicer,
):
    """The compute servicer."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self.register_instance_handlers()
        self.register_migration_handlers()
        self.register_maintenance_handlers()
