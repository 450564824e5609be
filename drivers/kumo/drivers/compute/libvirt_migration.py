"""Live migration helpers of the libvirt driver: the destination's definition, the
migrateToURI3 flags and parameters, and progress and results from libvirt's job stats.

The driver migrates peer to peer (the source libvirtd connects to the destination's at
`MigrationTarget.uri`) with LIVE | PERSIST_DEST, plus NON_SHARED_INC for a block migration:
the destination's `prepare_incoming` has made a fresh overlay of its own cached image, so
only the overlay's clusters are copied (over NBD). The source domain is undefined by the
driver after it has read the completed job's statistics (downtime), not by libvirt's
UNDEFINE_SOURCE, which would drop them with the domain.

Shared storage: the destination's `prepare_incoming` finds the guest's disk in place (its
guest dir holds a disk it did not make) and leaves a random token beside it; the source
must read the same token in its own guest dir, or the "shared" disk is a stale directory of
another host and the migration is refused.

A root disk in Ceph (a network disk both hosts open) needs no copy either: the destination
names it (`ROOT_DISK`) with its own libvirt secret for the cephx key (`CEPH_SECRET`), the
source checks that its guest's `vda` is that image and sends the memory only, while the
guest's local files (console, metadata) are made anew on the destination as without shared
storage.

Each host keeps guests' files under its own instances_dir, so the definition sent to the
destination has the destination's paths (`rewrite_paths`) and its metadata (the spec
fingerprint, computed from the destination's image path), and no `<backingStore>` chain
(the destination reads it from its own overlay).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

import libvirt

from kumo.drivers.compute.base import MigrationOptions, MigrationProgress, MigrationResult

#: MigrationTarget.properties keys the libvirt driver uses.
GUEST_DIR = "guest_dir"
FINGERPRINT = "fingerprint"
NAME = "name"
SHARED_TOKEN = "shared_token"
#: Set by the destination when the guest's root disk is a network disk (RBD): the `pool/image`
#: both hosts open, and the uuid of the destination's libvirt secret for its cephx key.
ROOT_DISK = "root_disk"
CEPH_SECRET = "ceph_secret"


def migration_flags(options: MigrationOptions, block: bool, shared: bool, live: bool = True) -> int:
    """The migrateToURI3 flags for these options. With `shared` storage (the destination's
    `prepare_incoming` found the guest's disk already there), libvirt's own check, which
    trusts only the file systems it knows as shared (NFS, GlusterFS, Ceph...), is skipped
    (UNSAFE): Kumo has checked that the destination sees the disk. Not `live` (a cold
    migration): the guest, paused, stays paused on the destination."""
    flags: int = (
        (libvirt.VIR_MIGRATE_LIVE if live else libvirt.VIR_MIGRATE_PAUSED)
        | libvirt.VIR_MIGRATE_PEER2PEER
        | libvirt.VIR_MIGRATE_PERSIST_DEST
        | libvirt.VIR_MIGRATE_ABORT_ON_ERROR
    )
    if block:
        flags |= libvirt.VIR_MIGRATE_NON_SHARED_INC
    elif shared:
        flags |= libvirt.VIR_MIGRATE_UNSAFE
    if options.auto_converge:
        flags |= libvirt.VIR_MIGRATE_AUTO_CONVERGE
    if options.post_copy:
        flags |= libvirt.VIR_MIGRATE_POSTCOPY
    return flags


def migration_params(
    options: MigrationOptions, dest_xml: str, persist_xml: str, disks: list[str]
) -> dict[str, Any]:
    """The migrateToURI3 typed parameters."""
    params: dict[str, Any] = {
        libvirt.VIR_MIGRATE_PARAM_DEST_XML: dest_xml,
        libvirt.VIR_MIGRATE_PARAM_PERSIST_XML: persist_xml,
    }
    if disks:
        params[libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS] = disks
    if options.bandwidth_mibps is not None:
        params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = options.bandwidth_mibps
    return params


def rewrite_definition(
    xml: str, source_dir: str, target: Mapping[str, str], metadata_ns: str
) -> str:
    """The domain definition `xml` (from the source) as the destination must have it: file
    paths under `source_dir` moved to the target's guest dir, Kumo's metadata (the
    `<guest>` element of `metadata_ns`: name, spec fingerprint) the destination's, no
    `<backingStore>` chains, RBD disks opened with the destination's ceph secret."""
    root = ET.fromstring(xml)
    dest_dir = target.get(GUEST_DIR, source_dir)
    prefix = source_dir.rstrip("/") + "/"
    for element in root.iter():
        for attr in ("file", "path"):
            value = element.get(attr)
            if value is not None and value.startswith(prefix):
                element.set(attr, dest_dir.rstrip("/") + "/" + value[len(prefix) :])
    for disk in root.iter("disk"):
        for backing in disk.findall("backingStore"):
            disk.remove(backing)
        secret = disk.find("auth/secret[@type='ceph']")
        if secret is not None and CEPH_SECRET in target:  # each host has its own secret uuid
            secret.set("uuid", target[CEPH_SECRET])
    for guest in root.iter(f"{{{metadata_ns}}}guest"):
        for key in (NAME, "spec"):
            value = target.get(FINGERPRINT if key == "spec" else key)
            child = guest.find(f"{{{metadata_ns}}}{key}")
            if value is not None and child is not None:
                child.text = value
    return ET.tostring(root, encoding="unicode")


def _int(stats: Mapping[str, Any], key: str) -> int:
    value = stats.get(key, 0)
    return int(value) if isinstance(value, int | float) else 0


def progress_from_stats(stats: Mapping[str, Any], post_copy: bool) -> MigrationProgress:
    """A progress sample from `virDomain.jobStats()` of a running migration job."""
    page = _int(stats, "memory_page_size") or 4096
    return MigrationProgress(
        elapsed_ms=_int(stats, "time_elapsed"),
        memory_total_bytes=_int(stats, "memory_total"),
        memory_processed_bytes=_int(stats, "memory_processed"),
        memory_remaining_bytes=_int(stats, "memory_remaining"),
        dirty_rate_bytes_per_second=_int(stats, "memory_dirty_rate") * page,
        disk_total_bytes=_int(stats, "disk_total"),
        disk_processed_bytes=_int(stats, "disk_processed"),
        disk_remaining_bytes=_int(stats, "disk_remaining"),
        iteration=_int(stats, "memory_iteration"),
        post_copy=post_copy,
    )


def result_from_stats(stats: Mapping[str, Any], wall_ms: float) -> MigrationResult:
    """The result from `jobStats(COMPLETED)` of the finished job (`wall_ms` when libvirt
    has no elapsed time)."""
    downtime = stats.get("downtime")
    return MigrationResult(
        downtime_ms=float(downtime) if isinstance(downtime, int | float) else None,
        total_ms=float(stats.get("time_elapsed") or wall_ms),
        memory_bytes=_int(stats, "memory_processed"),
        disk_bytes=_int(stats, "disk_processed"),
    )
