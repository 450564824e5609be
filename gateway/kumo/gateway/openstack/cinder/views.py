"""Kumo storage messages as Cinder v3 resources."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from kumo.gateway.openstack.common import iso, last_segment
from kumo.storage.v1 import resources_pb2 as spb

_VOLUME_STATUS = {
    spb.Volume.STATE_CREATING: "creating",
    spb.Volume.STATE_AVAILABLE: "available",
    spb.Volume.STATE_IN_USE: "in-use",
    spb.Volume.STATE_UPDATING: "extending",
    spb.Volume.STATE_DELETING: "deleting",
    spb.Volume.STATE_ERROR: "error",
}
_SNAPSHOT_STATUS = {
    spb.Snapshot.STATE_CREATING: "creating",
    spb.Snapshot.STATE_AVAILABLE: "available",
    spb.Snapshot.STATE_DELETING: "deleting",
    spb.Snapshot.STATE_ERROR: "error",
}
BACKENDS = {"qcow2": spb.BACKEND_QCOW2, "rbd": spb.BACKEND_RBD}


def _project(name: str) -> str:
    return name.split("/")[1] if name.startswith("projects/") else ""


def _zone(name: str) -> str | None:
    """The zone id of `projects/{p}/zones/{zone}/{kind}/{id}`; None for another name."""
    return name.split("/")[3] if name.count("/") >= 5 else None


def _links(base: str, kind: str, uid: str) -> list[dict[str, str]]:
    return [{"rel": "self", "href": f"{base}/volume/v3/{kind}/{uid}"}]


def volume_brief(item: spb.Volume, base: str) -> dict[str, Any]:
    """A volume in a list without details."""
    return {"id": item.uid, "name": item.display_name, "links": _links(base, "volumes", item.uid)}


_ATTACHMENT_IDS = uuid.UUID("5f1e0c2a-8d7b-4e51-9c3a-2b6d4f7e8a90")


def attachment_id(volume_uid: str, server_uid: str) -> str:
    """The Cinder id of the attachment of a volume to a server (attachments.py)."""
    return str(uuid.uuid5(_ATTACHMENT_IDS, f"{volume_uid}/{server_uid}"))


def volume(
    item: spb.Volume,
    base: str,
    types: Mapping[str, spb.VolumeType],
    uids: Mapping[str, str],
    admin: bool,
) -> dict[str, Any]:
    """A volume with details; `types` by name, `uids` of the snapshots, volumes, instances
    and image it refers to."""
    kind = types.get(item.volume_type)
    zone = _zone(item.name) or ""
    body: dict[str, Any] = {
        **volume_brief(item, base),
        "description": item.description or None,
        "status": _VOLUME_STATUS.get(item.state, "creating"),
        "size": item.size_gib,
        "availability_zone": zone,
        "created_at": iso(item.create_time, micro=True),
        "updated_at": iso(item.update_time, micro=True),
        "volume_type": (kind.display_name or last_segment(kind.name)) if kind else None,
        "volume_type_id": kind.uid if kind else None,
        "snapshot_id": uids.get(item.source_snapshot) if item.source_snapshot else None,
        "source_volid": uids.get(item.source_volume) if item.source_volume else None,
        "bootable": "true" if item.bootable else "false",
        "multiattach": item.multi_attach,
        "encrypted": False,
        "metadata": dict(item.labels),
        "attachments": [
            {
                "id": item.uid,
                "attachment_id": attachment_id(
                    item.uid, uids.get(a.instance, last_segment(a.instance))
                ),
                "volume_id": item.uid,
                "server_id": uids.get(a.instance, last_segment(a.instance)),
                "host_name": None,
                "device": None,
                "attached_at": iso(a.attach_time, micro=True),
            }
            for a in item.attachments
        ],
        "user_id": None,
        "replication_status": "disabled",
        "consistencygroup_id": None,
        "group_id": None,
        "migration_status": None,
        "shared_targets": False,
        "consumes_quota": True,
    }
    if item.source_image in uids:
        body["volume_image_metadata"] = {"image_id": uids[item.source_image]}
    if admin:
        body["os-vol-tenant-attr:tenant_id"] = _project(item.name)
        body["os-vol-host-attr:host"] = None
    return body


def snapshot(item: spb.Snapshot, volume_uid: str, admin: bool) -> dict[str, Any]:
    """A snapshot."""
    body: dict[str, Any] = {
        "id": item.uid,
        "name": item.display_name,
        "description": item.description or None,
        "volume_id": volume_uid,
        "size": item.size_gib,
        "status": _SNAPSHOT_STATUS.get(item.state, "creating"),
        "created_at": iso(item.create_time, micro=True),
        "updated_at": iso(item.update_time, micro=True),
        "metadata": dict(item.labels),
        "progress": "100%" if item.state == spb.Snapshot.STATE_AVAILABLE else "0%",
        "group_snapshot_id": None,
        "consumes_quota": True,
    }
    if admin:
        body["os-extended-snapshot-attributes:project_id"] = _project(item.name)
        body["os-extended-snapshot-attributes:progress"] = body["progress"]
    return body


QOS_FIELDS = ("max_iops", "max_read_bytes_per_second", "max_write_bytes_per_second")


def extra_specs(item: spb.VolumeType) -> dict[str, str]:
    """A volume type's extra specs: its labels, then `kumo:backend`, `kumo:pool`,
    `kumo:backup_pool` and the QoS limits that are set (see extra_specs.py)."""
    specs = dict(item.labels)
    specs["kumo:backend"] = spb.Backend.Name(item.backend).removeprefix("BACKEND_").lower()
    specs["kumo:pool"] = item.pool
    if item.backup_pool:
        specs["kumo:backup_pool"] = item.backup_pool
    for name in QOS_FIELDS:
        if value := getattr(item.qos, name):
            specs[f"kumo:{name}"] = str(value)
    return specs


def volume_type(item: spb.VolumeType) -> dict[str, Any]:
    """A volume type with its extra specs."""
    return {
        "id": item.uid,
        "name": item.display_name or last_segment(item.name),
        "description": item.description or None,
        "is_public": True,
        "os-volume-type-access:is_public": True,
        "extra_specs": extra_specs(item),
        "qos_specs_id": None,
    }


_BACKUP_STATUS = {
    spb.Backup.STATE_CREATING: "creating",
    spb.Backup.STATE_AVAILABLE: "available",
    spb.Backup.STATE_DELETING: "deleting",
    spb.Backup.STATE_ERROR: "error",
}


def backup_brief(item: spb.Backup, base: str) -> dict[str, Any]:
    """A backup in a list without details."""
    return {"id": item.uid, "name": item.display_name, "links": _links(base, "backups", item.uid)}


def backup(item: spb.Backup, base: str, volume_uid: str | None, dependents: bool) -> dict[str, Any]:
    """A backup with details; `volume_uid` of its volume (None once that is gone),
    `dependents` whether an incremental backup builds on it."""
    return {
        **backup_brief(item, base),
        "description": item.description or None,
        "status": _BACKUP_STATUS.get(item.state, "creating"),
        "fail_reason": (item.state_message or None)
        if item.state == spb.Backup.STATE_ERROR
        else None,
        "availability_zone": _zone(item.name),
        "volume_id": volume_uid,
        "snapshot_id": None,
        "size": item.size_gib,
        "object_count": 0,
        "container": None,
        "is_incremental": bool(item.parent_backup),
        "has_dependent_backups": dependents,
        "created_at": iso(item.create_time, micro=True),
        "updated_at": iso(item.update_time, micro=True),
        "data_timestamp": iso(item.create_time, micro=True),
        "metadata": dict(item.labels),
    }
