"""The tiny guest image boots under a real libvirtd (TCG) and reads its metadata from fw_cfg."""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from kumo.drivers.compute.libvirtd import LibvirtDaemon

pytestmark = pytest.mark.slow

BOOT_TIMEOUT = 120.0  # TCG on a busy 2-core machine; about 5-10 s when idle
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKumoTestKeyOnlyForTheTinyGuestImage0000 test@kumo"


def domain_xml(name: str, disk: Path, console: Path, hostname: str, keys: list[str]) -> str:
    """A 128 MiB, 1 vCPU TCG guest booting `disk`, its serial console written to `console`.

    The metadata goes in fw_cfg entries; an entry may not be empty (libvirt rejects it), so
    an empty key list leaves that entry out."""
    entries = f"<entry name='opt/kumo/hostname'>{escape(hostname)}</entry>"
    if keys:
        value = escape("".join(key + "\n" for key in keys))
        entries += f"<entry name='opt/kumo/ssh_authorized_keys'>{value}</entry>"
    return f"""
<domain type='qemu'>
  <name>{escape(name)}</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <sysinfo type='fwcfg'>{entries}</sysinfo>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <boot dev='hd'/>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='{escape(str(disk))}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='file'>
      <source path='{escape(str(console))}'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
</domain>
"""


def wait_for_console(console: Path, done: re.Pattern[str], timeout: float) -> str:
    """Polls the console file until `done` matches (returns the text) or `timeout` passes."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        if console.exists():
            text = console.read_bytes().decode(errors="replace").replace("\r", "")
            if done.search(text):
                return text
        time.sleep(0.1)
    raise TimeoutError(f"no {done.pattern!r} on the console after {timeout}s:\n{text[-3000:]}")


def test_tiny_guest_boots_and_reads_fw_cfg(
    libvirtd: LibvirtDaemon, guest_image: Path, tmp_path: Path
) -> None:
    import libvirt

    disk = tmp_path / "root.qcow2"
    subprocess.run(
        [
            "qemu-img",
            "create",
            "-q",
            "-f",
            "qcow2",
            "-b",
            str(guest_image),
            "-F",
            "qcow2",
            str(disk),
        ],
        check=True,
    )
    console = tmp_path / "console.log"
    name = f"kumo-test-{uuid.uuid4().hex[:8]}"
    conn = libvirt.open(libvirtd.uri)
    try:
        dom = conn.defineXML(domain_xml(name, disk, console, "guest-1", [SSH_KEY]))
        try:
            started = time.monotonic()
            dom.create()
            text = wait_for_console(console, re.compile(r"^KUMO_BOOT_OK$", re.M), BOOT_TIMEOUT)
            boot_seconds = time.monotonic() - started
            text = wait_for_console(console, re.compile(r"^tick 2$", re.M), 10)
            lines = text.splitlines()
            after = lines[lines.index("KUMO_BOOT_OK") :]
            print(f"\nguest boot-to-marker: {boot_seconds:.1f} s (start call to KUMO_BOOT_OK)")
            assert after[1:3] == ["hostname=guest-1", "ssh_keys=1"], after[:6]
            ticks = [int(line.split()[1]) for line in after if re.fullmatch(r"tick \d+", line)]
            assert ticks[:2] == [1, 2], after
            assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
        finally:
            if dom.isActive():
                dom.destroy()
            dom.undefine()
        assert name not in [d.name() for d in conn.listAllDomains()]
    finally:
        conn.close()
