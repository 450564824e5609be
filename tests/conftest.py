"""Fixtures shared by every test: PostgreSQL, real API servers per backend, tenants.

Expensive things are session-scoped and shared; tests isolate themselves by
naming (each creates its own projects, users and topology with unique ids).

With KUMO_TESTS_NO_SKIPS=1 (set by scripts/test, which installs every component
first) a skipped test fails the run: there, a skip can only mean a component
that should be there is missing.

Every temporary file of the run (the test servers' data dirs with their images, databases,
clusters, and those of the processes the tests start, through TMPDIR) goes under one
directory that the end of the run removes: a run leaves no gigabytes behind. pytest's own
tmp_path is the exception (pytest keeps the last three runs' and removes older ones).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from kumo.server.config import Config, load_config
from tests.support.cloud import ADMIN_PASSWORD, Stubs, Tenant, make_tenant, sign_in
from tests.support.fixtures_compute import guest_image, libvirtd  # noqa: F401  (shared fixtures)
from tests.support.fixtures_multihost import libvirt_hosts  # noqa: F401  (shared fixture)
from tests.support.fixtures_storage import ceph  # noqa: F401  (shared fixture)
from tests.support.gateway import gateway  # noqa: F401  (shared fixture)
from tests.support.ovn import ovn_api, ovn_central, ovn_chassis  # noqa: F401  (shared fixtures)
from tests.support.postgres import PostgresServer, find_bindir
from tests.support.server import ServerThread

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session (installed by scripts/test)."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (scripts/install.sh --test installs it)")
    server = PostgresServer(bindir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def make_config(database_url: str, **overrides: Any) -> Config:
    """A configuration for a test server: port 0, fast hashing, its own data dir."""
    values: dict[str, Any] = {
        "data_dir": tempfile.mkdtemp(prefix="kumo-test-"),
        "listen": {"port": 0},
        "database": {"url": database_url},
        "bootstrap": {"admin_password": ADMIN_PASSWORD},
        "auth": {"scrypt_log2_n": 10},
        "operations": {"lease_seconds": 3, "poll_seconds": 0.5},
    }
    values.update(overrides)
    return load_config(None, **values)


def database_url_for(backend: str, request: pytest.FixtureRequest) -> str:
    """A fresh database URL of the backend (SQLite file or new PostgreSQL database)."""
    if backend == "postgres":
        pg: PostgresServer = request.getfixturevalue("postgres")
        return pg.create_database()
    return f"sqlite:///{tempfile.mkdtemp(prefix='kumo-db-')}/kumo.db"


@pytest.fixture(scope="session", params=BACKENDS)
def api(request: pytest.FixtureRequest) -> Iterator[ServerThread]:
    """A running API server on each backend, shared by the session."""
    server = ServerThread(make_config(database_url_for(request.param, request)))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def channel(api: ServerThread) -> Iterator[grpc.Channel]:
    """A plain channel to the server."""
    with grpc.insecure_channel(api.address) as chan:
        yield chan


@pytest.fixture(scope="session")
def admin(channel: grpc.Channel) -> Stubs:
    """Stubs signed in as the bootstrap cloud administrator."""
    return Stubs(channel, sign_in(channel, "admin", ADMIN_PASSWORD, "admin"))


@pytest.fixture
def anonymous(channel: grpc.Channel) -> Stubs:
    """Stubs without a token."""
    return Stubs(channel)


@pytest.fixture
def tenant(channel: grpc.Channel, admin: Stubs) -> Tenant:
    """A fresh project with a signed-in reader, member and admin."""
    return make_tenant(channel, admin, "a")


@pytest.fixture
def other_tenant(channel: grpc.Channel, admin: Stubs) -> Tenant:
    """A second fresh project, to test isolation."""
    return make_tenant(channel, admin, "b")


_TEMP_ROOT = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """Points `tempfile` and TMPDIR at a directory of this run's own (see the docstring)."""
    # pytest's tmp_path stays where it was (pytest keeps the last three runs' there): under
    # one more directory, the unix sockets of a `kumo up` in a tmp_path would pass 107 bytes.
    os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", tempfile.gettempdir())
    root = tempfile.mkdtemp(prefix="kt-")
    os.chmod(root, 0o755)  # QEMU guests (run as another user where libvirt says so) read disks
    config.stash[_TEMP_ROOT] = root
    tempfile.tempdir = root
    os.environ["TMPDIR"] = root


def pytest_unconfigure(config: pytest.Config) -> None:
    """Removes the run's temporary directory (everything that used it has stopped)."""
    root = config.stash.get(_TEMP_ROOT, None)
    if root is not None:
        shutil.rmtree(root, ignore_errors=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fails a KUMO_TESTS_NO_SKIPS=1 run that skipped any test (see the module docstring)."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or os.environ.get("KUMO_TESTS_NO_SKIPS") != "1":
        return
    skipped = reporter.stats.get("skipped", [])
    if skipped and exitstatus == 0:
        reporter.write_line(f"{len(skipped)} test(s) skipped: a component is missing (see above)")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
