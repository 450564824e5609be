"""The agent's image cache: `<state_dir>/images/<sha256>.<format>`.

An image enters the cache only verified: it is downloaded with
ImageService.DownloadImageData into a temporary file beside its final name,
its SHA-256 is checked against the one in the assignment, and it is renamed
into place atomically. A file in the cache under its final name is therefore
always complete and correct, which makes `ensure` idempotent and a restarted
agent reuses what it fetched before. Concurrent `ensure`s of one image share
one download; a failed download is not cached, so the next `ensure` tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any, Literal

import grpc

from kumo.agent.client import ApiClient
from kumo.image.v1 import image_service_pb2, resources_pb2

log = logging.getLogger(__name__)
UPLOAD_CHUNK = 1 << 20

FORMATS: dict[int, Literal["qcow2", "raw"]] = {
    resources_pb2.DISK_FORMAT_QCOW2: "qcow2",
    resources_pb2.DISK_FORMAT_RAW: "raw",
}
"""Image format enum → the file extension and the format name drivers take."""

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ImageError(Exception):
    """An image could not be made available on this host."""


class ImageDownloadError(ImageError):
    """The API did not deliver the image (not found, no access, connection lost)."""


class ImageChecksumMismatch(ImageError):
    """The downloaded data does not have the expected SHA-256."""

    def __init__(self, image: str, expected: str, actual: str) -> None:
        super().__init__(
            f"image {image} failed verification: expected sha256 {expected}, got {actual}"
        )
        self.expected = expected
        self.actual = actual


def format_name(disk_format: int) -> Literal["qcow2", "raw"]:
    """`qcow2` or `raw` for a DiskFormat value; raises ImageError for others."""
    try:
        return FORMATS[disk_format]
    except KeyError:
        raise ImageError(f"unsupported image format {disk_format}") from None


class ImageCache:
    """Verified images on local disk, fetched from the API on demand."""

    def __init__(self, directory: Path, client: ApiClient, stall_timeout: float = 60.0) -> None:
        """`stall_timeout`: seconds without a chunk after which a download fails."""
        self.directory = directory.absolute()  # drivers take absolute image paths
        self._client = client
        self._stall_timeout = stall_timeout
        self._downloads: dict[Path, asyncio.Task[Path]] = {}

    def path(self, sha256: str, disk_format: int) -> Path:
        """Where the image with this checksum and format is (or would be) cached."""
        return self.directory / f"{sha256}.{format_name(disk_format)}"

    def scratch(self, name: str) -> Path:
        """A path named `name` for a file made beside the cache (a snapshot on its way up),
        its directory made if need be. Raises OSError."""
        self.directory.mkdir(parents=True, exist_ok=True)
        return self.directory / name

    async def ensure(self, image: str, sha256: str, disk_format: int) -> Path:
        """Returns the cached file of `image` (`projects/{p}/images/{i}`), downloading
        and verifying it first if needed. Idempotent; safe to call concurrently.

        Raises ImageChecksumMismatch if the data does not match `sha256`,
        ImageDownloadError if the API does not deliver it, and ImageError for a
        malformed checksum or unsupported format or a local I/O failure.
        """
        sha256 = sha256.lower()
        if not _SHA256.match(sha256):
            raise ImageError(f"image {image} has no valid sha256 ({sha256!r})")
        target = self.path(sha256, disk_format)
        if target.exists():
            return target
        task = self._downloads.get(target)
        if task is None:
            task = asyncio.create_task(self._download(image, sha256, target))
            self._downloads[target] = task
            task.add_done_callback(lambda done: self._finished(target, done))
        # Shielded: one waiter being cancelled must not cancel the others' download.
        return await asyncio.shield(task)

    async def upload(self, image: str, path: Path) -> None:
        """Sends the file at `path` as the data of `image` (PENDING_UPLOAD), in 1 MiB chunks.

        Raises grpc's AioRpcError when the API refuses it (the image then is ERROR).
        """

        async def chunks() -> AsyncIterator[image_service_pb2.UploadImageDataRequest]:
            yield image_service_pb2.UploadImageDataRequest(name=image)
            handle = await asyncio.to_thread(path.open, "rb")
            try:
                while data := await asyncio.to_thread(handle.read, UPLOAD_CHUNK):
                    yield image_service_pb2.UploadImageDataRequest(data=data)
            finally:
                handle.close()

        metadata = await self._client.metadata()
        await self._client.images.UploadImageData(chunks(), metadata=metadata)

    def _finished(self, target: Path, task: asyncio.Task[Path]) -> None:
        self._downloads.pop(target, None)
        if not task.cancelled():
            task.exception()  # retrieved here so that an unawaited failure is not logged

    async def close(self) -> None:
        """Cancels downloads in flight (their temporary files are removed)."""
        tasks = list(self._downloads.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _download(self, image: str, sha256: str, target: Path) -> Path:
        await asyncio.to_thread(self.directory.mkdir, parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
        digest = hashlib.sha256()
        size = 0
        log.info("downloading image %s (sha256 %s)", image, sha256)
        try:
            stream: IO[bytes] = await asyncio.to_thread(open, temporary, "wb")
            try:
                metadata = await self._client.metadata()
                call = self._client.images.DownloadImageData(
                    image_service_pb2.DownloadImageDataRequest(name=image), metadata=metadata
                )
                try:
                    while True:
                        try:
                            chunk = await asyncio.wait_for(call.read(), self._stall_timeout)
                        except TimeoutError:
                            raise ImageDownloadError(
                                f"cannot download image {image}: no data for "
                                f"{self._stall_timeout:.0f} s"
                            ) from None
                        if chunk is grpc.aio.EOF:
                            break
                        data = chunk.data
                        digest.update(data)
                        size += len(data)
                        await asyncio.to_thread(stream.write, data)
                finally:
                    call.cancel()  # no-op once the stream ended
                await asyncio.to_thread(_flush, stream)
            finally:
                await asyncio.to_thread(stream.close)
            actual = digest.hexdigest()
            if actual != sha256:
                raise ImageChecksumMismatch(image, sha256, actual)
            await asyncio.to_thread(os.replace, temporary, target)
            await asyncio.to_thread(_fsync_dir, self.directory)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.UNAUTHENTICATED:
                self._client.invalidate_token()
            raise ImageDownloadError(
                f"cannot download image {image}: {error.code().name}: {error.details()}"
            ) from error
        except OSError as error:
            raise ImageError(f"cannot store image {image} in {self.directory}: {error}") from error
        finally:
            with contextlib.suppress(OSError):
                temporary.unlink()
        log.info("image %s cached at %s (%d bytes)", image, target, size)
        return target


def _flush(stream: IO[Any]) -> None:
    stream.flush()
    os.fsync(stream.fileno())


def _fsync_dir(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
