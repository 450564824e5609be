"""The Kumo client: one gRPC channel, one stub per service, errors as KumoError."""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import grpc
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import duration_pb2

from kumo.client.errors import KumoError, OperationTimeoutError
from kumo.client.names import full_name
from kumo.compute.v1 import compute_service_pb2_grpc
from kumo.identity.v1 import identity_service_pb2, identity_service_pb2_grpc
from kumo.image.v1 import image_service_pb2, image_service_pb2_grpc
from kumo.network.v1 import network_service_pb2_grpc
from kumo.storage.v1 import storage_service_pb2_grpc
from kumo.topology.v1 import topology_service_pb2_grpc
from kumo.type.v1 import operation_metadata_pb2

DEFAULT_TIMEOUT = 60.0
"""Seconds a call may take when the caller gives no timeout."""

WAIT_STEP = 5.0
"""Longest single WaitOperation call in Client.wait, so progress is reported."""

UPLOAD_CHUNK = 1 << 20
"""Bytes per message of Client.upload_image unless told otherwise."""
MAX_UPLOAD_CHUNK = 4 << 20
"""The most data one UploadImageData message may carry."""


class _CallDetails(grpc.ClientCallDetails):
    def __init__(self, base: Any, timeout: float | None, metadata: list[tuple[str, str]]):
        self.method = base.method
        self.timeout = timeout
        self.metadata = metadata
        self.credentials = base.credentials
        self.wait_for_ready = base.wait_for_ready
        self.compression = getattr(base, "compression", None)


class _Auth(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds `authorization: Bearer <token>` to every call, and the default
    timeout to unary calls (streaming calls take as long as their data needs,
    unless the caller gives a timeout)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def _details(self, details: Any, default_timeout: float | None) -> _CallDetails:
        metadata = list(details.metadata or ())
        token = self._client.token
        if token and not any(key == "authorization" for key, _ in metadata):
            metadata.append(("authorization", f"Bearer {token}"))
        timeout = details.timeout if details.timeout is not None else default_timeout
        return _CallDetails(details, timeout, metadata)

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details, self._client.timeout), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details, None), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details, None), requests)

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details, None), requests)


class ResponseStream:
    """The responses of a server-streaming call; iterating raises KumoError
    instead of grpc.RpcError. `cancel()` ends the call."""

    def __init__(self, call: Any) -> None:
        self._call = call

    def __iter__(self) -> ResponseStream:
        return self

    def __next__(self) -> Any:
        try:
            return next(self._call)
        except grpc.RpcError as error:
            raise KumoError.from_rpc_error(error) from error

    def cancel(self) -> None:
        self._call.cancel()


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
    arguments (`timeout`, `metadata`) go to the gRPC call. A client-streaming
    method takes an iterator of requests; a server-streaming one returns a
    ResponseStream, whose iteration raises KumoError too.
    """

    def __init__(self, stub: Any) -> None:
        self._stub = stub

    def __getattr__(self, method: str) -> Callable[..., Any]:
        target = getattr(self._stub, method)
        streams = isinstance(target, grpc.UnaryStreamMultiCallable | grpc.StreamStreamMultiCallable)

        def call(request: Any, **kwargs: Any) -> Any:
            response = invoke(target, request, **kwargs)
            return ResponseStream(response) if streams else response

        call.__name__ = method
        return call


class Client:
    """A connection to one Kumo endpoint, signed in with a bearer token or not.

    Attributes `identity`, `topology`, `images`, `compute`, `operations`, `network`
    and `storage` call the IdentityService, TopologyService, ImageService,
    ComputeService, google.longrunning Operations, NetworkService and StorageService
    services; every method raises KumoError on failure. `upload_image` and
    `download_image` stream image data to and from files. `channel` is the underlying
    grpc.Channel (its calls carry the token too, but raise grpc.RpcError).
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
        self.images = self.service(image_service_pb2_grpc.ImageServiceStub)
        self.compute = self.service(compute_service_pb2_grpc.ComputeServiceStub)
        self.operations = self.service(operations_pb2_grpc.OperationsStub)
        self.network = self.service(network_service_pb2_grpc.NetworkServiceStub)
        self.storage = self.service(storage_service_pb2_grpc.StorageServiceStub)

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

    def upload_image(
        self,
        name: str,
        path: str | os.PathLike[str],
        chunk: int = UPLOAD_CHUNK,
        expected_sha256: str | None = None,
        *,
        on_progress: Callable[[int], None] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Sends the file at `path` as the data of image `name` (in
        PENDING_UPLOAD) and returns the `kumo.image.v1.Image`, now ACTIVE.

        The first message names the image (and carries `expected_sha256`, which
        the server checks); every message carries up to `chunk` bytes.
        `on_progress` is called with the number of bytes sent so far, from
        gRPC's sending thread. Streaming calls have no deadline unless
        `timeout` (seconds) is given.

        Raises ValueError for a chunk size outside 1 byte to 4 MiB, OSError if
        the file cannot be read, and KumoError if the upload fails
        (FAILED_PRECONDITION if the image already has data, INVALID_ARGUMENT
        for data the server rejects; the image is then in ERROR).
        """
        if not 0 < chunk <= MAX_UPLOAD_CHUNK:
            raise ValueError(f"chunk must be 1 to {MAX_UPLOAD_CHUNK} bytes, not {chunk}")
        failures: list[Exception] = []
        with open(path, "rb") as stream:
            requests = _upload_requests(
                name, stream, chunk, expected_sha256 or "", on_progress, failures
            )
            try:
                return self.images.UploadImageData(requests, timeout=timeout)
            except KumoError:
                if failures:  # reading the file failed mid-way: the call was cancelled
                    raise failures[0] from None
                raise

    def download_image(
        self,
        name: str,
        path: str | os.PathLike[str],
        *,
        expected_sha256: str | None = None,
        on_progress: Callable[[int], None] | None = None,
        timeout: float | None = None,
    ) -> int:
        """Writes the data of image `name` (ACTIVE) to `path` and returns its size.

        The file is written atomically: to a temporary file in the same
        directory, synced, then renamed over `path`, so `path` never holds a
        partial image. `expected_sha256` (hex), if given, must match the data
        received. `on_progress` is called with the number of bytes written so
        far. Streaming calls have no deadline unless `timeout` is given.

        Raises KumoError if the download fails (FAILED_PRECONDITION for an
        image without data; DATA_LOSS for a checksum mismatch), OSError if the
        file cannot be written.
        """
        target = Path(path)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.part")
        request = image_service_pb2.DownloadImageDataRequest(name=name)
        responses = self.images.DownloadImageData(request, timeout=timeout)
        digest = hashlib.sha256()
        received = 0
        try:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
            with os.fdopen(descriptor, "wb") as stream:
                for response in responses:
                    stream.write(response.data)
                    digest.update(response.data)
                    received += len(response.data)
                    if on_progress is not None:
                        on_progress(received)
                stream.flush()
                os.fsync(stream.fileno())
            if expected_sha256 and digest.hexdigest() != expected_sha256.lower():
                raise KumoError(
                    grpc.StatusCode.DATA_LOSS,
                    f"the data of {name} does not match its checksum "
                    f"(got {digest.hexdigest()}, expected {expected_sha256.lower()})",
                )
            os.replace(temporary, target)
        except BaseException:
            responses.cancel()
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise
        return received

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


def _upload_requests(
    name: str,
    stream: IO[bytes],
    chunk: int,
    expected_sha256: str,
    on_progress: Callable[[int], None] | None,
    failures: list[Exception],
) -> Iterator[Any]:
    """The UploadImageData messages for a file: the first names the image.

    A read error is kept in `failures` (gRPC only reports that iterating failed).
    """
    request_type = image_service_pb2.UploadImageDataRequest
    sent = 0
    try:
        data = stream.read(chunk)
        yield request_type(name=name, data=data, expected_sha256=expected_sha256)
        while data:
            sent += len(data)
            if on_progress is not None:
                on_progress(sent)
            data = stream.read(chunk)
            if data:
                yield request_type(data=data)
    except Exception as error:
        failures.append(error)
        raise


def operation_metadata(operation: Any) -> Any:
    """The operation's `kumo.type.v1.OperationMetadata`; empty if it has none
    of that type."""
    metadata = operation_metadata_pb2.OperationMetadata()
    if operation.HasField("metadata") and operation.metadata.Is(metadata.DESCRIPTOR):
        operation.metadata.Unpack(metadata)
    return metadata
