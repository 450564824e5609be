"""Kumo instances as EC2 `Instance` structures (and the reservations DescribeInstances
writes for them), and where an EC2 instance id lives."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from botocore.model import ListShape

from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import resources_pb2 as cpb
from kumo.gateway.aws import ids, model, xml
from kumo.gateway.aws.backend import MAX_RESERVATIONS, Backend, Caller, invoke, remember
from kumo.gateway.aws.errors import Ec2Error
from kumo.gateway.aws.operations.common import ROOT_DEVICE, tags_of, time_of
from kumo.gateway.key_pair_names import last
from kumo.topology.v1 import topology_service_pb2 as tapi

S = cpb.Instance
PENDING, RUNNING, SHUTTING_DOWN, TERMINATED, STOPPING, STOPPED = (
    (0, "pending"),
    (16, "running"),
    (32, "shutting-down"),
    (48, "terminated"),
    (64, "stopping"),
    (80, "stopped"),
)
ZONE_TTL_SECONDS = 30.0
_TERMINATED_REASON = {
    "Code": "Client.UserInitiatedShutdown",
    "Message": "Client.UserInitiatedShutdown: User initiated shutdown",
}


def ec2_state(instance: cpb.Instance) -> tuple[int, str]:
    """EC2's (code, name) for a Kumo instance: the observed state, read against the
    power intent (RUNNING with a stop intent is `stopping`, STOPPED with a run intent
    `pending`). ERROR is `stopped` (EC2 has no error state; the reason says why). A
    deleted instance (read with `show_deleted`) is `terminated`."""
    state, intent = instance.state, instance.power_intent
    if state == S.STATE_DELETING:
        return SHUTTING_DOWN
    if state == S.STATE_DELETED:
        return TERMINATED
    if state == S.STATE_PROVISIONING:
        return PENDING
    if state in (S.STATE_RUNNING, S.STATE_REBOOTING, S.STATE_RESIZED):
        return STOPPING if intent == S.POWER_INTENT_STOPPED else RUNNING
    if state in (S.STATE_STOPPED, S.STATE_SUSPENDED):
        return PENDING if intent == S.POWER_INTENT_RUNNING else STOPPED
    return STOPPED


def zone_of(name: str) -> str:
    """The zone id in `projects/{p}/zones/{zone}/instances/{i}`."""
    return name.split("/")[3]


def instance_view(
    instance: cpb.Instance, key_names: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The EC2 `Instance` structure of a Kumo instance: the members Kumo knows (what it
    does not show, such as its VPC and subnet, is left out rather than invented); 500 of
    them are ~300 KB of XML, whose parsing is most of a client's DescribeInstances time.
    `key_names`: the EC2 names of key pairs whose ids are not their names
    (key_pair_names.py; `key_names` below)."""
    kumo_id = instance.name.rsplit("/", 1)[-1]
    code, state = ec2_state(instance)
    view: dict[str, Any] = {
        "InstanceId": ids.instance_ec2_id(kumo_id),
        "ImageId": ids.image_ec2_id(instance.image),
        "State": {"Code": code, "Name": state},
        "InstanceType": instance.flavor.removeprefix("flavors/"),
        "LaunchTime": time_of(instance.create_time),
        "Placement": {"AvailabilityZone": zone_of(instance.name)},
        "Architecture": "x86_64",
        "VirtualizationType": "hvm",
    }
    mappings = [
        {  # the volumes attached with a device name (RunInstances' or AttachVolume's)
            "DeviceName": v.device,
            "Ebs": {
                "VolumeId": ids.volume_ec2_id(v.volume),
                "Status": "attached",
                "DeleteOnTermination": v.delete_with_instance,
            },
        }
        for v in instance.attached_volumes
        if v.device and v.volume != instance.boot_volume
    ]
    if instance.boot_volume:  # an EBS root
        view["RootDeviceType"] = "ebs"
        view["RootDeviceName"] = ROOT_DEVICE
        root = {
            "VolumeId": ids.volume_ec2_id(instance.boot_volume),
            "Status": "attached",
            "AttachTime": view["LaunchTime"],
            "DeleteOnTermination": instance.delete_boot_volume,
        }
        mappings.insert(0, {"DeviceName": ROOT_DEVICE, "Ebs": root})
    if mappings:
        view["BlockDeviceMappings"] = mappings
    if instance.labels:
        view["Tags"] = tags_of(instance.labels)
    if instance.hostname:
        view["PrivateDnsName"] = instance.hostname
    view.update(_addresses(instance))
    if instance.key_pairs:
        ref = instance.key_pairs[0]
        view["KeyName"] = (key_names or {}).get(ref) or last(ref)
    if instance.status_message and instance.state == S.STATE_ERROR:
        view["StateReason"] = {"Code": "Server.InternalError", "Message": instance.status_message}
    elif instance.state == S.STATE_DELETED:
        view["StateReason"] = _TERMINATED_REASON
    return view


def _addresses(instance: cpb.Instance) -> dict[str, str]:
    """PrivateIpAddress and PublicIpAddress: the first IPv4 address of the instance's first
    interface and the first floating IP (an Elastic IP) mapped to it, those it has."""
    found: dict[str, str] = {}
    if instance.network_interfaces:
        first = instance.network_interfaces[0]
        for member, listed in (
            ("PrivateIpAddress", first.ip_addresses),
            ("PublicIpAddress", first.floating_ip_addresses),
        ):
            ipv4 = [address for address in listed if ":" not in address]
            if ipv4:
                found[member] = ipv4[0]
    return found


def _reservation(view: dict[str, Any], project: str) -> dict[str, Any]:
    """The EC2 `Reservation` of one described instance (each is its own)."""
    return {
        "ReservationId": ids.reservation_id(view["InstanceId"]),
        "OwnerId": project,
        "Groups": [],
        "Instances": [view],
    }


def _reservations_shape() -> ListShape:
    operation = model.operation("DescribeInstances")
    assert operation is not None and operation.output_shape is not None
    shape = operation.output_shape.members["Reservations"]
    assert isinstance(shape, ListShape)
    return shape


_RESERVATIONS = _reservations_shape()


def reservation_item(
    backend: Backend, caller: Caller, instance: cpb.Instance, key_names: Mapping[str, str]
) -> xml.Fragment:
    """The reservation DescribeInstances writes for `instance` (`key_names` as for
    instance_view), written once per distinct instance message (`Memory.reservations`):
    500 instances unchanged since the last Describe cost a serialization and a lookup
    each, not a view and its XML."""
    key_name = key_names.get(instance.key_pairs[0], "") if instance.key_pairs else ""
    key = (caller.project, instance.SerializeToString(deterministic=True), key_name)
    written = backend.memory.reservations.get(key)
    if written is None:
        view = _reservation(instance_view(instance, key_names), caller.project)
        written = xml.item_fragment(_RESERVATIONS, view)
        remember(backend.memory.reservations, key, written, MAX_RESERVATIONS)
    return written


async def key_names(
    backend: Backend, caller: Caller, instances: Iterable[cpb.Instance]
) -> dict[str, str]:
    """The EC2 names of the instances' key pairs by resource name (key_pair_names.py)."""

    async def fetch(ref: str) -> cpb.KeyPair | None:
        try:
            key: cpb.KeyPair = await invoke(
                backend.compute.GetKeyPair, capi.GetKeyPairRequest(name=ref), caller
            )
        except Ec2Error:
            return None
        return key

    refs = (i.key_pairs[0] for i in instances if i.key_pairs)
    return await backend.key_names.names(refs, fetch)


def learn(backend: Backend, project: str, instance_name: str) -> None:
    """Remembers an instance's zone."""
    parts = instance_name.split("/")  # projects/{p}/zones/{zone}/instances/{i}
    remember(backend.memory.instance_zones, (project, parts[5]), parts[3])


async def zone_ids(backend: Backend, caller: Caller) -> list[str]:
    """The ids of every zone (read again after 30 s)."""
    fetched_at, zones = backend.memory.zone_list
    if time.monotonic() - fetched_at > ZONE_TTL_SECONDS or not zones:
        response = await invoke(
            backend.topology.ListZones, tapi.ListZonesRequest(page_size=1000), caller
        )
        zones = [z.name.removeprefix("zones/") for z in response.zones]
        backend.memory.zone_list = (time.monotonic(), zones)
    return zones


def known_instance_name(backend: Backend, caller: Caller, ec2_id: str) -> str | None:
    """The name of the caller's instance `ec2_id` if its zone is remembered, else None
    (also for a malformed id). It may be gone: its next call then answers NotFound."""
    kumo_id = ids.instance_kumo_id(ec2_id)
    zone = backend.memory.instance_zones.get((caller.project, kumo_id)) if kumo_id else None
    return f"{caller.project_name}/zones/{zone}/instances/{kumo_id}" if zone else None


async def find_instance(
    backend: Backend, caller: Caller, ec2_id: str, show_deleted: bool = False
) -> cpb.Instance:
    """The instance with this EC2 id in the caller's project: in its remembered zone, or
    else probing every zone; `show_deleted`: also one terminated within the last hour
    (in STATE_DELETED). Raises InvalidInstanceID.Malformed / .NotFound."""
    kumo_id = ids.instance_kumo_id(ec2_id)
    if kumo_id is None:
        raise Ec2Error("InvalidInstanceID.Malformed", f'Invalid id: "{ec2_id}"')
    known = backend.memory.instance_zones.get((caller.project, kumo_id))
    for zone in [known] if known else await zone_ids(backend, caller):
        name = f"{caller.project_name}/zones/{zone}/instances/{kumo_id}"
        try:
            request = capi.GetInstanceRequest(name=name, show_deleted=show_deleted)
            instance = await invoke(backend.compute.GetInstance, request, caller)
        except Ec2Error as error:
            if error.code in ("InvalidInstanceID.NotFound", "InvalidParameterValue"):
                continue
            raise
        learn(backend, caller.project, instance.name)
        return instance  # type: ignore[no-any-return]
    backend.memory.instance_zones.pop((caller.project, kumo_id), None)
    raise Ec2Error("InvalidInstanceID.NotFound", f"The instance ID '{ec2_id}' does not exist")
