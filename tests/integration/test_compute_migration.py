"""Live and cold migration, and resize onto another host, through the API and real agents,
on fake hypervisors (both databases).

The fake drivers migrate between each other in this process (drivers/compute/fake.py),
slowed down where a test must act while a migration runs. The same path with real libvirt
hosts and guests is tests/integration/test_compute_migration_libvirt.py.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import grpc
import pytest
from google.longrunning import operations_pb2

from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import resources_pb2 as cpb
from kumo.drivers.compute.base import GuestState
from kumo.drivers.compute.fake import FakeDriver
from kumo.drivers.errors import ImageError
from kumo.identity.v1 import identity_service_pb2 as iapi
from kumo.topology.v1 import resources_pb2 as tpb
from kumo.topology.v1 import topology_service_pb2 as tapi
from kumo.type.v1 import operation_metadata_pb2
from tests.conftest import database_url_for, make_config
from tests.integration.test_compute_lifecycle import Cell, compute, launch, wait
from tests.integration.test_compute_resources import make_flavor
from tests.support.agent import AgentThread
from tests.support.cloud import (
    ADMIN_PASSWORD,
    Stubs,
    Tenant,
    make_tenant,
    rpc_error,
    sign_in,
    unique,
)
from tests.support.images import upload_image
from tests.support.server import ServerThread
from tests.support.topology import make_site

S = cpb.Instance
MIB = 1024 * 1024


@pytest.fixture
def cell(api: ServerThread, admin: Stubs, tenant: Tenant) -> Iterator[Cell]:
    """Two hosts whose fake hypervisors migrate in 16 steps of 0.05 s (see `held`)."""
    site = make_site(admin)
    agents = {}
    try:
        for _ in range(2):
            host = unique("m")
            driver = FakeDriver(
                vcpus=2,
                memory_mib=1024,
                disk_gib=100,
                migration_steps=16,
                migration_step_seconds=0.05,
            )
            agents[host] = AgentThread(api.address, admin.token or "", host, site.rack, driver)
        yield Cell(
            site,
            agents,
            f"{tenant.name}/zones/{site.zone}",
            make_flavor(admin, 1, 256, 1),
            upload_image(tenant.stubs["member"], tenant.name),
        )
    finally:
        for agent in agents.values():
            agent.stop()


def allocated(admin: Stubs, host: str) -> int:
    name = host if host.startswith("hosts/") else f"hosts/{host}"
    return int(admin.topology.GetHost(tapi.GetHostRequest(name=name)).allocated.memory_mib)


def ram_in_use(admin: Stubs, project: str) -> int:
    quota = admin.identity.GetQuota(iapi.GetQuotaRequest(name=f"{project}/quota"))
    return next(int(q.in_use) for q in quota.limits if q.resource == "ram_mib")


def metadata(stubs: Stubs, name: str) -> operation_metadata_pb2.OperationMetadata:
    op = stubs.operations.GetOperation(operations_pb2.GetOperationRequest(name=name))
    meta = operation_metadata_pb2.OperationMetadata()
    op.metadata.Unpack(meta)
    return meta


def progress_of(meta: operation_metadata_pb2.OperationMetadata) -> cpb.MigrationProgress:
    progress = cpb.MigrationProgress()
    if meta.HasField("detail"):
        meta.detail.Unpack(progress)
    return progress


@contextlib.contextmanager
def held(cell: Cell, host: str) -> Iterator[None]:
    """Migrations from `host` pause after their first progress sample until the block ends
    (a cancel still ends them): what a test does mid-migration happens mid-migration."""
    cell.driver(host).hold_migrations(True)
    try:
        yield
    finally:
        cell.driver(host).hold_migrations(False)


def until_running(stubs: Stubs, name: str, timeout: float = 20) -> cpb.MigrationProgress:
    """The first progress the migration operation shows."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        progress = progress_of(metadata(stubs, name))
        if progress.memory_total_bytes:
            return progress
        time.sleep(0.05)
    raise AssertionError("the migration showed no progress")


def migrate(admin: Stubs, name: str, **fields: object) -> operations_pb2.Operation:
    op: operations_pb2.Operation = compute(admin).MigrateInstance(
        capi.MigrateInstanceRequest(name=name, **fields)  # type: ignore[arg-type]
    )
    return op


def test_live_migration_moves_the_guest_and_its_claim(
    cell: Cell, tenant: Tenant, admin: Stubs
) -> None:
    """Both hosts hold the claim while it runs, progress shows in the operation, and after
    it the instance, its guest and its claim are on the other host only."""
    instance = launch(tenant.stubs["member"], cell, "mover")
    source = instance.host.removeprefix("hosts/")
    (destination,) = set(cell.agents) - {source}
    with held(cell, source):
        op = migrate(admin, instance.name)
        progress = until_running(admin, op.name)
        assert progress.memory_total_bytes == 256 * MIB
        assert progress.source_host == instance.host
        assert progress.destination_host == f"hosts/{destination}"
        assert (allocated(admin, source), allocated(admin, destination)) == (256, 256)
        moving = compute(admin).GetInstance(capi.GetInstanceRequest(name=instance.name))
        assert (moving.host, moving.migration_host) == (instance.host, f"hosts/{destination}")
        code, _ = rpc_error(
            lambda: compute(tenant.stubs["member"]).StopInstance(
                capi.StopInstanceRequest(name=instance.name)
            )
        )
        assert code == grpc.StatusCode.FAILED_PRECONDITION

    done = wait(admin, op)
    assert not done.HasField("error"), done.error
    moved = cpb.Instance()
    done.response.Unpack(moved)
    assert (moved.host, moved.state, moved.migration_host) == (
        f"hosts/{destination}",
        S.STATE_RUNNING,
        "",
    )
    final = progress_of(metadata(admin, op.name))
    assert final.memory_processed_bytes == 256 * MIB and final.total_ms > 0
    assert (allocated(admin, source), allocated(admin, destination)) == (0, 256)
    assert cell.driver(source).list_guests() == {}
    assert cell.driver(destination).list_guests() == {instance.uid: GuestState.RUNNING}
    # the instance lives on: actions reach its new host, and it can migrate back
    wait(
        tenant.stubs["member"],
        compute(tenant.stubs["member"]).StopInstance(capi.StopInstanceRequest(name=instance.name)),
    )
    assert cell.driver(destination).state(instance.uid) == GuestState.SHUTOFF
    wait(
        tenant.stubs["member"],
        compute(tenant.stubs["member"]).StartInstance(
            capi.StartInstanceRequest(name=instance.name)
        ),
    )
    back = wait(admin, migrate(admin, instance.name, host=f"hosts/{source}"))
    assert not back.HasField("error"), back.error
    assert cell.driver(source).list_guests() == {instance.uid: GuestState.RUNNING}
    assert (allocated(admin, source), allocated(admin, destination)) == (256, 0)


def test_destination_failing_mid_way_leaves_the_guest_where_it_was(
    cell: Cell, tenant: Tenant, admin: Stubs
) -> None:
    """The destination's hypervisor goes away during the transfer: the operation fails
    with the reason, the guest runs on on the source, only the source holds a claim, and
    the destination cleans up once its hypervisor is back."""
    instance = launch(tenant.stubs["member"], cell, "stayer")
    source = instance.host.removeprefix("hosts/")
    (destination,) = set(cell.agents) - {source}
    with held(cell, source):
        op = migrate(admin, instance.name)
        until_running(admin, op.name)
        cell.driver(destination).set_available(False)
    try:
        done = wait(admin, op)
    finally:
        cell.driver(destination).set_available(True)
    assert done.error.code == grpc.StatusCode.ABORTED.value[0]
    assert "migration failed" in done.error.message
    assert "lost connection" in done.error.message
    after = compute(admin).GetInstance(capi.GetInstanceRequest(name=instance.name))
    assert (after.host, after.state) == (instance.host, S.STATE_RUNNING)
    assert cell.driver(source).list_guests() == {instance.uid: GuestState.RUNNING}
    assert (allocated(admin, source), allocated(admin, destination)) == (256, 0)
    deadline = time.monotonic() + 20
    while cell.driver(destination).incoming() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert cell.driver(destination).incoming() == []


def test_destination_that_cannot_prepare_fails_the_migration(
    cell: Cell, tenant: Tenant, admin: Stubs
) -> None:
    instance = launch(tenant.stubs["member"], cell, "unprepared")
    (destination,) = set(cell.agents) - {instance.host.removeprefix("hosts/")}
    cell.driver(destination).fail_next("prepare_incoming", ImageError(path="x", reason="broken"))
    done = wait(admin, migrate(admin, instance.name))
    assert "broken" in done.error.message
    assert allocated(admin, destination) == 0


def test_cancel_aborts_the_migration(cell: Cell, tenant: Tenant, admin: Stubs) -> None:
    instance = launch(tenant.stubs["member"], cell, "cancelled")
    source = instance.host.removeprefix("hosts/")
    (destination,) = set(cell.agents) - {source}
    with held(cell, source):
        op = migrate(admin, instance.name)
        until_running(admin, op.name)
        admin.operations.CancelOperation(operations_pb2.CancelOperationRequest(name=op.name))
        done = wait(admin, op)
    assert done.error.code == grpc.StatusCode.CANCELLED.value[0], done.error
    after = compute(admin).GetInstance(capi.GetInstanceRequest(name=instance.name))
    assert after.host == instance.host
    assert cell.driver(source).list_guests() == {instance.uid: GuestState.RUNNING}
    assert (allocated(admin, source), allocated(admin, destination)) == (256, 0)


def test_migrate_refusals(cell: Cell, tenant: Tenant, admin: Stubs) -> None:
    """Only cloud administrators migrate; RUNNING or SUSPENDED instances only; options in
    range; not to its own host; a full or unknown host is no valid host."""
    member = tenant.stubs["member"]
    instance = launch(member, cell, "picky")
    code, _ = rpc_error(lambda: migrate(member, instance.name))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    code, _ = rpc_error(lambda: migrate(admin, instance.name, host=instance.host))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    for options in (
        cpb.MigrationOptions(max_downtime_ms=20_000),
        cpb.MigrationOptions(bandwidth_mibps=-1),
        cpb.MigrationOptions(timeout_seconds=100_000),
    ):
        code, _ = rpc_error(lambda options=options: migrate(admin, instance.name, options=options))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
    code, status = rpc_error(lambda: migrate(admin, instance.name, host="hosts/nowhere"))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "no valid host" in str(status)
    code, _ = rpc_error(
        lambda: migrate(admin, instance.name, options=cpb.MigrationOptions(mode=99))  # type: ignore[arg-type]
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    wait(member, compute(member).StopInstance(capi.StopInstanceRequest(name=instance.name)))
    live = cpb.MigrationOptions(mode=cpb.MigrationOptions.MODE_LIVE)
    code, status = rpc_error(lambda: migrate(admin, instance.name, options=live))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "live migration" in str(status)
    assert allocated(admin, instance.host) == 256


def test_cold_migration_boots_the_guest_on_the_other_host(
    cell: Cell, tenant: Tenant, admin: Stubs
) -> None:
    """A running instance migrated cold is shut down, moved and started again there (a new
    boot); a stopped one moves by default cold and stays stopped; claims follow."""
    instance = launch(tenant.stubs["member"], cell, "cold")
    source = instance.host.removeprefix("hosts/")
    (destination,) = set(cell.agents) - {source}
    cold = cpb.MigrationOptions(mode=cpb.MigrationOptions.MODE_COLD)
    op = migrate(admin, instance.name, options=cold)
    assert (allocated(admin, source), allocated(admin, destination)) == (256, 256)
    done = wait(admin, op)
    assert not done.HasField("error"), done.error
    moved = cpb.Instance()
    done.response.Unpack(moved)
    assert (moved.host, moved.state) == (f"hosts/{destination}", S.STATE_RUNNING)
    assert cell.driver(source).list_guests() == {}
    assert cell.driver(destination).list_guests() == {instance.uid: GuestState.RUNNING}
    assert b"KUMO_BOOT_OK" in cell.driver(destination).read_console(instance.uid)
    assert (allocated(admin, source), allocated(admin, destination)) == (0, 256)

    member = tenant.stubs["member"]
    wait(member, compute(member).StopInstance(capi.StopInstanceRequest(name=instance.name)))
    back = wait(admin, migrate(admin, instance.name))  # stopped: cold by default
    assert not back.HasField("error"), back.error
    after = compute(member).GetInstance(capi.GetInstanceRequest(name=instance.name))
    assert (after.host, after.state) == (instance.host, S.STATE_STOPPED)
    assert cell.driver(source).list_guests() == {instance.uid: GuestState.SHUTOFF}
    assert (allocated(admin, source), allocated(admin, destination)) == (256, 0)


def test_resize_moves_to_another_host_when_its_own_is_full(
    cell: Cell, tenant: Tenant, admin: Stubs
) -> None:
    """No room for the growth on its host: the resize is a cold migration that takes the
    new flavor on arrival; revert moves it back to its old host (once that has room) with
    the old flavor. A move that fails leaves the flavor as it was."""
    busy, other = sorted(cell.agents)
    member = tenant.stubs["member"]
    instance = launch(admin, cell, "grower", requested_host=f"hosts/{busy}")
    launch(
        admin, cell, "filler", requested_host=f"hosts/{busy}", flavor=make_flavor(admin, 1, 512, 1)
    )
    bigger = make_flavor(admin, 1, 768, 2)
    ram_before = ram_in_use(admin, tenant.name)

    cell.driver(other).fail_next("prepare_incoming", ImageError(path="x", reason="broken"))
    failed = wait(
        member,
        compute(member).ResizeInstance(
            capi.ResizeInstanceRequest(name=instance.name, flavor=bigger)
        ),
    )
    assert "broken" in failed.error.message
    same = compute(member).GetInstance(capi.GetInstanceRequest(name=instance.name))
    assert (same.host, same.flavor, same.state) == (instance.host, cell.flavor, S.STATE_RUNNING)
    assert (allocated(admin, busy), allocated(admin, other)) == (768, 0)
    assert ram_in_use(admin, tenant.name) == ram_before  # the failed move refunded it

    op = compute(member).ResizeInstance(
        capi.ResizeInstanceRequest(name=instance.name, flavor=bigger)
    )
    done = wait(member, op)
    assert not done.HasField("error"), done.error
    resized = compute(member).GetInstance(capi.GetInstanceRequest(name=instance.name))
    assert (resized.host, resized.flavor) == (f"hosts/{other}", bigger)
    assert resized.state == S.STATE_RESIZED
    assert cell.driver(other).spec_of(instance.uid).memory_mib == 768
    assert cell.driver(other).state(instance.uid) == GuestState.RUNNING
    assert (allocated(admin, busy), allocated(admin, other)) == (512, 768)
    assert ram_in_use(admin, tenant.name) == ram_before + 512

    # Revert moves it back, as Nova does; refused while its old host has no room.
    blocker = launch(
        admin, cell, "blocker", requested_host=f"hosts/{busy}", flavor=make_flavor(admin, 1, 512, 1)
    )
    revert = capi.RevertResizeInstanceRequest(name=instance.name)
    ram_blocked = ram_in_use(admin, tenant.name)
    code, status = rpc_error(lambda: compute(member).RevertResizeInstance(revert))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert status is not None and "no valid host" in status.message
    still = compute(member).GetInstance(capi.GetInstanceRequest(name=instance.name))
    assert (still.host, still.flavor, still.state) == (f"hosts/{other}", bigger, S.STATE_RESIZED)
    assert ram_in_use(admin, tenant.name) == ram_blocked
    wait(admin, compute(admin).DeleteInstance(capi.DeleteInstanceRequest(name=blocker.name)))

    done = wait(member, compute(member).RevertResizeInstance(revert))
    assert not done.HasField("error"), done.error
    reverted = compute(member).GetInstance(capi.GetInstanceRequest(name=instance.name))
    assert (reverted.host, reverted.flavor, reverted.state) == (
        f"hosts/{busy}",
        cell.flavor,
        S.STATE_RUNNING,
    )
    assert cell.driver(busy).spec_of(instance.uid).memory_mib == 256
    assert cell.driver(busy).state(instance.uid) == GuestState.RUNNING
    assert instance.uid not in cell.driver(other).list_guests()
    assert (allocated(admin, busy), allocated(admin, other)) == (768, 0)
    assert ram_in_use(admin, tenant.name) == ram_before


def test_maintenance_mode_drains_the_host(cell: Cell, tenant: Tenant, admin: Stubs) -> None:
    """Three running guests leave a host put in maintenance (two migrations at a time),
    none stops; a stopped one moves cold; nothing new lands there until it leaves
    maintenance."""
    hosts = sorted(cell.agents)
    busy, other = hosts
    guests = [
        launch(admin, cell, f"g{index}", requested_host=f"hosts/{busy}") for index in range(4)
    ]
    wait(admin, compute(admin).StopInstance(capi.StopInstanceRequest(name=guests[3].name)))
    topology = admin.topology
    op = topology.EnterHostMaintenance(
        tapi.EnterHostMaintenanceRequest(name=f"hosts/{busy}", max_concurrent_migrations=2)
    )
    host = topology.GetHost(tapi.GetHostRequest(name=f"hosts/{busy}"))
    assert host.state == host.STATE_MAINTENANCE
    done = wait(admin, op)
    assert not done.HasField("error"), done.error
    expected = {
        **{g.uid: GuestState.RUNNING for g in guests[:3]},
        guests[3].uid: GuestState.SHUTOFF,  # moved cold, powered off on arrival
    }
    deadline = time.monotonic() + 10
    while cell.driver(other).list_guests() != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    assert cell.driver(other).list_guests() == expected
    assert cell.driver(busy).list_guests() == {}
    assert (allocated(admin, busy), allocated(admin, other)) == (0, 1024)
    refused = compute(admin).CreateInstance(
        capi.CreateInstanceRequest(
            parent=cell.parent,
            instance_id="blocked",
            instance=cpb.Instance(
                flavor=cell.flavor, image=cell.image, requested_host=f"hosts/{busy}"
            ),
        )
    )
    assert "no valid host" in wait(admin, refused).error.message
    left = topology.ExitHostMaintenance(tapi.ExitHostMaintenanceRequest(name=f"hosts/{busy}"))
    assert left.state == left.STATE_ENABLED
    assert launch(admin, cell, "welcome", requested_host=f"hosts/{busy}").host == f"hosts/{busy}"


def test_drain_that_cannot_move_fails(cell: Cell, tenant: Tenant, admin: Stubs) -> None:
    """With the only other host disabled there is nowhere to go: the drain fails saying so."""
    busy, other = sorted(cell.agents)
    launch(admin, cell, "stuck", requested_host=f"hosts/{busy}")
    admin.topology.DisableHost(tapi.DisableHostRequest(name=f"hosts/{other}", reason="test"))
    done = wait(
        admin,
        admin.topology.EnterHostMaintenance(tapi.EnterHostMaintenanceRequest(name=f"hosts/{busy}")),
    )
    assert "could not move every instance" in done.error.message
    assert "no valid host" in done.error.message
    code, _ = rpc_error(
        lambda: admin.topology.EnterHostMaintenance(
            tapi.EnterHostMaintenanceRequest(name=f"hosts/{busy}", max_concurrent_migrations=99)
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture(scope="module")
def quick_api(request: pytest.FixtureRequest) -> Iterator[ServerThread]:
    """An API (SQLite) that calls a host DOWN 5 s after its last heartbeat."""
    server = ServerThread(
        make_config(database_url_for("sqlite", request), topology={"heartbeat_timeout_seconds": 5})
    )
    try:
        yield server
    finally:
        server.stop()


def test_evacuation_rebuilds_on_another_host(quick_api: ServerThread) -> None:
    """An instance of a host that went DOWN is rebuilt elsewhere (stopped stays stopped);
    the old host removes its copy when it comes back; a live host is refused."""
    with grpc.insecure_channel(quick_api.address) as channel:
        admin = Stubs(channel, sign_in(channel, "admin", ADMIN_PASSWORD, "admin"))
        tenant = make_tenant(channel, admin, "e")
        site = make_site(admin)
        drivers = {unique("e"): FakeDriver(vcpus=2, memory_mib=1024) for _ in range(2)}
        agents = {
            host: AgentThread(quick_api.address, admin.token or "", host, site.rack, driver)
            for host, driver in drivers.items()
        }
        try:
            cell = Cell(
                site,
                agents,
                f"{tenant.name}/zones/{site.zone}",
                make_flavor(admin, 1, 256, 1),
                upload_image(tenant.stubs["member"], tenant.name),
            )
            dead, alive = sorted(drivers)
            running = launch(admin, cell, "running", requested_host=f"hosts/{dead}")
            stopped = launch(admin, cell, "stopped", requested_host=f"hosts/{dead}")
            wait(admin, compute(admin).StopInstance(capi.StopInstanceRequest(name=stopped.name)))
            code, _ = rpc_error(
                lambda: compute(admin).EvacuateInstance(
                    capi.EvacuateInstanceRequest(name=running.name)
                )
            )
            assert code == grpc.StatusCode.FAILED_PRECONDITION  # its host is up
            code, _ = rpc_error(
                lambda: compute(tenant.stubs["member"]).EvacuateInstance(
                    capi.EvacuateInstanceRequest(name=running.name)
                )
            )
            assert code == grpc.StatusCode.PERMISSION_DENIED

            agents[dead].stop()  # the host dies; its guests are still in its driver
            deadline = time.monotonic() + 30
            while (
                admin.topology.GetHost(tapi.GetHostRequest(name=f"hosts/{dead}")).state
                != tpb.Host.STATE_DOWN
            ):
                assert time.monotonic() < deadline, "the host never went DOWN"
                time.sleep(0.5)
            for instance, state in ((running, S.STATE_RUNNING), (stopped, S.STATE_STOPPED)):
                done = wait(
                    admin,
                    compute(admin).EvacuateInstance(
                        capi.EvacuateInstanceRequest(name=instance.name)
                    ),
                )
                assert not done.HasField("error"), done.error
                rebuilt = cpb.Instance()
                done.response.Unpack(rebuilt)
                assert (rebuilt.host, rebuilt.state) == (f"hosts/{alive}", state)
            assert set(drivers[alive].list_guests()) == {running.uid, stopped.uid}
            assert (allocated(admin, dead), allocated(admin, alive)) == (0, 512)

            # The old host comes back and removes what it ran before.
            agents[dead] = AgentThread(
                quick_api.address, admin.token or "", dead, site.rack, drivers[dead]
            )
            deadline = time.monotonic() + 30
            while drivers[dead].list_guests():
                assert time.monotonic() < deadline, drivers[dead].list_guests()
                time.sleep(0.2)
        finally:
            for agent in agents.values():
                agent.stop()
