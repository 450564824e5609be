"""Live migration of real guests between two libvirt hosts, through the whole stack.

Two "hosts" from the `libvirt_hosts` fixture (each a libvirtd in its own network
namespace), one real kumo-agent each, the tiny image (it prints `tick N` every second).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import libvirt
import pytest
from google.longrunning import operations_pb2

from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import compute_service_pb2_grpc as crpc
from kumo.compute.v1 import resources_pb2 as cpb
from kumo.drivers.compute.libvirt import LibvirtDriver
from kumo.topology.v1 import topology_service_pb2 as tapi
from tests.integration.test_compute_lifecycle import console_until
from tests.integration.test_compute_migration import (
    allocated,
    metadata,
    progress_of,
    until_running,
)
from tests.integration.test_compute_resources import make_flavor
from tests.support.agent import AgentThread
from tests.support.cloud import Stubs, Tenant, unique
from tests.support.images import upload_image
from tests.support.multihost import Host, HostCluster
from tests.support.server import ServerThread
from tests.support.topology import make_site

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("api", ["sqlite"], indirect=True)]
TICK = re.compile(r"tick (\d+)")
S = cpb.Instance


@dataclass
class Cluster:
    hosts: dict[str, Host]  # by Kumo host id
    parent: str
    flavor: str
    image: str


@pytest.fixture
def cluster(
    api: ServerThread,
    admin: Stubs,
    tenant: Tenant,
    libvirt_hosts: HostCluster,
    guest_image: Path,
) -> Iterator[Cluster]:
    site = make_site(admin)
    agents = []
    hosts = {}
    try:
        for host in libvirt_hosts.hosts:
            name = unique(host.name)
            driver = LibvirtDriver(
                uri=host.uri, instances_dir=host.instances_dir, migration_uri=host.migration_uri
            )
            agents.append(AgentThread(api.address, admin.token or "", name, site.rack, driver))
            hosts[name] = host
        member = tenant.stubs["member"]
        yield Cluster(
            hosts,
            f"{tenant.name}/zones/{site.zone}",
            make_flavor(admin, 1, 128, 1),
            upload_image(member, tenant.name, guest_image.read_bytes(), min_ram_mib=128),
        )
    finally:
        for agent in agents:
            agent.stop()
        for host in libvirt_hosts.hosts:
            host.daemon.destroy_all_domains()


def domains(host: Host) -> dict[str, bool]:
    """The host's domains: name → active."""
    connection = libvirt.open(host.uri)
    try:
        return {d.name(): bool(d.isActive()) for d in connection.listAllDomains()}
    finally:
        connection.close()


def boot(stubs: Stubs, cluster: Cluster, instance_id: str, host: str = "") -> cpb.Instance:
    service = crpc.ComputeServiceStub(stubs.channel)
    op = service.CreateInstance(
        capi.CreateInstanceRequest(
            parent=cluster.parent,
            instance_id=instance_id,
            instance=cpb.Instance(flavor=cluster.flavor, image=cluster.image, requested_host=host),
        )
    )
    done = stubs.operations.WaitOperation(
        operations_pb2.WaitOperationRequest(name=op.name, timeout={"seconds": 180})
    )
    assert done.done and not done.HasField("error"), done
    instance = cpb.Instance()
    done.response.Unpack(instance)
    console_until(service, instance.name, "tick 3", timeout=120)
    return instance


def last_tick(stubs: Stubs, name: str) -> int:
    service = crpc.ComputeServiceStub(stubs.channel)
    contents = service.GetSerialPortOutput(capi.GetSerialPortOutputRequest(name=name)).contents
    ticks = [int(t) for t in TICK.findall(contents)]
    return ticks[-1] if ticks else 0


def wait_long(stubs: Stubs, op: operations_pb2.Operation) -> operations_pb2.Operation:
    done: operations_pb2.Operation = stubs.operations.WaitOperation(
        operations_pb2.WaitOperationRequest(name=op.name, timeout={"seconds": 300})
    )
    assert done.done, done
    return done


def test_running_guest_keeps_counting_across_a_live_migration(
    cluster: Cluster, tenant: Tenant, admin: Stubs
) -> None:
    member = tenant.stubs["member"]
    instance = boot(member, cluster, "counter")
    source = instance.host.removeprefix("hosts/")
    (destination,) = set(cluster.hosts) - {source}
    before = last_tick(member, instance.name)
    op = crpc.ComputeServiceStub(admin.channel).MigrateInstance(
        capi.MigrateInstanceRequest(name=instance.name)
    )
    done = wait_long(admin, op)
    assert not done.HasField("error"), done.error
    moved = cpb.Instance()
    done.response.Unpack(moved)
    assert (moved.host, moved.state) == (f"hosts/{destination}", S.STATE_RUNNING)
    progress = progress_of(metadata(admin, op.name))
    print(f"downtime {progress.downtime_ms:.0f} ms, total {progress.total_ms:.0f} ms")
    assert progress.total_ms > 0 and progress.memory_processed_bytes > 0
    domain = f"kumo-{instance.uid}"
    assert domain not in domains(cluster.hosts[source])
    assert domains(cluster.hosts[destination]).get(domain) is True
    assert (allocated(admin, source), allocated(admin, destination)) == (0, 128)
    # The counter goes on from where it was (no reboot), as read through the API.
    deadline = time.monotonic() + 60
    while last_tick(member, instance.name) < before + 5 and time.monotonic() < deadline:
        time.sleep(0.5)
    service = crpc.ComputeServiceStub(member.channel)
    contents = service.GetSerialPortOutput(
        capi.GetSerialPortOutputRequest(name=instance.name)
    ).contents
    ticks = [int(t) for t in TICK.findall(contents)]
    assert ticks[-1] >= before + 5, contents[-400:]
    assert contents.count("KUMO_BOOT_OK") == 1
    assert ticks == sorted(ticks)


def test_destination_dying_mid_migration_leaves_the_guest_running(
    cluster: Cluster, tenant: Tenant, admin: Stubs
) -> None:
    member = tenant.stubs["member"]
    instance = boot(member, cluster, "survivor")
    source = instance.host.removeprefix("hosts/")
    (destination,) = set(cluster.hosts) - {source}
    op = crpc.ComputeServiceStub(admin.channel).MigrateInstance(
        capi.MigrateInstanceRequest(
            name=instance.name, options=cpb.MigrationOptions(bandwidth_mibps=1)
        )
    )
    until_running(admin, op.name, timeout=120)
    cluster.hosts[destination].daemon.kill()
    try:
        done = wait_long(admin, op)
    finally:
        cluster.hosts[destination].daemon.start()
    assert done.error.code == grpc.StatusCode.ABORTED.value[0], done.error
    assert "migration failed" in done.error.message
    after = crpc.ComputeServiceStub(member.channel).GetInstance(
        capi.GetInstanceRequest(name=instance.name)
    )
    assert (after.host, after.state) == (instance.host, S.STATE_RUNNING)
    assert domains(cluster.hosts[source]).get(f"kumo-{instance.uid}") is True
    before = last_tick(member, instance.name)
    deadline = time.monotonic() + 30
    while last_tick(member, instance.name) < before + 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert last_tick(member, instance.name) >= before + 2
    assert (allocated(admin, source), allocated(admin, destination)) == (128, 0)
    # The destination's agent removes what it prepared once its hypervisor is back.
    leftovers = cluster.hosts[destination].instances_dir / instance.uid
    deadline = time.monotonic() + 60
    while leftovers.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not leftovers.exists()
    assert f"kumo-{instance.uid}" not in domains(cluster.hosts[destination])


def test_maintenance_mode_empties_a_host_of_three_running_guests(
    cluster: Cluster, tenant: Tenant, admin: Stubs
) -> None:
    """Every guest moves while it runs: one boot each, its counter going on."""
    busy, other = sorted(cluster.hosts)
    guests = [boot(admin, cluster, f"busy-{i}", host=f"hosts/{busy}") for i in range(3)]
    before = {g.name: last_tick(admin, g.name) for g in guests}
    op = admin.topology.EnterHostMaintenance(
        tapi.EnterHostMaintenanceRequest(name=f"hosts/{busy}", max_concurrent_migrations=2)
    )
    done = wait_long(admin, op)
    assert not done.HasField("error"), done.error
    service = crpc.ComputeServiceStub(admin.channel)
    for guest in guests:
        moved = service.GetInstance(capi.GetInstanceRequest(name=guest.name))
        assert (moved.host, moved.state) == (f"hosts/{other}", S.STATE_RUNNING)
    assert not [d for d in domains(cluster.hosts[busy]) if d.startswith("kumo-")]
    assert all(domains(cluster.hosts[other])[f"kumo-{g.uid}"] for g in guests)
    deadline = time.monotonic() + 60
    for guest in guests:
        while last_tick(admin, guest.name) < before[guest.name] + 3:
            assert time.monotonic() < deadline, f"{guest.name} stopped counting"
            time.sleep(0.5)
        contents = service.GetSerialPortOutput(
            capi.GetSerialPortOutputRequest(name=guest.name)
        ).contents
        assert contents.count("KUMO_BOOT_OK") == 1, f"{guest.name} restarted"
    assert (allocated(admin, busy), allocated(admin, other)) == (0, 384)
    admin.topology.ExitHostMaintenance(tapi.ExitHostMaintenanceRequest(name=f"hosts/{busy}"))


def test_resize_onto_another_host_moves_the_disk_and_boots_there(
    cluster: Cluster,
    tenant: Tenant,
    admin: Stubs,
    api: ServerThread,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With resizing in place forbidden, a resize is a cold migration: the running guest
    shuts down, its disk is copied to the other host, and it boots there (a second boot in
    its console stream) with the new memory and a grown disk; confirm frees the old size."""
    monkeypatch.setattr(api.config.scheduler, "allow_resize_to_same_host", False)
    member = tenant.stubs["member"]
    instance = boot(member, cluster, "mover-and-grower")
    source = instance.host.removeprefix("hosts/")
    (destination,) = set(cluster.hosts) - {source}
    bigger = make_flavor(admin, 1, 192, 2)
    service = crpc.ComputeServiceStub(member.channel)
    op = service.ResizeInstance(capi.ResizeInstanceRequest(name=instance.name, flavor=bigger))
    done = wait_long(member, op)
    assert not done.HasField("error"), done.error
    moved = service.GetInstance(capi.GetInstanceRequest(name=instance.name))
    assert (moved.host, moved.state) == (f"hosts/{destination}", S.STATE_RESIZED)
    domain = f"kumo-{instance.uid}"
    assert domain not in domains(cluster.hosts[source])
    assert not (cluster.hosts[source].instances_dir / instance.uid).exists()
    connection = libvirt.open(cluster.hosts[destination].uri)
    try:
        dom = connection.lookupByName(domain)
        assert dom.isActive() and dom.info()[1] == 192 * 1024  # KiB
        assert dom.blockInfo("vda")[0] == 2 * 1024**3  # the disk grew on arrival
    finally:
        connection.close()
    contents = console_until(service, instance.name, "KUMO_BOOT_OK", count=2, timeout=120)
    assert contents.contents.count("KUMO_BOOT_OK") == 2
    wait_long(
        member,
        service.ConfirmResizeInstance(capi.ConfirmResizeInstanceRequest(name=instance.name)),
    )
    assert (allocated(admin, source), allocated(admin, destination)) == (0, 192)
