"""AgentService's own rules, called directly as an agent would (no agent process)."""

from __future__ import annotations

import grpc
from google.longrunning import operations_pb2

from kumo.agent.v1 import agent_service_pb2 as aapi
from kumo.agent.v1 import agent_service_pb2_grpc as arpc
from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import compute_service_pb2_grpc as crpc
from kumo.compute.v1 import resources_pb2 as cpb
from kumo.topology.v1 import resources_pb2 as tpb
from tests.integration.test_compute_resources import make_flavor
from tests.support.cloud import Stubs, Tenant, rpc_error, unique
from tests.support.images import upload_image
from tests.support.topology import Site, make_site


def agent_stub(stubs: Stubs) -> arpc.AgentServiceStub:
    return arpc.AgentServiceStub(stubs.channel)


def register(admin: Stubs, rack: str, host: str) -> tpb.Host:
    return agent_stub(admin).RegisterHost(
        aapi.RegisterHostRequest(
            host=tpb.Host(
                name=f"hosts/{host}",
                rack=f"racks/{rack}",
                address="192.0.2.10",
                capacity=tpb.HostCapacity(vcpus=4, memory_mib=4096, disk_gib=50),
            )
        )
    )


def test_register_heartbeat_and_watch(admin: Stubs) -> None:
    """Registration creates the host ENABLED and live; the watch opens with a full resync."""
    site = make_site(admin)
    host = unique("h")
    registered = register(admin, site.rack, host)
    assert registered.state == tpb.Host.STATE_ENABLED and registered.capacity.vcpus == 4
    again = register(admin, site.rack, host)  # idempotent: same host, updated
    assert again.uid == registered.uid
    beat = agent_stub(admin).Heartbeat(aapi.HeartbeatRequest(host=f"hosts/{host}"))
    assert beat.timeout_seconds > 0
    stream = agent_stub(admin).WatchAssignments(
        aapi.WatchAssignmentsRequest(host=f"hosts/{host}"), timeout=5
    )
    first = next(iter(stream))
    assert first.full_resync and not first.assignments
    stream.cancel()


def test_bad_registrations(admin: Stubs) -> None:
    """Unknown racks and hosts are NOT_FOUND; empty capacity is INVALID_ARGUMENT."""
    code, _ = rpc_error(lambda: register(admin, "no-such-rack", unique("h")))
    assert code == grpc.StatusCode.NOT_FOUND
    code, _ = rpc_error(
        lambda: agent_stub(admin).RegisterHost(
            aapi.RegisterHostRequest(host=tpb.Host(name="hosts/x", rack="racks/x"))
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    code, _ = rpc_error(
        lambda: agent_stub(admin).Heartbeat(aapi.HeartbeatRequest(host="hosts/gone"))
    )
    assert code == grpc.StatusCode.NOT_FOUND


def test_stale_reports_and_unknown_consoles(admin: Stubs) -> None:
    """Reports for instances not on the reporting host change nothing; consoles of unknown
    instances are NOT_FOUND."""
    site = make_site(admin)
    host = unique("h")
    register(admin, site.rack, host)
    stub = agent_stub(admin)
    stub.ReportInstanceStatus(
        aapi.ReportInstanceStatusRequest(
            instance_uid="nope", host=f"hosts/{host}", state=cpb.Instance.STATE_RUNNING
        )
    )
    code, _ = rpc_error(
        lambda: stub.AppendSerialPortOutput(
            aapi.AppendSerialPortOutputRequest(instance_uid="nope", offset=0, data=b"x")
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND


def test_only_cloud_admins_are_agents(tenant: Tenant) -> None:
    """Agent credentials are cloud-administrator credentials; project admins are refused."""
    code, _ = rpc_error(
        lambda: agent_stub(tenant.stubs["admin"]).Heartbeat(aapi.HeartbeatRequest(host="hosts/h"))
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED


def scripted_host(admin: Stubs, tenant: Tenant) -> tuple[Site, str, str, str]:
    """A registered host with no agent behind it (the test plays the agent), a flavor and
    the tenant's image: (site, host id, flavor name, image name)."""
    site = make_site(admin)
    host = unique("h")
    register(admin, site.rack, host)
    return (
        site,
        host,
        make_flavor(admin, 1, 128, 1),
        upload_image(tenant.stubs["member"], tenant.name),
    )


def test_reports_and_serial_output_follow_the_protocol(admin: Stubs, tenant: Tenant) -> None:
    """An instance placed on a host: the host's reports drive its state; serial output
    accepts resends, asks to fill gaps, and keeps the last 1 MiB."""
    site, host, flavor, image = scripted_host(admin, tenant)
    compute = crpc.ComputeServiceStub(admin.channel)
    op = compute.CreateInstance(
        capi.CreateInstanceRequest(
            parent=f"{tenant.name}/zones/{site.zone}",
            instance_id="scripted",
            instance=cpb.Instance(flavor=flavor, image=image, requested_host=f"hosts/{host}"),
        )
    )
    stream = agent_stub(admin).WatchAssignments(
        aapi.WatchAssignmentsRequest(host=f"hosts/{host}"), timeout=30
    )
    assignment = next(a for message in stream for a in message.assignments)
    stream.cancel()
    assert assignment.hostname == "scripted" and assignment.image_sha256
    stub = agent_stub(admin)
    stub.ReportInstanceStatus(
        aapi.ReportInstanceStatusRequest(
            instance_uid=assignment.instance_uid,
            host="hosts/elsewhere",
            observed_generation=assignment.generation,
            state=cpb.Instance.STATE_ERROR,
        )
    )
    stub.ReportInstanceStatus(
        aapi.ReportInstanceStatusRequest(
            instance_uid=assignment.instance_uid,
            host=f"hosts/{host}",
            observed_generation=assignment.generation,
            state=cpb.Instance.STATE_RUNNING,
        )
    )
    done = admin.operations.WaitOperation(operations_pb2.WaitOperationRequest(name=op.name))
    assert done.done and not done.HasField("error")  # the stale ERROR report was ignored
    late = aapi.ReportInstanceStatusRequest(
        instance_uid=assignment.instance_uid,
        host=f"hosts/{host}",
        observed_generation=assignment.generation - 1,
        state=cpb.Instance.STATE_RUNNING,
    )
    stub.ReportInstanceStatus(late)  # a report overtaken by a newer one
    seen = compute.GetInstance(capi.GetInstanceRequest(name=assignment.instance))
    assert seen.observed_generation == assignment.generation  # never goes back

    def append(offset: int, data: bytes) -> int:
        return stub.AppendSerialPortOutput(
            aapi.AppendSerialPortOutputRequest(
                instance_uid=assignment.instance_uid, offset=offset, data=data
            )
        ).next_offset

    assert append(0, b"abc") == 3
    assert append(10, b"gap") == 3  # ask for bytes 3..9 first
    assert append(1, b"bcdef") == 6  # a resend overlapping what is kept
    read = compute.GetSerialPortOutput(capi.GetSerialPortOutputRequest(name=assignment.instance))
    assert (read.contents, read.start, read.next) == ("abcdef", 0, 6)
    chunk = b"x" * (64 << 10)
    offset = 6
    for _ in range(17):
        offset = append(offset, chunk)
    read = compute.GetSerialPortOutput(capi.GetSerialPortOutputRequest(name=assignment.instance))
    assert (
        len(read.contents) == 1 << 20 and read.next == offset and read.start == offset - (1 << 20)
    )
    code, _ = rpc_error(lambda: append(0, b"y" * ((64 << 10) + 1)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


def test_changes_to_one_instance_stream_just_that_instance(admin: Stubs, tenant: Tenant) -> None:
    """After the opening full resync, a build, a stop or a delete sends only its own
    instance (`full_resync` false); a deleted instance comes as a deleted assignment."""
    site, host, flavor, image = scripted_host(admin, tenant)
    compute = crpc.ComputeServiceStub(admin.channel)
    agent = agent_stub(admin)
    stream = iter(
        agent.WatchAssignments(aapi.WatchAssignmentsRequest(host=f"hosts/{host}"), timeout=60)
    )
    assert next(stream).full_resync

    def create(instance_id: str) -> tuple[operations_pb2.Operation, aapi.InstanceAssignment]:
        op = compute.CreateInstance(
            capi.CreateInstanceRequest(
                parent=f"{tenant.name}/zones/{site.zone}",
                instance_id=instance_id,
                instance=cpb.Instance(flavor=flavor, image=image, requested_host=f"hosts/{host}"),
            )
        )
        message = next(stream)
        assert not message.full_resync
        assert [a.hostname for a in message.assignments] == [instance_id]
        return op, message.assignments[0]

    def report(assignment: aapi.InstanceAssignment, **fields: object) -> None:
        agent.ReportInstanceStatus(
            aapi.ReportInstanceStatusRequest(
                instance_uid=assignment.instance_uid,
                host=f"hosts/{host}",
                observed_generation=assignment.generation,
                **fields,  # type: ignore[arg-type]
            )
        )

    op_a, first = create("first")
    report(first, state=cpb.Instance.STATE_RUNNING)
    op_b, second = create("second")  # the first is not sent again
    report(second, state=cpb.Instance.STATE_RUNNING)
    for op in (op_a, op_b):
        assert not admin.operations.WaitOperation(
            operations_pb2.WaitOperationRequest(name=op.name)
        ).HasField("error")

    compute.StopInstance(capi.StopInstanceRequest(name=second.instance))
    message = next(stream)
    assert not message.full_resync
    assert [(a.instance_uid, a.power_intent) for a in message.assignments] == [
        (second.instance_uid, cpb.Instance.POWER_INTENT_STOPPED)
    ]
    deleting = compute.DeleteInstance(capi.DeleteInstanceRequest(name=first.instance))
    message = next(stream)
    assert not message.full_resync
    assert [(a.instance_uid, a.deleted) for a in message.assignments] == [
        (first.instance_uid, True)
    ]
    report(first, removed=True)  # the host removed it: the record goes
    assert not admin.operations.WaitOperation(
        operations_pb2.WaitOperationRequest(name=deleting.name)
    ).HasField("error")
