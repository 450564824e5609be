"""CreateTags, DeleteTags, DescribeTags: EC2 tags are Kumo `labels`.

Taggable: instances (`i-`), the caller's images (`ami-`), VPCs (`vpc-`), subnets
(`subnet-`), security groups (`sg-`), network interfaces (`eni-`), Elastic IPs
(`eipalloc-`), volumes (`vol-`), snapshots (`snap-`) and key pairs (`key-`, by
KeyPairId). Each change reads the resource and writes its labels back with
`update_mask: labels` and the etag read, done again while the resource changed in between
(etag_retry), so no concurrent change is lost. Reserved `kumo:` labels (see
reserved_labels) are never tags and survive DeleteTags. DeleteTags removes a tag only
when no value is given or the value matches, as EC2 does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.gateway.aws import ids
from kumo.gateway.aws.backend import Backend, Caller, invoke, rewrite
from kumo.gateway.aws.errors import Ec2Error
from kumo.gateway.aws.operations.addresses import addresses, find_address
from kumo.gateway.aws.operations.common import (
    Params,
    filters_of,
    kumo_id_of,
    list_all,
    matches,
    tag_map,
)
from kumo.gateway.aws.operations.images import image_name
from kumo.gateway.aws.operations.instance_views import find_instance
from kumo.gateway.aws.operations.key_pairs import find_key_pair, key_pairs
from kumo.gateway.aws.operations.security_groups import find_group, groups
from kumo.gateway.aws.operations.storage_lookup import (
    find_snapshot,
    find_volume,
    snapshots,
    volumes,
)
from kumo.gateway.aws.operations.subnets import find_subnet, subnets
from kumo.gateway.aws.operations.vpcs import get_network, networks
from kumo.gateway.reserved_labels import RESERVED
from kumo.image.v1 import image_service_pb2 as iapi
from kumo.network.v1 import network_service_pb2 as napi
from kumo.storage.v1 import storage_service_pb2 as sapi

FILTER_FIELDS = {
    "key": lambda t: [t["Key"]],
    "value": lambda t: [t["Value"]],
    "resource-id": lambda t: [t["ResourceId"]],
    "resource-type": lambda t: [t["ResourceType"]],
}
Change = Callable[[dict[str, str]], None]
Finder = Callable[[Backend, Caller, str], Awaitable[Any]]


async def _port(backend: Backend, caller: Caller, ec2_id: str) -> Any:
    kumo_id = kumo_id_of("eni", ec2_id, "InvalidNetworkInterfaceID.Malformed")
    name = f"{caller.project_name}/ports/{kumo_id}"
    return await invoke(backend.network.GetPort, napi.GetPortRequest(name=name), caller)


async def _ports(backend: Backend, caller: Caller) -> list[Any]:
    request = napi.ListPortsRequest(parent=caller.project_name, page_size=1000)
    return await list_all(backend.network.ListPorts, request, "ports", caller)


async def _image(backend: Backend, caller: Caller, ec2_id: str) -> Any:
    name = await image_name(backend, caller, ec2_id)
    return await invoke(backend.images.GetImage, iapi.GetImageRequest(name=name), caller)


@dataclass(frozen=True)
class Taggable:
    """How to find a resource kind by EC2 id and write its labels back."""

    kind: str  # EC2 resource type
    find: Finder
    update: Callable[[Backend], Any]  # the Update method
    request: type[Message]
    field: str  # the resource's field in the update request


TAGGABLE: dict[str, Taggable] = {
    "i": Taggable(
        "instance",
        find_instance,
        lambda b: b.compute.UpdateInstance,
        capi.UpdateInstanceRequest,
        "instance",
    ),
    "ami": Taggable(
        "image", _image, lambda b: b.images.UpdateImage, iapi.UpdateImageRequest, "image"
    ),
    "vpc": Taggable(
        "vpc", get_network, lambda b: b.network.UpdateNetwork, napi.UpdateNetworkRequest, "network"
    ),
    "subnet": Taggable(
        "subnet", find_subnet, lambda b: b.network.UpdateSubnet, napi.UpdateSubnetRequest, "subnet"
    ),
    "sg": Taggable(
        "security-group",
        lambda b, c, i: find_group(b, c, {"GroupId": i}),
        lambda b: b.network.UpdateSecurityGroup,
        napi.UpdateSecurityGroupRequest,
        "security_group",
    ),
    "eni": Taggable(
        "network-interface", _port, lambda b: b.network.UpdatePort, napi.UpdatePortRequest, "port"
    ),
    "eipalloc": Taggable(
        "elastic-ip",
        lambda b, c, i: find_address(b, c, {"AllocationId": i}),
        lambda b: b.network.UpdateFloatingIp,
        napi.UpdateFloatingIpRequest,
        "floating_ip",
    ),
    "vol": Taggable(
        "volume", find_volume, lambda b: b.storage.UpdateVolume, sapi.UpdateVolumeRequest, "volume"
    ),
    "snap": Taggable(
        "snapshot",
        find_snapshot,
        lambda b: b.storage.UpdateSnapshot,
        sapi.UpdateSnapshotRequest,
        "snapshot",
    ),
    "key": Taggable(
        "key-pair",
        find_key_pair,
        lambda b: b.compute.UpdateKeyPair,
        capi.UpdateKeyPairRequest,
        "key_pair",
    ),
}


async def _relabel(backend: Backend, caller: Caller, resource: str, change: Change) -> None:
    prefix = resource.split("-", 1)[0]
    taggable = TAGGABLE.get(prefix) if "-" in resource else None
    if taggable is None:
        raise Ec2Error("InvalidID", f"The ID '{resource}' is not valid")

    async def attempt() -> None:
        current = await taggable.find(backend, caller, resource)
        labels = dict(current.labels)
        change(labels)
        message = type(current)(name=current.name, etag=current.etag, labels=labels)
        request = taggable.request(**{taggable.field: message})
        request.update_mask.paths.append("labels")
        await taggable.update(backend)(request, metadata=caller.metadata)

    await rewrite(attempt)


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
        tag_map(given, "Tag")  # every tag names a Key, none reserved

    def change(labels: dict[str, str]) -> None:
        for key in list(labels):
            if key.startswith(RESERVED):
                continue
            if given is None:
                del labels[key]
                continue
            for tag in given:
                if tag["Key"] == key and ("Value" not in tag or labels[key] == tag["Value"]):
                    del labels[key]
                    break

    for resource in params["Resources"]:
        await _relabel(backend, caller, resource, change)
    return {}


async def describe_tags(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """DescribeTags over every taggable resource of the caller."""
    filters = filters_of(params)
    kinds = set(filters.get("resource-type") or [])
    described: list[dict[str, str]] = []

    def wanted(kind: str) -> bool:
        return not kinds or kind in kinds

    if wanted("instance"):
        request = capi.ListInstancesRequest(parent=f"{caller.project_name}/zones/-", page_size=1000)
        for instance in await list_all(backend.compute.ListInstances, request, "instances", caller):
            resource = ids.instance_ec2_id(instance.name.rsplit("/", 1)[-1])
            described += _tags(resource, "instance", instance.labels)
    if wanted("image"):
        images = await invoke(
            backend.images.ListImages,
            iapi.ListImagesRequest(parent=caller.project_name, page_size=1000),
            caller,
        )
        for image in images.images:
            described += _tags(ids.image_ec2_id(image.name), "image", image.labels)
    if wanted("key-pair"):
        for key in await key_pairs(backend, caller):
            described += _tags(ids.key_pair_ec2_id(key.uid), "key-pair", key.labels)
    listed: list[tuple[str, str, Callable[[Backend, Caller], Awaitable[list[Any]]]]] = [
        ("vpc", "vpc", networks),
        ("subnet", "subnet", subnets),
        ("sg", "security-group", groups),
        ("eni", "network-interface", _ports),
        ("eipalloc", "elastic-ip", addresses),
        ("vol", "volume", volumes),
        ("snap", "snapshot", snapshots),
    ]
    for prefix, kind, lister in listed:
        if wanted(kind):
            for item in await lister(backend, caller):
                resource = ids.ec2_id(prefix, item.name.rsplit("/", 1)[-1])
                described += _tags(resource, kind, item.labels)
    return {"Tags": [t for t in described if matches(t, filters, FILTER_FIELDS)]}


def _tags(resource: str, kind: str, labels: Any) -> list[dict[str, str]]:
    return [
        {"ResourceId": resource, "ResourceType": kind, "Key": k, "Value": v}
        for k, v in sorted(labels.items())
        if not k.startswith(RESERVED)
    ]
