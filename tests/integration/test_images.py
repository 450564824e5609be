"""ImageService over real channels: records, streamed data, visibility, sharing, deletion."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.longrunning import operations_pb2

from kumo.identity.v1 import identity_service_pb2 as iapi
from kumo.image.v1 import image_service_pb2 as imgapi
from kumo.image.v1 import image_service_pb2_grpc as rpc
from kumo.image.v1 import resources_pb2 as pb
from tests.support.cloud import Stubs, Tenant, rpc_error, unique
from tests.support.server import ServerThread

CHUNK = 1 << 20


@pytest.fixture(scope="module")
def qcow2(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A small valid qcow2 image (3 MiB of data in a 64 MiB disk)."""
    path = tmp_path_factory.mktemp("img") / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "64M"], check=True)
    subprocess.run(
        ["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 3M", str(path)],
        check=True,
        capture_output=True,
    )
    return path.read_bytes()


def images(stubs: Stubs) -> rpc.ImageServiceStub:
    return rpc.ImageServiceStub(stubs.channel)


def create(stubs: Stubs, tenant: Tenant, **fields: object) -> pb.Image:
    image = pb.Image(disk_format=pb.DISK_FORMAT_QCOW2, **fields)  # type: ignore[arg-type]
    created: pb.Image = images(stubs).CreateImage(
        imgapi.CreateImageRequest(parent=tenant.name, image=image, image_id=unique("img"))
    )
    return created


def upload(stubs: Stubs, name: str, data: bytes, sha256: str = "") -> pb.Image:
    def messages() -> Iterator[imgapi.UploadImageDataRequest]:
        yield imgapi.UploadImageDataRequest(name=name, expected_sha256=sha256)
        for offset in range(0, len(data), CHUNK):
            yield imgapi.UploadImageDataRequest(data=data[offset : offset + CHUNK])

    stored: pb.Image = images(stubs).UploadImageData(messages())
    return stored


def download(stubs: Stubs, name: str) -> bytes:
    return b"".join(
        c.data for c in images(stubs).DownloadImageData(imgapi.DownloadImageDataRequest(name=name))
    )


def test_upload_then_download(tenant: Tenant, qcow2: bytes) -> None:
    """Streamed data becomes ACTIVE with its checksum and sizes, and downloads identical."""
    member = tenant.stubs["member"]
    image = create(member, tenant, min_disk_gib=1)
    assert image.state == pb.Image.STATE_PENDING_UPLOAD
    sha = hashlib.sha256(qcow2).hexdigest()
    active = upload(member, image.name, qcow2, sha)
    assert active.state == pb.Image.STATE_ACTIVE
    assert active.checksum_sha256 == sha
    assert active.size_bytes == len(qcow2) and active.virtual_size_bytes == 64 << 20
    assert download(tenant.stubs["reader"], image.name) == qcow2
    code, _ = rpc_error(lambda: upload(member, image.name, qcow2))
    assert code == grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.parametrize("case", ["checksum", "not-an-image", "backing-file", "raw-is-qcow2"])
def test_bad_uploads_fail_and_store_nothing(
    tenant: Tenant, qcow2: bytes, tmp_path: Path, case: str
) -> None:
    """Wrong checksum, garbage, a qcow2 with a backing file → INVALID_ARGUMENT, image ERROR."""
    member = tenant.stubs["member"]
    image = create(member, tenant)
    data, sha = qcow2, ""
    if case == "checksum":
        sha = "0" * 64
    elif case == "not-an-image":
        data = b"hello world" * 1000
    elif case == "backing-file":
        overlay = tmp_path / "overlay.qcow2"
        subprocess.run(
            [
                "qemu-img",
                "create",
                "-q",
                "-f",
                "qcow2",
                "-b",
                "/etc/passwd",
                "-F",
                "raw",
                str(overlay),
            ],
            check=True,
        )
        data = overlay.read_bytes()
    else:
        image = images(member).CreateImage(
            imgapi.CreateImageRequest(
                parent=tenant.name,
                image=pb.Image(disk_format=pb.DISK_FORMAT_RAW),
                image_id=unique("raw"),
            )
        )
    code, _ = rpc_error(lambda: upload(member, image.name, data, sha))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    again = images(member).GetImage(imgapi.GetImageRequest(name=image.name))
    assert again.state == pb.Image.STATE_ERROR and again.state_message
    code, _ = rpc_error(lambda: download(member, image.name))
    assert code == grpc.StatusCode.FAILED_PRECONDITION


def test_visibility_and_sharing(
    admin: Stubs, tenant: Tenant, other_tenant: Tenant, qcow2: bytes
) -> None:
    """Private is hidden, shared shows once accepted, public needs a cloud admin."""
    owner, outsider = tenant.stubs["member"], other_tenant.stubs["member"]
    image = create(owner, tenant)
    upload(owner, image.name, qcow2)
    code, _ = rpc_error(lambda: images(outsider).GetImage(imgapi.GetImageRequest(name=image.name)))
    assert code == grpc.StatusCode.NOT_FOUND

    code, _ = rpc_error(
        lambda: images(owner).UpdateImage(
            imgapi.UpdateImageRequest(
                image=pb.Image(name=image.name, visibility=pb.VISIBILITY_PUBLIC)
            )
        )
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED
    images(owner).UpdateImage(
        imgapi.UpdateImageRequest(image=pb.Image(name=image.name, visibility=pb.VISIBILITY_SHARED))
    )
    member = images(owner).CreateImageMember(
        imgapi.CreateImageMemberRequest(parent=image.name, member_project=other_tenant.name)
    )
    assert member.state == pb.ImageMember.STATE_PENDING
    members = images(owner).ListImageMembers(imgapi.ListImageMembersRequest(parent=image.name))
    assert [m.project for m in members.image_members] == [other_tenant.name]

    def listed(show_pending: bool = False) -> list[str]:
        response = images(outsider).ListImages(
            imgapi.ListImagesRequest(parent="projects/-", page_size=1000, show_pending=show_pending)
        )
        return [i.name for i in response.images]

    assert image.name not in listed()
    assert image.name in listed(show_pending=True)
    assert images(outsider).GetImage(imgapi.GetImageRequest(name=image.name)).name == image.name
    images(outsider).UpdateImageMember(
        imgapi.UpdateImageMemberRequest(
            image_member=pb.ImageMember(name=member.name, state=pb.ImageMember.STATE_ACCEPTED)
        )
    )
    assert image.name in listed()
    assert download(outsider, image.name) == qcow2
    code, _ = rpc_error(
        lambda: images(outsider).DeleteImage(imgapi.DeleteImageRequest(name=image.name))
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED

    images(owner).DeleteImageMember(imgapi.DeleteImageMemberRequest(name=member.name))
    assert image.name not in listed()
    images(admin).UpdateImage(
        imgapi.UpdateImageRequest(image=pb.Image(name=image.name, visibility=pb.VISIBILITY_PUBLIC))
    )
    assert image.name in listed()


def test_delete_is_an_operation(tenant: Tenant, qcow2: bytes) -> None:
    """DeleteImage removes the record and its data; the operation ends done."""
    member = tenant.stubs["member"]
    image = create(member, tenant)
    upload(member, image.name, qcow2)
    operation = images(member).DeleteImage(imgapi.DeleteImageRequest(name=image.name))
    done = member.operations.WaitOperation(operations_pb2.WaitOperationRequest(name=operation.name))
    assert done.done and not done.HasField("error")
    code, _ = rpc_error(lambda: images(member).GetImage(imgapi.GetImageRequest(name=image.name)))
    assert code == grpc.StatusCode.NOT_FOUND


def test_readers_cannot_create(tenant: Tenant) -> None:
    """Creating needs the member role."""
    code, _ = rpc_error(lambda: create(tenant.stubs["reader"], tenant))
    assert code == grpc.StatusCode.PERMISSION_DENIED


def test_deleting_the_project_deletes_its_images(
    api: ServerThread, admin: Stubs, tenant: Tenant, qcow2: bytes
) -> None:
    """DeleteProject removes the project's images, data included."""
    member = tenant.stubs["member"]
    image = create(member, tenant)
    upload(member, image.name, qcow2)
    data = api.server.runtime.images.path(image.uid)
    assert data.exists()
    operation = admin.identity.DeleteProject(iapi.DeleteProjectRequest(name=tenant.name))
    done = admin.operations.WaitOperation(operations_pb2.WaitOperationRequest(name=operation.name))
    assert done.done and not done.HasField("error")
    code, _ = rpc_error(lambda: images(admin).GetImage(imgapi.GetImageRequest(name=image.name)))
    assert code == grpc.StatusCode.NOT_FOUND
    assert not data.exists()


def test_image_tags(tenant: Tenant) -> None:
    """Tags at creation (repeats dropped), replaced by UpdateImage, matched by `tags:`
    filters; bad ones are INVALID_ARGUMENT on `image.tags` and change nothing."""
    member = tenant.stubs["member"]
    first = create(member, tenant, tags=["gold", "linux", "gold"])
    second = create(member, tenant, tags=["linux"])
    assert list(first.tags) == ["gold", "linux"]

    def tagged(text: str) -> set[str]:
        listed = images(member).ListImages(
            imgapi.ListImagesRequest(parent=tenant.name, filter=text, page_size=1000)
        )
        return {i.name for i in listed.images} & {first.name, second.name}

    assert tagged('tags:"linux"') == {first.name, second.name}
    assert tagged('tags:"linux" AND NOT tags:"gold"') == {second.name}
    code, status = rpc_error(
        lambda: images(member).UpdateImage(
            imgapi.UpdateImageRequest(
                image=pb.Image(name=first.name, tags=["ok", "x" * 256]),
                update_mask={"paths": ["tags"]},
            )
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and status is not None
    assert "image.tags" in str(status.details)
    assert list(images(member).GetImage(imgapi.GetImageRequest(name=first.name)).tags) == [
        "gold",
        "linux",
    ]
    changed = images(member).UpdateImage(
        imgapi.UpdateImageRequest(
            image=pb.Image(name=first.name, tags=["silver"]), update_mask={"paths": ["tags"]}
        )
    )
    assert list(changed.tags) == ["silver"] and tagged("tags:gold") == set()
