"""Guest network interfaces in libvirt domain XML.

Each `GuestNic` becomes `<interface type='ethernet'>` on its pre-made tap (`managed='no'`:
libvirt neither creates nor deletes it, so OVS keeps a valid handle across guest restarts),
with the guest's MAC, a virtio model and host checksum offload off: OVS's userspace
datapath forwards packets with unfinished checksums, and without `csum='off'` TCP between
guests fails while ping and DHCP work (see docs/decisions.md, networking).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from kumo.drivers.compute.base import GuestNic


def add_interfaces(devices: ET.Element, nics: tuple[GuestNic, ...]) -> None:
    """Appends one `<interface>` per NIC to a domain's `<devices>`, in order."""
    for nic in nics:
        interface = ET.SubElement(devices, "interface", type="ethernet")
        ET.SubElement(interface, "mac", address=nic.mac_address)
        ET.SubElement(interface, "target", dev=nic.tap, managed="no")
        ET.SubElement(interface, "model", type="virtio")
        driver = ET.SubElement(interface, "driver")
        ET.SubElement(driver, "host", csum="off")
