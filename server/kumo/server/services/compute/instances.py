"""Instances: create, read, change, delete, power actions and the serial console.

Every mutation writes desired state and an Operation in one transaction and
returns at once; the handlers in `instance_operations` place the instance and
wait for its host agent to converge (see there). Instances are visible to
their own project only (and cloud administrators); anything else is NOT_FOUND.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, cast

from google.longrunning import operations_pb2
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from kumo.compute.v1 import compute_service_pb2 as api
from kumo.compute.v1 import resources_pb2 as pb
from kumo.image.v1 import resources_pb2 as ipb
from kumo.server.api.convert import check_etag
from kumo.server.api.fields import check_required, update_paths
from kumo.server.api.idempotency import idempotent
from kumo.server.api.names import ID_PATTERN, check_id, parse
from kumo.server.api.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from kumo.server.api.resources import apply_common
from kumo.server.auth.principal import Principal, current_principal
from kumo.server.db.models import (
    HostRow,
    ImageRow,
    InstanceRow,
    KeyPairRow,
    PoolRow,
    SerialOutputRow,
    ServerGroupRow,
)
from kumo.server.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from kumo.server.interceptors.base import Context
from kumo.server.operations import store
from kumo.server.operations.store import Lease
from kumo.server.quota import charge
from kumo.server.services.compute import interfaces, tombstones
from kumo.server.services.compute.attached_volumes import fill_volumes
from kumo.server.services.compute.boot_volumes import take_boot_volume, take_volumes_at_boot
from kumo.server.services.compute.common import (
    INSTANCE_COLUMNS,
    INSTANCES,
    KEY_PAIRS,
    instance_from_values,
    instance_to_proto,
    session_of,
)
from kumo.server.services.compute.instance_operations import (
    ACTION,
    BUILD,
    DELETE,
    REBUILD,
    SNAPSHOT,
    InstanceOperations,
)
from kumo.server.services.compute.launch import launch_facts
from kumo.server.services.compute.locks import LOCK_FIELDS, apply_lock, refuse_if_locked
from kumo.server.services.identity.common import PROJECTS
from kumo.server.services.images import IMAGES, visible_image
from kumo.server.storage import root_disks

MAX_USER_DATA = 64 << 10
# Starts the page tokens of ListInstances with show_deleted once it lists tombstones.
_DELETED_PAGES = "deleted:"
MAX_STOP_TIMEOUT = 3600
_HOSTNAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_BUSY = (pb.Instance.STATE_PROVISIONING, pb.Instance.STATE_DELETING)
S = pb.Instance


def _zone_parent(caller: Principal, parent: str, any_project: bool = False) -> tuple[str, str]:
    """The project and zone ids of a `projects/{project}/zones/{zone}` parent, zone `-` for
    all; with `any_project`, project `-` too: the projects the caller may see, every one
    for a cloud administrator (`-`), else its own. NotFound hides other projects."""
    project_id, zone_id = parse(
        "parent",
        parent,
        "projects/{project}/zones/{zone}",
        project=f"-|{ID_PATTERN}" if any_project else ID_PATTERN,
        zone=f"-|{ID_PATTERN}",
    )
    if project_id == "-":
        return ("-" if caller.cloud_admin else caller.project_id), zone_id
    caller.require_project(project_id, PROJECTS.type_name, f"projects/{project_id}")
    return project_id, zone_id


def visible_instance(
    session: Session, caller: Principal, name: str, field: str = "name"
) -> InstanceRow:
    """The instance named `name` if the caller may see it; NotFound otherwise."""
    project_id = INSTANCES.key(name, field)[0]
    caller.require_project(project_id, INSTANCES.type_name, name)
    return INSTANCES.get(session, name, field)


def refuse_while_migrating(row: InstanceRow, name: str) -> None:
    """FailedPrecondition while a live migration of the instance runs."""
    if row.migration is not None:
        raise FailedPrecondition(
            f"{name} is migrating: wait for it or cancel the migration",
            type="INSTANCE_MIGRATING",
            subject=name,
        )


def _not_from_volume(row: InstanceRow, action: str) -> None:
    """Raises FailedPrecondition for an action on the image-made root disk when the instance
    boots from a volume (it has none)."""
    if row.boot_volume_id:
        name = INSTANCES.name_of_row(row)
        raise FailedPrecondition(
            f"{name} boots from a volume: cannot {action}", type="BOOTS_FROM_VOLUME", subject=name
        )


def _public_keys(
    session: Session, project_id: str, names: Sequence[str], violations: list[FieldViolation]
) -> list[str]:
    """The public keys of the key pairs `names`; one violation (of
    `instance.key_pairs[i]`) added for each that is not a key pair of the project."""
    keys = []
    for index, key_name in enumerate(names):
        field = f"instance.key_pairs[{index}]"
        key = session.get(KeyPairRow, KEY_PAIRS.key(key_name, field))
        if key is None or key.project_id != project_id:
            violations.append(FieldViolation(field, "no such key pair in this project"))
        else:
            keys.append(key.public_key)
    return keys


_REBUILD_CHANGES = ("display_name", "labels", "key_pairs", "user_data", "hostname")


def _check_hostname(spec: pb.Instance, violations: list[FieldViolation]) -> None:
    """Notes a violation unless `spec.hostname` is empty or a DNS label."""
    if spec.hostname and not _HOSTNAME.fullmatch(spec.hostname):
        violations.append(
            FieldViolation("instance.hostname", "a DNS label: lower-case letters, digits, hyphens")
        )


def _rebuild_paths(request: api.RebuildInstanceRequest) -> set[str]:
    """The fields of `request.instance` the rebuild applies; INVALID_ARGUMENT for any
    other in the mask."""
    paths = set(request.update_mask.paths)
    if unknown := sorted(paths.difference(_REBUILD_CHANGES)):
        raise InvalidArgument.field(
            "update_mask",
            f"{', '.join(unknown)}: a rebuild changes only {', '.join(_REBUILD_CHANGES)}",
        )
    return paths


def _apply_rebuild_changes(row: InstanceRow, spec: pb.Instance, paths: set[str]) -> None:
    """Sets the rebuilt instance's new name, labels, key pairs, user data and hostname
    (those in `paths`); InvalidArgument, changing nothing, if any is not acceptable."""
    violations: list[FieldViolation] = []
    keys: list[str] = []
    if "key_pairs" in paths:
        keys = _public_keys(session_of(row), row.project_id, spec.key_pairs, violations)
    if "user_data" in paths and len(spec.user_data) > MAX_USER_DATA:
        violations.append(FieldViolation("instance.user_data", "at most 64 KiB"))
    _set_hostname(row, spec, paths, violations)
    apply_common(row, spec, paths & {"display_name", "labels"}, "instance")
    if "key_pairs" in paths:
        row.key_pairs, row.ssh_authorized_keys = list(spec.key_pairs), keys
    if "user_data" in paths:
        row.user_data = spec.user_data


def _set_hostname(
    row: InstanceRow, spec: pb.Instance, paths: set[str], violations: list[FieldViolation]
) -> None:
    """Sets the hostname when `paths` has it (empty: the instance id); InvalidArgument with
    `violations` and this one, changing nothing, if there are any."""
    if "hostname" in paths:
        _check_hostname(spec, violations)
    if violations:
        raise InvalidArgument(violations)
    if "hostname" in paths:
        row.hostname = spec.hostname or row.id


class InstanceMethods(InstanceOperations):
    """The instance methods of ComputeService."""

    def _validate_spec(
        self, session: Session, caller: Principal, project_id: str, zone_id: str, spec: pb.Instance
    ) -> dict[str, Any]:
        violations: list[FieldViolation] = []
        facts = launch_facts(session, caller, project_id, zone_id, spec.flavor, spec.image)
        if facts.image_min_ram_mib > facts.memory_mib:
            violations.append(
                FieldViolation(
                    "instance.flavor",
                    f"the image needs at least {facts.image_min_ram_mib} MiB of memory",
                )
            )
        if (
            facts.image_min_disk_gib > facts.disk_gib
            or facts.image_virtual_size_bytes > facts.disk_gib << 30
        ):
            violations.append(
                FieldViolation(
                    "instance.flavor", "the flavor's disk is smaller than the image needs"
                )
            )
        keys = _public_keys(session, project_id, spec.key_pairs, violations)
        group_id = None
        if spec.server_group:
            group_project, group_id = parse(
                "instance.server_group",
                spec.server_group,
                "projects/{project}/serverGroups/{server_group}",
            )
            if (
                group_project != project_id
                or session.get(ServerGroupRow, (project_id, group_id)) is None
            ):
                violations.append(
                    FieldViolation("instance.server_group", "no such server group in this project")
                )
        pool_id = None
        if spec.pool:
            pool_id = spec.pool.removeprefix("pools/")
            pool = session.get(PoolRow, pool_id)
            if pool is None or pool.zone_id != zone_id:
                violations.append(FieldViolation("instance.pool", "no such pool in this zone"))
        host_id = None
        if spec.requested_host:
            if not caller.cloud_admin:
                raise PermissionDenied("only cloud administrators may request a host")
            host_id = spec.requested_host.removeprefix("hosts/")
            if session.get(HostRow, host_id) is None:
                violations.append(FieldViolation("instance.requested_host", "no such host"))
        if len(spec.user_data) > MAX_USER_DATA:
            violations.append(FieldViolation("instance.user_data", "at most 64 KiB"))
        _check_hostname(spec, violations)
        if violations:
            raise InvalidArgument(violations)
        return {
            "flavor_id": facts.flavor_id,
            "vcpus": facts.vcpus,
            "memory_mib": facts.memory_mib,
            "disk_gib": facts.disk_gib,
            "image_project_id": facts.image_project_id,
            "image_id": facts.image_id,
            "key_pairs": list(spec.key_pairs),
            "ssh_authorized_keys": keys,
            "server_group_id": group_id,
            "pool_id": pool_id,
            "requested_host_id": host_id,
            "user_data": spec.user_data,
        }

    async def CreateInstance(
        self, request: api.CreateInstanceRequest, context: Context
    ) -> operations_pb2.Operation:
        caller = current_principal()
        project_id, zone_id = _zone_parent(caller, request.parent)
        if zone_id == "-":
            raise InvalidArgument.field("parent", "name one zone to create in")
        check_required(request.instance, "instance.")
        spec = request.instance

        def create(session: Session, lease: Lease | None) -> operations_pb2.Operation:
            values = self._validate_spec(session, caller, project_id, zone_id, spec)
            charge(
                session,
                project_id,
                {"instances": 1, "vcpus": values["vcpus"], "ram_mib": values["memory_mib"]},
            )
            row = InstanceRow(
                project_id=project_id,
                zone_id=zone_id,
                hostname=spec.hostname or request.instance_id,
                power_intent=S.POWER_INTENT_RUNNING,
                state=S.STATE_PROVISIONING,
                status_message="scheduling",
                locked=False,
                locked_reason="",
                locked_by_admin=False,
                **values,
            )
            # The claim on a host is made by the scheduler, not here.
            row.host_id = None
            given = {f.name for f, _ in spec.ListFields()}
            apply_common(row, spec, given & {"display_name", "labels", "tags"}, "instance")
            apply_lock(row, caller, spec, given, request.instance_id)
            INSTANCES.insert(session, request.instance_id, "instance_id", row)
            session.flush()
            take_boot_volume(session, self.runtime, caller, row, spec)
            take_volumes_at_boot(session, self.runtime, caller, row, spec)
            if row.boot_volume_id is None and (pool := self.runtime.config.storage.rbd_root_pool):
                row.root_disk = root_disks.first_name(pool, row.uid)  # the BUILD clones it
            interfaces.create_ports(
                session,
                caller,
                project_id,
                INSTANCES.name_of_row(row),
                row.uid,
                spec.network_interfaces,
            )
            op = store.create(
                session,
                project_id=caller.project_id,
                kind=BUILD,
                target=INSTANCES.name_of_row(row),
                target_uid=row.uid,
                payload=row.uid.encode(),
                lease=lease,
                method="CreateInstance",
            )
            return store.to_proto(op)

        async with self.runtime.writing_operation() as slot:
            operation = await idempotent(
                self.runtime.db,
                "CreateInstance",
                request,
                operations_pb2.Operation,
                partial(create, lease=slot.lease),
            )
            slot.written = operation.name
        if spec.network_interfaces:
            self.runtime.network_changed()
        if spec.HasField("new_boot_volume") or any(not v.volume for v in spec.volumes_at_boot):
            self.runtime.operation_written()  # the new volumes' CREATE_VOLUMEs
        return operation

    async def GetInstance(self, request: api.GetInstanceRequest, context: Context) -> pb.Instance:
        caller = current_principal()
        caller.require_project(INSTANCES.key(request.name)[0], INSTANCES.type_name, request.name)

        retention = self.runtime.config.compute.deleted_instance_retention_seconds

        def read(connection: Connection) -> pb.Instance:
            try:
                row = INSTANCES.fetch(connection, request.name)
            except NotFound:
                if request.show_deleted:
                    deleted = tombstones.exhume(connection, request.name, retention)
                    if deleted is not None:
                        return deleted
                raise
            instance = instance_to_proto(row)
            interfaces.fill_interfaces(connection, [instance])
            fill_volumes(connection, [instance])
            return instance

        return await self.runtime.db.read(read)

    async def ListInstances(
        self, request: api.ListInstancesRequest, context: Context
    ) -> api.ListInstancesResponse:
        caller = current_principal()
        project_id, zone_id = _zone_parent(caller, request.parent, any_project=True)
        where = []
        if project_id != "-":
            where.append(InstanceRow.project_id == project_id)
        if zone_id != "-":
            where.append(InstanceRow.zone_id == zone_id)
        if request.show_deleted and request.page_token.startswith(_DELETED_PAGES):
            deleted_token = request.page_token.removeprefix(_DELETED_PAGES)
            return await self._list_deleted(request, project_id, zone_id, [], deleted_token)

        def page(connection: Connection) -> api.ListInstancesResponse:
            result = INSTANCES.list(
                connection,
                self.runtime.pager,
                request,
                where,
                binding=request.parent,
                plain=True,
                columns=INSTANCE_COLUMNS,
            )
            instances = [instance_from_values(r) for r in result.rows]
            interfaces.fill_interfaces(connection, instances)
            fill_volumes(connection, instances)
            return api.ListInstancesResponse(
                instances=instances, next_page_token=result.next_page_token
            )

        response = await self.runtime.db.read(page)
        if not request.show_deleted or response.next_page_token:
            return response
        return await self._list_deleted(request, project_id, zone_id, list(response.instances))

    async def _list_deleted(
        self,
        request: api.ListInstancesRequest,
        project_id: str,
        zone_id: str,
        live: list[pb.Instance],
        deleted_token: str = "",
    ) -> api.ListInstancesResponse:
        """ListInstances with `show_deleted` once the live instances are listed: `live`, the
        last of them, followed by as many tombstones as the page has room for, from the
        first or from `deleted_token` (the tombstone listing's own token: this listing's
        tokens are `_DELETED_PAGES` + that once it lists tombstones)."""
        size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        if live and len(live) >= size:  # full: the tombstones start on the next page
            token = _DELETED_PAGES
            return api.ListInstancesResponse(instances=live, next_page_token=token)
        deleted = api.ListInstancesRequest()
        deleted.CopyFrom(request)
        deleted.page_size = size - len(live)
        deleted.page_token = deleted_token
        where = []
        if project_id != "-":
            where.append(tombstones.T.project_id == project_id)
        if zone_id != "-":
            where.append(tombstones.T.zone_id == zone_id)
        retention = self.runtime.config.compute.deleted_instance_retention_seconds
        found, token = await self.runtime.db.read(
            lambda c: tombstones.page(c, self.runtime.pager, deleted, where, retention)
        )
        return api.ListInstancesResponse(
            instances=[*live, *found], next_page_token=_DELETED_PAGES + token if token else ""
        )

    async def UpdateInstance(
        self, request: api.UpdateInstanceRequest, context: Context
    ) -> pb.Instance:
        caller = current_principal()
        paths = update_paths(request.instance, request.update_mask, "instance")
        if paths - {"display_name", "labels", "tags", "hostname"} - LOCK_FIELDS:
            raise InvalidArgument.field(
                "update_mask",
                "only display_name, labels, tags, hostname and the lock change here; use the "
                "instance actions for the rest",
            )

        def update(session: Session) -> pb.Instance:
            row = visible_instance(session, caller, request.instance.name, "instance.name")
            check_etag(request.instance.etag, row.version, request.instance.name)
            _set_hostname(row, request.instance, paths, [])
            apply_common(row, request.instance, paths - LOCK_FIELDS - {"hostname"}, "instance")
            apply_lock(row, caller, request.instance, paths, request.instance.name)
            row.version += 1
            session.flush()
            instance = instance_to_proto(row)
            interfaces.fill_interfaces(session, [instance])
            fill_volumes(session, [instance])
            return instance

        return await idempotent(self.runtime.db, "UpdateInstance", request, pb.Instance, update)

    async def DeleteInstance(
        self, request: api.DeleteInstanceRequest, context: Context
    ) -> operations_pb2.Operation:
        caller = current_principal()

        def start(
            session: Session, lease: Lease | None
        ) -> tuple[operations_pb2.Operation, InstanceRow]:
            row = visible_instance(session, caller, request.name)
            check_etag(request.etag, row.version, request.name)
            refuse_while_migrating(row, request.name)
            refuse_if_locked(row, caller, request.name)
            if row.deleting:
                raise FailedPrecondition(
                    f"{request.name} is already being deleted",
                    type="INSTANCE_DELETING",
                    subject=request.name,
                )
            previous = pb.InstanceDeletion(
                previous_state=cast(pb.Instance.State, row.state),
                previous_power_intent=cast(pb.Instance.PowerIntent, row.power_intent),
            )
            row.deleting = True
            row.state = S.STATE_DELETING
            row.status_message = "deleting"
            row.generation += 1
            row.version += 1
            op = store.create(
                session,
                project_id=caller.project_id,
                kind=DELETE,
                target=request.name,
                payload=row.uid.encode(),
                lease=lease,
                detail=previous,
            )
            return store.to_proto(op), row

        return await self._start_operation(request, "DeleteInstance", start)

    async def _action(
        self,
        request: Any,
        verb: str,
        change: Callable[[InstanceRow], bytes | tuple[str, bytes] | None],
        allowed: tuple[int, ...] = (),
        kind: str = ACTION,
    ) -> operations_pb2.Operation:
        """Applies `change` to a settled instance and starts a `kind` operation whose
        payload is what `change` returns (the instance uid by default); a change that
        returns (kind, payload) chooses the operation's kind itself."""
        caller = current_principal()

        def start(
            session: Session, lease: Lease | None
        ) -> tuple[operations_pb2.Operation, InstanceRow]:
            row = visible_instance(session, caller, request.name)
            refuse_while_migrating(row, request.name)
            refuse_if_locked(row, caller, request.name)
            if row.state in _BUSY or row.deleting or row.host_id is None:
                raise FailedPrecondition(
                    f"{request.name} is {pb.Instance.State.Name(row.state)}: wait for it to settle",
                    type="INSTANCE_BUSY",
                    subject=request.name,
                )
            if allowed and row.state not in allowed:
                raise FailedPrecondition(
                    f"{verb} needs the instance in one of "
                    + ", ".join(pb.Instance.State.Name(a) for a in allowed),
                    type="INSTANCE_STATE",
                    subject=request.name,
                )
            outcome = change(row)
            chosen, payload = (
                outcome if isinstance(outcome, tuple) else (kind, outcome or row.uid.encode())
            )
            row.generation += 1
            row.version += 1
            op = store.create(
                session,
                project_id=caller.project_id,
                kind=chosen,
                target=request.name,
                payload=payload,
                status_message=verb,
                lease=lease,
                method=verb,
            )
            return store.to_proto(op), row

        return await self._start_operation(request, verb, start)

    async def _start_operation(
        self,
        request: Any,
        verb: str,
        start: Callable[[Session, Lease | None], tuple[operations_pb2.Operation, InstanceRow]],
    ) -> operations_pb2.Operation:
        """Writes an operation with `start` (given the local controller's lease, if any,
        for `store.create`; it returns the operation and the instance row it changed),
        starts it, and wakes the instance's hosts."""
        changed: list[InstanceRow] = []

        def write(session: Session) -> operations_pb2.Operation:
            operation, row = start(session, slot.lease)
            changed[:] = [row]  # (a transaction run again replaces its first run's row)
            return operation

        async with self.runtime.writing_operation() as slot:
            operation = await idempotent(
                self.runtime.db, verb, request, operations_pb2.Operation, write
            )
            slot.written = operation.name
        if changed:
            row = changed[0]
            self.notify_hosts(row.host_id, row.migration_host_id, about=row.uid)
        else:  # a repeated request_id, answered from the first call's record
            await self.notify_host_of(request.name)
        return operation

    async def StartInstance(
        self, request: api.StartInstanceRequest, context: Context
    ) -> operations_pb2.Operation:
        return await self._action(
            request, "StartInstance", lambda r: setattr(r, "power_intent", S.POWER_INTENT_RUNNING)
        )

    async def StopInstance(
        self, request: api.StopInstanceRequest, context: Context
    ) -> operations_pb2.Operation:
        if not 0 <= request.timeout_seconds <= MAX_STOP_TIMEOUT:
            raise InvalidArgument.field("timeout_seconds", f"0 to {MAX_STOP_TIMEOUT} seconds")

        def stop(row: InstanceRow) -> None:
            row.power_intent = S.POWER_INTENT_STOPPED
            row.stop_timeout_seconds = request.timeout_seconds

        return await self._action(request, "StopInstance", stop)

    async def SuspendInstance(
        self, request: api.SuspendInstanceRequest, context: Context
    ) -> operations_pb2.Operation:
        def suspend(row: InstanceRow) -> None:
            row.power_intent = S.POWER_INTENT_SUSPENDED
            row.paused = request.pause

        return await self._action(
            request, "SuspendInstance", suspend, (S.STATE_RUNNING, S.STATE_SUSPENDED)
        )

    async def ResumeInstance(
        self, request: api.ResumeInstanceRequest, context: Context
    ) -> operations_pb2.Operation:
        return await self._action(
            request,
            "ResumeInstance",
            lambda r: setattr(r, "power_intent", S.POWER_INTENT_RUNNING),
            (S.STATE_SUSPENDED, S.STATE_RUNNING),
        )

    async def RebootInstance(
        self, request: api.RebootInstanceRequest, context: Context
    ) -> operations_pb2.Operation:
        def reboot(row: InstanceRow) -> None:
            row.reboot_serial += 1
            row.reboot_hard = request.type == api.REBOOT_TYPE_HARD
            row.power_intent = S.POWER_INTENT_RUNNING

        return await self._action(request, "RebootInstance", reboot, (S.STATE_RUNNING,))

    async def RebuildInstance(
        self, request: api.RebuildInstanceRequest, context: Context
    ) -> operations_pb2.Operation:
        caller = current_principal()
        image_id = None
        if request.image:
            image_name = request.image
            image_row = await self.runtime.db.run(
                lambda s: visible_image(s, caller, image_name, "image")
            )
            if image_row.state != ipb.Image.STATE_ACTIVE:
                raise FailedPrecondition(
                    f"{request.image} is not ACTIVE", type="IMAGE_NOT_ACTIVE", subject=request.image
                )
            image_id = (image_row.project_id, image_row.id)

        paths = _rebuild_paths(request)

        def rebuild(row: InstanceRow) -> bytes | None:
            _not_from_volume(row, "rebuild it")
            _apply_rebuild_changes(row, request.instance, paths)
            if image_id is not None:
                row.image_project_id, row.image_id = image_id
            if row.root_disk is not None:  # the operation clones the new image, then rebuilds
                new = root_disks.next_name(row.root_disk, row.uid)
                return f"{row.uid}|{new}|{row.root_disk}".encode()
            row.rebuild_serial += 1
            return None

        return await self._action(request, "RebuildInstance", rebuild, kind=REBUILD)

    async def SnapshotInstance(
        self, request: api.SnapshotInstanceRequest, context: Context
    ) -> operations_pb2.Operation:
        image_id = check_id("image_id", request.image_id)

        def snapshot(row: InstanceRow) -> bytes:
            _not_from_volume(row, "snapshot it (snapshot the volume)")
            session = session_of(row)
            base = session.get(ImageRow, (row.image_project_id, row.image_id))
            image = ImageRow(
                project_id=row.project_id,
                disk_format=ipb.DISK_FORMAT_QCOW2,
                state=ipb.Image.STATE_PENDING_UPLOAD,
                visibility=ipb.VISIBILITY_PRIVATE,
                min_disk_gib=row.disk_gib,
                min_ram_mib=base.min_ram_mib if base else 0,
                source_instance=INSTANCES.name_of_row(row),
                display_name=f"snapshot of {row.id}"[:63],
            )
            IMAGES.insert(session, image_id, "image_id", image)
            row.snapshot_serial += 1
            row.snapshot_image = IMAGES.name_of(row.project_id, image_id)
            return f"{row.uid}/{row.project_id}/{image_id}".encode()

        return await self._action(
            request,
            "SnapshotInstance",
            snapshot,
            (S.STATE_RUNNING, S.STATE_STOPPED, S.STATE_SUSPENDED),
            kind=SNAPSHOT,
        )

    async def GetSerialPortOutput(
        self, request: api.GetSerialPortOutputRequest, context: Context
    ) -> api.GetSerialPortOutputResponse:
        caller = current_principal()
        if request.start < 0:
            raise InvalidArgument.field("start", "must not be negative")

        def read(session: Session) -> api.GetSerialPortOutputResponse:
            row = visible_instance(session, caller, request.name)
            out = session.scalar(
                select(SerialOutputRow).where(SerialOutputRow.instance_uid == row.uid)
            )
            if out is None:
                return api.GetSerialPortOutputResponse()
            begin = max(request.start, out.start)
            chunk = out.data[begin - out.start :]
            return api.GetSerialPortOutputResponse(
                contents=chunk.decode("utf-8", "replace"),
                start=begin,
                next=out.start + len(out.data),
            )

        return await self.runtime.db.run(read)
