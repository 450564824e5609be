"""The networking commands of the `kumo` CLI against a real `kumo up`, which starts its
own OVN central and seeds the external network `public`: every command group, and
the objects reaching OVN (state ACTIVE after the reconciler's pass)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_cli_against_kumo_up import Up
from tests.support.ovn import have_ovn

PUBLIC = "projects/admin/networks/public"


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    if not have_ovn():
        pytest.skip("OVN is not installed (scripts/install.sh installs it)")
    server = Up(tmp_path)
    try:
        yield server
    finally:
        server.stop()


def js(up: Up, *args: str) -> Any:
    return json.loads(up.kumo("-o", "json", *args).stdout)


def test_network_commands(up: Up, tmp_path: Path) -> None:
    assert any("network      OVN northbound" in line for line in up.banner)
    up.kumo(
        "login",
        "--endpoint",
        f"127.0.0.1:{up.port}",
        "--user",
        "admin",
        "--password-file",
        str(tmp_path / "data" / "admin-password"),
    )
    assert js(up, "network", "show", PUBLIC)["external"] is True
    up.kumo("network", "create", "red", "--mtu", "1400")
    subnet = js(up, "subnet", "create", "red/s1", "--cidr", "10.0.0.0/24", "--dns", "10.0.0.3")
    assert subnet["gatewayIp"] == "10.0.0.1"
    assert [s["cidr"] for s in js(up, "subnet", "list", "red")] == ["10.0.0.0/24"]
    up.kumo("security-group", "create", "web")
    group = js(up, "security-group", "rule-add", "web", "--protocol", "tcp", "--port", "80-81")
    rule_id = group["rules"][0]["id"]
    port = js(
        up,
        "port",
        "create",
        "p1",
        "--network",
        "red",
        "--ip",
        "10.0.0.9",
        "--security-group",
        "web",
    )
    assert port["fixedIps"][0]["ipAddress"] == "10.0.0.9"
    up.kumo("port", "update", "p1", "--device-id", "vm-1")
    router = js(up, "router", "create", "r", "--external-network", PUBLIC)
    assert router["externalGateway"]["ipAddress"].startswith("172.24.4.")
    up.kumo("router", "add-interface", "r", "red/s1")
    fip = js(up, "floating-ip", "create", "f", "--network", PUBLIC, "--port", "p1")
    assert fip["fixedIp"] == "10.0.0.9"
    up.kumo("floating-ip", "disassociate", "f")
    up.kumo("floating-ip", "associate", "f", "p1")
    assert [p["name"].rsplit("/", 1)[1] for p in js(up, "port", "list")] != []
    for group_name, command in (
        ("network", "list"),
        ("router", "list"),
        ("floating-ip", "list"),
        ("security-group", "list"),
    ):
        assert js(up, group_name, command)
    # The reconciler pushes it all to the OVN that kumo up runs.
    deadline = time.monotonic() + 30
    while js(up, "router", "show", "r").get("state") != "SYNC_STATE_ACTIVE":
        assert time.monotonic() < deadline, js(up, "router", "show", "r")
        time.sleep(0.5)
    assert js(up, "network", "show", "red")["state"] == "SYNC_STATE_ACTIVE"
    # Bad input is a typed error, not a traceback.
    bad = up.kumo("subnet", "create", "red/s2", "--cidr", "10.0.0.128/25", check=False)
    assert bad.returncode != 0 and "overlaps" in bad.stderr
    # Teardown through the CLI.
    up.kumo("security-group", "rule-delete", "web", rule_id)
    up.kumo("floating-ip", "delete", "f")
    up.kumo("router", "remove-interface", "r", "red/s1")
    up.kumo("router", "update", "r", "--external-network", "")
    up.kumo("router", "delete", "r")
    up.kumo("port", "delete", "p1")
    up.kumo("security-group", "update", "web", "--description", "unused")
    up.kumo("security-group", "delete", "web")
    up.kumo("subnet", "update", "red/s1", "--no-dhcp")
    up.kumo("subnet", "delete", "red/s1")
    up.kumo("network", "update", "red", "--mtu", "1450")
    up.kumo("network", "delete", "red")
    assert not [n for n in js(up, "network", "list") if n["name"].endswith("/red")]
