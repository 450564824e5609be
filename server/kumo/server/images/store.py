"""The file image store: one file per image, named by the image's uid.

Uploads are written to a temporary file beside the final one while their
SHA-256 and size are computed, checked with `qemu-img info`, and renamed into
place only when complete, so a crash never leaves a partial image visible.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

from kumo.server.errors import InvalidArgument

FORMATS = {1: "qcow2", 2: "raw"}  # kumo.image.v1.DiskFormat values
READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class StoredImage:
    """What the store learned about uploaded data."""

    path: Path
    size_bytes: int
    virtual_size_bytes: int
    sha256: str


def inspect(path: Path, disk_format: int) -> int:
    """Checks that `path` holds a `disk_format` image with no backing file; returns its
    virtual size. Raises InvalidArgument otherwise (never trusts the uploader)."""
    expected = FORMATS[disk_format]
    try:
        out = subprocess.run(
            ["qemu-img", "info", "--output=json", "-f", expected, str(path)],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        info = json.loads(out)
    except (subprocess.CalledProcessError, json.JSONDecodeError, subprocess.TimeoutExpired) as exc:
        raise InvalidArgument.field("data", f"not a valid {expected} image") from exc
    if expected == "qcow2" and (info.get("backing-filename") or info.get("format") != "qcow2"):
        raise InvalidArgument.field("data", "qcow2 images must not have a backing file")
    if expected == "raw":
        with path.open("rb") as handle:
            if handle.read(4) == b"QFI\xfb":
                raise InvalidArgument.field("data", "this is a qcow2 image, not raw")
    return int(info["virtual-size"])


class ImageStore:
    """Image files under one directory."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.dir = directory
        self.max_bytes = max_bytes
        self.dir.mkdir(parents=True, exist_ok=True)

    def path(self, uid: str) -> Path:
        """Where the data of image `uid` lives."""
        return self.dir / uid

    async def receive(
        self, uid: str, disk_format: int, chunks: AsyncIterator[bytes], expected_sha256: str
    ) -> StoredImage:
        """Stores streamed data as image `uid` after checking size, checksum and format.

        Raises InvalidArgument (and stores nothing) if the data is too large, does
        not match `expected_sha256` (when given) or is not a valid image.
        """
        digest, size = hashlib.sha256(), 0
        fd, temp = tempfile.mkstemp(dir=self.dir, prefix=f".{uid}.")
        try:
            with os.fdopen(fd, "wb") as handle:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise InvalidArgument.field("data", f"larger than {self.max_bytes} bytes")
                    digest.update(chunk)
                    handle.write(chunk)
            if size == 0:
                raise InvalidArgument.field("data", "no data was sent")
            sha256 = digest.hexdigest()
            if expected_sha256 and expected_sha256.lower() != sha256:
                raise InvalidArgument.field("expected_sha256", f"the data's SHA-256 is {sha256}")
            virtual = inspect(Path(temp), disk_format)
            os.replace(temp, self.path(uid))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        return StoredImage(self.path(uid), size, virtual, sha256)

    def read(self, uid: str) -> Iterator[bytes]:
        """The data of image `uid` in chunks; FileNotFoundError if it has none."""
        with self.path(uid).open("rb") as handle:
            while chunk := handle.read(READ_CHUNK):
                yield chunk

    def delete(self, uid: str) -> None:
        """Removes image `uid`'s data. Idempotent."""
        with contextlib.suppress(FileNotFoundError):
            self.path(uid).unlink()
