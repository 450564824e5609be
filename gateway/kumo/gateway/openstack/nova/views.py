"""Kumo compute resources in Nova's JSON shapes (API reference, by microversion)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import lru_cache
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
    _STATE.STATE_DELETED: ("DELETED", "deleted", 0),
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
# While an instance moves (a live or cold migration, or a resize or its revert changing
# hosts), Nova's status is MIGRATING (RESIZE / REVERT_RESIZE for the cold kinds; Kumo
# shows MIGRATING for all), so that clients waiting for ACTIVE or VERIFY_RESIZE after
# the call wait for the move (DetailView.render).


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


@lru_cache(maxsize=4096)
def host_id(project: str, host: str) -> str:
    """Nova's `hostId`: a hash of the project and the host, so that a tenant can tell its
    servers apart by host without learning the host's name."""
    return hashlib.sha224((project + host).encode()).hexdigest()


_DELETING = _STATE.STATE_DELETING
_V2_3, _V2_9, _V2_19, _V2_26 = Version(2, 3), Version(2, 9), Version(2, 19), Version(2, 26)
_V2_63, V2_64, _V2_73, _V2_90 = Version(2, 63), Version(2, 64), Version(2, 73), Version(2, 90)
V2_47, V2_55, V2_61, V2_75 = Version(2, 47), Version(2, 55), Version(2, 61), Version(2, 75)


class DetailView:
    """Servers in `GET /servers/detail`, `GET /servers/{id}` and `PUT /servers/{id}`.

    What depends on the request alone (the base URL, the microversion, whether the caller
    is a cloud administrator) is worked out once, not once per server."""

    def __init__(
        self,
        base: str,
        version: Version,
        admin: bool,
        flavors: Mapping[str, cpb.Flavor] | None = None,
        key_names: Mapping[str, str] | None = None,
    ) -> None:
        """`flavors` by name, given from microversion 2.47: each server then shows its
        flavor whole; `key_names` the client names of key pairs by resource name (an id
        not there is its own name: key_pair_names.py)."""
        self.base = base
        self.flavors = flavors
        self.key_names = key_names or {}
        self.admin = admin
        # (OS-EXT-SRV-ATTR:hostname: administrators' from 2.3, everyone's from 2.90)
        self.hostname = (admin and version >= _V2_3) or version >= _V2_90
        self.volume_flag = version >= _V2_3  # delete_on_termination in volumes_attached
        self.locked = version >= _V2_9
        self.description = version >= _V2_19
        self.tags = version >= _V2_26
        self.certificates = version >= _V2_63  # (Kumo verifies no image signatures)
        self.locked_reason = version >= _V2_73

    def render(
        self,
        instance: cpb.Instance,
        image_uid: str,
        addresses: dict[str, Any],
        security_groups: list[dict[str, str]],
    ) -> dict[str, Any]:
        """One server: `image_uid` its image's id ('' for none), `addresses` by network
        label, `security_groups` Nova's list of its ports' groups (left out when empty)."""
        name = instance.name
        parts = name.split("/")
        project = parts[1]
        uid = instance.uid
        state = instance.state
        deleting = state == _DELETING
        if deleting:
            status, vm_state, power_state = DELETING_STATUS.get(
                instance.power_intent, ("SHUTOFF", "stopped", 4)
            )
        else:
            status, vm_state, power_state = STATUS.get(state, ("UNKNOWN", "error", 0))
        if status == "SUSPENDED" and instance.paused:
            status, vm_state, power_state = PAUSED
        moving = bool(instance.migration_host) and not deleting
        if moving:
            status = "MIGRATING"
        host = instance.host
        key_pairs = instance.key_pairs
        updated = iso(instance.update_time)
        body: dict[str, Any] = {
            "id": uid,
            "name": instance.display_name,
            "links": server_links(self.base, uid),
            "status": status,
            "tenant_id": project,
            "user_id": "",
            "metadata": dict(instance.labels),
            "hostId": host_id(project, host) if host else "",
            "image": {"id": image_uid, "links": []} if image_uid else "",
            "flavor": self._flavor(instance),
            "created": iso(instance.create_time),
            "updated": updated,
            "addresses": addresses,
            "accessIPv4": "",
            "accessIPv6": "",
            "key_name": self._key_name(key_pairs[0]) if key_pairs else None,
            "config_drive": "",
            "progress": 0,
            "OS-DCF:diskConfig": "MANUAL",
            "OS-EXT-AZ:availability_zone": parts[3],
            "OS-EXT-STS:vm_state": vm_state,
            "OS-EXT-STS:power_state": power_state,
            "OS-EXT-STS:task_state": "deleting" if deleting else "migrating" if moving else None,
            "OS-SRV-USG:launched_at": None,
            "OS-SRV-USG:terminated_at": None,
        }
        if security_groups:
            body["security_groups"] = security_groups
        if status == "ERROR":
            body["fault"] = {"code": 500, "message": instance.status_message, "created": updated}
        if self.admin:
            host_name = last_segment(host) or None
            body["OS-EXT-SRV-ATTR:host"] = host_name
            body["OS-EXT-SRV-ATTR:hypervisor_hostname"] = host_name
            body["OS-EXT-SRV-ATTR:instance_name"] = name
        if self.hostname:
            body["OS-EXT-SRV-ATTR:hostname"] = instance.hostname
        if self.locked:
            body["locked"] = instance.locked
        if self.locked_reason:
            body["locked_reason"] = instance.locked_reason or None
        if self.description:
            body["description"] = None
        if self.tags:
            body["tags"] = list(instance.tags)
        if self.certificates:
            body["trusted_image_certificates"] = None
        attached = instance.attached_volumes
        body["os-extended-volumes:volumes_attached"] = (
            [{"id": v.uid, "delete_on_termination": v.delete_with_instance} for v in attached]
            if self.volume_flag
            else [{"id": v.uid} for v in attached]
        )
        return body

    def _key_name(self, ref: str) -> str:
        return self.key_names.get(ref) or last_segment(ref)

    def _flavor(self, instance: cpb.Instance) -> dict[str, Any]:
        """The server's flavor: a reference, or from 2.47 its sizes (those it was placed
        with; before placement the flavor's) and name."""
        flavor_id = last_segment(instance.flavor)
        if self.flavors is None:
            return {"id": flavor_id, "links": []}
        flavor = self.flavors.get(instance.flavor) or cpb.Flavor()
        placed = instance.vcpus > 0
        return {
            "vcpus": instance.vcpus if placed else flavor.vcpus,
            "ram": instance.memory_mib if placed else flavor.memory_mib,
            "disk": instance.disk_gib if placed else flavor.disk_gib,
            "ephemeral": 0,
            "swap": 0,
            "original_name": flavor.display_name or flavor_id,
            "extra_specs": {},
        }


def flavor_json(flavor: cpb.Flavor, base: str, detail: bool, version: Version) -> dict[str, Any]:
    """A flavor (brief: id, name, links; from 2.55 its description, brief or not; from 2.61
    its extra specs when detailed; `swap` "" for none before 2.75, 0 from 2.75)."""
    flavor_id = last_segment(flavor.name)
    body: dict[str, Any] = {
        "id": flavor_id,
        "name": flavor.display_name or flavor_id,
        "links": [{"rel": "self", "href": f"{base}/compute/v2.1/flavors/{flavor_id}"}],
    }
    if version >= V2_55:
        body["description"] = flavor.description or None
    if detail:
        body.update(
            {
                "ram": flavor.memory_mib,
                "vcpus": flavor.vcpus,
                "disk": flavor.disk_gib,
                "swap": 0 if version >= V2_75 else "",
                "rxtx_factor": 1.0,
                "OS-FLV-EXT-DATA:ephemeral": 0,
                "OS-FLV-DISABLED:disabled": False,
                "os-flavor-access:is_public": True,
            }
        )
        if version >= V2_61:  # (Kumo flavors have none)
            body["extra_specs"] = {}
    return body


def key_pair_json(key: cpb.KeyPair, user: str, version: Version) -> dict[str, Any]:
    """A key pair (the private key only when Kumo generated it, in the create answer)."""
    body: dict[str, Any] = {
        "name": key.display_name or last_segment(key.name),
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


def server_group_json(
    group: cpb.ServerGroup, member_uids: list[str], version: Version
) -> dict[str, Any]:
    """A server group (its id and name are the Kumo id): `policies` and `metadata`, or
    from 2.64 `policy` and `rules` (Kumo's groups have none)."""
    group_id = last_segment(group.name)
    policy = POLICY_NAMES.get(group.policy, "")
    body: dict[str, Any] = {"id": group_id, "name": group_id}
    if version >= V2_64:
        body.update({"policy": policy, "rules": {}})
    else:
        body.update({"policies": [policy], "metadata": {}})
    body.update({"members": member_uids, "project_id": group.name.split("/")[1], "user_id": ""})
    return body
