"""Guest NICs: what a GuestSpec accepts, how libvirt renders them, and tap names."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from kumo.drivers.compute.base import GuestNic, GuestSpec
from kumo.drivers.compute.libvirt_nics import add_interfaces
from kumo.server.services.compute.interfaces import tap_name


def _spec(*nics: GuestNic) -> GuestSpec:
    return GuestSpec(
        uid="u1",
        name="n",
        hostname="h",
        vcpus=1,
        memory_mib=128,
        disk_gib=1,
        image_path=Path("/x"),
        nics=nics,
    )


def test_interfaces_are_pre_made_taps_with_checksum_offload_off() -> None:
    devices = ET.Element("devices")
    add_interfaces(
        devices, (GuestNic("tapa", "02:4b:00:00:00:01"), GuestNic("tapb", "02:4b:00:00:00:02"))
    )
    first, second = devices.findall("interface")
    assert first.get("type") == "ethernet"
    assert first.find("mac").get("address") == "02:4b:00:00:00:01"  # type: ignore[union-attr]
    target = first.find("target")
    assert target is not None and target.attrib == {"dev": "tapa", "managed": "no"}
    assert first.find("model").get("type") == "virtio"  # type: ignore[union-attr]
    assert first.find("driver/host").get("csum") == "off"  # type: ignore[union-attr]
    assert second.find("target").get("dev") == "tapb"  # type: ignore[union-attr]


def test_nics_change_the_fingerprint_only_when_present() -> None:
    plain = _spec()
    with_nic = _spec(GuestNic("tapa", "02:4b:00:00:00:01"))
    assert with_nic.fingerprint() != plain.fingerprint()
    assert with_nic.fingerprint() == _spec(GuestNic("tapa", "02:4b:00:00:00:01")).fingerprint()


@pytest.mark.parametrize(
    ("tap", "mac"),
    [
        ("a-name-longer-than-15", "02:4b:00:00:00:01"),
        ("tap/x", "02:4b:00:00:00:01"),
        ("tapa", "02:4B:00:00:00:01"),
        ("tapa", "not a mac"),
    ],
)
def test_malformed_nics_are_refused(tap: str, mac: str) -> None:
    with pytest.raises(ValueError):
        GuestNic(tap, mac)


def test_two_nics_cannot_share_a_tap() -> None:
    nic = GuestNic("tapa", "02:4b:00:00:00:01")
    with pytest.raises(ValueError):
        _spec(nic, GuestNic("tapa", "02:4b:00:00:00:02"))


def test_tap_names_fit_a_device_name() -> None:
    port = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    name = tap_name(port)
    assert name == "tap0f1e2d3c4b5" and len(name) <= 15
    # An adopted port's device depends on the instance too: moved, it gets a new one.
    first, second = (tap_name(port, f"{n}a9c3b7e-0000-4000-8000-00000000000{n}") for n in "12")
    assert len({name, first, second}) == 3
    assert all(len(t) == 14 and t.startswith("tap") for t in (first, second))
    assert first == tap_name(port, "1a9c3b7e-0000-4000-8000-000000000001")
