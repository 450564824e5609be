"""gRPC statuses of Kumo's services → EC2 error codes.

NOT_FOUND and ALREADY_EXISTS name the resource type (ResourceInfo), which picks EC2's
per-type code (`InvalidInstanceID.NotFound`, `InvalidKeyPair.Duplicate`, ...).
INVALID_ARGUMENT is InvalidParameterValue with the field violations in the message
(or the reference's not-found code when a violation says a referenced key pair or image
does not exist);
FAILED_PRECONDITION is the caller's code for the resource (IncorrectInstanceState by
default; DependencyViolation, VolumeInUse, IncorrectState for others); RESOURCE_EXHAUSTED is
InstanceLimitExceeded for instances (ResourceLimitExceeded otherwise); UNAUTHENTICATED
AuthFailure; PERMISSION_DENIED UnauthorizedOperation; UNIMPLEMENTED
UnsupportedOperation; UNAVAILABLE Unavailable; anything else InternalError (500,
without the server's text).
"""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from kumo.gateway.aws.errors import Ec2Error

NOT_FOUND = {
    "compute.kumo.dev/Instance": "InvalidInstanceID.NotFound",
    "compute.kumo.dev/KeyPair": "InvalidKeyPair.NotFound",
    "compute.kumo.dev/Flavor": "InvalidParameterValue",
    "image.kumo.dev/Image": "InvalidAMIID.NotFound",
    "topology.kumo.dev/Zone": "InvalidZone.NotFound",
    "topology.kumo.dev/Region": "InvalidParameterValue",
    "network.kumo.dev/Network": "InvalidVpcID.NotFound",
    "network.kumo.dev/Subnet": "InvalidSubnetID.NotFound",
    "network.kumo.dev/SecurityGroup": "InvalidGroup.NotFound",
    "network.kumo.dev/Port": "InvalidNetworkInterfaceID.NotFound",
    "network.kumo.dev/FloatingIp": "InvalidAllocationID.NotFound",
    "storage.kumo.dev/Volume": "InvalidVolume.NotFound",
    "storage.kumo.dev/Snapshot": "InvalidSnapshot.NotFound",
}
DUPLICATE = {
    "compute.kumo.dev/Instance": "IdempotentParameterMismatch",
    "compute.kumo.dev/KeyPair": "InvalidKeyPair.Duplicate",
    "image.kumo.dev/Image": "InvalidAMIName.Duplicate",
    "network.kumo.dev/SecurityGroup": "InvalidGroup.Duplicate",
}
# Field violations naming a field whose value is a reference: EC2's not-found code.
VIOLATION = {
    "instance.key_pairs": "InvalidKeyPair.NotFound",
    "instance.image": "InvalidAMIID.NotFound",
}
_SIMPLE = {
    grpc.StatusCode.UNAUTHENTICATED: "AuthFailure",
    grpc.StatusCode.PERMISSION_DENIED: "UnauthorizedOperation",
    grpc.StatusCode.UNIMPLEMENTED: "UnsupportedOperation",
    grpc.StatusCode.UNAVAILABLE: "Unavailable",
    grpc.StatusCode.ABORTED: "IncorrectState",
    grpc.StatusCode.DEADLINE_EXCEEDED: "Unavailable",
}


def ec2_error(
    error: grpc.aio.AioRpcError, precondition: str = "IncorrectInstanceState"
) -> Ec2Error:
    """The EC2 error for a failed Kumo call (`precondition`: FAILED_PRECONDITION's code)."""
    code = error.code()
    message = error.details() or ""
    resource_type = ""
    violations: list[str] = []
    status = rpc_status.from_call(error)
    for detail in status.details if status is not None else ():
        info = error_details_pb2.ResourceInfo()
        bad = error_details_pb2.BadRequest()
        if detail.Is(info.DESCRIPTOR) and detail.Unpack(info):
            resource_type = info.resource_type
        elif detail.Is(bad.DESCRIPTOR) and detail.Unpack(bad):
            violations += [f"{v.field}: {v.description}" for v in bad.field_violations]
            for violation in bad.field_violations:
                field = violation.field.split("[", 1)[0]
                if field in VIOLATION and "no such" in violation.description:
                    return Ec2Error(VIOLATION[field], violation.description)
    if code == grpc.StatusCode.NOT_FOUND:
        return Ec2Error(NOT_FOUND.get(resource_type, "InvalidParameterValue"), message)
    if code == grpc.StatusCode.ALREADY_EXISTS:
        return Ec2Error(DUPLICATE.get(resource_type, "InvalidParameterValue"), message)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return Ec2Error("InvalidParameterValue", "; ".join(violations) or message)
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return Ec2Error(precondition, message)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return Ec2Error(
            "InstanceLimitExceeded" if "instance" in message else "ResourceLimitExceeded", message
        )
    if code in _SIMPLE:
        return Ec2Error(_SIMPLE[code], message)
    return Ec2Error("InternalError", "An internal error has occurred")
