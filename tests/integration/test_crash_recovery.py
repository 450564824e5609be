"""Operations survive the API process: crash (SIGKILL) and graceful stop (SIGTERM).

Each test runs the real `kumo-api` console script on its own data dir and
database (a SQLite file, or a fresh PostgreSQL database), kills or stops it,
starts it again on the same state and checks that every operation the first
process accepted ends, and that the data agrees with how it ended.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy
from google.longrunning import operations_pb2
from google.protobuf import duration_pb2, empty_pb2
from google.rpc import code_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import update

from kumo.identity.v1 import identity_service_pb2 as iapi
from kumo.identity.v1 import resources_pb2 as ipb
from kumo.server.db.base import utcnow
from kumo.server.db.engine import Database
from kumo.server.db.models import OperationRow
from kumo.server.operations.store import OperationState
from tests.support.cloud import ADMIN_PASSWORD, Stubs, sign_in, unique
from tests.support.postgres import PostgresServer
from tests.support.process import ApiProcess

pytestmark = pytest.mark.slow

NOT_FOUND = grpc.StatusCode.NOT_FOUND
WAIT_SECONDS = 180  # the most any test waits for operations to end after a restart


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of each backend."""
    if request.param == "postgres":
        pg: PostgresServer = request.getfixturevalue("postgres")
        return pg.create_database()
    return f"sqlite:///{tmp_path / 'db' / 'kumo.db'}"


@pytest.fixture
def kumo(database_url: str, tmp_path: Path) -> Iterator[ApiProcess]:
    """A `kumo-api` process definition on its own data dir and database; killed at teardown."""
    process = ApiProcess(
        {
            "KUMO_DATA_DIR": str(tmp_path / "data"),
            "KUMO_DATABASE__URL": database_url,
            "KUMO_BOOTSTRAP__ADMIN_PASSWORD": ADMIN_PASSWORD,
            "KUMO_AUTH__SCRYPT_LOG2_N": "10",
            "KUMO_OPERATIONS__LEASE_SECONDS": "2",
            "KUMO_OPERATIONS__POLL_SECONDS": "0.5",
        }
    )
    try:
        yield process
    finally:
        process.close()


@contextlib.contextmanager
def signed_in(process: ApiProcess) -> Iterator[Stubs]:
    """Stubs signed in as the cloud administrator of the running process."""
    with grpc.insecure_channel(process.address) as channel:
        yield Stubs(channel, sign_in(channel, "admin", ADMIN_PASSWORD, "admin"))


def create_projects(admin: Stubs, count: int) -> list[str]:
    """`count` new projects; their names."""
    names = []
    for _ in range(count):
        project = admin.identity.CreateProject(
            iapi.CreateProjectRequest(project_id=unique("c"), project=ipb.Project())
        )
        names.append(project.name)
    return names


def operation_rows(url: str, names: list[str]) -> dict[str, tuple[bool, int, str | None]]:
    """(done, state, lease_owner) of each operation, read straight from the database."""
    ids = [name.removeprefix("operations/") for name in names]
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sqlalchemy.text(
                    "SELECT id, done, state, lease_owner FROM operations WHERE id IN :ids"
                ).bindparams(sqlalchemy.bindparam("ids", expanding=True)),
                {"ids": ids},
            )
            return {f"operations/{r.id}": (bool(r.done), r.state, r.lease_owner) for r in rows}
    finally:
        engine.dispose()


def wait_all(admin: Stubs, names: list[str]) -> dict[str, operations_pb2.Operation]:
    """Each operation once done, waiting at most WAIT_SECONDS in all; fails if any is not."""
    deadline = time.monotonic() + WAIT_SECONDS
    result: dict[str, operations_pb2.Operation] = {}
    for name in names:
        while True:
            left = deadline - time.monotonic()
            timeout = duration_pb2.Duration(seconds=max(1, min(10, int(left))))
            op = admin.operations.WaitOperation(
                operations_pb2.WaitOperationRequest(name=name, timeout=timeout)
            )
            if op.done:
                result[name] = op
                break
            assert left > 0, f"{name} still not done after {WAIT_SECONDS} s: {op}"
    return result


def project_state(admin: Stubs, name: str) -> Any:
    """The project's state, or NOT_FOUND."""
    try:
        return admin.identity.GetProject(iapi.GetProjectRequest(name=name)).state
    except grpc.RpcError as error:
        return error.code()


def delete_all(admin: Stubs, projects: list[str]) -> list[str]:
    """DeleteProject for every project at once; the operations' names, in project order."""
    futures = [
        admin.identity.DeleteProject.future(iapi.DeleteProjectRequest(name=name))
        for name in projects
    ]
    return [future.result(timeout=60).name for future in futures]


def assert_consistent(admin: Stubs, projects: list[str], operations: list[str]) -> None:
    """Every operation ended; a succeeded delete left no project, any other left it ACTIVE."""
    finished = wait_all(admin, operations)
    for project, name in zip(projects, operations, strict=True):
        op = finished[name]
        if op.HasField("response"):
            assert op.response.Is(empty_pb2.Empty.DESCRIPTOR)
            assert project_state(admin, project) == grpc.StatusCode.NOT_FOUND, project
        else:
            assert op.HasField("error") and op.error.code != 0, op
            assert project_state(admin, project) == ipb.Project.STATE_ACTIVE, (project, op)


def test_accepted_operations_run_after_a_crash(kumo: ApiProcess, database_url: str) -> None:
    """Operations accepted by a process that never ran them are run by the next one."""
    kumo.start(KUMO_OPERATIONS__ENABLED="false")
    with signed_in(kumo) as admin:
        projects = create_projects(admin, 20)
        operations = [
            admin.identity.DeleteProject(iapi.DeleteProjectRequest(name=name)).name
            for name in projects
        ]
        assert all(project_state(admin, name) == ipb.Project.STATE_DELETING for name in projects)
    rows = operation_rows(database_url, operations)
    assert set(rows.values()) == {(False, OperationState.PENDING, None)}
    kumo.kill()

    kumo.start()
    with signed_in(kumo) as admin:
        finished = wait_all(admin, operations)
        assert all(op.HasField("response") for op in finished.values()), finished
        for name in projects:
            assert project_state(admin, name) == grpc.StatusCode.NOT_FOUND, name
    rows = operation_rows(database_url, operations)
    assert set(rows.values()) == {(True, OperationState.SUCCEEDED, None)}


def test_operations_interrupted_mid_flight_end_after_restart(
    kumo: ApiProcess, database_url: str, record_property: Callable[[str, object], None]
) -> None:
    """Operations running or queued at a SIGKILL all end after a restart, with consistent data."""
    projects: list[str] = []
    operations: list[str] = []
    # Bigger bursts in case every operation finished before the kill (SQLite runs
    # them between requests on the same loop, so they can keep up with a small one).
    for size in (50, 100, 200):
        kumo.start(KUMO_OPERATIONS__CONCURRENCY="1")
        with signed_in(kumo) as admin:
            burst = create_projects(admin, size)
            names = delete_all(admin, burst)
        kumo.kill()
        projects += burst
        operations += names
        at_kill = Counter(
            f"done={done} state={OperationState(state).name} leased={owner is not None}"
            for done, state, owner in operation_rows(database_url, names).values()
        )
        record_property(f"at_kill_of_{size}", dict(at_kill))
        if any(key.startswith("done=False") for key in at_kill):
            break
    else:
        pytest.fail("every operation of three bursts finished before the kill")

    kumo.start()
    with signed_in(kumo) as admin:
        assert_consistent(admin, projects, operations)
    rows = operation_rows(database_url, operations)
    assert len(rows) == len(operations)
    for name, (done, state, owner) in rows.items():
        assert done and owner is None, (name, state)
        assert state != OperationState.RUNNING, name


def _watch_health(address: str, seen: list[int], serving: threading.Event) -> None:
    with grpc.insecure_channel(address) as channel:
        stream = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
        with contextlib.suppress(grpc.RpcError):
            for response in stream:
                seen.append(response.status)
                if response.status == health_pb2.HealthCheckResponse.SERVING:
                    serving.set()


def test_graceful_stop_reports_not_serving_and_exits_zero(kumo: ApiProcess) -> None:
    """SIGTERM turns health NOT_SERVING, lets the process exit 0, and a restart serves again."""
    kumo.start(KUMO_SHUTDOWN_GRACE_SECONDS="1")
    seen: list[int] = []
    serving = threading.Event()
    watcher = threading.Thread(target=_watch_health, args=(kumo.address, seen, serving))
    watcher.start()
    try:
        assert serving.wait(30), seen
        assert kumo.terminate(timeout=30) == 0, kumo.tail()
    finally:
        watcher.join(timeout=30)
    assert seen[0] == health_pb2.HealthCheckResponse.SERVING
    assert health_pb2.HealthCheckResponse.NOT_SERVING in seen, seen

    kumo.start()
    with signed_in(kumo) as admin:
        admin.identity.GetProject(iapi.GetProjectRequest(name="projects/admin"))


def test_graceful_stop_hands_over_running_operations(kumo: ApiProcess, database_url: str) -> None:
    """A graceful stop leaves no lease held, and the next process finishes every operation."""
    kumo.start(KUMO_OPERATIONS__CONCURRENCY="1", KUMO_SHUTDOWN_GRACE_SECONDS="1")
    with signed_in(kumo) as admin:
        projects = create_projects(admin, 30)
        operations = delete_all(admin, projects)
    assert kumo.terminate(timeout=30) == 0, kumo.tail()
    rows = operation_rows(database_url, operations)
    held = {name: row for name, row in rows.items() if not row[0] and row[2] is not None}
    assert held == {}

    kumo.start()
    with signed_in(kumo) as admin:
        assert_consistent(admin, projects, operations)


def test_cancelled_before_a_crash_stays_cancelled(kumo: ApiProcess) -> None:
    """A queued delete cancelled before a crash stays cancelled, its project ACTIVE; others run."""
    kumo.start(KUMO_OPERATIONS__ENABLED="false")
    with signed_in(kumo) as admin:
        projects = create_projects(admin, 3)
        operations = [
            admin.identity.DeleteProject(iapi.DeleteProjectRequest(name=name)).name
            for name in projects
        ]
        admin.operations.CancelOperation(operations_pb2.CancelOperationRequest(name=operations[0]))
    kumo.kill()

    kumo.start()
    with signed_in(kumo) as admin:
        finished = wait_all(admin, operations)
        assert finished[operations[0]].error.code == code_pb2.CANCELLED
        assert all(finished[name].HasField("response") for name in operations[1:])
        states = [project_state(admin, name) for name in projects]
    assert states == [ipb.Project.STATE_ACTIVE, NOT_FOUND, NOT_FOUND]


def test_cancel_requested_before_a_crash_gives_the_project_back(
    kumo: ApiProcess, database_url: str
) -> None:
    """A cancel that reached a crashed controller ends CANCELLED with the project ACTIVE."""
    kumo.start(KUMO_OPERATIONS__ENABLED="false")
    with signed_in(kumo) as admin:
        (project,) = create_projects(admin, 1)
        name = admin.identity.DeleteProject(iapi.DeleteProjectRequest(name=project)).name
    kumo.kill()
    # What a crash leaves when a cancel arrived mid-run: RUNNING, cancel requested, and
    # an expired lease of a controller that is gone.
    db = Database(database_url)
    try:
        db.transaction(
            lambda s: s.execute(
                update(OperationRow)
                .where(OperationRow.id == name.removeprefix("operations/"))
                .values(
                    state=int(OperationState.RUNNING),
                    cancel_requested=True,
                    attempts=1,
                    lease_owner=str(uuid.uuid4()),
                    lease_expire_time=utcnow() - timedelta(seconds=60),
                )
            )
        )
    finally:
        db.close()

    kumo.start()
    with signed_in(kumo) as admin:
        op = wait_all(admin, [name])[name]
        assert op.error.code == code_pb2.CANCELLED
        assert project_state(admin, project) == ipb.Project.STATE_ACTIVE
