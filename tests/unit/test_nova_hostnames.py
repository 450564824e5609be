"""The hostname Nova makes of a server's name, as a DNS label (hostnames.derived)."""

from __future__ import annotations

import pytest

from kumo.gateway.openstack.nova.hostnames import derived


@pytest.mark.parametrize(
    ("name", "hostname"),
    [
        ("web-1", "web-1"),
        ("My Web_Server.1", "my-web-server-1"),
        ("  café ünïcode!  ", "caf-ncode"),
        ("--edge--", "edge"),
        ("???", ""),
        ("a" * 70, "a" * 63),
        ("b" * 62 + " c", "b" * 62),
    ],
)
def test_derived(name: str, hostname: str) -> None:
    assert derived(name) == hostname
