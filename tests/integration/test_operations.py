"""google.longrunning.Operations over a real channel, on operations started by DeleteProject."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

import grpc
import pytest
from google.longrunning import operations_pb2
from google.protobuf import duration_pb2, empty_pb2
from google.rpc import code_pb2, error_details_pb2

from kumo.identity.v1 import identity_service_pb2 as iapi
from kumo.identity.v1 import resources_pb2 as ipb
from kumo.type.v1 import operation_metadata_pb2
from tests.conftest import make_config
from tests.support.cloud import ADMIN_PASSWORD, Stubs, Tenant, rpc_error, sign_in, unique
from tests.support.server import ServerThread

NOT_FOUND = grpc.StatusCode.NOT_FOUND


def start_delete(admin: Stubs) -> tuple[str, operations_pb2.Operation]:
    """Creates a project and starts deleting it; returns its name and the operation."""
    project = unique("p")
    admin.identity.CreateProject(
        iapi.CreateProjectRequest(project_id=project, project=ipb.Project())
    )
    name = f"projects/{project}"
    return name, admin.identity.DeleteProject(iapi.DeleteProjectRequest(name=name))


def wait(stubs: Stubs, name: str, seconds: float = 30) -> operations_pb2.Operation:
    """WaitOperation with a timeout of `seconds`."""
    timeout = duration_pb2.Duration()
    timeout.FromNanoseconds(int(seconds * 1e9))
    return stubs.operations.WaitOperation(
        operations_pb2.WaitOperationRequest(name=name, timeout=timeout)
    )


def get(stubs: Stubs, name: str) -> operations_pb2.Operation:
    """GetOperation."""
    return stubs.operations.GetOperation(operations_pb2.GetOperationRequest(name=name))


def listed(stubs: Stubs, filter: str = "") -> list[str]:
    """Names of the operations ListOperations returns with `filter`."""
    request = operations_pb2.ListOperationsRequest(name="operations", filter=filter, page_size=1000)
    return [op.name for op in stubs.operations.ListOperations(request).operations]


def metadata(operation: operations_pb2.Operation) -> operation_metadata_pb2.OperationMetadata:
    """The operation's OperationMetadata."""
    out = operation_metadata_pb2.OperationMetadata()
    assert operation.metadata.Unpack(out)
    return out


@pytest.fixture
def finished(admin: Stubs) -> operations_pb2.Operation:
    """A DeleteProject operation that has finished."""
    _, operation = start_delete(admin)
    done = wait(admin, operation.name)
    assert done.done
    return done


@pytest.fixture(scope="module")
def replica() -> Iterator[Stubs]:
    """An API server without controllers on its own SQLite: its operations stay pending."""
    url = f"sqlite:///{tempfile.mkdtemp(prefix='kumo-db-')}/kumo.db"
    server = ServerThread(make_config(url, operations={"enabled": False}))
    try:
        with grpc.insecure_channel(server.address) as chan:
            yield Stubs(chan, sign_in(chan, "admin", ADMIN_PASSWORD, "admin"))
    finally:
        server.stop()


def test_delete_project_operation_describes_itself(admin: Stubs) -> None:
    """A DeleteProject operation names its target and verb and ends with an Empty response."""
    project, operation = start_delete(admin)
    assert operation.name.startswith("operations/")
    started = metadata(operation)
    assert (started.target, started.verb) == (project, "DeleteProject")
    done = wait(admin, operation.name)
    assert done.done and done.WhichOneof("result") == "response"
    assert done.response.Is(empty_pb2.Empty.DESCRIPTOR)
    ended = metadata(done)
    assert ended.progress_percent == 100
    assert ended.end_time.ToDatetime() >= ended.create_time.ToDatetime()
    assert get(admin, operation.name) == done


def test_list_operations_filters_by_done(admin: Stubs, finished: operations_pb2.Operation) -> None:
    """`done = true` lists finished operations; `done = false` does not."""
    assert finished.name in listed(admin, "done = true")
    assert finished.name not in listed(admin, "done = false")
    target = metadata(finished).target
    assert listed(admin, f'target = "{target}" AND done = true') == [finished.name]


def test_wait_operation_returns_when_done(admin: Stubs) -> None:
    """WaitOperation with a timeout returns the finished operation."""
    project, operation = start_delete(admin)
    done = wait(admin, operation.name, seconds=20)
    assert done.done and not done.HasField("error")
    code, _ = rpc_error(lambda: admin.identity.GetProject(iapi.GetProjectRequest(name=project)))
    assert code == NOT_FOUND


def test_cancel_of_finished_operation_changes_nothing(
    admin: Stubs, finished: operations_pb2.Operation
) -> None:
    """Cancelling an operation that has ended succeeds and leaves it as it was."""
    admin.operations.CancelOperation(operations_pb2.CancelOperationRequest(name=finished.name))
    after = get(admin, finished.name)
    assert after == finished
    assert not metadata(after).requested_cancellation


def test_delete_finished_operation(admin: Stubs, finished: operations_pb2.Operation) -> None:
    """A finished operation can be deleted; afterwards it is NOT_FOUND everywhere."""
    admin.operations.DeleteOperation(operations_pb2.DeleteOperationRequest(name=finished.name))
    code, _ = rpc_error(lambda: get(admin, finished.name))
    assert code == NOT_FOUND
    assert finished.name not in listed(admin)
    code, _ = rpc_error(
        lambda: admin.operations.DeleteOperation(
            operations_pb2.DeleteOperationRequest(name=finished.name)
        )
    )
    assert code == NOT_FOUND


def test_operations_of_another_project_are_not_found(
    admin: Stubs, tenant: Tenant, finished: operations_pb2.Operation
) -> None:
    """A tenant can neither see nor touch an operation started from another project."""
    stubs = tenant.stubs["admin"]
    name = finished.name
    attempts = [
        lambda: get(stubs, name),
        lambda: wait(stubs, name, seconds=1),
        lambda: stubs.operations.CancelOperation(operations_pb2.CancelOperationRequest(name=name)),
        lambda: stubs.operations.DeleteOperation(operations_pb2.DeleteOperationRequest(name=name)),
    ]
    for attempt in attempts:
        code, _ = rpc_error(attempt)
        assert code == NOT_FOUND
    assert name not in listed(stubs)
    assert get(admin, name) == finished


def test_unknown_operation_is_not_found(admin: Stubs) -> None:
    """A well-formed name of an operation that never existed is NOT_FOUND."""
    code, status = rpc_error(lambda: get(admin, "operations/00000000-0000-4000-8000-000000000000"))
    assert code == NOT_FOUND
    assert status is not None
    assert any(d.Is(error_details_pb2.ResourceInfo.DESCRIPTOR) for d in status.details)


def test_pending_operation_cannot_be_deleted_but_can_be_cancelled(replica: Stubs) -> None:
    """Without a controller an operation stays pending: Delete is refused, Cancel ends it."""
    _, operation = start_delete(replica)
    waited = wait(replica, operation.name, seconds=0.2)
    assert not waited.done
    assert operation.name in listed(replica, "done = false")

    code, status = rpc_error(
        lambda: replica.operations.DeleteOperation(
            operations_pb2.DeleteOperationRequest(name=operation.name)
        )
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert status is not None
    failure = error_details_pb2.PreconditionFailure()
    assert status.details[0].Unpack(failure)
    assert failure.violations[0].subject == operation.name
    assert not get(replica, operation.name).done

    replica.operations.CancelOperation(operations_pb2.CancelOperationRequest(name=operation.name))
    cancelled = get(replica, operation.name)
    assert cancelled.done
    assert cancelled.error.code == code_pb2.CANCELLED == 1
    assert metadata(cancelled).requested_cancellation
    assert wait(replica, operation.name) == cancelled

    replica.operations.DeleteOperation(operations_pb2.DeleteOperationRequest(name=operation.name))
    code, _ = rpc_error(lambda: get(replica, operation.name))
    assert code == NOT_FOUND


def test_cancelled_delete_leaves_the_project_active(replica: Stubs) -> None:
    """A DeleteProject cancelled before it ran gives the project back, ACTIVE."""
    project, operation = start_delete(replica)
    deleting = replica.identity.GetProject(iapi.GetProjectRequest(name=project))
    assert deleting.state == ipb.Project.STATE_DELETING
    replica.operations.CancelOperation(operations_pb2.CancelOperationRequest(name=operation.name))
    assert get(replica, operation.name).error.code == code_pb2.CANCELLED
    after = replica.identity.GetProject(iapi.GetProjectRequest(name=project))
    assert after.state == ipb.Project.STATE_ACTIVE
