"""Guest network interfaces in libvirt domain XML, and their hot-plug.

Each `GuestNic` becomes `<interface type='ethernet'>` on its pre-made tap (`managed='no'`:
libvirt neither creates nor deletes it, so OVS keeps a valid handle across guest restarts),
with the guest's MAC, a virtio model and host checksum offload off: OVS's userspace
datapath forwards packets with unfinished checksums, and without `csum='off'` TCP between
guests fails while ping and DHCP work (see docs/decisions.md, networking).

`attach` and `detach` change a domain's interfaces after its definition: in the running
guest (PCI hot-plug; an unplug completes once the guest acknowledges it) and in the
persistent definition, or in the definition alone while it is shut off.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import libvirt

from kumo.drivers.compute.base import GuestNic
from kumo.drivers.compute.libvirt_unplug import DETACH_TIMEOUT, unplug
from kumo.drivers.errors import DriverError, InvalidGuestState


def _interface(parent: ET.Element | None, nic: GuestNic) -> ET.Element:
    interface = (
        ET.Element("interface", type="ethernet")
        if parent is None
        else ET.SubElement(parent, "interface", type="ethernet")
    )
    ET.SubElement(interface, "mac", address=nic.mac_address)
    ET.SubElement(interface, "target", dev=nic.tap, managed="no")
    ET.SubElement(interface, "model", type="virtio")
    driver = ET.SubElement(interface, "driver")
    ET.SubElement(driver, "host", csum="off")
    return interface


def add_interfaces(devices: ET.Element, nics: tuple[GuestNic, ...]) -> None:
    """Appends one `<interface>` per NIC to a domain's `<devices>`, in order."""
    for nic in nics:
        _interface(devices, nic)


def _interfaces(domain: Any) -> dict[str, ET.Element]:
    """The domain's `<interface>` elements by MAC (a running domain's live ones)."""
    found: dict[str, ET.Element] = {}
    for interface in ET.fromstring(domain.XMLDesc(0)).findall("devices/interface"):
        mac = interface.find("mac")
        if mac is not None and mac.get("address"):
            found[str(mac.get("address")).lower()] = interface
    return found


def attached(domain: Any) -> set[str]:
    """MAC addresses of the domain's interfaces (a running domain's live ones)."""
    return set(_interfaces(domain))


def _flags(domain: Any, action: str) -> int:
    """Where a change applies: the running guest and its definition, or the definition of
    a shut-off domain. InvalidGuestState for a paused or otherwise busy guest."""
    state = domain.state()[0]
    if state == libvirt.VIR_DOMAIN_SHUTOFF:
        return int(libvirt.VIR_DOMAIN_AFFECT_CONFIG)
    if state != libvirt.VIR_DOMAIN_RUNNING:
        raise InvalidGuestState(uid=domain.name(), state="not running or shut off", action=action)
    flags = libvirt.VIR_DOMAIN_AFFECT_LIVE
    if domain.isPersistent():
        flags |= libvirt.VIR_DOMAIN_AFFECT_CONFIG
    return int(flags)


def attach(domain: Any, nic: GuestNic) -> None:
    """Adds the interface (see the module docstring). Idempotent: an interface with that
    MAC is success. Raises InvalidGuestState, DriverError (libvirt or QEMU refused, e.g.
    the tap is missing or in use)."""
    try:
        flags = _flags(domain, "attach a NIC to")
        if nic.mac_address in attached(domain):
            return
        xml = ET.tostring(_interface(None, nic), encoding="unicode")
        domain.attachDeviceFlags(xml, flags)
    except libvirt.libvirtError as err:
        reason = f"attach NIC {nic.mac_address}: {err.get_error_message()}"
        raise DriverError(reason=reason) from err


def detach(domain: Any, mac_address: str, timeout: float = DETACH_TIMEOUT) -> None:
    """Removes the interface with `mac_address` and, from a running guest, waits until the
    guest has let it go. Idempotent: no such interface is success. Raises
    InvalidGuestState, DriverError (also when the guest has not released it within
    `timeout` seconds)."""
    mac = mac_address.lower()
    try:
        flags = _flags(domain, "detach a NIC from")
        interface = _interfaces(domain).get(mac)
        if interface is None:
            return
        unplug(domain, interface, flags, lambda: mac in attached(domain), f"NIC {mac}", timeout)
    except libvirt.libvirtError as err:
        raise DriverError(reason=f"detach NIC {mac}: {err.get_error_message()}") from err
