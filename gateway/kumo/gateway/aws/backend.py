"""The gRPC side of the EC2 dialect: stubs over one channel, and each request's caller.

`Backend.authenticate` sends a request's SigV4 parts to the identity service and returns
the `Caller` (a 15-minute token for the access key's user in its project). Handlers call
Kumo with `caller.metadata`. gRPC failures become EC2 errors in `grpc_errors.py`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
from google.longrunning import operations_pb2_grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from kumo.compute.v1 import compute_service_pb2_grpc as crpc
from kumo.gateway.aws.errors import Ec2Error
from kumo.gateway.aws.grpc_errors import ec2_error
from kumo.gateway.aws.sigv4 import SignedRequest
from kumo.gateway.aws.xml import Fragment
from kumo.gateway.errors import from_rpc_error
from kumo.gateway.etag_retry import until_written
from kumo.gateway.key_pair_names import KeyPairNames
from kumo.identity.v1 import identity_service_pb2 as iapi
from kumo.identity.v1 import identity_service_pb2_grpc as irpc
from kumo.image.v1 import image_service_pb2_grpc as imrpc
from kumo.network.v1 import network_service_pb2_grpc as nrpc
from kumo.storage.v1 import storage_service_pb2_grpc as srpc
from kumo.topology.v1 import topology_service_pb2_grpc as trpc

_REASONS = {  # ErrorInfo reason of AuthenticateSignature -> EC2 code and message
    "UNKNOWN_ACCESS_KEY": (
        "AuthFailure",
        "AWS was not able to validate the provided access credentials",
    ),
    "SIGNATURE_MISMATCH": (
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided.",
    ),
    "REQUEST_EXPIRED": ("RequestExpired", "Request has expired."),
}


@dataclass
class Caller:
    """Who a request acts for: the token's project, and the gRPC metadata carrying it."""

    project: str  # id
    metadata: tuple[tuple[str, str], ...]

    @property
    def project_name(self) -> str:
        """`projects/{project}`."""
        return f"projects/{self.project}"


MAX_REMEMBERED = 200_000
MAX_RESERVATIONS = 20_000  # written reservations kept (~1 KB each with its key)
K = TypeVar("K")
V = TypeVar("V")


@dataclass
class Memory:
    """What the gateway remembers between requests, per backend (so per API server); lost
    on restart and re-learned from the API. Each map holds at most MAX_REMEMBERED entries
    (`remember` empties a full one).

    - `instance_zones`: (project id, instance id) → zone id (EC2 ids do not carry the
      zone). A stale entry (the instance gone) costs one NotFound, which forgets it.
    - `zone_list`: every zone id, with when it was read (read again after 30 s).
    - `image_names`: (project id, AMI id) → image name, from that project's own ListImages
      (or its CreateImage): never another project's view. An AMI id is a hash of the name,
      so an entry never names another image; whether the project may still use it is the
      API server's check at each use.
    - `reservations`: (project id, an instance's serialized message) → the reservation
      DescribeInstances writes for it (at most MAX_RESERVATIONS): a pure function of the
      key, so never stale; a changed instance is another key.
    """

    instance_zones: dict[tuple[str, str], str] = field(default_factory=dict)
    zone_list: tuple[float, list[str]] = (0.0, [])
    image_names: dict[tuple[str, str], str] = field(default_factory=dict)
    reservations: dict[tuple[str, bytes, str], Fragment] = field(default_factory=dict)


def remember(mapping: dict[K, V], key: K, value: V, limit: int = MAX_REMEMBERED) -> None:
    """Sets `mapping[key]`, emptying the mapping first if it holds `limit` entries."""
    if len(mapping) >= limit and key not in mapping:
        mapping.clear()
    mapping[key] = value


class Backend:
    """Stubs of the services the EC2 dialect adapts, on one grpc.aio channel."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.channel = channel
        self.memory = Memory()
        self.key_names = KeyPairNames()
        self.identity = irpc.IdentityServiceStub(channel)
        self.compute = crpc.ComputeServiceStub(channel)
        self.images = imrpc.ImageServiceStub(channel)
        self.topology = trpc.TopologyServiceStub(channel)
        self.network = nrpc.NetworkServiceStub(channel)
        self.storage = srpc.StorageServiceStub(channel)
        self.operations = operations_pb2_grpc.OperationsStub(channel)

    async def authenticate(self, signed: SignedRequest) -> Caller:
        """The caller of a signed request. Raises Ec2Error (AuthFailure,
        SignatureDoesNotMatch, RequestExpired, Unavailable)."""
        try:
            response = await self.identity.AuthenticateSignature(
                iapi.AuthenticateSignatureRequest(
                    access_key_id=signed.access_key_id,
                    credential_scope=signed.credential_scope,
                    request_time=signed.request_time,
                    canonical_request=signed.canonical_request,
                    signature=signed.signature,
                )
            )
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.INVALID_ARGUMENT):
                raise _auth_error(error) from None
            raise Ec2Error("Unavailable", "The identity service is unavailable.") from None
        token = response.token
        return Caller(
            project=token.project.removeprefix("projects/"),
            metadata=(("authorization", f"Bearer {token.token}"),),
        )


def _auth_error(error: grpc.aio.AioRpcError) -> Ec2Error:
    status = rpc_status.from_call(error)
    for detail in status.details if status is not None else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info) and info.reason in _REASONS:
            return Ec2Error(*_REASONS[info.reason])
    return Ec2Error(*_REASONS["UNKNOWN_ACCESS_KEY"])


async def invoke(
    method: Any,
    request: Any,
    caller: Caller,
    precondition: str = "IncorrectInstanceState",
    under_way: str | None = None,
) -> Any:
    """Calls one unary Kumo method as the caller. Raises Ec2Error (see grpc_errors;
    FAILED_PRECONDITION is the `precondition` code), except for a FAILED_PRECONDITION of
    violation type `under_way` (what was asked is already being done), which returns None."""
    try:
        return await method(request, metadata=caller.metadata)
    except grpc.aio.AioRpcError as error:
        if under_way is not None and under_way in from_rpc_error(error).precondition_types():
            return None
        raise ec2_error(error, precondition) from None


def _aborted(error: Exception) -> bool:
    return isinstance(error, grpc.aio.AioRpcError) and error.code() == grpc.StatusCode.ABORTED


async def rewrite(attempt: Callable[[], Awaitable[None]]) -> None:
    """Awaits `attempt`, a read-change-write under an etag that calls Kumo directly, again
    while its write is ABORTED (the resource changed in between; see etag_retry). Raises
    Ec2Error for its failed calls (FAILED_PRECONDITION and a last ABORTED are IncorrectState)
    and what else it raises."""
    try:
        await until_written(attempt, _aborted)
    except grpc.aio.AioRpcError as error:
        raise ec2_error(error, "IncorrectState") from None
