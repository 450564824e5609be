"""Multi-host fixture: two libvirt "hosts" on one machine (tests/support/multihost.py).

Import it into a conftest (`from tests.support.fixtures_multihost import libvirt_hosts`).
Session-scoped: the hosts' daemons probe QEMU once (about 10 s, in parallel). Tests that kill
a host's daemon (`host.daemon.kill()`) start it again (`host.daemon.start()`) before they end.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.multihost import HostCluster, multihost_unavailable_reason


@pytest.fixture(scope="session")
def libvirt_hosts() -> Iterator[HostCluster]:
    """Two hosts, `host-1` and `host-2` (`libvirt_hosts.hosts`), each a libvirtd in its own
    network namespace at its own address: `host.uri` for its local agent or driver,
    `host.migration_uri` for peers, `host.instances_dir` for its guests' files."""
    reason = multihost_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    cluster = HostCluster(2)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
