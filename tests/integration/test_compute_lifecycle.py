"""Instances through the API, a real kumo-agent and the fake compute driver.

The fake driver stands in for the hypervisor only to exercise the API, the
scheduler and the agent protocol quickly on both databases; the same path with
real libvirt guests is tests/integration/test_compute_libvirt.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import grpc
import pytest
from google.longrunning import operations_pb2
from google.protobuf import field_mask_pb2

from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import compute_service_pb2_grpc as crpc
from kumo.compute.v1 import resources_pb2 as cpb
from kumo.drivers.compute.fake import FakeDriver
from kumo.drivers.errors import DriverError
from kumo.identity.v1 import identity_service_pb2 as iapi
from kumo.image.v1 import image_service_pb2 as imapi
from kumo.image.v1 import image_service_pb2_grpc as imrpc
from kumo.image.v1 import resources_pb2 as ipb_image
from kumo.topology.v1 import topology_service_pb2 as tapi
from kumo.type.v1 import operation_metadata_pb2
from tests.integration.test_compute_resources import make_flavor
from tests.support.agent import AgentThread
from tests.support.cloud import Stubs, Tenant, rpc_error, set_quota, unique
from tests.support.images import upload_image
from tests.support.server import ServerThread
from tests.support.topology import Site, make_site

S = cpb.Instance


@dataclass
class Cell:
    """A site with hosts run by real agents on fake drivers, and what instances need."""

    site: Site
    agents: dict[str, AgentThread]
    parent: str
    flavor: str
    image: str

    def driver(self, host: str) -> FakeDriver:
        driver = self.agents[host].driver
        assert isinstance(driver, FakeDriver)
        return driver


@pytest.fixture
def cell(api: ServerThread, admin: Stubs, tenant: Tenant) -> Iterator[Cell]:
    """Two hosts (1 GiB, 2 vCPUs each) in a fresh site; a 256 MiB flavor; a small image."""
    site = make_site(admin)
    agents = {}
    try:
        for _ in range(2):
            host = unique("h")
            agents[host] = AgentThread(
                api.address,
                admin.token or "",
                host,
                site.rack,
                FakeDriver(vcpus=2, memory_mib=1024, disk_gib=100),
            )
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


def compute(stubs: Stubs) -> crpc.ComputeServiceStub:
    return crpc.ComputeServiceStub(stubs.channel)


def wait(stubs: Stubs, operation: operations_pb2.Operation) -> operations_pb2.Operation:
    done: operations_pb2.Operation = stubs.operations.WaitOperation(
        operations_pb2.WaitOperationRequest(name=operation.name)
    )
    assert done.done, done
    return done


def console_until(
    service: crpc.ComputeServiceStub, name: str, text: str, count: int = 1, timeout: float = 30
) -> capi.GetSerialPortOutputResponse:
    """The serial output once it holds `text` `count` times (the agent ships it every second)."""
    deadline = time.monotonic() + timeout
    while True:
        out = service.GetSerialPortOutput(capi.GetSerialPortOutputRequest(name=name))
        if out.contents.count(text) >= count or time.monotonic() > deadline:
            return out
        time.sleep(0.2)


def launch(stubs: Stubs, cell: Cell, instance_id: str, **spec: Any) -> cpb.Instance:
    op = compute(stubs).CreateInstance(
        capi.CreateInstanceRequest(
            parent=cell.parent,
            instance_id=instance_id,
            instance=cpb.Instance(**{"flavor": cell.flavor, "image": cell.image, **spec}),
        )
    )
    accepted = operation_metadata_pb2.OperationMetadata()
    op.metadata.Unpack(accepted)
    done = wait(stubs, op)
    assert not done.HasField("error"), done.error
    instance = cpb.Instance()
    done.response.Unpack(instance)
    # The uid is known when the create is accepted, before the build.
    assert accepted.target_uid == instance.uid != ""
    return instance


def test_rebuild_changes_name_labels_keys_and_user_data(cell: Cell, tenant: Tenant) -> None:
    """A rebuild may change what Nova's does (name, metadata, key pair, user data): the
    instance shows them and the guest is made again with the new keys and user data; a bad
    change is refused with nothing changed."""
    member = tenant.stubs["member"]
    service = compute(member)
    key = service.CreateKeyPair(
        capi.CreateKeyPairRequest(parent=tenant.name, key_pair_id="rekey", key_pair=cpb.KeyPair())
    )
    instance = launch(member, cell, "remade", labels={"tier": "web"}, user_data=b"first")
    host = instance.host.removeprefix("hosts/")
    assert cell.driver(host).spec_of(instance.uid).ssh_authorized_keys == ()

    def rebuild(paths: list[str], **changes: Any) -> operations_pb2.Operation:
        return service.RebuildInstance(
            capi.RebuildInstanceRequest(
                name=instance.name,
                instance=cpb.Instance(**changes),
                update_mask=field_mask_pb2.FieldMask(paths=paths),
            )
        )

    for paths, changes in (
        (["flavor"], {"flavor": "flavors/other"}),  # not something a rebuild changes
        (["hostname"], {"hostname": "Not_A_Label"}),
        (["key_pairs"], {"key_pairs": [f"{tenant.name}/keyPairs/nope"]}),
        (["user_data"], {"user_data": b"x" * ((64 << 10) + 1)}),
    ):
        code, _ = rpc_error(partial(rebuild, paths, **changes))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, paths
    unchanged = service.GetInstance(capi.GetInstanceRequest(name=instance.name))
    assert unchanged.generation == instance.generation and unchanged.user_data == b"first"

    done = wait(
        member,
        rebuild(
            ["display_name", "labels", "key_pairs", "user_data", "hostname"],
            display_name="Remade",
            labels={"role": "db"},
            key_pairs=[key.name],
            user_data=b"second",
            hostname="remade",
        ),
    )
    assert not done.HasField("error"), done.error
    rebuilt = service.GetInstance(capi.GetInstanceRequest(name=instance.name))
    assert (rebuilt.display_name, dict(rebuilt.labels)) == ("Remade", {"role": "db"})
    assert (list(rebuilt.key_pairs), rebuilt.user_data) == ([key.name], b"second")
    assert rebuilt.state == S.STATE_RUNNING and rebuilt.generation > instance.generation
    spec = cell.driver(host).spec_of(instance.uid)
    assert spec.ssh_authorized_keys == (key.public_key,) and spec.user_data == b"second"
    assert rebuilt.hostname == spec.hostname == "remade"
    # UpdateInstance records a hostname for the next build; empty: the instance id.
    for wanted, recorded in (("later", "later"), ("", "remade")):
        renamed = service.UpdateInstance(
            capi.UpdateInstanceRequest(
                instance=cpb.Instance(name=instance.name, hostname=wanted),
                update_mask=field_mask_pb2.FieldMask(paths=["hostname"]),
            )
        )
        assert renamed.hostname == recorded
    bad = capi.UpdateInstanceRequest(
        instance=cpb.Instance(name=instance.name, hostname="-x"),
        update_mask=field_mask_pb2.FieldMask(paths=["hostname"]),
    )
    assert rpc_error(partial(service.UpdateInstance, bad))[0] == grpc.StatusCode.INVALID_ARGUMENT


def test_lifecycle(cell: Cell, tenant: Tenant, admin: Stubs) -> None:
    """Create → RUNNING with console; stop/start/suspend/resume/reboot/rebuild; delete."""
    member = tenant.stubs["member"]
    service = compute(member)
    instance = launch(member, cell, "web-1", labels={"tier": "web"})
    assert instance.state == S.STATE_RUNNING and instance.host in {
        f"hosts/{h}" for h in cell.agents
    }
    assert instance.observed_generation == instance.generation
    console = console_until(service, instance.name, "hostname=web-1")
    assert "KUMO_BOOT_OK" in console.contents

    code, _ = rpc_error(
        lambda: service.StopInstance(
            capi.StopInstanceRequest(name=instance.name, timeout_seconds=-1)
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    steps = [
        (service.StopInstance, capi.StopInstanceRequest, S.STATE_STOPPED),
        (service.StartInstance, capi.StartInstanceRequest, S.STATE_RUNNING),
        (service.SuspendInstance, capi.SuspendInstanceRequest, S.STATE_SUSPENDED),
        (service.ResumeInstance, capi.ResumeInstanceRequest, S.STATE_RUNNING),
        (service.RebootInstance, capi.RebootInstanceRequest, S.STATE_RUNNING),
        (service.RebuildInstance, capi.RebuildInstanceRequest, S.STATE_RUNNING),
    ]
    for method, request_type, expected in steps:
        done = wait(member, method(request_type(name=instance.name)))
        assert not done.HasField("error"), (request_type, done.error)
        assert service.GetInstance(capi.GetInstanceRequest(name=instance.name)).state == expected
    # A suspension asked for as a pause says so (Nova's PAUSED); resuming clears it.
    wait(
        member, service.SuspendInstance(capi.SuspendInstanceRequest(name=instance.name, pause=True))
    )
    paused = service.GetInstance(capi.GetInstanceRequest(name=instance.name))
    assert (paused.state, paused.paused) == (S.STATE_SUSPENDED, True)
    zones = f"{tenant.name}/zones/-"
    found = service.ListInstances(capi.ListInstancesRequest(parent=zones, filter="paused = true"))
    assert [i.name for i in found.instances] == [instance.name]
    code, _ = rpc_error(
        lambda: service.ListInstances(capi.ListInstancesRequest(parent=zones, filter="paused = 2"))
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    wait(member, service.ResumeInstance(capi.ResumeInstanceRequest(name=instance.name)))
    resumed = service.GetInstance(capi.GetInstanceRequest(name=instance.name))
    assert (resumed.state, resumed.paused) == (S.STATE_RUNNING, False)
    _check_locks(service, compute(admin), instance.name)
    boots = console_until(service, instance.name, "KUMO_BOOT_OK", count=3)  # spawn, reboot, rebuild
    tail = service.GetSerialPortOutput(
        capi.GetSerialPortOutputRequest(name=instance.name, start=boots.next)
    )
    assert tail.contents == "" and tail.start == boots.next

    updated = service.UpdateInstance(
        capi.UpdateInstanceRequest(instance=cpb.Instance(name=instance.name, display_name="Web"))
    )
    assert updated.display_name == "Web" and updated.labels["tier"] == "web"
    listed = service.ListInstances(capi.ListInstancesRequest(parent=f"{tenant.name}/zones/-"))
    assert [i.name for i in listed.instances] == [instance.name]

    quota = admin.identity.GetQuota(iapi.GetQuotaRequest(name=f"{tenant.name}/quota"))
    assert {q.resource: q.in_use for q in quota.limits}["instances"] == 1
    deleting = service.DeleteInstance(capi.DeleteInstanceRequest(name=instance.name))
    metadata, deletion = operation_metadata_pb2.OperationMetadata(), cpb.InstanceDeletion()
    assert deleting.metadata.Unpack(metadata) and metadata.detail.Unpack(deletion)
    assert (deletion.previous_state, deletion.previous_power_intent) == (
        S.STATE_RUNNING,
        cpb.Instance.POWER_INTENT_RUNNING,
    )
    assert wait(member, deleting).metadata.Unpack(metadata)
    assert metadata.detail.Unpack(kept := cpb.InstanceDeletion()) and kept == deletion
    code, _ = rpc_error(lambda: service.GetInstance(capi.GetInstanceRequest(name=instance.name)))
    assert code == grpc.StatusCode.NOT_FOUND
    # Asked for, the deleted instance is still shown (as EC2 shows a terminated one).
    shown = service.GetInstance(capi.GetInstanceRequest(name=instance.name, show_deleted=True))
    assert (shown.uid, shown.state, shown.host) == (instance.uid, S.STATE_DELETED, "")
    assert (shown.display_name, shown.labels["tier"], shown.flavor) == (
        "Web",
        "web",
        instance.flavor,
    )
    assert not shown.network_interfaces and not shown.conditions
    zones = capi.ListInstancesRequest(parent=f"{tenant.name}/zones/-")
    assert not service.ListInstances(zones).instances
    zones.show_deleted, zones.filter = True, 'labels.tier = "web"'
    assert [i.uid for i in service.ListInstances(zones).instances] == [instance.uid]
    zones.filter = 'labels.tier = "db"'
    assert not service.ListInstances(zones).instances
    assert all(not cell.driver(h).list_guests() for h in cell.agents)
    quota = admin.identity.GetQuota(iapi.GetQuotaRequest(name=f"{tenant.name}/quota"))
    assert {q.resource: q.in_use for q in quota.limits}["instances"] == 0


def _lock(service: Any, name: str, locked: bool, reason: str = "") -> cpb.Instance:
    return service.UpdateInstance(
        capi.UpdateInstanceRequest(
            instance=cpb.Instance(name=name, locked=locked, locked_reason=reason),
            update_mask=field_mask_pb2.FieldMask(paths=["locked", "locked_reason"]),
        )
    )


def _check_locks(member: Any, cloud_admin: Any, name: str) -> None:
    """A locked instance refuses actions and deletion (not renames) except from cloud
    administrators; a cloud administrator's lock only a cloud administrator clears."""
    locked = _lock(member, name, True, "maintenance")
    assert (locked.locked, locked.locked_reason) == (True, "maintenance")
    for call in (
        lambda: member.StopInstance(capi.StopInstanceRequest(name=name)),
        lambda: member.DeleteInstance(capi.DeleteInstanceRequest(name=name)),
    ):
        code, _ = rpc_error(call)
        assert code == grpc.StatusCode.FAILED_PRECONDITION
    renamed = member.UpdateInstance(
        capi.UpdateInstanceRequest(instance=cpb.Instance(name=name, display_name="locked"))
    )
    assert renamed.locked and renamed.display_name == "locked"
    code, _ = rpc_error(lambda: _lock(member, name, True, "x" * 256))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    unlocked = _lock(member, name, False, "ignored")
    assert (unlocked.locked, unlocked.locked_reason) == (False, "")

    assert _lock(cloud_admin, name, True, "by the operator").locked
    code, _ = rpc_error(lambda: _lock(member, name, False))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert member.GetInstance(capi.GetInstanceRequest(name=name)).locked
    assert not _lock(cloud_admin, name, False).locked


def test_deleted_instances_page_after_the_live_ones(cell: Cell, tenant: Tenant) -> None:
    """ListInstances with show_deleted: the live instances, then the deleted ones (here a
    full last live page, so the next page starts with them), with typed errors for bad
    pages and tokens."""
    member = tenant.stubs["member"]
    service = compute(member)
    kept, gone = launch(member, cell, "kept"), launch(member, cell, "gone")
    wait(member, service.DeleteInstance(capi.DeleteInstanceRequest(name=gone.name)))
    listing = capi.ListInstancesRequest(
        parent=f"{tenant.name}/zones/-", page_size=1, show_deleted=True
    )
    first = service.ListInstances(listing)
    assert [i.name for i in first.instances] == [kept.name] and first.next_page_token
    listing.page_token = first.next_page_token
    second = service.ListInstances(listing)
    assert [(i.uid, i.state) for i in second.instances] == [(gone.uid, S.STATE_DELETED)]
    assert not second.next_page_token
    for page_size, token in ((1, "deleted:forged"), (-1, first.next_page_token)):
        listing.page_size, listing.page_token = page_size, token
        code, _ = rpc_error(lambda: service.ListInstances(listing))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (page_size, token)


def test_instances_filtered_by_update_time(cell: Cell, tenant: Tenant) -> None:
    """`update_time` compared with a time finds the instances changed since (a deleted one
    among them with show_deleted, as of its deletion) or before; a bad time is
    INVALID_ARGUMENT."""
    member = tenant.stubs["member"]
    service = compute(member)
    changed, gone = launch(member, cell, "changed"), launch(member, cell, "dropped")
    mark = datetime.now(UTC)
    time.sleep(0.01)
    service.UpdateInstance(
        capi.UpdateInstanceRequest(instance=cpb.Instance(name=changed.name, display_name="new"))
    )
    wait(member, service.DeleteInstance(capi.DeleteInstanceRequest(name=gone.name)))

    def names(text: str, show_deleted: bool = False) -> set[str]:
        listing = capi.ListInstancesRequest(
            parent=f"{tenant.name}/zones/-", filter=text, show_deleted=show_deleted
        )
        return {i.name for i in service.ListInstances(listing).instances}

    since = mark.isoformat().replace("+00:00", "Z")
    assert changed.name in names(f'update_time >= "{since}"')
    assert changed.name not in names(f'update_time < "{since}"')
    assert gone.name in names(f'update_time > "{since}"', show_deleted=True)
    assert gone.name not in names(f'update_time <= "{since}"', show_deleted=True)
    assert {changed.name, gone.name} <= names(f'create_time < "{since}"', show_deleted=True)
    for bad in ('update_time >= "yesterday"', 'update_time = "2026-01-01T00:00:00Z"'):
        code, _ = rpc_error(partial(names, bad))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, bad


def test_instances_matched_by_pattern_image_and_key(
    api: ServerThread, cell: Cell, tenant: Tenant, other_tenant: Tenant, admin: Stubs
) -> None:
    """ListInstances filters on names and hostnames by regular expression, on the image and
    on a key pair, orders by display name or time either way, and lists across projects
    (`projects/-`): all of them for a cloud administrator, its own for anyone else; bad
    patterns and image names are INVALID_ARGUMENT."""
    member = tenant.stubs["member"]
    service = compute(member)
    service.CreateKeyPair(
        capi.CreateKeyPairRequest(parent=tenant.name, key_pair_id="lister", key_pair=cpb.KeyPair())
    )
    key = f"{tenant.name}/keyPairs/lister"
    web1 = launch(member, cell, "lst-a", display_name="web-1", hostname="front-1")
    web2 = launch(member, cell, "lst-b", display_name="web-2", key_pairs=[key])
    db = launch(member, cell, "lst-c", display_name="db-web")
    their_image = upload_image(other_tenant.stubs["member"], other_tenant.name)
    their_zone = f"{other_tenant.name}/zones/{cell.site.zone}"
    theirs = Cell(cell.site, cell.agents, their_zone, cell.flavor, their_image)
    other = launch(other_tenant.stubs["member"], theirs, "lst-d", display_name="web-3")

    def names(text: str, order_by: str = "", parent: str = f"{tenant.name}/zones/-",
              stubs: Stubs = member) -> list[str]:  # fmt: skip
        listing = capi.ListInstancesRequest(parent=parent, filter=text, order_by=order_by)
        return [i.display_name for i in compute(stubs).ListInstances(listing).instances]

    assert names('display_name ~ "^web-"', "display_name") == ["web-1", "web-2"]
    assert names('display_name ~ "web"', "display_name desc") == ["web-2", "web-1", "db-web"]
    assert names('NOT display_name ~ "^w" AND display_name ~ "b"') == ["db-web"]
    assert names('hostname ~ "^front-[0-9]$"') == ["web-1"]
    assert names(f'image = "{cell.image}"', "create_time desc") == ["db-web", "web-2", "web-1"]
    assert names(f'image = "{tenant.name}/images/nope"') == []
    assert names(f'key_pairs:"{key}"') == ["web-2"]
    assert names('key_pairs ~ "/keyPairs/lister$"') == names('key_pairs ~ "s"') == ["web-2"]
    assert names('ip_addresses ~ "."') == []  # (no interfaces here)
    for order in ("update_time", "uid desc"):
        assert sorted(names('display_name ~ "web"', order)) == ["db-web", "web-1", "web-2"]
    everywhere = "projects/-/zones/-"
    # (other tests' instances may be there too)
    assert {"web-1", "web-2", "web-3"} <= set(names("", "", everywhere, admin))
    assert names('display_name ~ "^web-"', "display_name", everywhere) == ["web-1", "web-2"]
    assert names("", "", everywhere, other_tenant.stubs["member"]) == ["web-3"]
    for bad in (
        'display_name ~ "("',
        'display_name ~ "(?P<n>web)"',
        'display_name ~ "' + "a" * 256 + '"',
        'flavor ~ "x"',
        'image = "images/x"',
        # (Python reads it, PostgreSQL does not)
        *(['display_name ~ "(?i:web)"'] if api.config.database.url.startswith("postgres") else []),
    ):
        code, _ = rpc_error(partial(names, bad))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, bad
    code, _ = rpc_error(partial(names, "", "hostname"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    # Deleted instances keep what these filters read.
    wait(member, service.DeleteInstance(capi.DeleteInstanceRequest(name=web2.name)))
    deleted = capi.ListInstancesRequest(
        parent=f"{tenant.name}/zones/-",
        filter=f'key_pairs:"{key}" AND image = "{cell.image}" AND display_name ~ "2$"'
        ' AND key_pairs ~ "lister"',
        order_by="update_time desc",
        show_deleted=True,
    )
    assert [i.uid for i in service.ListInstances(deleted).instances] == [web2.uid]
    for instance, stubs in ((web1, member), (db, member), (other, other_tenant.stubs["member"])):
        wait(stubs, compute(stubs).DeleteInstance(capi.DeleteInstanceRequest(name=instance.name)))


def test_created_locked(cell: Cell, tenant: Tenant) -> None:
    """An instance created locked builds and runs, and refuses deletion until unlocked."""
    member = tenant.stubs["member"]
    service = compute(member)
    code, _ = rpc_error(
        lambda: launch(member, cell, "locked-0", locked=True, locked_reason="y" * 256)
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    instance = launch(member, cell, "locked-1", locked=True, locked_reason="born locked")
    assert instance.state == S.STATE_RUNNING
    assert (instance.locked, instance.locked_reason) == (True, "born locked")
    code, _ = rpc_error(
        lambda: service.DeleteInstance(capi.DeleteInstanceRequest(name=instance.name))
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    _lock(service, instance.name, False)
    wait(member, service.DeleteInstance(capi.DeleteInstanceRequest(name=instance.name)))


def test_snapshot_becomes_a_bootable_image(cell: Cell, tenant: Tenant) -> None:
    """SnapshotInstance writes the root disk to a new private image that boots."""
    member = tenant.stubs["member"]
    service = compute(member)
    source = launch(member, cell, "original")
    done = wait(
        member,
        service.SnapshotInstance(capi.SnapshotInstanceRequest(name=source.name, image_id="snap")),
    )
    assert not done.HasField("error"), done.error
    image = ipb_image.Image()
    done.response.Unpack(image)
    assert image.state == ipb_image.Image.STATE_ACTIVE and image.source_instance == source.name
    assert image.name == f"{tenant.name}/images/snap" and image.size_bytes > 0
    copy = launch(member, cell, "copy", image=image.name)
    assert copy.state == S.STATE_RUNNING
    code, _ = rpc_error(
        lambda: service.SnapshotInstance(
            capi.SnapshotInstanceRequest(name=source.name, image_id="snap")
        )
    )
    assert code == grpc.StatusCode.ALREADY_EXISTS


def test_failed_snapshot_marks_the_image_error(cell: Cell, tenant: Tenant) -> None:
    """A snapshot the host cannot take fails the operation and leaves the image ERROR,
    the instance untouched."""
    member = tenant.stubs["member"]
    service = compute(member)
    source = launch(member, cell, "victim")
    host = source.host.removeprefix("hosts/")
    cell.driver(host).fail_next("snapshot", DriverError("disk on fire"))
    done = wait(
        member,
        service.SnapshotInstance(capi.SnapshotInstanceRequest(name=source.name, image_id="bad")),
    )
    assert done.error.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    images = imrpc.ImageServiceStub(member.channel)
    image = images.GetImage(imapi.GetImageRequest(name=f"{tenant.name}/images/bad"))
    assert image.state == ipb_image.Image.STATE_ERROR
    assert service.GetInstance(capi.GetInstanceRequest(name=source.name)).state == S.STATE_RUNNING


def _allocated(admin: Stubs, host: str) -> int:
    return int(admin.topology.GetHost(tapi.GetHostRequest(name=host)).allocated.memory_mib)


def _placed(admin: Stubs, host: str) -> int:
    return int(admin.topology.GetHost(tapi.GetHostRequest(name=host)).instance_count)


def test_resize_then_revert_or_confirm(cell: Cell, tenant: Tenant, admin: Stubs) -> None:
    """A same-host resize: the guest gets the new sizes, the host holds the larger of both
    until the resize is settled; revert restores the old flavor, confirm keeps the new."""
    member = tenant.stubs["member"]
    service = compute(member)
    instance = launch(member, cell, "grows")
    driver = cell.driver(instance.host.removeprefix("hosts/"))
    bigger = make_flavor(admin, 2, 512, 2)
    assert _allocated(admin, instance.host) == 256

    def act(call: Any, request: Any) -> cpb.Instance:
        done = wait(member, call(request))
        assert not done.HasField("error"), done.error
        result = cpb.Instance()
        done.response.Unpack(result)
        return result

    resized = act(
        service.ResizeInstance, capi.ResizeInstanceRequest(name=instance.name, flavor=bigger)
    )
    assert (resized.state, resized.flavor, resized.vcpus) == (S.STATE_RESIZED, bigger, 2)
    assert driver.spec_of(instance.uid).memory_mib == 512
    assert driver.state(instance.uid).name == "RUNNING"
    assert _allocated(admin, instance.host) == 512  # max(256, 512) while unsettled
    assert _placed(admin, instance.host) == 1  # (its second claim is no second instance)
    code, message = rpc_error(
        lambda: service.ResizeInstance(
            capi.ResizeInstanceRequest(name=instance.name, flavor=cell.flavor)
        )
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "pending" in str(message)

    reverted = act(
        service.RevertResizeInstance, capi.RevertResizeInstanceRequest(name=instance.name)
    )
    assert (reverted.state, reverted.flavor, reverted.memory_mib) == (
        S.STATE_RUNNING,
        cell.flavor,
        256,
    )
    assert driver.spec_of(instance.uid).disk_gib == 1
    assert _allocated(admin, instance.host) == 256

    act(service.ResizeInstance, capi.ResizeInstanceRequest(name=instance.name, flavor=bigger))
    confirmed = act(
        service.ConfirmResizeInstance, capi.ConfirmResizeInstanceRequest(name=instance.name)
    )
    assert (confirmed.state, confirmed.flavor) == (S.STATE_RUNNING, bigger)
    assert _allocated(admin, instance.host) == 512
    wait(member, service.DeleteInstance(capi.DeleteInstanceRequest(name=instance.name)))
    assert (_allocated(admin, instance.host), _placed(admin, instance.host)) == (0, 0)


def test_resize_refusals_change_nothing(cell: Cell, tenant: Tenant, admin: Stubs) -> None:
    """Same flavor, smaller disk, no room on the host, nothing to confirm: typed errors."""
    member = tenant.stubs["member"]
    service = compute(member)
    flavor = make_flavor(admin, 1, 256, 2)
    instance = launch(member, cell, "stays", flavor=flavor)
    smaller_disk = make_flavor(admin, 1, 128, 1)
    too_big = make_flavor(admin, 1, 4096, 2)
    name = instance.name
    cases: list[tuple[capi.ResizeInstanceRequest, str]] = [
        (capi.ResizeInstanceRequest(name=name, flavor=flavor), "INVALID"),
        (capi.ResizeInstanceRequest(name=name, flavor=smaller_disk), "INVALID"),
        (capi.ResizeInstanceRequest(name=name), "INVALID"),
        (capi.ResizeInstanceRequest(name=name, flavor="flavors/nope"), "NOT_FOUND"),
        (capi.ResizeInstanceRequest(name=name, flavor=too_big), "FAILED"),
    ]
    for request, code in cases:
        status, _ = rpc_error(partial(service.ResizeInstance, request))
        assert status.name.startswith(code), (request, status)
    for call in (
        lambda: service.ConfirmResizeInstance(
            capi.ConfirmResizeInstanceRequest(name=instance.name)
        ),
        lambda: service.RevertResizeInstance(capi.RevertResizeInstanceRequest(name=instance.name)),
    ):
        assert rpc_error(call)[0] == grpc.StatusCode.FAILED_PRECONDITION
    after = service.GetInstance(capi.GetInstanceRequest(name=instance.name))
    assert (after.flavor, after.memory_mib, after.state) == (flavor, 256, S.STATE_RUNNING)
    assert _allocated(admin, instance.host) == 256


def test_capacity_is_never_overcommitted(cell: Cell, tenant: Tenant, admin: Stubs) -> None:
    """Ten concurrent creates on two 1 GiB hosts: exactly 8 of 256 MiB fit, 2 fail cleanly."""
    member = tenant.stubs["member"]
    set_quota(admin, tenant, instances=20, vcpus=40, ram_mib=100000)
    service = compute(member)

    def create(index: int) -> operations_pb2.Operation:
        op = service.CreateInstance(
            capi.CreateInstanceRequest(
                parent=cell.parent,
                instance_id=f"c{index}",
                instance=cpb.Instance(flavor=cell.flavor, image=cell.image),
            )
        )
        return wait(member, op)

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(create, range(10)))
    failed = [r for r in results if r.HasField("error")]
    assert len(failed) == 2 and all("no valid host" in r.error.message for r in failed)
    per_host = {h: len(cell.driver(h).list_guests()) for h in cell.agents}
    assert sorted(per_host.values()) == [4, 4]


def test_anti_affinity_and_failed_builds_retry_elsewhere(
    cell: Cell, tenant: Tenant, admin: Stubs
) -> None:
    """Anti-affinity spreads members; a host whose spawn fails is retried on the other."""
    member = tenant.stubs["member"]
    service = compute(member)
    group = service.CreateServerGroup(
        capi.CreateServerGroupRequest(
            parent=tenant.name,
            server_group_id="spread",
            server_group=cpb.ServerGroup(policy=cpb.ServerGroup.POLICY_ANTI_AFFINITY),
        )
    )
    first = launch(member, cell, "a1", server_group=group.name)
    second = launch(member, cell, "a2", server_group=group.name)
    assert first.host != second.host
    op = service.CreateInstance(
        capi.CreateInstanceRequest(
            parent=cell.parent,
            instance_id="a3",
            instance=cpb.Instance(flavor=cell.flavor, image=cell.image, server_group=group.name),
        )
    )
    assert "no valid host" in wait(member, op).error.message

    # Fill the second host a little more, so that the spread weigher picks the first...
    hosts = sorted(cell.agents)
    launch(admin, cell, "filler", requested_host=f"hosts/{hosts[1]}")
    # ...whose hypervisor fails every call (a single failure may be retried by the agent
    # itself and succeed): the build must go on to the second host.
    cell.driver(hosts[0]).set_available(False)
    try:
        retried = launch(member, cell, "retried")
    finally:
        cell.driver(hosts[0]).set_available(True)
    assert retried.state == S.STATE_RUNNING and retried.host == f"hosts/{hosts[1]}"
    assert not cell.driver(hosts[0]).list_guests().keys() - {
        i.uid for i in (first, second) if i.host == f"hosts/{hosts[0]}"
    }


def test_soft_group_policies_outweigh_the_weigher(cell: Cell, tenant: Tenant, admin: Stubs) -> None:
    """Soft affinity puts a member beside the others though the spread weigher prefers the
    emptier host; soft anti-affinity puts it apart though the weigher prefers theirs."""
    member = tenant.stubs["member"]
    service = compute(member)
    crowd, apart = (
        service.CreateServerGroup(
            capi.CreateServerGroupRequest(
                parent=tenant.name, server_group_id=name, server_group=cpb.ServerGroup(policy=p)
            )
        ).name
        for name, p in (
            ("crowd", cpb.ServerGroup.POLICY_SOFT_AFFINITY),
            ("apart", cpb.ServerGroup.POLICY_SOFT_ANTI_AFFINITY),
        )
    )
    first = launch(member, cell, "c1", server_group=crowd)
    assert launch(member, cell, "c2", server_group=crowd).host == first.host

    # `first`'s host now holds two, the other none: the weigher sends the next there...
    other = launch(member, cell, "p1", server_group=apart).host
    assert other != first.host
    # ...and the one after it too (it is still the emptier), but not soft anti-affinity.
    assert launch(member, cell, "p2", server_group=apart).host == first.host


def test_disabled_hosts_get_no_new_instances(cell: Cell, tenant: Tenant, admin: Stubs) -> None:
    """A disabled host keeps its guests and receives no new ones."""
    hosts = sorted(cell.agents)
    for host in hosts:
        admin.topology.DisableHost(tapi.DisableHostRequest(name=f"hosts/{host}", reason="test"))
    op = compute(tenant.stubs["member"]).CreateInstance(
        capi.CreateInstanceRequest(
            parent=cell.parent,
            instance_id="nowhere",
            instance=cpb.Instance(flavor=cell.flavor, image=cell.image),
        )
    )
    assert "no valid host" in wait(tenant.stubs["member"], op).error.message
    admin.topology.EnableHost(tapi.EnableHostRequest(name=f"hosts/{hosts[0]}"))
    assert launch(tenant.stubs["member"], cell, "somewhere").host == f"hosts/{hosts[0]}"


def test_operations_record_their_method_request_and_requester(
    cell: Cell, tenant: Tenant, admin: Stubs
) -> None:
    """An operation's verb is the method that started it (not its handler's kind), with the
    call's request id and user; an operation Kumo starts itself has neither."""
    member = tenant.stubs["member"]
    instance = launch(member, cell, "audited")
    stopped = compute(member).StopInstance(
        capi.StopInstanceRequest(name=instance.name), metadata=(("x-request-id", "req-audit-1"),)
    )
    wait(member, stopped)
    about = f'target = "{instance.name}"'
    listed = member.operations.ListOperations(
        operations_pb2.ListOperationsRequest(name="operations", filter=about)
    ).operations
    seen = []
    for op in listed:
        meta = operation_metadata_pb2.OperationMetadata()
        op.metadata.Unpack(meta)
        seen.append((meta.verb, meta.requester, bool(meta.request_id)))
        if op.name == stopped.name:
            assert meta.request_id == "req-audit-1"
    requester = f"users/{tenant.users['member']}"
    assert seen == [("StopInstance", requester, True), ("CreateInstance", requester, True)]
