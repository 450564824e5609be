"""TopologyService: regions → zones → pools → racks → hosts.

Each kind is described once by a `Kind` (its collection, its parent reference,
its child collection and its own fields); the standard methods are built from
that description. Everyone signed in reads; cloud administrators write (see
the policy table). A parent with children cannot be deleted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from google.longrunning import operations_pb2
from google.protobuf import empty_pb2
from google.protobuf.message import Message
from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from kumo.server.api.convert import check_etag, common_fields, timestamp
from kumo.server.api.fields import check_required, update_paths
from kumo.server.api.filtering import enum_value
from kumo.server.api.idempotency import idempotent
from kumo.server.api.resources import Collection, apply_common, equals, reference
from kumo.server.auth.principal import current_principal
from kumo.server.db.base import utcnow
from kumo.server.db.models import HostRow, PoolRow, RackRow, RegionRow, ZoneRow
from kumo.server.errors import FailedPrecondition, InvalidArgument
from kumo.server.interceptors.base import Context
from kumo.server.operations import store
from kumo.server.runtime import Runtime
from kumo.topology.v1 import resources_pb2 as pb
from kumo.topology.v1 import topology_service_pb2 as api
from kumo.topology.v1 import topology_service_pb2_grpc as rpc
from kumo.type.v1 import condition_pb2

# The operation that empties a host in maintenance mode (its handler is compute's).
DRAIN_HOST = "compute.DrainHost"
DEFAULT_DRAIN_CONCURRENCY = 2
MAX_DRAIN_CONCURRENCY = 16

REGIONS = Collection("topology.kumo.dev/Region", "regions/{region}", RegionRow)
ZONES = Collection(
    "topology.kumo.dev/Zone",
    "zones/{zone}",
    ZoneRow,
    filters={"region": reference(ZoneRow.region_id, REGIONS.pattern)},
)
POOLS = Collection(
    "topology.kumo.dev/Pool",
    "pools/{pool}",
    PoolRow,
    filters={
        "zone": reference(PoolRow.zone_id, ZONES.pattern),
        "hypervisor_kind": lambda v: PoolRow.hypervisor_kind == enum_value(pb.HypervisorKind, v),
    },
)
RACKS = Collection(
    "topology.kumo.dev/Rack",
    "racks/{rack}",
    RackRow,
    filters={"pool": reference(RackRow.pool_id, POOLS.pattern)},
)


def _racks_in(column: Any, value_of: Callable[[str], Any]) -> Callable[[str], Any]:
    return lambda value: HostRow.rack_id.in_(select(RackRow.id).where(column == value_of(value)))


@dataclass(frozen=True)
class Kind:
    """One topology resource kind and how its messages map onto its rows."""

    title: str  # Region
    singular: str  # region
    plural: str  # regions
    collection: Collection[Any]
    message: type[Message]
    # The field referencing the parent, its collection and the row column holding the id.
    parent: tuple[str, Collection[Any], str] | None
    # The child collection and its column referencing this kind, to refuse non-empty deletes.
    child: tuple[Collection[Any], Any] | None
    # Copies kind-specific writable fields (besides display_name/description/labels).
    apply: Callable[[Any, Any, set[str]], None] = lambda row, msg, paths: None
    # Kind-specific message fields.
    extra: Callable[[Any, Runtime], dict[str, Any]] = lambda row, runtime: {}
    # Copies the kind's immutable fields, set once at creation.
    on_create: Callable[[Any, Any], None] = lambda row, msg: None
    # Refuses a delete for a reason of the kind's own.
    delete_guard: Callable[[Any, Runtime], None] = field(default=lambda row, runtime: None)


def _apply_rack(row: RackRow, msg: pb.Rack, paths: set[str]) -> None:
    if "location" in paths:
        if len(msg.location) > 255:
            raise InvalidArgument.field("rack.location", "at most 255 characters")
        row.location = msg.location


def _apply_host(row: HostRow, msg: pb.Host, paths: set[str]) -> None:
    if "address" in paths:
        if len(msg.address) > 255:
            raise InvalidArgument.field("host.address", "at most 255 characters")
        row.address = msg.address
    if "capacity" in paths:
        capacity = msg.capacity
        for field_name in ("vcpus", "memory_mib", "disk_gib"):
            value = getattr(capacity, field_name)
            if value < 0 or value > 2**40:
                raise InvalidArgument.field(f"host.capacity.{field_name}", "out of range")
        row.vcpus, row.memory_mib, row.disk_gib = (
            capacity.vcpus,
            capacity.memory_mib,
            capacity.disk_gib,
        )


def host_state(row: HostRow, runtime: Runtime) -> int:
    """The reported state: DOWN when the heartbeat is missing or stale, else the admin state."""
    timeout = timedelta(seconds=runtime.config.topology.heartbeat_timeout_seconds)
    beat = row.last_heartbeat_time
    if beat is None or utcnow() - beat > timeout:
        return pb.Host.STATE_DOWN
    return row.admin_state


def _host_extra(row: HostRow, runtime: Runtime) -> dict[str, Any]:
    state = host_state(row, runtime)
    heartbeat = condition_pb2.Condition(
        type="Heartbeat",
        status=condition_pb2.Condition.STATUS_FALSE
        if state == pb.Host.STATE_DOWN
        else condition_pb2.Condition.STATUS_TRUE,
        reason="NoHeartbeat" if row.last_heartbeat_time is None else "HeartbeatReceived",
        last_transition_time=timestamp(row.last_heartbeat_time),
    )
    pool = row.rack.pool
    return {
        "rack": RACKS.name_of(row.rack_id),
        "pool": POOLS.name_of(pool.id),
        "zone": ZONES.name_of(pool.zone_id),
        "hypervisor_kind": pool.hypervisor_kind,
        "address": row.address,
        "capacity": pb.HostCapacity(
            vcpus=row.vcpus, memory_mib=row.memory_mib, disk_gib=row.disk_gib
        ),
        "allocated": pb.HostCapacity(
            vcpus=row.used_vcpus, memory_mib=row.used_memory_mib, disk_gib=row.used_disk_gib
        ),
        "instance_count": row.instance_count,
        "state": state,
        "disabled_reason": row.disabled_reason,
        "last_heartbeat_time": timestamp(row.last_heartbeat_time),
        "conditions": [heartbeat],
    }


def host_to_proto(row: HostRow, runtime: Runtime) -> pb.Host:
    """Renders a host row (as GetHost does)."""
    return pb.Host(**common_fields(row, f"hosts/{row.id}"), **_host_extra(row, runtime))


def _host_delete_guard(row: HostRow, runtime: Runtime) -> None:
    if host_state(row, runtime) not in (pb.Host.STATE_DISABLED, pb.Host.STATE_DOWN):
        raise FailedPrecondition(
            f"host {row.id} is in service: disable it first",
            type="HOST_IN_SERVICE",
            subject=f"hosts/{row.id}",
        )


def _host_filters(runtime: Runtime) -> dict[str, Callable[[str], Any]]:
    def state(value: str) -> Any:
        number = enum_value(pb.Host.State, value)
        cutoff = utcnow() - timedelta(seconds=runtime.config.topology.heartbeat_timeout_seconds)
        stale = or_(HostRow.last_heartbeat_time.is_(None), HostRow.last_heartbeat_time < cutoff)
        if number == pb.Host.STATE_DOWN:
            return stale
        return (HostRow.admin_state == number) & ~stale

    return {
        "rack": reference(HostRow.rack_id, RACKS.pattern),
        "pool": _racks_in(RackRow.pool_id, lambda v: v.removeprefix("pools/")),
        "zone": lambda value: HostRow.rack_id.in_(
            select(RackRow.id)
            .join(PoolRow, RackRow.pool_id == PoolRow.id)
            .where(PoolRow.zone_id == value.removeprefix("zones/"))
        ),
        "hypervisor_kind": lambda value: HostRow.rack_id.in_(
            select(RackRow.id)
            .join(PoolRow, RackRow.pool_id == PoolRow.id)
            .where(PoolRow.hypervisor_kind == enum_value(pb.HypervisorKind, value))
        ),
        "state": state,
        "address": equals(HostRow.address),
    }


def build_kinds(runtime: Runtime) -> list[Kind]:
    """The five kinds, outermost first."""
    hosts = Collection(
        "topology.kumo.dev/Host", "hosts/{host}", HostRow, filters=_host_filters(runtime)
    )
    return [
        Kind("Region", "region", "regions", REGIONS, pb.Region, None, (ZONES, ZoneRow.region_id)),
        Kind(
            "Zone",
            "zone",
            "zones",
            ZONES,
            pb.Zone,
            ("region", REGIONS, "region_id"),
            (POOLS, PoolRow.zone_id),
            extra=lambda row, _: {"region": REGIONS.name_of(row.region_id)},
        ),
        Kind(
            "Pool",
            "pool",
            "pools",
            POOLS,
            pb.Pool,
            ("zone", ZONES, "zone_id"),
            (RACKS, RackRow.pool_id),
            extra=lambda row, _: {
                "zone": ZONES.name_of(row.zone_id),
                "hypervisor_kind": row.hypervisor_kind,
            },
            on_create=lambda row, msg: setattr(row, "hypervisor_kind", msg.hypervisor_kind),
        ),
        Kind(
            "Rack",
            "rack",
            "racks",
            RACKS,
            pb.Rack,
            ("pool", POOLS, "pool_id"),
            (hosts, HostRow.rack_id),
            apply=_apply_rack,
            extra=lambda row, _: {"pool": POOLS.name_of(row.pool_id), "location": row.location},
        ),
        Kind(
            "Host",
            "host",
            "hosts",
            hosts,
            pb.Host,
            ("rack", RACKS, "rack_id"),
            None,
            apply=_apply_host,
            extra=_host_extra,
            delete_guard=_host_delete_guard,
        ),
    ]


class TopologyService(rpc.TopologyServiceServicer):
    """The servicer; its standard methods are attached per Kind below the class."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.kinds = {kind.title: kind for kind in build_kinds(runtime)}

    def to_proto(self, kind: Kind, row: Any) -> Message:
        """Renders a row of `kind` as its message."""
        fields = common_fields(row, kind.collection.name_of(row.id))
        if hasattr(row, "description") and "description" in kind.message.DESCRIPTOR.fields_by_name:
            fields["description"] = row.description
        fields.update(kind.extra(row, self.runtime))
        return kind.message(**fields)

    async def create(self, kind: Kind, request: Any, context: Context) -> Message:
        """Create<Kind>: checks the resource's REQUIRED fields and its parent, then inserts."""
        message = getattr(request, kind.singular)
        check_required(message, f"{kind.singular}.")
        row_id = getattr(request, f"{kind.singular}_id")

        def create(session: Session) -> Message:
            row = kind.collection.row()
            if kind.parent is not None:
                field_name, parent, column = kind.parent
                parent_row = parent.get(
                    session, getattr(message, field_name), f"{kind.singular}.{field_name}"
                )
                setattr(row, column, parent_row.id)
            kind.on_create(row, message)
            paths = {"display_name", "description", "labels"} & set(
                message.DESCRIPTOR.fields_by_name
            )
            apply_common(row, message, paths, kind.singular)
            kind.apply(row, message, {f.name for f, _ in message.ListFields()})
            kind.collection.insert(session, row_id, f"{kind.singular}_id", row)
            session.flush()
            session.refresh(row)
            return self.to_proto(kind, row)

        return await idempotent(
            self.runtime.db, f"Create{kind.title}", request, kind.message, create
        )

    async def get(self, kind: Kind, request: Any, context: Context) -> Message:
        """Get<Kind>."""
        return await self.runtime.db.run(
            lambda s: self.to_proto(kind, kind.collection.get(s, request.name))
        )

    async def list(self, kind: Kind, request: Any, context: Context) -> Message:
        """List<Kind>s: one page, filtered and ordered."""

        def page(session: Session) -> Message:
            result = kind.collection.list(session, self.runtime.pager, request)
            response = getattr(api, f"List{kind.title}sResponse")()
            getattr(response, kind.plural).extend(self.to_proto(kind, r) for r in result.rows)
            response.next_page_token = result.next_page_token
            return response

        return await self.runtime.db.run(page)

    async def update(self, kind: Kind, request: Any, context: Context) -> Message:
        """Update<Kind>: applies the masked fields if the etag (when given) matches."""
        message = getattr(request, kind.singular)
        paths = update_paths(message, request.update_mask, kind.singular)

        def update(session: Session) -> Message:
            row = kind.collection.get(session, message.name, f"{kind.singular}.name")
            check_etag(message.etag, row.version, message.name)
            apply_common(row, message, paths, kind.singular)
            kind.apply(row, message, paths)
            row.version += 1
            session.flush()
            return self.to_proto(kind, row)

        return await idempotent(
            self.runtime.db, f"Update{kind.title}", request, kind.message, update
        )

    async def delete(self, kind: Kind, request: Any, context: Context) -> Message:
        """Delete<Kind>: refused while children exist or the kind's guard objects."""

        def delete(session: Session) -> Message:
            row = kind.collection.get(session, request.name)
            check_etag(request.etag, row.version, request.name)
            if kind.child is not None:
                child, column = kind.child
                if session.scalar(select(exists().where(column == row.id))):
                    raise FailedPrecondition(
                        f"{request.name} still has {child.pattern.split('/')[0]}",
                        type="NOT_EMPTY",
                        subject=request.name,
                    )
            kind.delete_guard(row, self.runtime)
            session.delete(row)
            return empty_pb2.Empty()

        return await idempotent(
            self.runtime.db, f"Delete{kind.title}", request, empty_pb2.Empty, delete
        )

    async def _set_host_state(self, name: str, state: int, reason: str) -> Message:
        if len(reason) > 255:
            raise InvalidArgument.field("reason", "at most 255 characters")
        kind = self.kinds["Host"]

        def change(session: Session) -> Message:
            row = kind.collection.get(session, name)
            if (row.admin_state, row.disabled_reason) != (state, reason):
                row.admin_state, row.disabled_reason = state, reason
                row.version += 1
                session.flush()
            return self.to_proto(kind, row)

        return await self.runtime.db.run(change)

    async def EnterHostMaintenance(
        self, request: api.EnterHostMaintenanceRequest, context: Context
    ) -> operations_pb2.Operation:
        limit = request.max_concurrent_migrations or DEFAULT_DRAIN_CONCURRENCY
        if not 1 <= limit <= MAX_DRAIN_CONCURRENCY:
            raise InvalidArgument.field("max_concurrent_migrations", "1 to 16 (0: 2)")
        caller = current_principal()
        kind = self.kinds["Host"]

        def enter(session: Session) -> operations_pb2.Operation:
            row = kind.collection.get(session, request.name)
            if row.admin_state != pb.Host.STATE_MAINTENANCE:
                row.admin_state, row.disabled_reason = pb.Host.STATE_MAINTENANCE, "maintenance"
                row.version += 1
            operation = store.create(
                session,
                project_id=caller.project_id,
                kind=DRAIN_HOST,
                target=request.name,
                payload=f"{row.id}/{limit}".encode(),
                status_message="EnterHostMaintenance",
                method="EnterHostMaintenance",
            )
            return store.to_proto(operation)

        operation = await idempotent(
            self.runtime.db, "EnterHostMaintenance", request, operations_pb2.Operation, enter
        )
        self.runtime.operation_written()
        return operation

    async def ExitHostMaintenance(
        self, request: api.ExitHostMaintenanceRequest, context: Context
    ) -> Message:
        kind = self.kinds["Host"]

        def leave(session: Session) -> Message:
            row = kind.collection.get(session, request.name)
            if row.admin_state == pb.Host.STATE_MAINTENANCE:  # a DISABLED host stays so
                row.admin_state, row.disabled_reason = pb.Host.STATE_ENABLED, ""
                row.version += 1
                session.flush()
            return self.to_proto(kind, row)

        return await self.runtime.db.run(leave)

    async def EnableHost(self, request: api.EnableHostRequest, context: Context) -> Message:
        return await self._set_host_state(request.name, pb.Host.STATE_ENABLED, "")

    async def DisableHost(self, request: api.DisableHostRequest, context: Context) -> Message:
        return await self._set_host_state(request.name, pb.Host.STATE_DISABLED, request.reason)


def _bind(verb: str, title: str) -> Callable[..., Any]:
    async def method(self: TopologyService, request: Any, context: Context) -> Message:
        handler = getattr(self, verb.lower())
        return await handler(self.kinds[title], request, context)

    return method


for _title in ("Region", "Zone", "Pool", "Rack", "Host"):
    for _verb in ("Create", "Get", "Update", "Delete"):
        setattr(TopologyService, f"{_verb}{_title}", _bind(_verb, _title))
    setattr(TopologyService, f"List{_title}s", _bind("List", _title))
