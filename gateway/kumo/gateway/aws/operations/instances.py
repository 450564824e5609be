"""RunInstances, DescribeInstances, Start/Stop/Reboot/TerminateInstances,
DescribeInstanceStatus: over ComputeService's instances.

RunInstances creates MaxCount instances (named as `ids` says) and answers at once with
them `pending`, as EC2 does; ClientToken becomes each create's `request_id` (a UUID
derived from project, token and index), so a repeat returns the same instances. If fewer
than MinCount could be created, those created are deleted and the error is returned.
DescribeInstances pushes single-valued `availability-zone`, `instance-type` and
`tag:KEY` filters down to ListInstances and applies the rest here; MaxResults/NextToken
page with Kumo's own page tokens. Each instance is its own reservation when described
(written once per distinct instance message: `instance_views.reservation_item`). Calls
naming InstanceIds look every id up (concurrently) before changing any, so a bad id
changes nothing.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import uuid
from collections.abc import Sequence
from typing import Any

from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import resources_pb2 as cpb
from kumo.gateway.aws import ids
from kumo.gateway.aws.backend import Backend, Caller, invoke
from kumo.gateway.aws.errors import Ec2Error, invalid, missing
from kumo.gateway.aws.operations.block_devices import read_block_devices
from kumo.gateway.aws.operations.common import (
    Params,
    filters_of,
    label_term,
    matches,
    tag_map,
)
from kumo.gateway.aws.operations.images import image_name
from kumo.gateway.aws.operations.instance_views import (
    PENDING,
    SHUTTING_DOWN,
    STOPPING,
    TERMINATED,
    ec2_state,
    find_instance,
    instance_view,
    key_names,
    known_instance_name,
    learn,
    reservation_item,
    zone_ids,
)
from kumo.gateway.aws.operations.security_groups import find_group, group_view
from kumo.gateway.aws.operations.security_groups import groups as groups_of
from kumo.gateway.aws.operations.subnets import find_subnet
from kumo.gateway.key_pair_names import key_pair_ref
from kumo.type.v1.operation_metadata_pb2 import OperationMetadata

LOOKUPS_AT_ONCE = 16  # GetInstance calls one request keeps in flight
_TOKEN_NAMESPACE = uuid.UUID("5f1c3a52-8e0b-4f0e-9a43-6b0f5f0c2e11")
FILTER_FIELDS = {
    "instance-id": lambda i: [i["InstanceId"]],
    "instance-state-name": lambda i: [i["State"]["Name"]],
    "instance-state-code": lambda i: [str(i["State"]["Code"])],
    "availability-zone": lambda i: [i["Placement"]["AvailabilityZone"]],
    "instance-type": lambda i: [i["InstanceType"]],
    "image-id": lambda i: [i["ImageId"]],
    "key-name": lambda i: [i.get("KeyName", "")],
    "private-ip-address": lambda i: [i.get("PrivateIpAddress", "")],
    "ip-address": lambda i: [i.get("PublicIpAddress", "")],
}


def _user_data(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise invalid("UserData", "...", "Invalid BASE64 encoding of user data.") from None


async def run_instances(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """RunInstances: MinCount/MaxCount creates, ClientToken idempotency, tags, user data,
    a root EBS volume (BlockDeviceMappings)."""
    min_count, max_count = params["MinCount"], params["MaxCount"]
    if not 1 <= min_count <= max_count:
        raise invalid("MinCount", min_count, "MinCount must be 1 to MaxCount.")
    if max_count > 1000:
        raise invalid("MaxCount", max_count, "At most 1000 instances per request.")
    if params.get("NetworkInterfaces"):
        raise Ec2Error(
            "Unsupported", "NetworkInterfaces: give SubnetId and SecurityGroupIds instead."
        )
    if not params.get("ImageId"):
        raise missing("ImageId")
    if not params.get("InstanceType"):
        raise missing("InstanceType")
    zone = (params.get("Placement") or {}).get("AvailabilityZone")
    if not zone:
        zones = await zone_ids(backend, caller)
        if not zones:
            raise Ec2Error("InsufficientInstanceCapacity", "No availability zone exists.")
        zone = zones[0]
    labels = {}
    for spec in params.get("TagSpecifications") or []:
        if spec.get("ResourceType", "instance") == "instance":
            labels.update(tag_map(spec.get("Tags") or [], "TagSpecification.N.Tag"))
    interfaces = await _interfaces(backend, caller, params)
    template = cpb.Instance(
        network_interfaces=interfaces,
        flavor=f"flavors/{params['InstanceType']}",
        image=await image_name(backend, caller, params["ImageId"]),
        labels=labels,
        user_data=_user_data(params["UserData"]) if params.get("UserData") else b"",
        key_pairs=[key_pair_ref(caller.project, params["KeyName"])]
        if params.get("KeyName")
        else [],
    )
    await read_block_devices(backend, caller, params.get("BlockDeviceMappings"), template)
    token = params.get("ClientToken", "")
    parent = f"{caller.project_name}/zones/{zone}"
    created: list[cpb.Instance] = []
    for index in range(max_count):
        instance_id = ids.new_instance_id(caller.project, token, index)
        request_id = (
            str(uuid.uuid5(_TOKEN_NAMESPACE, f"{caller.project}/{token}/{index}")) if token else ""
        )
        request = capi.CreateInstanceRequest(
            parent=parent, instance_id=instance_id, instance=template, request_id=request_id
        )
        try:
            await invoke(backend.compute.CreateInstance, request, caller)
        except Ec2Error as error:
            if len(created) >= min_count and error.code.endswith("LimitExceeded"):
                break
            await _delete_all(backend, caller, created)
            raise
        instance = cpb.Instance()
        instance.CopyFrom(template)
        instance.name = f"{parent}/instances/{instance_id}"
        instance.state = cpb.Instance.STATE_PROVISIONING
        instance.create_time.GetCurrentTime()
        learn(backend, caller.project, instance.name)
        created.append(instance)
    named = (
        {key_pair_ref(caller.project, params["KeyName"]): params["KeyName"]}
        if params.get("KeyName")
        else {}
    )
    views = [instance_view(i, named) for i in created]
    for index, view in enumerate(views):
        view["AmiLaunchIndex"] = index
        if token:
            view["ClientToken"] = token
    return {
        "ReservationId": ids.reservation_id(views[0]["InstanceId"]),
        "OwnerId": caller.project,
        "Instances": views,
    }


async def _interfaces(
    backend: Backend, caller: Caller, params: Params
) -> list[cpb.NetworkInterface]:
    """The instance's one interface, on SubnetId (with SecurityGroupIds and the groups
    named by SecurityGroups), if given. Raises InvalidSubnetID.*, InvalidGroup.NotFound,
    InvalidGroupId.Malformed, InvalidParameterCombination (groups without a subnet)."""
    if not params.get("SubnetId"):
        for given in ("SecurityGroupIds", "SecurityGroups"):
            if params.get(given):
                raise Ec2Error("InvalidParameterCombination", f"{given} need a SubnetId.")
        return []
    subnet = await find_subnet(backend, caller, params["SubnetId"])
    network = subnet.name.rsplit("/subnets/", 1)[0]
    groups = [
        (await find_group(backend, caller, {"GroupId": group_id})).name
        for group_id in params.get("SecurityGroupIds") or []
    ]
    if params.get("SecurityGroups"):
        vpc_id = ids.ec2_id("vpc", network.rsplit("/", 1)[-1])
        named = params["SecurityGroups"]
        for name in await _groups_named(backend, caller, named, vpc_id, alone=not groups):
            if name not in groups:
                groups.append(name)
    return [
        cpb.NetworkInterface(
            network=network,
            subnet=subnet.name,
            ip_address=params.get("PrivateIpAddress", ""),
            security_groups=groups,
        )
    ]


async def _groups_named(
    backend: Backend, caller: Caller, names: list[str], vpc_id: str, alone: bool
) -> list[str]:
    """The Kumo names of the caller's groups with these GroupNames usable in `vpc_id`
    (made for that VPC, or for none). The project's `default` group, which Kumo makes
    with the project's first port, may not exist yet: asked for `alone` (no other group
    named or given by id), it is left to Kumo (a port without groups gets it). Raises
    InvalidGroup.NotFound."""
    usable = {}
    for group in await groups_of(backend, caller):
        view = group_view(group, caller.project)
        if view.get("VpcId", vpc_id) == vpc_id:
            usable[view["GroupName"]] = group.name
    if alone and list(names) == ["default"] and "default" not in usable:
        return []
    missing_names = [n for n in names if n not in usable]
    if missing_names:
        raise Ec2Error(
            "InvalidGroup.NotFound",
            f"The security group '{missing_names[0]}' does not exist in VPC '{vpc_id}'",
        )
    return [usable[n] for n in names]


async def _delete_all(backend: Backend, caller: Caller, instances: list[cpb.Instance]) -> None:
    for instance in instances:
        await invoke(
            backend.compute.DeleteInstance, capi.DeleteInstanceRequest(name=instance.name), caller
        )


async def _instances(
    backend: Backend, caller: Caller, params: Params
) -> tuple[list[cpb.Instance], str]:
    """The described instances (those passing the filters) and the next token."""
    filters = filters_of(params)
    wanted = params.get("InstanceIds") or []
    max_results = params.get("MaxResults")
    if wanted:
        if max_results is not None:
            raise Ec2Error(
                "InvalidParameterCombination",
                "The parameter instancesSet cannot be used with the parameter maxResults",
            )
        found = await _find_all(backend, caller, wanted)
        named = await _names_for(backend, caller, filters, found)
        return [i for i in found if _passes(i, filters, named)], ""
    if max_results is not None and not 5 <= max_results <= 1000:
        raise invalid("MaxResults", max_results, "It must be between 5 and 1000.")
    zone, terms = "-", []
    for name, values in filters.items():
        if len(values) != 1 or "*" in values[0]:
            continue
        if name == "availability-zone":
            zone = values[0]
        elif name == "instance-type":
            terms.append(f'flavor = "flavors/{values[0]}"')
        elif name.startswith("tag:") and (term := label_term(name[4:], values[0])):
            terms.append(term)
    request = capi.ListInstancesRequest(
        parent=f"{caller.project_name}/zones/{zone}",
        page_size=max_results or 1000,
        page_token=params.get("NextToken", ""),
        filter=" AND ".join(terms),
        show_deleted=True,  # terminated instances show for an hour, as in EC2
    )
    instances: list[cpb.Instance] = []
    while True:
        response = await invoke(backend.compute.ListInstances, request, caller)
        named = await _names_for(backend, caller, filters, response.instances)
        for instance in response.instances:
            learn(backend, caller.project, instance.name)
            if _passes(instance, filters, named):
                instances.append(instance)
        if max_results is not None or not response.next_page_token:
            return instances, response.next_page_token
        request.page_token = response.next_page_token


def _passes(instance: cpb.Instance, filters: dict[str, list[str]], named: dict[str, str]) -> bool:
    return not filters or matches(instance_view(instance, named), filters, FILTER_FIELDS)


async def _names_for(
    backend: Backend,
    caller: Caller,
    filters: dict[str, list[str]],
    instances: Sequence[cpb.Instance],
) -> dict[str, str]:
    """The EC2 names of the instances' key pairs when a filter is on them (else none
    needed: instance_view's ids stand in)."""
    return await key_names(backend, caller, instances) if "key-name" in filters else {}


async def describe_instances(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """DescribeInstances: filters, MaxResults/NextToken paging, one reservation each."""
    instances, next_token = await _instances(backend, caller, params)
    named = await key_names(backend, caller, instances)
    result: dict[str, Any] = {
        "Reservations": [reservation_item(backend, caller, i, named) for i in instances]
    }
    if next_token:
        result["NextToken"] = next_token
    return result


async def describe_instance_status(
    backend: Backend, caller: Caller, params: Params
) -> dict[str, Any]:
    """DescribeInstanceStatus: running instances only unless IncludeAllInstances."""
    instances, next_token = await _instances(backend, caller, params)
    statuses = []
    for view in map(instance_view, instances):
        if view["State"]["Name"] != "running" and not params.get("IncludeAllInstances"):
            continue
        ok = "ok" if view["State"]["Name"] == "running" else "not-applicable"
        statuses.append(
            {
                "InstanceId": view["InstanceId"],
                "AvailabilityZone": view["Placement"]["AvailabilityZone"],
                "InstanceState": view["State"],
                "InstanceStatus": {"Status": ok, "Details": []},
                "SystemStatus": {"Status": ok, "Details": []},
            }
        )
    result: dict[str, Any] = {"InstanceStatuses": statuses}
    if next_token:
        result["NextToken"] = next_token
    return result


async def _find_all(backend: Backend, caller: Caller, ec2_ids: list[str]) -> list[cpb.Instance]:
    """The instances named by `ec2_ids`, terminated ones within the last hour included
    (in STATE_DELETED), looked up concurrently (LOOKUPS_AT_ONCE at a time), all before
    any is changed (a bad id changes nothing, as in EC2). Raises the error of the first
    bad id in the list's order (InvalidInstanceID.Malformed / .NotFound, ...)."""
    slots = asyncio.Semaphore(LOOKUPS_AT_ONCE)

    async def find(ec2_id: str) -> cpb.Instance:
        async with slots:
            return await find_instance(backend, caller, ec2_id, show_deleted=True)

    found = await asyncio.gather(*map(find, ec2_ids), return_exceptions=True)
    instances = []
    for item in found:
        if isinstance(item, BaseException):
            raise item
        instances.append(item)
    return instances


def _changes(
    name: str,
    key: str,
    action: Any,
    next_state: tuple[int, str],
    doc: str,
    refused_verb: str | None = None,
) -> Any:
    """A handler applying `action` to each of `InstanceIds` (once all are found, and with
    `refused_verb`, none terminated), answering EC2's state changes; the previous state is
    the one `action` returns, or else the state the instance was found in. An instance
    terminated already stays `terminated`."""

    async def handler(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
        ec2_ids = params["InstanceIds"]
        found = await _find_all(backend, caller, ec2_ids)
        if refused_verb:
            for instance in found:
                _refuse_terminated(instance, refused_verb)
        changes = []
        for ec2_id, instance in zip(ec2_ids, found, strict=True):
            previous = await action(backend, caller, instance) or ec2_state(instance)
            changes.append(
                _change(ec2_id, previous, TERMINATED if previous == TERMINATED else next_state)
            )
        return {key: changes}

    handler.__name__ = handler.__qualname__ = name
    handler.__doc__ = doc
    return handler


def _change(ec2_id: str, previous: tuple[int, str], current: tuple[int, str]) -> dict[str, Any]:
    """One member of an EC2 InstanceStateChange list."""
    return {
        "InstanceId": ec2_id,
        "PreviousState": {"Code": previous[0], "Name": previous[1]},
        "CurrentState": {"Code": current[0], "Name": current[1]},
    }


def _refuse_terminated(instance: cpb.Instance, verb: str) -> None:
    """IncorrectInstanceState if `instance` was terminated (EC2's answer)."""
    if instance.state == cpb.Instance.STATE_DELETED:
        ec2_id = ids.instance_ec2_id(instance.name.rsplit("/", 1)[-1])
        raise Ec2Error(
            "IncorrectInstanceState",
            f"The instance '{ec2_id}' is not in a state from which it can be {verb}.",
        )


async def _start(backend: Backend, caller: Caller, instance: cpb.Instance) -> None:
    await invoke(
        backend.compute.StartInstance, capi.StartInstanceRequest(name=instance.name), caller
    )


async def _stop(backend: Backend, caller: Caller, instance: cpb.Instance) -> None:
    await invoke(backend.compute.StopInstance, capi.StopInstanceRequest(name=instance.name), caller)


async def _delete(backend: Backend, caller: Caller, name: str) -> tuple[int, str]:
    """Deletes the instance `name` unless it is being deleted already (in EC2, terminating
    an instance more than once succeeds each time, here until it is gone); returns its
    EC2 state when the deletion was accepted (from the operation's InstanceDeletion)."""
    operation = await invoke(
        backend.compute.DeleteInstance,
        capi.DeleteInstanceRequest(name=name),
        caller,
        under_way="INSTANCE_DELETING",
    )
    if operation is None:
        return SHUTTING_DOWN
    metadata, deletion = OperationMetadata(), cpb.InstanceDeletion()
    operation.metadata.Unpack(metadata)
    metadata.detail.Unpack(deletion)
    return ec2_state(
        cpb.Instance(state=deletion.previous_state, power_intent=deletion.previous_power_intent)
    )


async def _terminate(backend: Backend, caller: Caller, instance: cpb.Instance) -> tuple[int, str]:
    if instance.state == cpb.Instance.STATE_DELETING:
        return SHUTTING_DOWN
    if instance.state == cpb.Instance.STATE_DELETED:
        return TERMINATED
    return await _delete(backend, caller, instance.name)


start_instances = _changes(
    "start_instances",
    "StartingInstances",
    _start,
    PENDING,
    "StartInstances (StartInstance).",
    refused_verb="started",
)
stop_instances = _changes(
    "stop_instances",
    "StoppingInstances",
    _stop,
    STOPPING,
    "StopInstances (StopInstance).",
    refused_verb="stopped",
)
_terminate_found = _changes(
    "_terminate_found",
    "TerminatingInstances",
    _terminate,
    SHUTTING_DOWN,
    "TerminateInstances over instances looked up first.",
)


async def terminate_instances(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """TerminateInstances (DeleteInstance); again while it is being deleted succeeds, and
    once deleted answers `terminated` (for an hour, then NotFound). One id whose zone is
    remembered is deleted without a
    lookup first (DeleteInstance's operation tells the previous state); the rest, and an
    id not found there, go through `_terminate_found`."""
    ec2_ids = params["InstanceIds"]
    name = known_instance_name(backend, caller, ec2_ids[0]) if len(ec2_ids) == 1 else None
    if name is not None:
        try:
            previous = await _delete(backend, caller, name)
        except Ec2Error as error:
            if error.code != "InvalidInstanceID.NotFound":
                raise
        else:
            return {"TerminatingInstances": [_change(ec2_ids[0], previous, SHUTTING_DOWN)]}
    return await _terminate_found(backend, caller, params)  # type: ignore[no-any-return]


async def reboot_instances(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """RebootInstances (no output members)."""
    instances = await _find_all(backend, caller, params["InstanceIds"])
    for instance in instances:
        _refuse_terminated(instance, "rebooted")
    for instance in instances:
        await invoke(
            backend.compute.RebootInstance, capi.RebootInstanceRequest(name=instance.name), caller
        )
    return {}
