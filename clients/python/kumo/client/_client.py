"""The Kumo client: one gRPC channel, one stub per service, errors as KumoError."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import duration_pb2

from kumo.client.errors import KumoError, OperationTimeoutError
from kumo.client.names import full_name
from kumo.identity.v1 import identity_service_pb2, identity_service_pb2_grpc
from kumo.topology.v1 import topology_service_pb2_grpc
from kumo.type.v1 import operation_metadata_pb2

DEFAULT_TIMEOUT = 60.0
"""Seconds a call may take when the caller gives no timeout."""

WAIT_STEP = 5.0
"""Longest single WaitOperation call in Client.wait, so progress is reported."""


class _CallDetails(grpc.ClientCallDetails):
    def __init__(self, base: Any, timeout: float | None, metadata: list[tuple[str, str]]):
        self.method = base.method
        self.timeout = timeout
        self.metadata = metadata
        self.credentials = base.credentials
        self.wait_for_ready = base.wait_for_ready
        self.compression = getattr(base, "compression", None)


class _Auth(grpc.UnaryUnaryClientInterceptor):
    """Adds `authorization: Bearer <token>` and the default timeout to every call."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        metadata = list(details.metadata or ())
        token = self._client.token
        if token and not any(key == "authorization" for key, _ in metadata):
            metadata.append(("authorization", f"Bearer {token}"))
        timeout = details.timeout if details.timeout is not None else self._client.timeout
        return continuation(_CallDetails(details, timeout, metadata), request)


def invoke(method: Callable[..., Any], request: Any, **kwargs: Any) -> Any:
    """Calls a stub method and returns its response.

    Raises KumoError (with code, message, decoded details and request id) if
    the call fails, including when the server cannot be reached (UNAVAILABLE).
    """
    try:
        return method(request, **kwargs)
    except grpc.RpcError as error:
        raise KumoError.from_rpc_error(error) from error


class Service:
    """A generated stub whose methods raise KumoError instead of grpc.RpcError.

    `client.identity.GetProject(request)` returns the response message; keyword
    arguments (`timeout`, `metadata`) go to the gRPC call.
    """

    def __init__(self, stub: Any) -> None:
        self._stub = stub

    def __getattr__(self, method: str) -> Callable[..., Any]:
        target = getattr(self._stub, method)

        def call(request: Any, **kwargs: Any) -> Any:
            return invoke(target, request, **kwargs)

        call.__name__ = method
        return call


class Client:
    """A connection to one Kumo endpoint, signed in with a bearer token or not.

    Attributes `identity`, `topology` and `operations` call the IdentityService,
    TopologyService and google.longrunning Operations services; every method
    raises KumoError on failure. `channel` is the underlying grpc.Channel (its
    calls carry the token too, but raise grpc.RpcError).
    """

    def __init__(
        self,
        endpoint: str,
        token: str | None = None,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        """Opens an insecure channel to `endpoint` (`host:port`); never raises for
        an unreachable server, which shows as UNAVAILABLE on the first call."""
        self.endpoint = endpoint
        self.token = token
        self.timeout = timeout
        self._raw_channel = grpc.insecure_channel(endpoint, options=list(options))
        self.channel: grpc.Channel = grpc.intercept_channel(self._raw_channel, _Auth(self))
        self.identity = self.service(identity_service_pb2_grpc.IdentityServiceStub)
        self.topology = self.service(topology_service_pb2_grpc.TopologyServiceStub)
        self.operations = self.service(operations_pb2_grpc.OperationsStub)

    def service(self, stub_class: Callable[[grpc.Channel], Any]) -> Service:
        """Wraps a generated `*Stub` class over this client's channel."""
        return Service(stub_class(self.channel))

    @classmethod
    def login(
        cls, endpoint: str, user: str, password: str, project: str, **kwargs: Any
    ) -> tuple[Client, Any]:
        """Signs in with a password and returns a client using the new token,
        and the `kumo.identity.v1.Token`.

        `user` and `project` may be short ids (`admin`) or names (`users/admin`).
        Raises ValueError for a malformed user or project, and KumoError if the
        sign-in fails (UNAUTHENTICATED for wrong credentials).
        """
        client = cls(endpoint, **kwargs)
        request = identity_service_pb2.IssueTokenRequest(
            password=identity_service_pb2.PasswordCredentials(
                user=full_name("users", user), password=password
            ),
            project=full_name("projects", project),
        )
        try:
            token = client.identity.IssueToken(request).token
        except BaseException:
            client.close()
            raise
        client.token = token.token
        return client, token

    def wait(
        self,
        operation: Any,
        timeout: float | None = None,
        on_progress: Callable[[Any], None] | None = None,
    ) -> Any:
        """Waits for a long-running operation to finish and returns it, done.

        `operation` is a `google.longrunning.Operation` or an operation name.
        `on_progress` is called with the operation's `kumo.type.v1.OperationMetadata`
        each time a new state is seen, the first and the final one included.
        The returned operation carries `response` or `error`; an error is not
        raised (see KumoError.from_status).

        Raises KumoError if a call fails (NOT_FOUND for an unknown operation) and
        OperationTimeoutError if it is not done after `timeout` seconds.
        """
        if isinstance(operation, str):
            operation = self.operations.GetOperation(
                operations_pb2.GetOperationRequest(name=full_name("operations", operation))
            )
        deadline = None if timeout is None else time.monotonic() + timeout
        use_wait = True
        while True:
            if on_progress is not None:
                on_progress(operation_metadata(operation))
            if operation.done:
                return operation
            step = WAIT_STEP
            if deadline is not None:
                step = min(step, deadline - time.monotonic())
                if step <= 0:
                    raise OperationTimeoutError(operation, timeout or 0.0)
            started = time.monotonic()
            if use_wait:
                try:
                    operation = self._wait_once(operation.name, step)
                except KumoError as error:
                    if error.code != grpc.StatusCode.UNIMPLEMENTED:
                        raise
                    use_wait = False  # an older server: poll with GetOperation
            if not use_wait:
                time.sleep(min(1.0, step))
                operation = self.operations.GetOperation(
                    operations_pb2.GetOperationRequest(name=operation.name)
                )
            elif not operation.done and time.monotonic() - started < 0.05:
                time.sleep(min(0.5, step))  # the server returned at once: do not spin

    def _wait_once(self, name: str, seconds: float) -> Any:
        duration = duration_pb2.Duration()
        duration.FromNanoseconds(int(seconds * 1e9))
        return self.operations.WaitOperation(
            operations_pb2.WaitOperationRequest(name=name, timeout=duration),
            timeout=seconds + (self.timeout or DEFAULT_TIMEOUT),
        )

    def close(self) -> None:
        """Closes the channel; calls in flight are cancelled."""
        self._raw_channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def operation_metadata(operation: Any) -> Any:
    """The operation's `kumo.type.v1.OperationMetadata`; empty if it has none
    of that type."""
    metadata = operation_metadata_pb2.OperationMetadata()
    if operation.HasField("metadata") and operation.metadata.Is(metadata.DESCRIPTOR):
        operation.metadata.Unpack(metadata)
    return metadata
