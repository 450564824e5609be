"""TopologyService over a real channel: regions → zones → pools → racks → hosts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from kumo.server.db.base import utcnow
from kumo.server.db.models import HostRow
from kumo.topology.v1 import resources_pb2 as tpb
from kumo.topology.v1 import topology_service_pb2 as tapi
from kumo.type.v1 import condition_pb2
from tests.support.cloud import Stubs, Tenant, rpc_error, unique
from tests.support.server import ServerThread

KVM = tpb.HYPERVISOR_KIND_KVM
ESXI = tpb.HYPERVISOR_KIND_ESXI
NOT_FOUND = grpc.StatusCode.NOT_FOUND
PERMISSION_DENIED = grpc.StatusCode.PERMISSION_DENIED
INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT
FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION


@dataclass(frozen=True)
class Kind:
    """One topology kind: its message, the field naming its parent, and its five methods."""

    singular: str
    plural: str
    message: type[Message]
    parent: str | None
    create: str
    get: str
    list: str
    update: str
    delete: str


REGION = Kind(
    "region", "regions", tpb.Region, None,
    "CreateRegion", "GetRegion", "ListRegions", "UpdateRegion", "DeleteRegion",
)  # fmt: skip
ZONE = Kind(
    "zone", "zones", tpb.Zone, "region",
    "CreateZone", "GetZone", "ListZones", "UpdateZone", "DeleteZone",
)  # fmt: skip
POOL = Kind(
    "pool", "pools", tpb.Pool, "zone",
    "CreatePool", "GetPool", "ListPools", "UpdatePool", "DeletePool",
)  # fmt: skip
RACK = Kind(
    "rack", "racks", tpb.Rack, "pool",
    "CreateRack", "GetRack", "ListRacks", "UpdateRack", "DeleteRack",
)  # fmt: skip
HOST = Kind(
    "host", "hosts", tpb.Host, "rack",
    "CreateHost", "GetHost", "ListHosts", "UpdateHost", "DeleteHost",
)  # fmt: skip
KINDS = [REGION, ZONE, POOL, RACK, HOST]
CHILD_KINDS = [ZONE, POOL, RACK, HOST]
PARENT_KINDS = [REGION, ZONE, POOL, RACK]


def call(stubs: Stubs, method: str, **fields: Any) -> Any:
    """Calls TopologyService `method` with a request built from `fields`."""
    request = getattr(tapi, f"{method}Request")(**fields)
    return getattr(stubs.topology, method)(request)


def detail(status: status_pb2.Status | None, message_type: Any) -> Any:
    """The first detail of `status` of `message_type`, unpacked; fails if there is none."""
    assert status is not None
    for packed in status.details:
        if packed.Is(message_type.DESCRIPTOR):
            out = message_type()
            packed.Unpack(out)
            return out
    raise AssertionError(f"no {message_type.DESCRIPTOR.full_name} in {status}")


def create(stubs: Stubs, kind: Kind, parent: str | None = None, **fields: Any) -> Any:
    """Creates one resource of `kind` under `parent` with a fresh id."""
    if kind.parent is not None:
        fields[kind.parent] = parent
    if kind is POOL:
        fields.setdefault("hypervisor_kind", KVM)
    resource = kind.message(**fields)
    return call(
        stubs,
        kind.create,
        **{kind.singular: resource, f"{kind.singular}_id": unique(kind.singular[0])},
    )


def get(stubs: Stubs, kind: Kind, name: str) -> Any:
    """Get<Kind> by name."""
    return call(stubs, kind.get, name=name)


def names(stubs: Stubs, kind: Kind, filter: str = "", order_by: str = "") -> list[str]:
    """Names listed by List<Kinds> with `filter` and `order_by`, in order (one big page)."""
    response = call(stubs, kind.list, filter=filter, order_by=order_by, page_size=1000)
    assert response.next_page_token == ""
    return [r.name for r in getattr(response, kind.plural)]


@dataclass
class Site:
    """A region with one zone, one pool, one rack, by name."""

    region: str
    zone: str
    pool: str
    rack: str

    def parent_of(self, kind: Kind) -> str | None:
        """The name of this site's resource that `kind` hangs under."""
        return None if kind.parent is None else getattr(self, kind.parent)


def make_site(admin: Stubs, hypervisor_kind: int = KVM) -> Site:
    """Builds region → zone → pool → rack."""
    region = create(admin, REGION).name
    zone = create(admin, ZONE, region).name
    pool = create(admin, POOL, zone, hypervisor_kind=hypervisor_kind).name
    rack = create(admin, RACK, pool).name
    return Site(region, zone, pool, rack)


def heartbeat(api: ServerThread, host: str) -> None:
    """Stands in for the host agent (there is none yet): records a heartbeat now."""

    def beat(session: Any) -> None:
        session.get(HostRow, host.removeprefix("hosts/")).last_heartbeat_time = utcnow()

    api.server.runtime.db.transaction(beat)


# --- CRUD ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.singular)
def test_create_get_list_update_delete(admin: Stubs, kind: Kind) -> None:
    """Every kind goes through its whole life over the API."""
    site = make_site(admin)
    tag = unique("crud")
    created = create(admin, kind, site.parent_of(kind), display_name="first", labels={"t": tag})
    assert created.name.startswith(f"{kind.plural}/")
    assert created.uid and created.etag and created.create_time.seconds > 0
    assert created.display_name == "first"
    assert dict(created.labels) == {"t": tag}
    assert get(admin, kind, created.name) == created
    assert names(admin, kind, f'labels.t = "{tag}"') == [created.name]
    if kind.parent is not None:
        parent = site.parent_of(kind)
        assert getattr(created, kind.parent) == parent
        assert created.name in names(admin, kind, f'{kind.parent} = "{parent}"')

    updated = call(
        admin,
        kind.update,
        **{
            kind.singular: kind.message(
                name=created.name, display_name="second", etag=created.etag
            ),
            "update_mask": field_mask_pb2.FieldMask(paths=["display_name"]),
        },
    )
    assert updated.display_name == "second"
    assert dict(updated.labels) == {"t": tag}
    assert updated.etag != created.etag
    assert get(admin, kind, created.name) == updated

    call(admin, kind.delete, name=created.name, etag=updated.etag)
    code, _ = rpc_error(lambda: get(admin, kind, created.name))
    assert code == NOT_FOUND


def test_host_fields_come_from_its_rack(admin: Stubs) -> None:
    """A host reports its rack's pool, zone and hypervisor kind, and keeps its capacity."""
    site = make_site(admin, ESXI)
    capacity = tpb.HostCapacity(vcpus=64, memory_mib=262144, disk_gib=2000)
    host = create(admin, HOST, site.rack, address="10.0.0.7", capacity=capacity)
    assert (host.rack, host.pool, host.zone) == (site.rack, site.pool, site.zone)
    assert host.hypervisor_kind == ESXI
    assert (host.address, host.capacity) == ("10.0.0.7", capacity)
    bigger = tpb.HostCapacity(vcpus=128, memory_mib=524288, disk_gib=4000)
    updated = admin.topology.UpdateHost(
        tapi.UpdateHostRequest(
            host=tpb.Host(name=host.name, capacity=bigger),
            update_mask=field_mask_pb2.FieldMask(paths=["capacity"]),
        )
    )
    assert updated.capacity == bigger and updated.address == "10.0.0.7"


def test_create_existing_id_is_already_exists(admin: Stubs) -> None:
    """A second region with the same id is ALREADY_EXISTS; the first is unchanged."""
    region = create(admin, REGION, display_name="original")
    region_id = region.name.removeprefix("regions/")
    code, _ = rpc_error(
        lambda: admin.topology.CreateRegion(
            tapi.CreateRegionRequest(region_id=region_id, region=tpb.Region(display_name="copy"))
        )
    )
    assert code == grpc.StatusCode.ALREADY_EXISTS
    assert get(admin, REGION, region.name) == region


@pytest.mark.parametrize("kind", CHILD_KINDS, ids=lambda k: k.singular)
def test_missing_parent_is_not_found(admin: Stubs, kind: Kind) -> None:
    """Creating under a missing parent is NOT_FOUND naming the parent; nothing is made."""
    missing = f"{kind.parent}s/{unique('gone')}"
    resource_id = unique(kind.singular[0])
    fields: dict[str, Any] = {kind.parent: missing}  # type: ignore[dict-item]
    if kind is POOL:
        fields["hypervisor_kind"] = KVM
    code, status = rpc_error(
        lambda: call(
            admin,
            kind.create,
            **{kind.singular: kind.message(**fields), f"{kind.singular}_id": resource_id},
        )
    )
    assert code == NOT_FOUND
    assert detail(status, error_details_pb2.ResourceInfo).resource_name == missing
    code, _ = rpc_error(lambda: get(admin, kind, f"{kind.plural}/{resource_id}"))
    assert code == NOT_FOUND


@pytest.mark.parametrize("kind", PARENT_KINDS, ids=lambda k: k.singular)
def test_delete_of_non_empty_parent_is_refused(admin: Stubs, kind: Kind) -> None:
    """A parent with children cannot be deleted: FAILED_PRECONDITION, and nothing is deleted."""
    site = make_site(admin)
    host = create(admin, HOST, site.rack)
    before = {k: get(admin, k, getattr(site, k.singular)) for k in PARENT_KINDS}
    target = getattr(site, kind.singular)
    code, status = rpc_error(lambda: call(admin, kind.delete, name=target))
    assert code == FAILED_PRECONDITION
    violation = detail(status, error_details_pb2.PreconditionFailure).violations[0]
    assert (violation.type, violation.subject) == ("NOT_EMPTY", target)
    assert {k: get(admin, k, getattr(site, k.singular)) for k in PARENT_KINDS} == before
    assert get(admin, HOST, host.name).name == host.name


def test_delete_whole_hierarchy_bottom_up(admin: Stubs) -> None:
    """Once emptied from the hosts upwards, every level can be deleted."""
    site = make_site(admin)
    host = create(admin, HOST, site.rack)
    for kind, name in [
        (HOST, host.name),
        (RACK, site.rack),
        (POOL, site.pool),
        (ZONE, site.zone),
        (REGION, site.region),
    ]:
        call(admin, kind.delete, name=name)
        code, _ = rpc_error(lambda k=kind, n=name: get(admin, k, n))
        assert code == NOT_FOUND


# --- hosts -----------------------------------------------------------------------------------


def test_host_without_heartbeat_is_down(admin: Stubs) -> None:
    """With no agent reporting, a host is DOWN, has no heartbeat time and a false condition."""
    host = create(admin, HOST, make_site(admin).rack)
    assert host.state == tpb.Host.STATE_DOWN
    assert not host.HasField("last_heartbeat_time")
    (condition,) = host.conditions
    assert condition.type == "Heartbeat"
    assert condition.status == condition_pb2.Condition.STATUS_FALSE
    assert condition.reason == "NoHeartbeat"


def test_down_host_can_be_deleted(admin: Stubs) -> None:
    """The contract allows deleting a DOWN host without disabling it first."""
    host = create(admin, HOST, make_site(admin).rack)
    admin.topology.DeleteHost(tapi.DeleteHostRequest(name=host.name))
    code, _ = rpc_error(lambda: get(admin, HOST, host.name))
    assert code == NOT_FOUND


def test_host_in_service_is_deleted_only_after_disable(api: ServerThread, admin: Stubs) -> None:
    """A heartbeating, enabled host refuses deletion until DisableHost."""
    host = create(admin, HOST, make_site(admin).rack)
    heartbeat(api, host.name)
    host = get(admin, HOST, host.name)
    assert host.state == tpb.Host.STATE_ENABLED
    assert host.conditions[0].status == condition_pb2.Condition.STATUS_TRUE
    code, status = rpc_error(
        lambda: admin.topology.DeleteHost(tapi.DeleteHostRequest(name=host.name))
    )
    assert code == FAILED_PRECONDITION
    violation = detail(status, error_details_pb2.PreconditionFailure).violations[0]
    assert (violation.type, violation.subject) == ("HOST_IN_SERVICE", host.name)
    assert get(admin, HOST, host.name) == host

    disabled = admin.topology.DisableHost(
        tapi.DisableHostRequest(name=host.name, reason="decommission")
    )
    assert disabled.state == tpb.Host.STATE_DISABLED
    admin.topology.DeleteHost(tapi.DeleteHostRequest(name=host.name))
    code, _ = rpc_error(lambda: get(admin, HOST, host.name))
    assert code == NOT_FOUND


def test_enable_and_disable_host(api: ServerThread, admin: Stubs) -> None:
    """DisableHost records its reason; both calls are idempotent; EnableHost clears the reason."""
    host = create(admin, HOST, make_site(admin).rack)
    heartbeat(api, host.name)
    first = admin.topology.DisableHost(tapi.DisableHostRequest(name=host.name, reason="bad DIMM"))
    assert (first.state, first.disabled_reason) == (tpb.Host.STATE_DISABLED, "bad DIMM")
    again = admin.topology.DisableHost(tapi.DisableHostRequest(name=host.name, reason="bad DIMM"))
    assert again.etag == first.etag
    new_reason = admin.topology.DisableHost(
        tapi.DisableHostRequest(name=host.name, reason="bad DIMM, slot 3")
    )
    assert new_reason.disabled_reason == "bad DIMM, slot 3"
    assert get(admin, HOST, host.name).disabled_reason == "bad DIMM, slot 3"

    enabled = admin.topology.EnableHost(tapi.EnableHostRequest(name=host.name))
    assert (enabled.state, enabled.disabled_reason) == (tpb.Host.STATE_ENABLED, "")
    assert admin.topology.EnableHost(tapi.EnableHostRequest(name=host.name)).etag == enabled.etag


def test_disable_host_without_heartbeat_still_reports_down(admin: Stubs) -> None:
    """A disabled host with no agent reports DOWN, but keeps the reason it was disabled for."""
    host = create(admin, HOST, make_site(admin).rack)
    disabled = admin.topology.DisableHost(tapi.DisableHostRequest(name=host.name, reason="rma"))
    assert (disabled.state, disabled.disabled_reason) == (tpb.Host.STATE_DOWN, "rma")


def test_enable_disable_of_missing_host_is_not_found(admin: Stubs) -> None:
    """Enable/DisableHost on a host that does not exist is NOT_FOUND."""
    name = f"hosts/{unique('gone')}"
    for rpc in (
        lambda: admin.topology.EnableHost(tapi.EnableHostRequest(name=name)),
        lambda: admin.topology.DisableHost(tapi.DisableHostRequest(name=name, reason="x")),
    ):
        code, _ = rpc_error(rpc)
        assert code == NOT_FOUND


# --- listing ---------------------------------------------------------------------------------


def test_list_filters(api: ServerThread, admin: Stubs) -> None:
    """Lists filter by parent, zone, pool, hypervisor kind, state and labels."""
    site = make_site(admin)
    tag = unique("f")
    esxi_pool = create(admin, POOL, site.zone, hypervisor_kind=ESXI).name
    esxi_rack = create(admin, RACK, esxi_pool).name
    other_zone = create(admin, ZONE, site.region).name
    far_pool = create(admin, POOL, other_zone).name
    far_rack = create(admin, RACK, far_pool).name
    h1 = create(admin, HOST, site.rack, labels={"tag": tag}).name
    h2 = create(admin, HOST, site.rack, labels={"tag": tag, "gpu": "yes"}).name
    h3 = create(admin, HOST, esxi_rack).name
    h4 = create(admin, HOST, far_rack, labels={"tag": tag}).name
    heartbeat(api, h1)

    def hosts(filter: str) -> set[str]:
        return set(names(admin, HOST, filter))

    assert set(names(admin, ZONE, f'region = "{site.region}"')) == {site.zone, other_zone}
    assert set(names(admin, POOL, f'zone = "{site.zone}"')) == {site.pool, esxi_pool}
    assert names(admin, POOL, f'zone = "{site.zone}" AND hypervisor_kind = kvm') == [site.pool]
    assert names(admin, RACK, f'pool = "{esxi_pool}"') == [esxi_rack]
    assert hosts(f'zone = "{site.zone}"') == {h1, h2, h3}
    assert hosts(f'pool = "{site.pool}"') == {h1, h2}
    assert hosts(f'rack = "{far_rack}"') == {h4}
    assert hosts(f'zone = "{site.zone}" AND hypervisor_kind = kvm') == {h1, h2}
    assert hosts(f'zone = "{site.zone}" AND hypervisor_kind = HYPERVISOR_KIND_ESXI') == {h3}
    assert hosts(f'zone = "{site.zone}" AND state = down') == {h2, h3}
    assert hosts(f'zone = "{site.zone}" AND state = enabled') == {h1}
    assert hosts(f'labels.tag = "{tag}"') == {h1, h2, h4}
    assert hosts(f'labels.tag = "{tag}" AND labels.gpu = "yes"') == {h2}


def test_order_by_create_time_desc(admin: Stubs) -> None:
    """order_by `create_time desc` lists newest first; the default is by name."""
    tag = unique("o")
    created = [create(admin, REGION, labels={"order": tag}).name for _ in range(4)]
    label = f'labels.order = "{tag}"'
    assert names(admin, REGION, label, "create_time desc") == created[::-1]
    assert names(admin, REGION, label, "create_time") == created
    assert names(admin, REGION, label) == sorted(created)
    assert names(admin, REGION, label, "name desc") == sorted(created, reverse=True)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.singular)
def test_paging_returns_every_item_once(admin: Stubs, kind: Kind) -> None:
    """Seven items listed three at a time come as 3, 3 and 1, without repeats."""
    site = make_site(admin)
    tag = unique("pg")
    made = {create(admin, kind, site.parent_of(kind), labels={"page": tag}).name for _ in range(7)}
    sizes, seen, token = [], [], ""
    while True:
        response = call(
            admin, kind.list, filter=f'labels.page = "{tag}"', page_size=3, page_token=token
        )
        items = [r.name for r in getattr(response, kind.plural)]
        sizes.append(len(items))
        seen += items
        token = response.next_page_token
        if not token:
            break
    assert sizes == [3, 3, 1]
    assert len(seen) == len(set(seen)) == 7
    assert set(seen) == made


def test_page_token_is_bound_to_its_query(admin: Stubs) -> None:
    """A page token reused with another filter or order is INVALID_ARGUMENT naming page_token."""
    tag = unique("pt")
    for _ in range(3):
        create(admin, REGION, labels={"bind": tag})
    first = admin.topology.ListRegions(
        tapi.ListRegionsRequest(filter=f'labels.bind = "{tag}"', page_size=1)
    )
    assert first.next_page_token
    for changed in (
        tapi.ListRegionsRequest(filter='labels.bind = "other"'),
        tapi.ListRegionsRequest(filter=f'labels.bind = "{tag}"', order_by="create_time"),
    ):
        changed.page_size = 1
        changed.page_token = first.next_page_token
        code, status = rpc_error(lambda r=changed: admin.topology.ListRegions(r))
        assert code == INVALID_ARGUMENT
        violations = detail(status, error_details_pb2.BadRequest).field_violations
        assert [v.field for v in violations] == ["page_token"]
    code, _ = rpc_error(
        lambda: admin.topology.ListZones(
            tapi.ListZonesRequest(page_size=1, page_token=first.next_page_token)
        )
    )
    assert code == INVALID_ARGUMENT


# --- access ----------------------------------------------------------------------------------


def test_members_read_topology_but_cannot_change_it(admin: Stubs, tenant: Tenant) -> None:
    """Every signed-in user reads the topology; only cloud administrators change it."""
    site = make_site(admin)
    host = create(admin, HOST, site.rack)
    member = tenant.stubs["member"]
    assert get(member, REGION, site.region).name == site.region
    assert get(member, HOST, host.name) == get(admin, HOST, host.name)
    assert names(member, RACK, f'pool = "{site.pool}"') == [site.rack]

    region_id = unique("r")
    attempts = [
        lambda: member.topology.CreateRegion(
            tapi.CreateRegionRequest(region_id=region_id, region=tpb.Region())
        ),
        lambda: member.topology.UpdateZone(
            tapi.UpdateZoneRequest(zone=tpb.Zone(name=site.zone, display_name="mine"))
        ),
        lambda: member.topology.DeletePool(tapi.DeletePoolRequest(name=site.pool)),
        lambda: member.topology.DisableHost(tapi.DisableHostRequest(name=host.name, reason="x")),
        lambda: member.topology.EnableHost(tapi.EnableHostRequest(name=host.name)),
    ]
    before = {k: get(admin, k, getattr(site, k.singular)) for k in PARENT_KINDS}
    host_before = get(admin, HOST, host.name)
    for attempt in attempts:
        code, _ = rpc_error(attempt)
        assert code == PERMISSION_DENIED
    assert {k: get(admin, k, getattr(site, k.singular)) for k in PARENT_KINDS} == before
    assert get(admin, HOST, host.name) == host_before
    code, _ = rpc_error(lambda: get(admin, REGION, f"regions/{region_id}"))
    assert code == NOT_FOUND


def test_anonymous_callers_cannot_read_topology(anonymous: Stubs) -> None:
    """Reading the topology needs a token."""
    code, _ = rpc_error(lambda: anonymous.topology.ListRegions(tapi.ListRegionsRequest()))
    assert code == grpc.StatusCode.UNAUTHENTICATED
