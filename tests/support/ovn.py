"""OVN fixtures: a private OVN central (NB/SB + northd on unix sockets in a temp dir),
started once per session and stopped by pid at the end."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from kumo.drivers.network.ovn_local import OvnCentral


def have_ovn() -> bool:
    """Whether OVN central's binaries are installed."""
    return all(shutil.which(b) for b in ("ovsdb-server", "ovn-northd", "ovn-nbctl"))


@pytest.fixture(scope="session")
def ovn_central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OvnCentral]:
    """OVN NB/SB databases and northd, shared by the session (tests isolate by naming)."""
    if not have_ovn():
        pytest.skip("OVN is not installed (scripts/install.sh installs it)")
    central = OvnCentral(Path(tmp_path_factory.mktemp("ovn")))
    central.start()
    try:
        yield central
    finally:
        central.stop()
