"""DescribeImages and CreateImage over ImageService (and SnapshotInstance).

AMI ids are derived from image names (`ids.image_ec2_id`); turning one back into a name
lists the images the caller can see (`projects/-`) and remembers the mapping for the
caller's project (`backend.Memory`).
CreateImage snapshots an instance into a new private image `img-` + 12 hex digits whose
display name is the EC2 Name.
"""

from __future__ import annotations

import contextlib
import secrets
from typing import Any

from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.gateway.aws import ids
from kumo.gateway.aws.backend import Backend, Caller, invoke, remember
from kumo.gateway.aws.errors import Ec2Error
from kumo.gateway.aws.operations.common import (
    ROOT_DEVICE,
    Params,
    filters_of,
    matches,
    tags_of,
    time_of,
)
from kumo.gateway.aws.operations.instance_views import find_instance
from kumo.image.v1 import image_service_pb2 as iapi
from kumo.image.v1 import resources_pb2 as ipb

_STATES = {
    ipb.Image.STATE_PENDING_UPLOAD: "pending",
    ipb.Image.STATE_ACTIVE: "available",
    ipb.Image.STATE_ERROR: "failed",
    ipb.Image.STATE_DELETING: "deregistered",
}
FILTER_FIELDS = {
    "image-id": lambda i: [i["ImageId"]],
    "name": lambda i: [i["Name"]],
    "state": lambda i: [i["State"]],
    "owner-id": lambda i: [i["OwnerId"]],
    "is-public": lambda i: ["true" if i["Public"] else "false"],
}


def image_view(image: ipb.Image) -> dict[str, Any]:
    """The EC2 `Image` structure of a Kumo image."""
    return {
        "ImageId": ids.image_ec2_id(image.name),
        "ImageLocation": image.name,
        "State": _STATES.get(image.state, "pending"),
        "OwnerId": image.name.split("/")[1],
        "CreationDate": time_of(image.create_time).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "Public": image.visibility == ipb.VISIBILITY_PUBLIC,
        "Architecture": "x86_64",
        "ImageType": "machine",
        "Name": image.display_name or image.name.rsplit("/", 1)[-1],
        "Description": image.description,
        "RootDeviceType": "ebs",
        "RootDeviceName": ROOT_DEVICE,
        "VirtualizationType": "hvm",
        "Hypervisor": "xen",
        "Tags": tags_of(image.labels),
        "BlockDeviceMappings": [],
    }


async def _visible(backend: Backend, caller: Caller) -> list[ipb.Image]:
    images: list[ipb.Image] = []
    memory = backend.memory.image_names
    request = iapi.ListImagesRequest(parent="projects/-", page_size=1000)
    while True:
        response = await invoke(backend.images.ListImages, request, caller)
        images.extend(response.images)
        for image in response.images:
            remember(memory, (caller.project, ids.image_ec2_id(image.name)), image.name)
        if not response.next_page_token:
            return images
        request.page_token = response.next_page_token


async def image_name(backend: Backend, caller: Caller, ami: str) -> str:
    """The name of the image with EC2 id `ami`; InvalidAMIID.* if none is visible."""
    if not ami.startswith("ami-"):
        raise Ec2Error("InvalidAMIID.Malformed", f'Invalid id: "{ami}"')
    key = (caller.project, ami)
    if key not in backend.memory.image_names:
        await _visible(backend, caller)
    name = backend.memory.image_names.get(key)
    if name is None:
        raise Ec2Error("InvalidAMIID.NotFound", f"The image id '[{ami}]' does not exist")
    return name


async def describe_images(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """DescribeImages (ImageIds, Owners `self`/project ids, Filters)."""
    views = [image_view(i) for i in await _visible(backend, caller)]
    wanted = set(params.get("ImageIds") or [])
    owners = {caller.project if o == "self" else o for o in params.get("Owners") or []}
    filters = filters_of(params)
    views = [
        v
        for v in views
        if (not wanted or v["ImageId"] in wanted)
        and (not owners or v["OwnerId"] in owners)
        and matches(v, filters, FILTER_FIELDS)
    ]
    missing = wanted - {v["ImageId"] for v in views}
    if missing:
        raise Ec2Error(
            "InvalidAMIID.NotFound", f"The image id '[{', '.join(sorted(missing))}]' does not exist"
        )
    return {"Images": views}


async def create_image(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """CreateImage: SnapshotInstance into a new private image named after `Name`."""
    instance = await find_instance(backend, caller, params["InstanceId"])
    image_id = "img-" + secrets.token_hex(6)
    await invoke(
        backend.compute.SnapshotInstance,
        capi.SnapshotInstanceRequest(name=instance.name, image_id=image_id),
        caller,
    )
    name = f"{caller.project_name}/images/{image_id}"
    update = iapi.UpdateImageRequest(
        image=ipb.Image(
            name=name, display_name=params["Name"], description=params.get("Description", "")
        ),
    )
    update.update_mask.paths.extend(["display_name", "description"])
    with contextlib.suppress(Ec2Error):  # the snapshot stands; only its display name is lost
        await invoke(backend.images.UpdateImage, update, caller)
    remember(backend.memory.image_names, (caller.project, ids.image_ec2_id(name)), name)
    return {"ImageId": ids.image_ec2_id(name)}
