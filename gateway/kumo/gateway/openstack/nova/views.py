"""Kumo compute resources in Nova's JSON shapes (API reference, by microversion)."""

from __future__ import annotations

import hashlib
from typing import Any

from kumo.compute.v1 import resources_pb2 as cpb
from kumo.gateway.openstack.common import iso, last_segment
from kumo.gateway.openstack.microversions import Version

_STATE = cpb.Instance.State
# Kumo state -> (Nova status, vm_state, power_state)
STATUS: dict[int, tuple[str, str, int]] = {
    _STATE.STATE_UNSPECIFIED: ("BUILD", "building", 0),
    _STATE.STATE_PROVISIONING: ("BUILD", "building", 0),
    _STATE.STATE_RUNNING: ("ACTIVE", "active", 1),
    _STATE.STATE_STOPPED: ("SHUTOFF", "stopped", 4),
    _STATE.STATE_SUSPENDED: ("SUSPENDED", "suspended", 7),
    _STATE.STATE_REBOOTING: ("REBOOT", "active", 1),
    _STATE.STATE_RESIZED: ("VERIFY_RESIZE", "resized", 1),
    _STATE.STATE_ERROR: ("ERROR", "error", 0),
}
_INTENT = cpb.Instance.PowerIntent
# While Kumo deletes an instance, Nova shows its last status with task_state "deleting"
# (clients waiting for a delete wait for the 404, or stop at a DELETED status too early).
DELETING_STATUS: dict[int, tuple[str, str, int]] = {
    _INTENT.POWER_INTENT_RUNNING: ("ACTIVE", "active", 1),
    _INTENT.POWER_INTENT_STOPPED: ("SHUTOFF", "stopped", 4),
    _INTENT.POWER_INTENT_SUSPENDED: ("SUSPENDED", "suspended", 7),
}
# A suspension asked for with Nova's `pause` (Instance.paused): the same in-memory pause.
PAUSED = ("PAUSED", "paused", 3)
# Nova status filter -> ListInstances filter
STATE_FILTER = {
    "BUILD": "state = STATE_PROVISIONING",
    "ACTIVE": "state = STATE_RUNNING",
    "SHUTOFF": "state = STATE_STOPPED",
    "SUSPENDED": "state = STATE_SUSPENDED AND paused = false",
    "PAUSED": "state = STATE_SUSPENDED AND paused = true",
    "REBOOT": "state = STATE_REBOOTING",
    "VERIFY_RESIZE": "state = STATE_RESIZED",
    "ERROR": "state = STATE_ERROR",
}


def zone_of(instance: cpb.Instance) -> str:
    """The zone id in `projects/p/zones/z/instances/i`."""
    return instance.name.split("/")[3]


def server_links(base: str, uid: str) -> list[dict[str, str]]:
    """Nova's self and bookmark links."""
    return [
        {"rel": "self", "href": f"{base}/compute/v2.1/servers/{uid}"},
        {"rel": "bookmark", "href": f"{base}/compute/servers/{uid}"},
    ]


def server_brief(instance: cpb.Instance, base: str) -> dict[str, Any]:
    """A server in `GET /servers`."""
    return {
        "id": instance.uid,
        "name": instance.display_name,
        "links": server_links(base, instance.uid),
    }


def server_detail(
    instance: cpb.Instance,
    base: str,
    version: Version,
    image_uid: str,
    admin: bool,
    addresses: dict[str, Any],
) -> dict[str, Any]:
    """A server in `GET /servers/detail` and `GET /servers/{id}`."""
    project = instance.name.split("/")[1]
    deleting = instance.state == _STATE.STATE_DELETING
    if deleting:
        status, vm_state, power_state = DELETING_STATUS.get(
            instance.power_intent, ("SHUTOFF", "stopped", 4)
        )
    else:
        status, vm_state, power_state = STATUS.get(instance.state, ("UNKNOWN", "error", 0))
    if instance.paused and status == "SUSPENDED":
        status, vm_state, power_state = PAUSED
    host_id = (
        hashlib.sha224((project + instance.host).encode()).hexdigest() if instance.host else ""
    )
    body: dict[str, Any] = {
        **server_brief(instance, base),
        "status": status,
        "tenant_id": project,
        "user_id": "",
        "metadata": dict(instance.labels),
        "hostId": host_id,
        "image": {"id": image_uid, "links": []} if image_uid else "",
        "flavor": {"id": last_segment(instance.flavor), "links": []},
        "created": iso(instance.create_time),
        "updated": iso(instance.update_time),
        "addresses": addresses,
        "accessIPv4": "",
        "accessIPv6": "",
        "key_name": last_segment(instance.key_pairs[0]) if instance.key_pairs else None,
        "config_drive": "",
        "progress": 0,
        "OS-DCF:diskConfig": "MANUAL",
        "OS-EXT-AZ:availability_zone": zone_of(instance),
        "OS-EXT-STS:vm_state": vm_state,
        "OS-EXT-STS:power_state": power_state,
        "OS-EXT-STS:task_state": "deleting" if deleting else None,
        "OS-SRV-USG:launched_at": None,
        "OS-SRV-USG:terminated_at": None,
        "security_groups": [],
    }
    if status == "ERROR":
        body["fault"] = {
            "code": 500,
            "message": instance.status_message,
            "created": body["updated"],
        }
    if admin:
        body["OS-EXT-SRV-ATTR:host"] = last_segment(instance.host) or None
        body["OS-EXT-SRV-ATTR:hypervisor_hostname"] = last_segment(instance.host) or None
        body["OS-EXT-SRV-ATTR:instance_name"] = instance.name
    if version >= Version(2, 3) and admin:
        body["OS-EXT-SRV-ATTR:hostname"] = instance.hostname
    if version >= Version(2, 9):
        body["locked"] = instance.locked
    if version >= Version(2, 19):
        body["description"] = None
    if version >= Version(2, 26):
        body["tags"] = []
    return body


def flavor_json(flavor: cpb.Flavor, base: str, detail: bool) -> dict[str, Any]:
    """A flavor (brief: id, name, links)."""
    flavor_id = last_segment(flavor.name)
    body: dict[str, Any] = {
        "id": flavor_id,
        "name": flavor.display_name or flavor_id,
        "links": [{"rel": "self", "href": f"{base}/compute/v2.1/flavors/{flavor_id}"}],
    }
    if detail:
        body.update(
            {
                "ram": flavor.memory_mib,
                "vcpus": flavor.vcpus,
                "disk": flavor.disk_gib,
                "swap": "",
                "rxtx_factor": 1.0,
                "OS-FLV-EXT-DATA:ephemeral": 0,
                "OS-FLV-DISABLED:disabled": False,
                "os-flavor-access:is_public": True,
            }
        )
    return body


def key_pair_json(key: cpb.KeyPair, user: str, version: Version) -> dict[str, Any]:
    """A key pair (the private key only when Kumo generated it, in the create answer)."""
    body: dict[str, Any] = {
        "name": last_segment(key.name),
        "public_key": key.public_key,
        "fingerprint": key.fingerprint,
        "user_id": user,
    }
    if key.private_key:
        body["private_key"] = key.private_key
    if version >= Version(2, 2):
        body["type"] = "ssh"
    return body


POLICY_NAMES = {
    cpb.ServerGroup.POLICY_AFFINITY: "affinity",
    cpb.ServerGroup.POLICY_ANTI_AFFINITY: "anti-affinity",
    cpb.ServerGroup.POLICY_SOFT_AFFINITY: "soft-affinity",
    cpb.ServerGroup.POLICY_SOFT_ANTI_AFFINITY: "soft-anti-affinity",
}
POLICIES = {name: policy for policy, name in POLICY_NAMES.items()}


def server_group_json(group: cpb.ServerGroup, member_uids: list[str]) -> dict[str, Any]:
    """A server group (its id and name are the Kumo id)."""
    group_id = last_segment(group.name)
    return {
        "id": group_id,
        "name": group_id,
        "policies": [POLICY_NAMES.get(group.policy, "")],
        "members": member_uids,
        "metadata": {},
        "project_id": group.name.split("/")[1],
        "user_id": "",
    }
