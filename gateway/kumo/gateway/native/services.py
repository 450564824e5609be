"""The gRPC services the native REST API exposes (the agent's contract is internal)."""

from __future__ import annotations

from google.longrunning import operations_proto_pb2
from google.protobuf.descriptor import ServiceDescriptor

from kumo.compute.v1 import compute_service_pb2
from kumo.identity.v1 import identity_service_pb2
from kumo.image.v1 import image_service_pb2
from kumo.network.v1 import network_service_pb2
from kumo.storage.v1 import storage_service_pb2
from kumo.topology.v1 import topology_service_pb2

# One line per domain.
SERVICES: tuple[ServiceDescriptor, ...] = (
    identity_service_pb2.DESCRIPTOR.services_by_name["IdentityService"],
    topology_service_pb2.DESCRIPTOR.services_by_name["TopologyService"],
    image_service_pb2.DESCRIPTOR.services_by_name["ImageService"],
    compute_service_pb2.DESCRIPTOR.services_by_name["ComputeService"],
    network_service_pb2.DESCRIPTOR.services_by_name["NetworkService"],
    storage_service_pb2.DESCRIPTOR.services_by_name["StorageService"],
    operations_proto_pb2.DESCRIPTOR.services_by_name["Operations"],
)
