"""NetworkService: networks, subnets, ports, routers, floating IPs, security groups.

Every call changes desired state in one transaction and returns at once; the
network reconciler (kumo.server.network.reconciler) converges the backend and
sets each resource's `state`. The servicer is assembled from one part per
resource; each part's module says what its methods check and raise.
"""

from __future__ import annotations

from kumo.network.v1 import network_service_pb2_grpc as rpc
from kumo.server.runtime import Runtime
from kumo.server.services.network.cleanup import cleanup_project
from kumo.server.services.network.floating_ips import FloatingIpMethods
from kumo.server.services.network.networks import NetworkMethods
from kumo.server.services.network.ports import PortMethods
from kumo.server.services.network.routers import RouterMethods
from kumo.server.services.network.security_groups import SecurityGroupMethods
from kumo.server.services.network.subnets import SubnetMethods


class NetworkService(
    NetworkMethods,
    SubnetMethods,
    PortMethods,
    RouterMethods,
    FloatingIpMethods,
    SecurityGroupMethods,
    rpc.NetworkServiceServicer,
):
    """The network servicer."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        runtime.project_cleanups.append(cleanup_project)
