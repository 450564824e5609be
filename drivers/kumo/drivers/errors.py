"""The exceptions every Kumo driver raises, and nothing else.

    DriverError                     INTERNAL            (base; anything else a driver hit)
    ├── GuestNotFound               NOT_FOUND           no guest with that uid on this host
    ├── GuestAlreadyExists          ALREADY_EXISTS      the uid is taken by a different spec
    ├── InvalidGuestState           FAILED_PRECONDITION the guest's state forbids the call
    ├── HypervisorUnavailable       UNAVAILABLE         connection lost or refused; retryable
    ├── ImageError                  FAILED_PRECONDITION missing, unreadable or unusable image
    ├── MigrationFailed             ABORTED             a live migration failed; the guest
    │   └── MigrationCancelled      CANCELLED           runs on the source / was cancelled
    ├── NetworkBackendUnavailable   UNAVAILABLE         OVN/OVS database unreachable; retryable
    ├── VolumeNotFound              NOT_FOUND           no volume/snapshot of that name in the pool
    ├── VolumeAlreadyExists         ALREADY_EXISTS      the name is taken by a different volume
    ├── VolumeBusy                  FAILED_PRECONDITION snapshots, clones or users hold it
    ├── InvalidVolumeSize           INVALID_ARGUMENT    zero, negative, too large, or a shrink
    └── StorageUnavailable          UNAVAILABLE         the storage cluster cannot be reached

Each class has a message template with named fields (as Ironic's `common/exception.py`),
filled from the keyword arguments, which stay available as attributes (`err.uid`), and the
name of the gRPC status code the host agent maps it to (`err.code`). Drivers never import
`kumo.server` or `grpc`: the agent turns these into its own errors at its boundary. Drivers
wrap the library error they caught with `raise ... from err`, so the cause stays in the chain.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DriverError(Exception):
    """Base of every driver error; also raised for unexpected hypervisor failures."""

    code: ClassVar[str] = "INTERNAL"
    msg_fmt: ClassVar[str] = "driver error: {reason}"
    retryable: ClassVar[bool] = False

    def __init__(self, message: str | None = None, **fields: Any) -> None:
        self.fields = fields
        for key, value in fields.items():
            setattr(self, key, value)
        if message is None:
            try:
                message = self.msg_fmt.format(**fields)
            except (KeyError, IndexError):
                # A missing field must not hide the real error behind a formatting one.
                message = f"{self.msg_fmt} {fields!r}"
        super().__init__(message)
        self.message = message


class GuestNotFound(DriverError):
    """No guest with this uid is managed by the driver on this host."""

    code = "NOT_FOUND"
    msg_fmt = "guest {uid} not found"


class GuestAlreadyExists(DriverError):
    """A guest with this uid exists with a different spec (or a foreign domain holds its
    name): spawn refuses to touch it."""

    code = "ALREADY_EXISTS"
    msg_fmt = "guest {uid} already exists with a different spec"


class InvalidGuestState(DriverError):
    """The guest is in a state where the call makes no sense (e.g. suspending a shut-off
    guest). Calls that would only restate the current state are no-ops, not errors."""

    code = "FAILED_PRECONDITION"
    msg_fmt = "guest {uid} is {state}: cannot {action}"


class HypervisorUnavailable(DriverError):
    """The hypervisor cannot be reached or refused the connection, or the driver's
    configuration cannot work on this host. Retry later; nothing was changed that a retry
    would not converge."""

    code = "UNAVAILABLE"
    msg_fmt = "hypervisor unavailable: {reason}"
    retryable = True


class ImageError(DriverError):
    """The image (or a disk made from it) is missing, unreadable, of another format than
    declared, larger than the requested disk, or could not be written."""

    code = "FAILED_PRECONDITION"
    msg_fmt = "image {path}: {reason}"


class MigrationFailed(DriverError):
    """A live migration did not complete: the destination could not be reached or died,
    the transfer failed, or the hypervisor refused the options. The guest still runs on
    the source (in the state it had); the destination may hold what `prepare_incoming`
    made until `cleanup_incoming` removes it. `reason` says why; a retry may succeed."""

    code = "ABORTED"
    msg_fmt = "live migration of guest {uid} failed: {reason}"
    retryable = True


class MigrationCancelled(MigrationFailed):
    """The live migration was cancelled (`abort_migration`) before it completed; the guest
    still runs on the source."""

    code = "CANCELLED"
    msg_fmt = "live migration of guest {uid} was cancelled"
    retryable = False


class NetworkBackendUnavailable(DriverError):
    """The network backend (OVN northbound, an OVS database) cannot be reached; retryable."""

    code = "UNAVAILABLE"
    msg_fmt = "network backend unavailable: {reason}"
    retryable = True


class VolumeNotFound(DriverError):
    """No volume (or snapshot) with this name in the pool."""

    code = "NOT_FOUND"
    msg_fmt = "volume {pool}/{name} not found"


class VolumeAlreadyExists(DriverError):
    """A volume with this name exists with a different size or source: create refuses it."""

    code = "ALREADY_EXISTS"
    msg_fmt = "volume {pool}/{name} already exists with a different spec"


class VolumeBusy(DriverError):
    """The volume has snapshots, or the snapshot has clones that cannot be flattened, or a
    guest holds it: the call would lose data and is refused."""

    code = "FAILED_PRECONDITION"
    msg_fmt = "volume {pool}/{name} is busy: {reason}"


class InvalidVolumeSize(DriverError):
    """The size is not positive, above the driver's maximum, or smaller than the volume."""

    code = "INVALID_ARGUMENT"
    msg_fmt = "volume {pool}/{name}: invalid size {size_bytes}: {reason}"


class StorageUnavailable(DriverError):
    """The storage cluster (or directory) cannot be reached; retry later."""

    code = "UNAVAILABLE"
    msg_fmt = "storage unavailable: {reason}"
    retryable = True
