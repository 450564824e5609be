"""`openstack server create` boots a real guest on `kumo up` (libvirt + QEMU), whose console
the CLI reads, and `openstack server delete --wait` removes it."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from kumo.drivers.compute.libvirtd import unavailable_reason
from tests.e2e.test_cli_against_kumo_up import Up
from tests.support.gateway import Clouds

pytestmark = pytest.mark.slow


def test_real_guest_through_the_openstack_cli(tmp_path: Path) -> None:
    """Server create (the seeded tiny flavor and image), console log, delete."""
    if (reason := unavailable_reason()) is not None:
        pytest.skip(reason)
    up = Up(tmp_path)
    try:
        found = re.search(r"REST\s+(http://\S+)", "".join(up.banner))
        assert found, "".join(up.banner)
        clouds = Clouds(found.group(1))
        password = (tmp_path / "data" / "admin-password").read_text().strip()
        clouds.add("root", "admin", password, "admin")
        images = clouds.json("root", "image", "list")
        assert len(images) == 1, images
        server = clouds.json(
            "root", "server", "create", "--flavor", "tiny", "--image", images[0]["ID"],
            "--wait", "first",
        )  # fmt: skip
        assert server["status"] == "ACTIVE"
        deadline = time.monotonic() + 120
        console = ""
        while "KUMO_BOOT_OK" not in console and time.monotonic() < deadline:
            console = clouds.run("root", "console", "log", "show", server["id"]).stdout
            time.sleep(1)
        assert "KUMO_BOOT_OK" in console
        clouds.run("root", "server", "delete", "--wait", server["id"])
        assert clouds.json("root", "server", "list") == []
    finally:
        assert up.stop() == 0
