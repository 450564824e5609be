"""CreateTags, DeleteTags, DescribeTags: EC2 tags are Kumo `labels`.

Taggable today: instances (`i-...`) and the caller's own images (`ami-...`). Each change
reads the resource's labels and writes them back with `update_mask: labels` and the etag
read, so a concurrent change fails (IncorrectState) instead of being lost. DeleteTags
removes a tag only when no value is given or the value matches, as EC2 does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import resources_pb2 as cpb
from kumo.gateway.aws import ids
from kumo.gateway.aws.backend import Backend, Caller, invoke
from kumo.gateway.aws.errors import Ec2Error
from kumo.gateway.aws.operations.common import Params, filters_of, matches, tag_map
from kumo.gateway.aws.operations.images import image_name
from kumo.gateway.aws.operations.instance_views import find_instance
from kumo.image.v1 import image_service_pb2 as iapi

FILTER_FIELDS = {
    "key": lambda t: [t["Key"]],
    "value": lambda t: [t["Value"]],
    "resource-id": lambda t: [t["ResourceId"]],
    "resource-type": lambda t: [t["ResourceType"]],
}
Change = Callable[[dict[str, str]], None]


async def _relabel(backend: Backend, caller: Caller, resource: str, change: Change) -> None:
    if resource.startswith("i-"):
        instance = await find_instance(backend, caller, resource)
        labels = dict(instance.labels)
        change(labels)
        request = capi.UpdateInstanceRequest(
            instance=cpb.Instance(name=instance.name, labels=labels, etag=instance.etag)
        )
        request.update_mask.paths.append("labels")
        await invoke(backend.compute.UpdateInstance, request, caller)
    elif resource.startswith("ami-"):
        name = await image_name(backend, caller, resource)
        image = await invoke(backend.images.GetImage, iapi.GetImageRequest(name=name), caller)
        labels = dict(image.labels)
        change(labels)
        update = iapi.UpdateImageRequest(image=image)
        update.image.labels.clear()
        update.image.labels.update(labels)
        update.update_mask.paths.append("labels")
        await invoke(backend.images.UpdateImage, update, caller)
    else:
        raise Ec2Error("InvalidID", f"The ID '{resource}' is not valid")


async def create_tags(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """CreateTags: adds or overwrites tags on each resource."""
    tags = tag_map(params["Tags"], "Tag")
    for resource in params["Resources"]:
        await _relabel(backend, caller, resource, lambda labels: labels.update(tags))
    return {}


async def delete_tags(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """DeleteTags: no Tags removes every tag; a tag with a Value only if it matches."""
    given = params.get("Tags")
    if given is not None:
        tag_map(given, "Tag")  # every tag names a Key

    def change(labels: dict[str, str]) -> None:
        if given is None:
            labels.clear()
            return
        for tag in given:
            key = tag["Key"]
            if key in labels and ("Value" not in tag or labels[key] == tag["Value"]):
                del labels[key]

    for resource in params["Resources"]:
        await _relabel(backend, caller, resource, change)
    return {}


async def describe_tags(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """DescribeTags over the caller's instances and images."""
    described: list[dict[str, str]] = []
    request = capi.ListInstancesRequest(parent=f"{caller.project_name}/zones/-", page_size=1000)
    while True:
        response = await invoke(backend.compute.ListInstances, request, caller)
        for instance in response.instances:
            resource = ids.instance_ec2_id(instance.name.rsplit("/", 1)[-1])
            described += _tags(resource, "instance", instance.labels)
        if not response.next_page_token:
            break
        request.page_token = response.next_page_token
    images = await invoke(
        backend.images.ListImages,
        iapi.ListImagesRequest(parent=caller.project_name, page_size=1000),
        caller,
    )
    for image in images.images:
        described += _tags(ids.image_ec2_id(image.name), "image", image.labels)
    filters = filters_of(params)
    return {"Tags": [t for t in described if matches(t, filters, FILTER_FIELDS)]}


def _tags(resource: str, kind: str, labels: Any) -> list[dict[str, str]]:
    return [
        {"ResourceId": resource, "ResourceType": kind, "Key": k, "Value": v}
        for k, v in sorted(labels.items())
    ]
