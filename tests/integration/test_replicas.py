"""Two API replicas on one PostgreSQL database: each one's wake-ups reach the other
(`replica_wakeups`, LISTEN/NOTIFY), so nothing waits for a polling interval.

Polling is made too slow to matter, so that without the relay each test would fail: the
controller replica polls for operations once an hour (its claim pass at start is over
before anything is written) and an agent stream's periodic full resync is an hour away;
PROMPTLY is only how long a test waits before calling a wake-up lost."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import grpc
import pytest

from kumo.agent.v1 import agent_service_pb2 as aapi
from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import compute_service_pb2_grpc as crpc
from kumo.compute.v1 import resources_pb2 as cpb
from kumo.server.db.engine import make_engine
from kumo.server.replica_wakeups import PostgresWakeups, decode, encode
from kumo.server.services import agent as agent_service
from tests.conftest import make_config
from tests.integration.test_agent_service import agent_stub, scripted_host
from tests.integration.test_operations import start_delete, wait
from tests.support.cloud import ADMIN_PASSWORD, Stubs, make_tenant, sign_in
from tests.support.postgres import PostgresServer
from tests.support.server import ServerThread

PROMPTLY = 10.0  # seconds a test waits for what a wake-up brings
HOUR = 3600.0


@pytest.fixture(scope="module")
def database(postgres: PostgresServer) -> str:
    """A fresh database for the two replicas."""
    return postgres.create_database()


@pytest.fixture(scope="module")
def replicas(database: str) -> Iterator[tuple[Stubs, Stubs]]:
    """Replica A runs the controllers (polling for operations once an hour); replica B runs
    none, so operations written on B wait for A. Agent streams resync once an hour. Admin
    stubs on each."""
    slow = pytest.MonkeyPatch()
    slow.setattr(agent_service, "RESYNC_SECONDS", HOUR)
    a = ServerThread(make_config(database, operations={"lease_seconds": 3, "poll_seconds": HOUR}))
    b = ServerThread(make_config(database, operations={"enabled": False}))
    try:
        with grpc.insecure_channel(a.address) as on_a, grpc.insecure_channel(b.address) as on_b:
            yield (
                Stubs(on_a, sign_in(on_a, "admin", ADMIN_PASSWORD, "admin")),
                Stubs(on_b, sign_in(on_b, "admin", ADMIN_PASSWORD, "admin")),
            )
    finally:
        b.stop()
        a.stop()
        slow.undo()


def test_an_operation_written_on_one_replica_is_run_by_another(
    replicas: tuple[Stubs, Stubs],
) -> None:
    """A DeleteProject started on B (no controller) is claimed by A at once, and B's wait
    ends when A finishes it."""
    _, on_b = replicas
    _, operation = start_delete(on_b)
    done = wait(on_b, operation.name, seconds=PROMPTLY)
    assert done.done and not done.HasField("error")


def test_a_build_placed_by_one_replica_reaches_a_stream_on_another(
    replicas: tuple[Stubs, Stubs],
) -> None:
    """An agent watching through B is sent the instance A places on its host, and A's build
    ends when the agent reports through B."""
    on_a, on_b = replicas
    tenant = make_tenant(on_a.channel, on_a, "replica")
    site, host, flavor, image = scripted_host(on_a, tenant)
    stream = agent_stub(on_b).WatchAssignments(
        aapi.WatchAssignmentsRequest(host=f"hosts/{host}"), timeout=60
    )
    messages = iter(stream)
    assert next(messages).full_resync
    op = crpc.ComputeServiceStub(on_a.channel).CreateInstance(
        capi.CreateInstanceRequest(
            parent=f"{tenant.name}/zones/{site.zone}",
            instance_id="across",
            instance=cpb.Instance(flavor=flavor, image=image, requested_host=f"hosts/{host}"),
        )
    )
    arrived: list[aapi.WatchAssignmentsResponse] = []

    def next_message() -> None:
        arrived.append(next(messages))

    asyncio.run(asyncio.wait_for(asyncio.to_thread(next_message), PROMPTLY))
    stream.cancel()
    (assignment,) = arrived[0].assignments
    assert not arrived[0].full_resync and assignment.hostname == "across"
    agent_stub(on_b).ReportInstanceStatus(
        aapi.ReportInstanceStatusRequest(
            instance_uid=assignment.instance_uid,
            host=f"hosts/{host}",
            observed_generation=assignment.generation,
            state=cpb.Instance.STATE_RUNNING,
        )
    )
    done = wait(on_a, op.name, seconds=PROMPTLY)
    assert done.done and not done.HasField("error")


class _Received:
    """A notifier's delivery end: what arrived, and an event per key."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[str, str | None]] = []
        self.events: dict[str, asyncio.Event] = {}

    def deliver(self, key: str, about: str | None = None) -> None:
        self.deliveries.append((key, about))
        self.events.setdefault(key, asyncio.Event()).set()

    async def arrival(self, key: str) -> None:
        await asyncio.wait_for(self.events.setdefault(key, asyncio.Event()).wait(), PROMPTLY)


def test_the_relay_delivers_to_others_and_not_back_to_the_sender(database: str) -> None:
    """A notification published by one relay reaches the other with its detail; the
    sender's own listener drops it (it was delivered locally already)."""
    engine = make_engine(database)

    async def exchange() -> tuple[_Received, _Received]:
        first, second = _Received(), _Received()
        one, two = PostgresWakeups(engine, first), PostgresWakeups(engine, second)
        one.start()
        two.start()
        try:
            while "ready" not in second.events:  # until two's listener has joined
                one.publish("ready")
                await asyncio.sleep(0.05)
            one.publish("host:h1", "uid-1")
            await second.arrival("host:h1")
            # After two has seen one's notification, a later one from two reaches one
            # behind one's own echo, if that were delivered.
            two.publish("marker")
            await first.arrival("marker")
        finally:
            await asyncio.to_thread(one.stop)
            await asyncio.to_thread(two.stop)
        return first, second

    try:
        first, second = asyncio.run(exchange())
    finally:
        engine.dispose()
    assert ("host:h1", "uid-1") in second.deliveries
    assert first.deliveries == [("marker", None)]


def test_the_relay_comes_back_after_its_connections_are_cut(postgres: PostgresServer) -> None:
    """When the database drops every connection of both relays (a restart, a failover),
    each opens them again and notifications flow once more."""
    engine = make_engine(postgres.create_database())  # (its own: every connection is cut)

    async def until_received(sender: PostgresWakeups, receiver: _Received, key: str) -> None:
        while key not in receiver.events:
            sender.publish(key)  # (sends made while a connection is down are lost)
            await asyncio.sleep(0.05)

    def cut() -> int:
        with engine.connect() as connection:
            return len(
                connection.exec_driver_sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ).all()
            )

    async def exchange() -> int:
        first, second = _Received(), _Received()
        one, two = PostgresWakeups(engine, first), PostgresWakeups(engine, second)
        one.start()
        two.start()
        try:
            await asyncio.wait_for(until_received(one, second, "before"), PROMPTLY)
            cut_connections = await asyncio.to_thread(cut)
            await asyncio.wait_for(until_received(one, second, "after"), PROMPTLY)
            await asyncio.wait_for(until_received(two, first, "back"), PROMPTLY)
        finally:
            await asyncio.to_thread(one.stop)
            await asyncio.to_thread(two.stop)
        return cut_connections

    try:
        assert asyncio.run(exchange()) >= 3  # both listeners and one's sender at least
    finally:
        engine.dispose()


def test_payloads_keep_key_and_detail() -> None:
    """A payload decodes to the key and detail it was made of (no detail: None)."""
    assert decode(encode("op:1", None)) == ("op:1", None)
    assert decode(encode("host:h", "uid")) == ("host:h", "uid")
    assert decode(encode("host:h", "")) == ("host:h", "")
