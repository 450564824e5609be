"""Storage fixtures: a throwaway single-node Ceph cluster for the session.

Import into a conftest (`from tests.support.fixtures_storage import ceph`). Skips (saying
why) where Ceph is not installed; scripts/install.sh --test installs it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.ceph import CephCluster, ceph_missing


@pytest.fixture(scope="session")
def ceph() -> Iterator[CephCluster]:
    """A running mon + memstore OSD with cephx; `ceph.conf`, `ceph.user`, `ceph.key`."""
    reason = ceph_missing()
    if reason is not None:
        pytest.skip(reason)
    cluster = CephCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
