"""Volumes in libvirt guests: disk XML, cephx secrets, hot-plug and unplug by serial.

A volume reaches a guest as described by its driver's `DiskSource`: an RBD image as a QEMU
network disk (librbd inside QEMU; there are no kernel block devices here) authenticated with
a libvirt `ceph` secret holding the cephx key, or a qcow2 file. Guests name disks in probe
order, not by `<target dev>`, so every volume carries a `<serial>` (the guest reads it from
/sys/block/vdX/serial) and this module finds attached volumes by serial too.

Only virtio disks hot-plug with Debian's guest kernels. Detach returns once the guest has
released the disk (QEMU's DEVICE_REMOVED), polled through the live XML; a paused guest only
completes it after resume, so detach waits up to `timeout` seconds and then raises.

All functions take a libvirt domain (or connection) and run blocking libvirt calls: call them
from a worker thread in async code. Errors are `DriverError`s with the libvirt cause chained.
"""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from typing import Any

import libvirt

from kumo.drivers.compute.libvirt_unplug import DETACH_TIMEOUT, unplug
from kumo.drivers.errors import DriverError, InvalidGuestState
from kumo.drivers.storage.base import DiskSource, IoLimits

_TARGETS = [f"vd{c}" for c in "bcdefghijklmnopqrstuvwxyz"]


def ceph_secret(conn: Any, user: str, key: str) -> str:
    """The uuid of the libvirt secret holding `client.<user>`'s cephx key (defined on first
    use, its value always set to `key`). Idempotent."""
    usage = f"kumo client.{user}"
    try:
        try:
            secret = conn.secretLookupByUsage(libvirt.VIR_SECRET_USAGE_TYPE_CEPH, usage)
        except libvirt.libvirtError as err:
            if err.get_error_code() != libvirt.VIR_ERR_NO_SECRET:
                raise
            secret = conn.secretDefineXML(
                "<secret ephemeral='no' private='yes'>"
                f"<usage type='ceph'><name>{usage}</name></usage></secret>"
            )
        secret.setValue(base64.b64decode(key))
        return str(secret.UUIDString())
    except libvirt.libvirtError as err:
        raise DriverError(reason=f"cannot set the ceph secret: {err.get_error_message()}") from err


def disk_xml(
    source: DiskSource,
    target: str,
    serial: str,
    *,
    read_only: bool = False,
    secret_uuid: str = "",
    limits: IoLimits | None = None,
) -> str:
    """The `<disk>` element for a volume at `target` (`vdb`...; `vda` to boot from it)."""
    if source.kind == "rbd":
        disk = ET.Element("disk", type="network", device="disk")
        ET.SubElement(disk, "driver", name="qemu", type="raw", cache="none", discard="unmap")
        src = ET.SubElement(disk, "source", protocol="rbd", name=source.path)
        for host, port in source.hosts:
            ET.SubElement(src, "host", name=host, port=str(port))
        if source.conf_path:
            ET.SubElement(src, "config", file=source.conf_path)
        if not secret_uuid:
            raise ValueError("an rbd disk needs the uuid of its ceph secret")
        auth = ET.SubElement(disk, "auth", username=source.user)
        ET.SubElement(auth, "secret", type="ceph", uuid=secret_uuid)
    elif source.kind == "file":
        disk = ET.Element("disk", type="file", device="disk")
        ET.SubElement(
            disk, "driver", name="qemu", type=source.format, cache="none", discard="unmap"
        )
        ET.SubElement(disk, "source", file=source.path)
    else:
        raise ValueError(f"a {source.kind!r} volume cannot be attached to a guest")
    ET.SubElement(disk, "target", dev=target, bus="virtio")
    ET.SubElement(disk, "serial").text = serial
    if read_only:
        ET.SubElement(disk, "readonly")
    if limits is not None and any(vars(limits).values()):
        iotune = ET.SubElement(disk, "iotune")
        for name, value in vars(limits).items():
            if value:
                ET.SubElement(iotune, name).text = str(value)
    return ET.tostring(disk, encoding="unicode")


def _disks(domain: Any, flags: int = 0) -> list[ET.Element]:
    return ET.fromstring(domain.XMLDesc(flags)).findall("./devices/disk")


def attached(domain: Any) -> dict[str, str]:
    """Serial -> target device of the disks in the running guest that have a serial."""
    found: dict[str, str] = {}
    for disk in _disks(domain):
        serial, target = disk.find("serial"), disk.find("target")
        if serial is not None and serial.text and target is not None:
            found[serial.text] = target.get("dev", "")
    return found


def _flags(domain: Any) -> int:
    flags = libvirt.VIR_DOMAIN_AFFECT_LIVE
    if domain.isPersistent():
        flags |= libvirt.VIR_DOMAIN_AFFECT_CONFIG
    return int(flags)


def attach(
    domain: Any,
    source: DiskSource,
    serial: str,
    *,
    read_only: bool = False,
    secret_uuid: str = "",
    limits: IoLimits | None = None,
) -> str:
    """Hot-plugs the volume into the running guest (and its persistent definition); returns
    the target device. Idempotent: a disk with that serial already attached is returned.
    Raises InvalidGuestState (guest not running), DriverError."""
    try:
        if not domain.isActive():
            raise InvalidGuestState(uid=domain.name(), state="not running", action="attach")
        current = attached(domain)
        if serial in current:
            return current[serial]
        used = {t.get("dev") for d in _disks(domain) if (t := d.find("target")) is not None}
        target = next((t for t in _TARGETS if t not in used), None)
        if target is None:
            raise DriverError(reason=f"{domain.name()} has no free virtio disk slot")
        xml = disk_xml(
            source,
            target,
            serial,
            read_only=read_only,
            secret_uuid=secret_uuid,
            limits=limits,
        )
        domain.attachDeviceFlags(xml, _flags(domain))
        return target
    except libvirt.libvirtError as err:
        raise DriverError(reason=f"attach {serial}: {err.get_error_message()}") from err


def detach(domain: Any, serial: str, timeout: float = DETACH_TIMEOUT) -> None:
    """Unplugs the volume with `serial` and waits until the guest has let it go.
    Idempotent: nothing attached with that serial is success. Raises DriverError (also when
    the guest has not released it within `timeout` seconds, e.g. while paused)."""
    try:
        disk = next(
            (d for d in _disks(domain) if (s := d.find("serial")) is not None and s.text == serial),
            None,
        )
        if disk is None:
            return
        unplug(domain, disk, _flags(domain), lambda: serial in attached(domain), serial, timeout)
    except libvirt.libvirtError as err:
        raise DriverError(reason=f"detach {serial}: {err.get_error_message()}") from err


def grow(domain: Any, serial: str, size_bytes: int) -> None:
    """Tells the running guest that the disk with `serial` grew to `size_bytes` (QEMU's block
    resize; the guest sees it at once). Idempotent: a disk already that large is left
    alone. Raises DriverError (no disk with that serial, or libvirt refused)."""
    target = attached(domain).get(serial)
    if target is None:
        raise DriverError(reason=f"{domain.name()} has no disk {serial}")
    try:
        capacity = domain.blockInfo(target)[0]
        if capacity < size_bytes:
            domain.blockResize(target, size_bytes, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)
    except libvirt.libvirtError as err:
        raise DriverError(reason=f"resize {serial}: {err.get_error_message()}") from err


def with_root_volume(domain_xml: str, root: str) -> str:
    """A domain definition whose boot disk (`vda`) is replaced by the `<disk>` `root` (from
    `disk_xml(..., "vda", ...)`): boot from volume."""
    domain = ET.fromstring(domain_xml)
    devices = domain.find("devices")
    if devices is None:
        raise ValueError("the domain has no <devices>")
    for disk in devices.findall("disk"):
        target = disk.find("target")
        if target is not None and target.get("dev") == "vda":
            devices.remove(disk)
    devices.insert(0, ET.fromstring(root))
    return ET.tostring(domain, encoding="unicode")


def network_root(domain_xml: str) -> str | None:
    """The `pool/image` of the domain's root disk (`vda`) when QEMU opens it over the network
    (RBD), else None."""
    for disk in ET.fromstring(domain_xml).iterfind("./devices/disk"):
        target, source = disk.find("target"), disk.find("source")
        if target is not None and target.get("dev") == "vda":
            if disk.get("type") == "network" and source is not None:
                return source.get("name")
            return None
    return None
