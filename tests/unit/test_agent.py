"""The host agent (kumo.agent) against an in-test AgentService, ImageService and
IdentityService over a real grpc.aio channel, with the fake compute driver.

Each test runs one asyncio scenario: a FakeApi server on a free port, a FakeDriver
and an Agent; it changes the assignments the fake API streams and polls (bounded)
for what the agent must do to the driver and report.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import grpc
import grpc.aio
import pytest

from kumo.agent.config import AgentConfig, load_agent_config
from kumo.agent.main import Agent
from kumo.agent.v1 import agent_service_pb2 as apb
from kumo.agent.v1 import agent_service_pb2_grpc as agrpc
from kumo.compute.v1 import resources_pb2 as cpb
from kumo.drivers.compute.base import GuestSpec, GuestState
from kumo.drivers.compute.fake import FakeDriver
from kumo.drivers.errors import DriverError
from kumo.identity.v1 import identity_service_pb2 as ipb
from kumo.identity.v1 import identity_service_pb2_grpc as igrpc
from kumo.identity.v1 import resources_pb2 as idpb
from kumo.image.v1 import image_service_pb2 as impb
from kumo.image.v1 import image_service_pb2_grpc as imgrpc
from kumo.image.v1 import resources_pb2 as imrpb
from kumo.topology.v1 import resources_pb2 as tpb

T = TypeVar("T")

Instance = cpb.Instance
IMAGE = "projects/p1/images/tiny"
IMAGE_DATA = b"kumo raw test image\n" * 3000  # 60 000 bytes, streamed in 4 KiB chunks
IMAGE_SHA = hashlib.sha256(IMAGE_DATA).hexdigest()
BAD_IMAGE = "projects/p1/images/corrupt"
IMAGE2 = "projects/p1/images/tiny-v2"
IMAGE2_DATA = b"kumo raw test image, version 2\n" * 100
IMAGE2_SHA = hashlib.sha256(IMAGE2_DATA).hexdigest()
ACCESS_KEY = ("AKTEST", "secret")
HOST = "hosts/node1"


async def eventually(predicate: Callable[[], T | None], what: str, timeout: float = 10.0) -> T:
    """Polls `predicate` until it returns something true; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def assignment(uid: str, **fields: Any) -> apb.InstanceAssignment:
    values: dict[str, Any] = {
        "instance": f"projects/p1/zones/z1/instances/{uid}",
        "instance_uid": uid,
        "generation": 1,
        "power_intent": Instance.POWER_INTENT_RUNNING,
        "vcpus": 1,
        "memory_mib": 64,
        "disk_gib": 1,
        "image": IMAGE,
        "image_sha256": IMAGE_SHA,
        "image_format": imrpb.DISK_FORMAT_RAW,
        "hostname": uid,
        "ssh_authorized_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample test"],
    }
    values.update(fields)
    return apb.InstanceAssignment(**values)


class FakeApi(
    agrpc.AgentServiceServicer, imgrpc.ImageServiceServicer, igrpc.IdentityServiceServicer
):
    """The API side of the agent's contract, in memory, checking bearer tokens."""

    def __init__(self) -> None:
        self.assignments: dict[str, apb.InstanceAssignment] = {}
        self.images = {
            IMAGE: IMAGE_DATA,
            IMAGE2: IMAGE2_DATA,
            BAD_IMAGE: b"not what the checksum says",
        }
        self.registrations: list[apb.RegisterHostRequest] = []
        self.heartbeats: list[apb.HeartbeatRequest] = []
        self.reports: list[apb.ReportInstanceStatusRequest] = []
        self.console: dict[str, bytearray] = {}
        self.downloads: list[str] = []
        self.tokens: list[str] = []
        self.token_lifetime = 3600
        self.reject_next_token = False
        self.watch_connections = 0
        self.release_watch = asyncio.Event()
        self.release_watch.set()
        self._streams: list[asyncio.Queue[apb.WatchAssignmentsResponse | None]] = []

    # -- what tests call

    def assign(self, *items: apb.InstanceAssignment, full: bool = False) -> None:
        """Changes assignments and streams them (a full resync if `full`)."""
        for item in items:
            self.assignments[item.instance_uid] = item
        message = apb.WatchAssignmentsResponse(
            full_resync=full,
            assignments=list(self.assignments.values()) if full else list(items),
        )
        for queue in self._streams:
            queue.put_nowait(message)

    def drop_streams(self) -> None:
        """Ends every open watch stream with UNAVAILABLE."""
        for queue in self._streams:
            queue.put_nowait(None)

    def status(self, uid: str) -> apb.ReportInstanceStatusRequest | None:
        """The last report about `uid`."""
        for report in reversed(self.reports):
            if report.instance_uid == uid:
                return report
        return None

    def removed(self, uid: str) -> apb.ReportInstanceStatusRequest | None:
        """The last report about `uid` if it says the guest was removed."""
        last = self.status(uid)
        return last if last is not None and last.removed else None

    def reported(
        self, uid: str, state: int, **fields: Any
    ) -> apb.ReportInstanceStatusRequest | None:
        """The last report about `uid` if it has `state` and `fields`, else None."""
        last = self.status(uid)
        if last is None or last.state != state:
            return None
        if any(getattr(last, key) != value for key, value in fields.items()):
            return None
        return last

    # -- authentication

    async def _check(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        metadata = dict(context.invocation_metadata() or ())
        token = str(metadata.get("authorization", "")).removeprefix("Bearer ")
        if self.reject_next_token and token:
            self.reject_next_token = False
            self.tokens.remove(token)
        if token not in self.tokens:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid or expired token")

    async def IssueToken(self, request: Any, context: Any) -> ipb.IssueTokenResponse:
        key = request.access_key
        if (key.access_key_id, key.secret_access_key) != ACCESS_KEY:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "wrong credentials")
        token = f"token-{len(self.tokens) + 1}"
        self.tokens.append(token)
        expire = idpb.Token(token=token, cloud_admin=True)
        expire.expire_time.FromSeconds(int(time.time()) + self.token_lifetime)
        return ipb.IssueTokenResponse(token=expire)

    # -- AgentService

    async def RegisterHost(self, request: Any, context: Any) -> tpb.Host:
        await self._check(context)
        self.registrations.append(request)
        host = tpb.Host()
        host.CopyFrom(request.host)
        host.state = tpb.Host.STATE_ENABLED
        return host

    async def Heartbeat(self, request: Any, context: Any) -> apb.HeartbeatResponse:
        await self._check(context)
        self.heartbeats.append(request)
        return apb.HeartbeatResponse(timeout_seconds=60)

    async def WatchAssignments(
        self, request: Any, context: Any
    ) -> AsyncIterator[apb.WatchAssignmentsResponse]:
        await self._check(context)
        assert request.host == HOST
        self.watch_connections += 1
        queue: asyncio.Queue[apb.WatchAssignmentsResponse | None] = asyncio.Queue()
        self._streams.append(queue)
        try:
            await self.release_watch.wait()
            yield apb.WatchAssignmentsResponse(
                full_resync=True, assignments=list(self.assignments.values())
            )
            while True:
                message = await queue.get()
                if message is None:
                    await context.abort(grpc.StatusCode.UNAVAILABLE, "stream dropped")
                    return
                yield message
        finally:
            self._streams.remove(queue)

    async def ReportInstanceStatus(
        self, request: Any, context: Any
    ) -> apb.ReportInstanceStatusResponse:
        await self._check(context)
        assert request.host == HOST
        self.reports.append(request)
        current = self.assignments.get(request.instance_uid)
        if request.removed and current is not None and current.deleted:
            del self.assignments[request.instance_uid]
        return apb.ReportInstanceStatusResponse()

    async def AppendSerialPortOutput(
        self, request: Any, context: Any
    ) -> apb.AppendSerialPortOutputResponse:
        await self._check(context)
        assert len(request.data) <= 64 * 1024
        buffer = self.console.setdefault(request.instance_uid, bytearray())
        if request.offset <= len(buffer):  # else a gap: ask for what is missing
            buffer += request.data[len(buffer) - request.offset :]
        return apb.AppendSerialPortOutputResponse(next_offset=len(buffer))

    # -- ImageService

    async def DownloadImageData(self, request: Any, context: Any) -> AsyncIterator[Any]:
        await self._check(context)
        data = self.images.get(request.name)
        if data is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no image {request.name}")
            return
        self.downloads.append(request.name)
        for start in range(0, len(data), 4096):
            yield impb.DownloadImageDataResponse(data=data[start : start + 4096])
            await asyncio.sleep(0)


@contextlib.asynccontextmanager
async def fake_api() -> AsyncIterator[tuple[FakeApi, int]]:
    api = FakeApi()
    server = grpc.aio.server()
    agrpc.add_AgentServiceServicer_to_server(api, server)
    imgrpc.add_ImageServiceServicer_to_server(api, server)
    igrpc.add_IdentityServiceServicer_to_server(api, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield api, port
    finally:
        await server.stop(None)


def agent_config(port: int, state_dir: Path, **overrides: Any) -> AgentConfig:
    values: dict[str, Any] = {
        "api_endpoint": f"127.0.0.1:{port}",
        "host": "node1",
        "rack": "r1",
        "address": "192.0.2.10",
        "credentials": {"access_key_id": ACCESS_KEY[0], "secret_access_key": ACCESS_KEY[1]},
        "driver": {"name": "fake"},
        "state_dir": state_dir,
        "heartbeat_interval_seconds": 0.1,
        "resync_interval_seconds": 30.0,
        "console_poll_interval_seconds": 0.05,
        "retry_initial_seconds": 0.02,
        "retry_max_seconds": 0.2,
        "shutdown_grace_seconds": 2.0,
    }
    values.update(overrides)
    return AgentConfig(**values)


@contextlib.asynccontextmanager
async def running_agent(config: AgentConfig, driver: FakeDriver) -> AsyncIterator[Agent]:
    agent = Agent(config, driver=driver)
    await agent.start()
    try:
        yield agent
    finally:
        await agent.stop()


def boots(driver: FakeDriver, uid: str) -> int:
    """How many times the fake guest booted (each boot prints KUMO_BOOT_OK)."""
    return driver.read_console(uid, 0, 1 << 16).count(b"KUMO_BOOT_OK")


def guests(driver: FakeDriver) -> dict[str, GuestState]:
    return driver.list_guests()


# -- the scenarios ------------------------------------------------------------------------


def test_full_resync_spawns_guests_and_reports_running(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with fake_api() as (api, port):
            api.assign(assignment("vm-1"), assignment("vm-2", generation=3))
            driver = FakeDriver(vcpus=8, memory_mib=4096, disk_gib=100, description="fake 1.0")
            config = agent_config(port, tmp_path / "agent")
            async with running_agent(config, driver) as agent:
                await eventually(lambda: api.reported("vm-1", Instance.STATE_RUNNING), "vm-1")
                await eventually(lambda: api.reported("vm-2", Instance.STATE_RUNNING), "vm-2")
                assert guests(driver) == {"vm-1": GuestState.RUNNING, "vm-2": GuestState.RUNNING}
                assert api.reported("vm-2", Instance.STATE_RUNNING, observed_generation=3)
                # Registration with the driver's capacity, rack and address.
                (registration,) = api.registrations
                assert registration.host.name == HOST
                assert registration.host.rack == "racks/r1"
                assert registration.host.address == "192.0.2.10"
                assert registration.host.capacity == tpb.HostCapacity(
                    vcpus=8, memory_mib=4096, disk_gib=100
                )
                assert registration.hypervisor_description == "fake 1.0"
                assert agent.registered.is_set()
                # One shared, verified download into the cache.
                assert api.downloads == [IMAGE]
                cached = tmp_path / "agent" / "images" / f"{IMAGE_SHA}.raw"
                assert cached.read_bytes() == IMAGE_DATA
                assert sorted(p.name for p in cached.parent.iterdir()) == [cached.name]
                # Heartbeats count the running guests.
                await eventually(
                    lambda: api.heartbeats and api.heartbeats[-1].running_instances == 2,
                    "a heartbeat with 2 running instances",
                )
                # The console reaches the API.
                await eventually(
                    lambda: bytes(api.console.get("vm-1", b"")).startswith(b"KUMO_BOOT_OK\n"),
                    "console output",
                )
                assert bytes(api.console["vm-1"]) == driver.read_console("vm-1")
            # The agent's exit leaves the guests running.
            assert guests(driver) == {"vm-1": GuestState.RUNNING, "vm-2": GuestState.RUNNING}

    asyncio.run(scenario())


def test_power_intent_changes_stop_suspend_and_start(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with fake_api() as (api, port):
            api.assign(assignment("vm-1"))
            driver = FakeDriver()
            async with running_agent(agent_config(port, tmp_path), driver):
                await eventually(lambda: api.reported("vm-1", Instance.STATE_RUNNING), "running")

                api.assign(
                    assignment("vm-1", generation=2, power_intent=Instance.POWER_INTENT_STOPPED)
                )
                await eventually(
                    lambda: api.reported("vm-1", Instance.STATE_STOPPED, observed_generation=2),
                    "stopped",
                )
                assert driver.state("vm-1") is GuestState.SHUTOFF

                api.assign(
                    assignment("vm-1", generation=3, power_intent=Instance.POWER_INTENT_SUSPENDED)
                )
                await eventually(
                    lambda: api.reported("vm-1", Instance.STATE_SUSPENDED, observed_generation=3),
                    "suspended",
                )
                assert driver.state("vm-1") is GuestState.PAUSED

                api.assign(
                    assignment("vm-1", generation=4, power_intent=Instance.POWER_INTENT_RUNNING)
                )
                await eventually(
                    lambda: api.reported("vm-1", Instance.STATE_RUNNING, observed_generation=4),
                    "running again",
                )
                assert driver.state("vm-1") is GuestState.RUNNING

    asyncio.run(scenario())


class TimedStops(FakeDriver):
    """Records the clean-shutdown time each stop was given."""

    def __init__(self) -> None:
        super().__init__()
        self.stop_timeouts: list[float] = []

    def stop(self, uid: str, timeout_seconds: float = 60.0) -> None:
        self.stop_timeouts.append(timeout_seconds)
        super().stop(uid, timeout_seconds)


def test_stop_uses_the_assignments_timeout_else_the_agents(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with fake_api() as (api, port):
            api.assign(assignment("vm-1"))
            driver = TimedStops()
            async with running_agent(agent_config(port, tmp_path), driver):
                await eventually(lambda: api.reported("vm-1", Instance.STATE_RUNNING), "running")
                stopped = Instance.POWER_INTENT_STOPPED
                api.assign(
                    assignment("vm-1", generation=2, power_intent=stopped, stop_timeout_seconds=7)
                )
                await eventually(
                    lambda: api.reported("vm-1", Instance.STATE_STOPPED, observed_generation=2),
                    "stopped",
                )
                api.assign(assignment("vm-1", generation=3))
                await eventually(
                    lambda: api.reported("vm-1", Instance.STATE_RUNNING, observed_generation=3),
                    "running",
                )
                api.assign(assignment("vm-1", generation=4, power_intent=stopped))
                await eventually(
                    lambda: api.reported("vm-1", Instance.STATE_STOPPED, observed_generation=4),
                    "stopped again",
                )
        assert driver.stop_timeouts[0] == 7
        assert driver.stop_timeouts[1] != 7  # 0: the agent's own default

    asyncio.run(scenario())


def test_deleted_assignment_destroys_and_reports_removed(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with fake_api() as (api, port):
            api.assign(assignment("vm-1"), assignment("vm-2"))
            driver = FakeDriver()
            async with running_agent(agent_config(port, tmp_path), driver) as agent:
                await eventually(lambda: len(guests(driver)) == 2, "two guests")
                api.assign(assignment("vm-1", generation=2, deleted=True))
                # (The agent forgets the assignment once the API has answered the report.)
                await eventually(
                    lambda: api.removed("vm-1") and "vm-1" not in agent.reconciler.desired,
                    "a removed report, the assignment forgotten",
                )
                assert guests(driver) == {"vm-2": GuestState.RUNNING}
                assert "vm-1" not in api.assignments
                state = (tmp_path / "state.json").read_text()
                assert "vm-1" not in state and "vm-2" in state

    asyncio.run(scenario())


def test_guest_missing_from_full_resync_is_destroyed_only_after_one(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with fake_api() as (api, port):
            driver = FakeDriver()
            image = tmp_path / "stray.raw"
            image.write_bytes(IMAGE_DATA)
            driver.spawn(
                GuestSpec(
                    uid="stray",
                    name="stray",
                    hostname="stray",
                    vcpus=1,
                    memory_mib=64,
                    disk_gib=1,
                    image_path=image,
                    image_format="raw",
                )
            )
            api.assign(assignment("vm-1"))
            api.release_watch.clear()  # hold the first message back
            async with running_agent(agent_config(port, tmp_path / "agent"), driver) as agent:
                await eventually(lambda: api.watch_connections == 1, "a watch stream")
                count = len(api.heartbeats)
                await eventually(lambda: len(api.heartbeats) >= count + 3, "heartbeats")
                # No full resync yet: the agent does not know the stray is unwanted.
                assert "stray" in guests(driver)
                assert not agent.reconciler.synced

                api.release_watch.set()
                await eventually(lambda: "stray" not in guests(driver), "the stray destroyed")
                await eventually(
                    lambda: api.removed("stray"),
                    "a removed report for the stray",
                )
                await eventually(lambda: api.reported("vm-1", Instance.STATE_RUNNING), "vm-1")
                assert guests(driver) == {"vm-1": GuestState.RUNNING}

                # A later full resync without vm-1 (and no deleted flag) removes it too.
                del api.assignments["vm-1"]
                api.assign(full=True)
                await eventually(lambda: not guests(driver), "vm-1 destroyed")

    asyncio.run(scenario())


def test_reboot_serial_reboots_once_even_across_agent_restarts(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with fake_api() as (api, port):
            api.assign(assignment("vm-1"))
            driver = FakeDriver()
            config = agent_config(port, tmp_path)
            async with running_agent(config, driver):
                await eventually(lambda: api.reported("vm-1", Instance.STATE_RUNNING), "running")
                assert boots(driver, "vm-1") == 1

                api.assign(assignment("vm-1", generation=2, reboot_serial=1, reboot_hard=True))
                await eventually(
                    lambda: api.reported("vm-1", Instance.STATE_RUNNING, observed_reboot_serial=1),
                    "the reboot reported",
                )
                assert boots(driver, "vm-1") == 2
                assert any(r.state == Instance.STATE_REBOOTING for r in api.reports)
                # The same assignment again (a full resync) does not reboot again.
                api.assign(full=True)
                connections = api.watch_connections
            assert boots(driver, "vm-1") == 2

            # A new agent on the same state dir and hypervisor: no second reboot.
            before = len(api.reports)
            async with running_agent(config, driver) as agent:
                await eventually(lambda: api.watch_connections > connections, "reconnected")
                await eventually(
                    lambda: any(
                        r.instance_uid == "vm-1" and r.observed_reboot_serial == 1
                        for r in api.reports[before:]
                    ),
                    "a report from the new agent",
                )
                await eventually(lambda: not agent.reconciler.busy, "an idle reconciler")
                assert boots(driver, "vm-1") == 2
                assert api.reported("vm-1", Instance.STATE_RUNNING, observed_reboot_serial=1)
                # Console: the new agent probes and sends nothing twice.
                await eventually(
                    lambda: bytes(api.console.get("vm-1", b"")) == driver.read_console("vm-1"),
                    "the whole console at the API",
                )

                # The next reboot serial reboots once more (soft).
                api.assign(assignment("vm-1", generation=3, reboot_serial=2))
                await eventually(
                    lambda: api.reported("vm-1", Instance.STATE_RUNNING, observed_reboot_serial=2),
                    "the second reboot",
                )
                assert boots(driver, "vm-1") == 3

    asyncio.run(scenario())


def test_rebuild_serial_rebuilds_once_with_the_new_image(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with fake_api() as (api, port):
            api.assign(assignment("vm-1"), assignment("vm-2"))
            driver = FakeDriver()
            async with running_agent(agent_config(port, tmp_path), driver) as agent:
                await eventually(lambda: api.reported("vm-1", Instance.STATE_RUNNING), "vm-1")
                await eventually(lambda: api.reported("vm-2", Instance.STATE_RUNNING), "vm-2")
                api.assign(
                    assignment(
                        "vm-1",
                        generation=2,
                        rebuild_serial=1,
                        image=IMAGE2,
                        image_sha256=IMAGE2_SHA,
                    )
                )
                await eventually(
                    lambda: api.reported("vm-1", Instance.STATE_RUNNING, observed_rebuild_serial=1),
                    "the rebuild reported",
                )
                assert boots(driver, "vm-1") == 2
                assert any(
                    r.state == Instance.STATE_PROVISIONING and r.message == "rebuilding"
                    for r in api.reports
                )
                assert api.downloads == [IMAGE, IMAGE2]
                assert (tmp_path / "images" / f"{IMAGE2_SHA}.raw").read_bytes() == IMAGE2_DATA

                # A stopped guest is rebuilt and stays stopped.
                api.assign(
                    assignment("vm-2", generation=2, power_intent=Instance.POWER_INTENT_STOPPED)
                )
                await eventually(lambda: api.reported("vm-2", Instance.STATE_STOPPED), "stopped")
                api.assign(
                    assignment(
                        "vm-2",
                        generation=3,
                        rebuild_serial=4,
                        power_intent=Instance.POWER_INTENT_STOPPED,
                    )
                )
                await eventually(
                    lambda: api.reported("vm-2", Instance.STATE_STOPPED, observed_rebuild_serial=4),
                    "the stopped rebuild reported",
                )
                assert driver.state("vm-2") is GuestState.SHUTOFF
                await eventually(lambda: not agent.reconciler.busy, "an idle reconciler")
                assert boots(driver, "vm-1") == 2 and boots(driver, "vm-2") == 1

    asyncio.run(scenario())


def test_periodic_pass_restarts_a_crashed_guest_and_reports_only_changes(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with fake_api() as (api, port):
            api.assign(assignment("vm-1"))
            driver = FakeDriver()
            config = agent_config(port, tmp_path, resync_interval_seconds=0.05)
            async with running_agent(config, driver) as agent:
                await eventually(lambda: api.reported("vm-1", Instance.STATE_RUNNING), "running")
                # Unchanged passes report nothing new.
                passes = agent.reconciler.full_passes
                await eventually(lambda: agent.reconciler.full_passes >= passes + 3, "passes")
                await eventually(lambda: not agent.reconciler.busy, "an idle reconciler")
                count = len(api.reports)
                passes = agent.reconciler.full_passes
                await eventually(lambda: agent.reconciler.full_passes >= passes + 3, "passes")
                assert len(api.reports) == count
                # The guest dies on its own: the next pass starts it again.
                driver.crash("vm-1")
                await eventually(lambda: boots(driver, "vm-1") == 2, "a restart")
                await eventually(lambda: api.reported("vm-1", Instance.STATE_RUNNING), "running")
                assert driver.state("vm-1") is GuestState.RUNNING

    asyncio.run(scenario())


def test_driver_error_is_reported_then_retried(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with fake_api() as (api, port):
            driver = FakeDriver()
            driver.fail_next("spawn", DriverError(reason="no space left for disks"))
            api.assign(assignment("vm-1"))
            async with running_agent(agent_config(port, tmp_path), driver):
                await eventually(
                    lambda: any(
                        r.state == Instance.STATE_ERROR
                        and r.message == "driver error: no space left for disks"
                        and r.observed_generation == 1
                        for r in api.reports
                    ),
                    "an ERROR report with the driver's message",
                )
                # The agent retries on its own (backoff), and the spawn then succeeds.
                await eventually(lambda: api.reported("vm-1", Instance.STATE_RUNNING), "running")
                assert api.reported("vm-1", Instance.STATE_RUNNING, message="")

                # A failing power action leaves the guest as it is and says why.
                driver.fail_next("stop", DriverError(reason="qemu hung"))
                api.assign(
                    assignment("vm-1", generation=2, power_intent=Instance.POWER_INTENT_STOPPED)
                )
                await eventually(
                    lambda: any(r.message == "driver error: qemu hung" for r in api.reports),
                    "the stop failure",
                )
                await eventually(lambda: api.reported("vm-1", Instance.STATE_STOPPED), "stopped")

    asyncio.run(scenario())


def test_stream_disconnect_reconnects_and_resyncs(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with fake_api() as (api, port):
            api.assign(assignment("vm-1"), assignment("vm-3"))
            driver = FakeDriver()
            async with running_agent(agent_config(port, tmp_path), driver) as agent:
                await eventually(lambda: api.reported("vm-1", Instance.STATE_RUNNING), "vm-1")
                await eventually(lambda: api.reported("vm-3", Instance.STATE_RUNNING), "vm-3")
                # Later full resyncs on the same stream report only what changed.
                api.assign(full=True)
                passes = agent.reconciler.full_passes
                await eventually(lambda: agent.reconciler.full_passes > passes, "a pass")
                await eventually(lambda: not agent.reconciler.busy, "an idle reconciler")
                before = len(api.reports)
                api.release_watch.clear()
                api.drop_streams()
                await eventually(lambda: api.watch_connections == 2, "a reconnect")
                # Changes made while the agent was away arrive with the resync.
                api.assignments["vm-2"] = assignment("vm-2")
                api.assignments["vm-1"] = assignment(
                    "vm-1", generation=2, power_intent=Instance.POWER_INTENT_STOPPED
                )
                api.release_watch.set()
                await eventually(lambda: api.reported("vm-2", Instance.STATE_RUNNING), "vm-2")
                await eventually(lambda: api.reported("vm-1", Instance.STATE_STOPPED), "vm-1")
                assert agent.watch_connections == 2
                # The first resync after a reconnect reports everything, unchanged vm-3 too.
                await eventually(
                    lambda: any(r.instance_uid == "vm-3" for r in api.reports[before:]),
                    "vm-3 reported again",
                )
                assert api.reported("vm-3", Instance.STATE_RUNNING, observed_generation=1)

    asyncio.run(scenario())


def test_image_checksum_mismatch_reports_error_and_spawns_nothing(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with fake_api() as (api, port):
            api.assign(assignment("vm-1", image=BAD_IMAGE))
            driver = FakeDriver()
            async with running_agent(agent_config(port, tmp_path), driver):
                report = await eventually(
                    lambda: api.reported("vm-1", Instance.STATE_ERROR), "an ERROR report"
                )
                assert "failed verification" in report.message
                assert IMAGE_SHA in report.message
                assert guests(driver) == {}
                images = tmp_path / "images"
                assert not images.exists() or list(images.iterdir()) == []
                # An unknown image is an error too, with the API's reason.
                api.assign(assignment("vm-2", image="projects/p1/images/missing"))
                report = await eventually(
                    lambda: api.reported("vm-2", Instance.STATE_ERROR), "an ERROR report for vm-2"
                )
                assert "NOT_FOUND" in report.message
                assert guests(driver) == {}

    asyncio.run(scenario())


def test_tokens_are_issued_renewed_and_reissued_after_rejection(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with fake_api() as (api, port):
            api.token_lifetime = 1  # renewed after 0.8 s (a fifth before expiry)
            driver = FakeDriver()
            async with running_agent(agent_config(port, tmp_path), driver):
                await eventually(lambda: api.heartbeats, "a heartbeat")
                await eventually(lambda: len(api.tokens) >= 2, "a renewed token", timeout=5)
                api.token_lifetime = 3600
                api.reject_next_token = True  # the server forgets the current token
                count = len(api.heartbeats)
                await eventually(lambda: len(api.heartbeats) > count, "heartbeats go on")

    asyncio.run(scenario())


def test_agent_waits_for_the_api_and_registers(tmp_path: Path) -> None:
    async def scenario() -> None:
        # Find a free port, then start the API there only after the agent has tried it.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        driver = FakeDriver()
        agent = Agent(agent_config(port, tmp_path), driver=driver)
        await agent.start()
        try:
            await eventually(lambda: agent.client.unavailable, "a refused connection")
            api = FakeApi()
            server = grpc.aio.server()
            agrpc.add_AgentServiceServicer_to_server(api, server)
            igrpc.add_IdentityServiceServicer_to_server(api, server)
            imgrpc.add_ImageServiceServicer_to_server(api, server)
            server.add_insecure_port(f"127.0.0.1:{port}")
            await server.start()
            try:
                await eventually(agent.registered.is_set, "registration")
                await eventually(lambda: api.watch_connections >= 1, "a watch stream")
            finally:
                # The agent (the client) first, then the server; bounded either way.
                await asyncio.wait_for(agent.stop(), 30)
                await asyncio.wait_for(server.stop(None), 30)
        finally:
            await asyncio.wait_for(agent.stop(), 30)

    asyncio.run(scenario())


# -- configuration ------------------------------------------------------------------------


def test_config_from_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(
        'api_endpoint = "10.0.0.1:7900"\nhost = "node7"\nrack = "r2"\n'
        '[credentials]\ntoken = "abc"\n[driver]\nname = "fake"\noptions = { vcpus = 4 }\n'
    )
    monkeypatch.setenv("KUMO_AGENT_HEARTBEAT_INTERVAL_SECONDS", "3")
    monkeypatch.setenv("KUMO_AGENT_DRIVER__NAME", "libvirt")
    config = load_agent_config(path, state_dir=tmp_path / "state")
    assert config.api_endpoint == "10.0.0.1:7900"
    assert config.host_name == "hosts/node7"
    assert config.rack_name == "racks/r2"
    assert config.credentials.token == "abc" and not config.credentials.uses_access_key
    assert config.driver.name == "libvirt"  # the environment wins
    assert config.driver.options == {"vcpus": 4}
    assert config.heartbeat_interval_seconds == 3.0
    assert config.state_file == tmp_path / "state" / "state.json"
    with pytest.raises(ValueError):
        load_agent_config(path, credentials={"token": "x", "access_key_id": "a"})
    with pytest.raises(ValueError):
        load_agent_config(path, host="Not A Host")
