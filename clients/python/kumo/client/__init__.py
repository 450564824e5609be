"""Kumo's Python client: a thin layer over the generated gRPC stubs.

    from kumo.client import Client
    client, token = Client.login("127.0.0.1:7900", "admin", "secret", "admin")
    projects = client.identity.ListProjects(ListProjectsRequest()).projects
    client.upload_image("projects/admin/images/disk", "disk.qcow2")

Request and response messages are the generated ones (`kumo.identity.v1`,
`kumo.topology.v1`, `kumo.image.v1`, `kumo.compute.v1`,
`google.longrunning.operations_pb2`). Every call raises KumoError on failure.
"""

from kumo.client._client import (
    DEFAULT_TIMEOUT,
    Client,
    ResponseStream,
    Service,
    invoke,
    operation_metadata,
)
from kumo.client.errors import KumoError, OperationTimeoutError
from kumo.client.names import (
    full_name,
    instance_name,
    project_resource_name,
    role_assignment_name,
    short_id,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "Client",
    "KumoError",
    "OperationTimeoutError",
    "ResponseStream",
    "Service",
    "full_name",
    "instance_name",
    "invoke",
    "operation_metadata",
    "project_resource_name",
    "role_assignment_name",
    "short_id",
]
