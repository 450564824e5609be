"""Finding Kumo resources by the ids OpenStack clients use.

A Nova server id and a Glance image id are the Kumo resource's `uid` (a UUID), found with
a `uid = "..."` filter over every zone (`zones/-`) or every visible project (`projects/-`).
Image uids never change, so the name <-> uid pairs are remembered (bounded).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import grpc

from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import compute_service_pb2_grpc as crpc
from kumo.gateway.errors import RpcFailure
from kumo.gateway.grpc_backend import Backend
from kumo.gateway.openstack.common import find_one, last_segment, quoted
from kumo.identity.v1 import identity_service_pb2 as iapi
from kumo.identity.v1 import identity_service_pb2_grpc as irpc
from kumo.image.v1 import image_service_pb2 as gapi
from kumo.image.v1 import image_service_pb2_grpc as grpc_images
from kumo.image.v1 import resources_pb2 as gpb
from kumo.storage.v1 import resources_pb2 as spb


async def find_instance(
    backend: Backend, token: str, project: str, uid: str, anywhere: bool = False
) -> Any:
    """The project's instance with this uid; with `anywhere` (a cloud administrator, who in
    Nova reads any server by id), else the first project's that has it. NOT_FOUND (404)
    when none."""
    try:
        return await _instance_in(backend, token, project, uid)
    except RpcFailure as failure:
        if not anywhere or failure.code != grpc.StatusCode.NOT_FOUND.value[0]:
            raise
    page_token = ""
    while True:
        answer = await backend.call(
            backend.stub(irpc.IdentityServiceStub).ListProjects,
            iapi.ListProjectsRequest(page_size=1000, page_token=page_token),
            token,
        )
        for other in answer.projects:
            other_id = last_segment(other.name)
            if other_id == project:
                continue
            try:
                return await _instance_in(backend, token, other_id, uid)
            except RpcFailure as failure:
                if failure.code != grpc.StatusCode.NOT_FOUND.value[0]:
                    raise
        page_token = answer.next_page_token
        if not page_token:
            raise RpcFailure.of(grpc.StatusCode.NOT_FOUND, f"Instance {uid} could not be found.")


async def _instance_in(backend: Backend, token: str, project: str, uid: str) -> Any:
    return await find_one(
        backend,
        backend.stub(crpc.ComputeServiceStub).ListInstances,
        capi.ListInstancesRequest(
            parent=f"projects/{project}/zones/-", filter=f"uid = {quoted(uid)}", page_size=1
        ),
        "instances",
        token,
        "Instance",
        uid,
    )


async def find_image(backend: Backend, token: str, uid: str) -> Any:
    """The visible image with this uid, shared ones not accepted yet included (Glance shows
    a member the image it was offered); NOT_FOUND (404) when none."""
    return await find_one(
        backend,
        backend.stub(grpc_images.ImageServiceStub).ListImages,
        gapi.ListImagesRequest(
            parent="projects/-", filter=f"uid = {quoted(uid)}", page_size=1, show_pending=True
        ),
        "images",
        token,
        "Image",
        uid,
    )


class ImageIndex:
    """Image name <-> uid, remembered (uids are immutable)."""

    def __init__(self, backend: Backend, size: int = 4096) -> None:
        self.backend = backend
        self.size = size
        self._uid_by_name: OrderedDict[str, str] = OrderedDict()
        self._name_by_uid: dict[str, str] = {}

    def remember(self, image: gpb.Image) -> None:
        """Notes an image's name and uid."""
        self._uid_by_name[image.name] = image.uid
        self._name_by_uid[image.uid] = image.name
        while len(self._uid_by_name) > self.size:
            _, uid = self._uid_by_name.popitem(last=False)
            self._name_by_uid.pop(uid, None)

    async def uid(self, token: str, name: str) -> str:
        """The uid of an image name ('' when the image is gone or not visible)."""
        if name in self._uid_by_name:
            return self._uid_by_name[name]
        try:
            image = await self.backend.call(
                self.backend.stub(grpc_images.ImageServiceStub).GetImage,
                gapi.GetImageRequest(name=name),
                token,
            )
        except RpcFailure:
            return ""
        self.remember(image)
        return str(image.uid)

    async def name(self, token: str, uid: str) -> str:
        """The name of an image uid; NOT_FOUND (404) when none is visible."""
        if uid in self._name_by_uid:
            return self._name_by_uid[uid]
        image = await find_image(self.backend, token, uid)
        self.remember(image)
        return str(image.name)


def is_volume_type(item: spb.VolumeType, wanted: str) -> bool:
    """Whether a Cinder client's `wanted` (an id, a Kumo id or a name) names the type."""
    return wanted in (item.uid, last_segment(item.name), item.display_name)
