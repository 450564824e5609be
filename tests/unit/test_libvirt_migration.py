"""The libvirt driver's migration helpers: the definition sent to the destination, flags,
progress and results from job stats (no daemon needed)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import libvirt

from kumo.drivers.compute.base import MigrationOptions
from kumo.drivers.compute.libvirt import METADATA_NS
from kumo.drivers.compute.libvirt_disks import network_root
from kumo.drivers.compute.libvirt_migration import (
    CEPH_SECRET,
    FINGERPRINT,
    GUEST_DIR,
    NAME,
    migration_flags,
    migration_params,
    progress_from_stats,
    result_from_stats,
    rewrite_definition,
)

SOURCE_XML = f"""<domain type='qemu'>
  <name>kumo-u1</name>
  <metadata><kumo:guest xmlns:kumo='{METADATA_NS}'>
    <kumo:uid>u1</kumo:uid><kumo:name>old-name</kumo:name><kumo:spec>old-fp</kumo:spec>
  </kumo:guest></metadata>
  <sysinfo type='fwcfg'><entry name='opt/kumo/user_data' file='/src/inst/u1/user_data'/></sysinfo>
  <devices>
    <disk type='file' device='disk'>
      <source file='/src/inst/u1/disk.qcow2'/>
      <backingStore type='file'><source file='/src/images/tiny.qcow2'/></backingStore>
    </disk>
    <serial type='file'><source path='/src/inst/u1/console.log' append='on'/></serial>
    <serial type='file'><source path='/src/inst/u10/console.log'/></serial>
  </devices>
</domain>"""


def test_rewrite_definition_moves_paths_and_metadata() -> None:
    target = {GUEST_DIR: "/dst/guests/u1", FINGERPRINT: "new-fp", NAME: "new-name"}
    root = ET.fromstring(rewrite_definition(SOURCE_XML, "/src/inst/u1", target, METADATA_NS))
    assert root.find("devices/disk/source").get("file") == "/dst/guests/u1/disk.qcow2"  # type: ignore[union-attr]
    assert root.find("devices/disk/backingStore") is None
    paths = [s.get("path") for s in root.iter("source") if s.get("path")]
    assert paths == ["/dst/guests/u1/console.log", "/src/inst/u10/console.log"]  # prefix only
    assert root.find("sysinfo/entry").get("file") == "/dst/guests/u1/user_data"  # type: ignore[union-attr]
    ns = {"kumo": METADATA_NS}
    assert root.findtext("metadata/kumo:guest/kumo:spec", namespaces=ns) == "new-fp"
    assert root.findtext("metadata/kumo:guest/kumo:name", namespaces=ns) == "new-name"
    assert root.findtext("metadata/kumo:guest/kumo:uid", namespaces=ns) == "u1"


NETWORK_ROOT_XML = """<domain type='qemu'><name>kumo-u2</name><devices>
  <disk type='network' device='disk'>
    <source protocol='rbd' name='vms/kumo-disk-u2'><host name='10.0.0.1' port='3300'/></source>
    <auth username='kumo'><secret type='ceph' uuid='source-uuid'/></auth>
    <target dev='vda' bus='virtio'/><serial>kumo-root</serial>
  </disk>
  <disk type='network' device='disk'>
    <source protocol='rbd' name='volumes/kumo-vol-v1'/>
    <auth username='kumo'><secret type='ceph' uuid='source-uuid'/></auth>
    <target dev='vdb' bus='virtio'/>
  </disk>
</devices></domain>"""


def test_network_root_disks_are_found_and_get_the_destinations_secret() -> None:
    assert network_root(NETWORK_ROOT_XML) == "vms/kumo-disk-u2"
    assert network_root(SOURCE_XML) is None  # a file root disk is not shared by itself
    target = {GUEST_DIR: "/dst/u2", CEPH_SECRET: "dest-uuid"}
    root = ET.fromstring(rewrite_definition(NETWORK_ROOT_XML, "/src/u2", target, METADATA_NS))
    assert [s.get("uuid") for s in root.iter("secret")] == ["dest-uuid", "dest-uuid"]
    unchanged = ET.fromstring(rewrite_definition(NETWORK_ROOT_XML, "/src/u2", {}, METADATA_NS))
    assert [s.get("uuid") for s in unchanged.iter("secret")] == ["source-uuid"] * 2


def test_flags_and_params() -> None:
    options = MigrationOptions(bandwidth_mibps=8, auto_converge=True, post_copy=True)
    flags = migration_flags(options, block=True, shared=False)
    for flag in (
        libvirt.VIR_MIGRATE_LIVE,
        libvirt.VIR_MIGRATE_PEER2PEER,
        libvirt.VIR_MIGRATE_PERSIST_DEST,
        libvirt.VIR_MIGRATE_NON_SHARED_INC,
        libvirt.VIR_MIGRATE_AUTO_CONVERGE,
        libvirt.VIR_MIGRATE_POSTCOPY,
    ):
        assert flags & flag
    assert not flags & libvirt.VIR_MIGRATE_UNDEFINE_SOURCE  # the driver undefines after stats
    assert not flags & libvirt.VIR_MIGRATE_UNSAFE
    shared = migration_flags(MigrationOptions(), block=False, shared=True)
    assert shared & libvirt.VIR_MIGRATE_UNSAFE and not shared & libvirt.VIR_MIGRATE_NON_SHARED_INC
    params = migration_params(options, "<d/>", "<p/>", ["vda"])
    assert params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] == 8
    assert params[libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS] == ["vda"]
    assert libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS not in migration_params(
        MigrationOptions(), "<d/>", "<p/>", []
    )


def test_progress_and_result_from_stats() -> None:
    progress = progress_from_stats(
        {
            "time_elapsed": 500,
            "memory_total": 100,
            "memory_processed": 60,
            "memory_remaining": 40,
            "memory_dirty_rate": 3,  # pages per second
            "memory_page_size": 4096,
            "memory_iteration": 2,
            "disk_total": 10,
        },
        post_copy=False,
    )
    assert progress.dirty_rate_bytes_per_second == 3 * 4096
    assert (progress.memory_processed_bytes, progress.iteration, progress.disk_total_bytes) == (
        60,
        2,
        10,
    )
    result = result_from_stats({"downtime": 42, "time_elapsed": 600}, wall_ms=900.0)
    assert (result.downtime_ms, result.total_ms) == (42.0, 600.0)
    assert result_from_stats({}, wall_ms=900.0).downtime_ms is None
    assert result_from_stats({}, wall_ms=900.0).total_ms == 900.0
