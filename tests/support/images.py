"""Uploading small real qcow2 images in tests."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from kumo.image.v1 import image_service_pb2 as api
from kumo.image.v1 import image_service_pb2_grpc as rpc
from kumo.image.v1 import resources_pb2 as pb
from tests.support.cloud import Stubs, unique

CHUNK = 1 << 20


@cache
def small_qcow2() -> bytes:
    """A valid empty 64 MiB qcow2 disk (a few hundred KiB of file; made in a temporary
    folder that goes with it)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "small.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "64M"], check=True)
        return path.read_bytes()


def upload_image(
    stubs: Stubs,
    project: str,
    data: bytes | None = None,
    image_id: str = "",
    **fields: object,
) -> str:
    """Creates an image in `project` and uploads `data` (by default a small qcow2).

    Returns the image name."""
    service = rpc.ImageServiceStub(stubs.channel)
    image = service.CreateImage(
        api.CreateImageRequest(
            parent=project,
            image_id=image_id or unique("img"),
            image=pb.Image(disk_format=pb.DISK_FORMAT_QCOW2, **fields),  # type: ignore[arg-type]
        )
    )
    payload = small_qcow2() if data is None else data

    def messages() -> Iterator[api.UploadImageDataRequest]:
        yield api.UploadImageDataRequest(name=image.name)
        for offset in range(0, len(payload), CHUNK):
            yield api.UploadImageDataRequest(data=payload[offset : offset + CHUNK])

    service.UploadImageData(messages())
    return str(image.name)
