"""AgentService: the API side of the host agents' contract.

Agents register their host, send heartbeats, keep one WatchAssignments stream
open and report what they observe. The stream sends the host's complete set of
assignments on connect and at least every `RESYNC_SECONDS`, so an agent converges even
if a wake-up is lost or came from another API replica; in between, whenever they change
(an in-process wake-up keyed `host:<id>`; the changes of the next `COALESCE_SECONDS` are
sent with it), either just the instances the wake-ups named or, if one named none, the
complete set again. Reports from a host the instance is no longer placed on are
ignored.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Update,
    bindparam,
    case,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from kumo.agent.v1 import agent_service_pb2 as api
from kumo.agent.v1 import agent_service_pb2_grpc as rpc
from kumo.compute.v1 import resources_pb2 as cpb
from kumo.drivers.compute.base import ROOT_DISK_SERIAL
from kumo.image.v1 import resources_pb2 as ipb
from kumo.server.api.names import check_id, parse_one
from kumo.server.controllers import claims
from kumo.server.db.base import utcnow
from kumo.server.db.engine import core
from kumo.server.db.models import HostRow, ImageRow, InstanceRow, RackRow, SerialOutputRow
from kumo.server.errors import InvalidArgument, NotFound
from kumo.server.interceptors.base import Context
from kumo.server.runtime import Runtime
from kumo.server.services.compute import interfaces, migration_record
from kumo.server.services.compute.common import INSTANCES, instance_by_uid
from kumo.server.services.storage.attachments import root_volume, volume_attachments
from kumo.server.services.topology import host_to_proto
from kumo.topology.v1 import resources_pb2 as tpb

RESYNC_SECONDS = 30.0
COALESCE_SECONDS = 0.05
SERIAL_WINDOW = 1 << 20
MAX_SERIAL_CHUNK = 64 << 10


def _reporting(with_state: bool) -> Update:
    """The UPDATE of an agent's report on an instance on its host: the observed generation
    and serials only grow; with `with_state`, the state and its message unless the
    instance is being deleted. One statement, so no concurrent change is lost."""
    table = InstanceRow.__table__.c

    def grown(column: ColumnElement[Any], name: str) -> ColumnElement[int]:
        given = bindparam(name, type_=BigInteger)
        return case((column < given, given), else_=column)

    statement = (
        update(InstanceRow)
        .where(InstanceRow.uid == bindparam("report_uid"))
        .where(InstanceRow.host_id == bindparam("report_host"))
        .values(
            observed_generation=grown(table.observed_generation, "seen_generation"),
            observed_reboot_serial=grown(table.observed_reboot_serial, "seen_reboot"),
            observed_snapshot_serial=grown(table.observed_snapshot_serial, "seen_snapshot"),
            observed_resize_serial=grown(table.observed_resize_serial, "seen_resize"),
            observed_rebuild_serial=grown(table.observed_rebuild_serial, "seen_rebuild"),
        )
        .returning(InstanceRow.project_id, InstanceRow.zone_id, InstanceRow.id, InstanceRow.uid)
    )
    if with_state:
        statement = statement.values(
            state=case((table.deleting, table.state), else_=bindparam("new_state")),
            status_message=case((table.deleting, table.status_message), else_=bindparam("message")),
        )
    return statement


# Built once (docs/decisions.md, "Statements built once"): every report of an instance's
# state, and every guest's console output, arrives through them.
_REPORT = _reporting(with_state=False)
_REPORT_STATE = _reporting(with_state=True)
_SERIAL_OUTPUT = select(SerialOutputRow.start, SerialOutputRow.data).where(
    SerialOutputRow.instance_uid == bindparam("uid")
)
_INSTANCE_EXISTS = select(InstanceRow.uid).where(InstanceRow.uid == bindparam("uid"))
_NEW_SERIAL_OUTPUT = insert(SerialOutputRow)
# (the columns set are the parameters' names: `start`, `data`)
_SET_SERIAL_OUTPUT = update(SerialOutputRow).where(
    SerialOutputRow.instance_uid == bindparam("owner_uid")
)


def _host_id(name: str, field: str) -> str:
    return parse_one(field, name, "hosts/{host}")


def assignments(
    session: Session, host_id: str, volumes_dir: Path = Path(), uids: set[str] | None = None
) -> list[api.InstanceAssignment]:
    """Everything that should be on the host now, and what migrates to it (`volumes_dir`:
    the qcow2 volume root); with `uids`, only those instances, and each of them that is no
    longer on the host as a deleted assignment (it must go)."""
    query = select(InstanceRow).where(
        or_(InstanceRow.host_id == host_id, InstanceRow.migration_host_id == host_id)
    )
    if uids is not None:
        query = query.where(InstanceRow.uid.in_(uids))
    rows = list(session.scalars(query))
    attached = volume_attachments(
        session, volumes_dir, [(row.project_id, row.zone_id, row.id) for row in rows]
    )
    nics = interfaces.nic_assignments(session, rows)
    result = []
    for row in rows:
        image = session.get(ImageRow, (row.image_project_id, row.image_id))
        volumes = attached[(row.project_id, row.zone_id, row.id)]
        result.append(
            api.InstanceAssignment(
                instance=INSTANCES.name_of_row(row),
                instance_uid=row.uid,
                generation=row.generation,
                deleted=row.deleting,
                power_intent=cast(cpb.Instance.PowerIntent, row.power_intent),
                vcpus=row.vcpus,
                memory_mib=row.memory_mib,
                disk_gib=row.disk_gib,
                image=f"projects/{row.image_project_id}/images/{row.image_id}",
                image_sha256=image.checksum_sha256 if image else "",
                image_format=cast(ipb.DiskFormat, image.disk_format if image else 0),
                hostname=row.hostname,
                ssh_authorized_keys=row.ssh_authorized_keys,
                user_data=row.user_data,
                reboot_serial=row.reboot_serial,
                reboot_hard=row.reboot_hard,
                rebuild_serial=row.rebuild_serial,
                stop_timeout_seconds=row.stop_timeout_seconds,
                snapshot_serial=row.snapshot_serial,
                resize_serial=row.resize_serial,
                snapshot_image=row.snapshot_image,
                migration=migration_record.assignment_part(row, host_id),
                volumes=volumes,
                nics=nics[row.uid],
                root_volume=root_volume(
                    session, row.project_id, row.zone_id, row.boot_volume_id, volumes
                )
                or root_disk(row),
            )
        )
    gone = (uids or set()) - {row.uid for row in rows}
    result.extend(api.InstanceAssignment(instance_uid=uid, deleted=True) for uid in sorted(gone))
    return result


def root_disk(row: InstanceRow) -> api.VolumeAttachment | None:
    """The instance's root disk in Ceph as the guest's root volume (storage/root_disks.py),
    at the flavor's size: the agent grows the running guest's disk to it after a resize."""
    if row.root_disk is None:
        return None
    return api.VolumeAttachment(
        serial=ROOT_DISK_SERIAL, kind="rbd", path=row.root_disk, size_bytes=row.disk_gib << 30
    )


class AgentService(rpc.AgentServiceServicer):
    """The agent-facing servicer."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def RegisterHost(self, request: api.RegisterHostRequest, context: Context) -> tpb.Host:
        host = request.host
        host_id = check_id("host.name", _host_id(host.name, "host.name"))
        capacity = host.capacity
        if capacity.vcpus <= 0 or capacity.memory_mib <= 0 or capacity.disk_gib < 0:
            raise InvalidArgument.field("host.capacity", "vcpus and memory_mib must be positive")

        def register(session: Session) -> tpb.Host:
            row = session.get(HostRow, host_id)
            if row is None:
                rack_id = parse_one("host.rack", host.rack, "racks/{rack}")
                if session.get(RackRow, rack_id) is None:
                    raise NotFound("topology.kumo.dev/Rack", host.rack)
                row = HostRow(id=host_id, rack_id=rack_id, display_name=host.display_name)
                session.add(row)
            row.address = host.address[:255]
            row.vcpus, row.memory_mib, row.disk_gib = (
                capacity.vcpus,
                capacity.memory_mib,
                capacity.disk_gib,
            )
            row.last_heartbeat_time = utcnow()
            session.flush()
            session.refresh(row)
            return host_to_proto(row, self.runtime)

        return await self.runtime.db.run(register)

    async def Heartbeat(
        self, request: api.HeartbeatRequest, context: Context
    ) -> api.HeartbeatResponse:
        host_id = _host_id(request.host, "host")

        def beat(session: Session) -> None:
            row = session.get(HostRow, host_id)
            if row is None:
                raise NotFound("topology.kumo.dev/Host", request.host)
            row.last_heartbeat_time = utcnow()

        await self.runtime.db.run(beat)
        timeout = self.runtime.config.topology.heartbeat_timeout_seconds
        return api.HeartbeatResponse(timeout_seconds=int(timeout))

    async def WatchAssignments(
        self, request: api.WatchAssignmentsRequest, context: Context
    ) -> AsyncIterator[api.WatchAssignmentsResponse]:
        host_id = _host_id(request.host, "host")
        if await self.runtime.db.run(lambda s: s.get(HostRow, host_id)) is None:
            raise NotFound("topology.kumo.dev/Host", request.host)
        volumes = self.runtime.config.volumes_dir
        # Listening all along: a change committed after a read is notified after it and
        # goes into the next round. A notification naming an instance (BUILD, DELETE) sends
        # just that instance; any other sends everything again (a full resync).
        with self.runtime.notifier.listening(f"host:{host_id}") as changed:
            about: set[str] | None = None
            resync_due = 0.0
            while True:
                changed.clear()
                if time.monotonic() >= resync_due:
                    about = None
                if about is None:
                    resync_due = time.monotonic() + RESYNC_SECONDS
                current = await self.runtime.db.run(
                    partial(assignments, host_id=host_id, volumes_dir=volumes, uids=about)
                )
                yield api.WatchAssignmentsResponse(full_resync=about is None, assignments=current)
                try:
                    await asyncio.wait_for(changed.wait(), resync_due - time.monotonic())
                except TimeoutError:
                    continue
                # Changes coming in a burst (one per instance a busy API places or
                # deletes) are read together, after this pause.
                await asyncio.sleep(COALESCE_SECONDS)
                about = None if changed.about is None else set(changed.about)

    async def ReportInstanceStatus(
        self, request: api.ReportInstanceStatusRequest, context: Context
    ) -> api.ReportInstanceStatusResponse:
        host_id = _host_id(request.host, "host")

        def report(session: Session) -> bool:
            """Records the report; returns whether the instance's ports' status is behind
            what the guest now does (the network reconciler should look at OVN again)."""
            if request.removed:
                row = instance_by_uid(session, request.instance_uid)
                if row is not None and row.host_id == host_id and row.deleting:
                    claims.release(session, row.uid)
                    row.host_id = None
                return False
            values = {
                "report_uid": request.instance_uid,
                "report_host": host_id,
                "seen_generation": request.observed_generation,
                "seen_reboot": request.observed_reboot_serial,
                "seen_snapshot": request.observed_snapshot_serial,
                "seen_resize": request.observed_resize_serial,
                "seen_rebuild": request.observed_rebuild_serial,
                "new_state": request.state,
                "message": request.message[:1024],
            }
            statement = _REPORT_STATE if request.state else _REPORT
            # (not on the instance's row: a stale report, the instance moved or is gone)
            owner = core(session).execute(statement, values).first()
            running = request.state == cpb.Instance.STATE_RUNNING
            return owner is not None and interfaces.ports_behind(session, owner, running)

        if await self.runtime.db.run(report):
            self.runtime.network_changed()
        self.runtime.notifier.notify(f"instance:{request.instance_uid}")
        return api.ReportInstanceStatusResponse()

    async def ReportMigrationStatus(
        self, request: api.ReportMigrationStatusRequest, context: Context
    ) -> api.ReportMigrationStatusResponse:
        host_id = _host_id(request.host, "host")

        def report(session: Session) -> bool:
            row = instance_by_uid(session, request.instance_uid)
            return row is not None and migration_record.apply_report(row, host_id, request)

        if await self.runtime.db.run(report):
            self.runtime.notifier.notify(f"instance:{request.instance_uid}")
        return api.ReportMigrationStatusResponse()

    async def AppendSerialPortOutput(
        self, request: api.AppendSerialPortOutputRequest, context: Context
    ) -> api.AppendSerialPortOutputResponse:
        if len(request.data) > MAX_SERIAL_CHUNK:
            raise InvalidArgument.field("data", "at most 64 KiB per call")
        if request.offset < 0:
            raise InvalidArgument.field("offset", "must not be negative")

        def append(session: Session) -> int:
            connection = core(session)
            uid = request.instance_uid
            found = connection.execute(_SERIAL_OUTPUT, {"uid": uid}).first()
            if found is None:  # the first output (it goes with its instance's record)
                if connection.execute(_INSTANCE_EXISTS, {"uid": uid}).first() is None:
                    raise NotFound("compute.kumo.dev/Instance", uid)
                start, data = request.offset, b""
            else:
                start, data = found
            end = start + len(data)
            if request.offset > end:  # a gap: ask for the missing bytes first
                return end
            data += request.data[end - request.offset :]
            if len(data) > SERIAL_WINDOW:
                start += len(data) - SERIAL_WINDOW
                data = data[-SERIAL_WINDOW:]
            if found is None:
                written = {"instance_uid": uid, "start": start, "data": data}
                connection.execute(_NEW_SERIAL_OUTPUT, written)
            else:
                written = {"owner_uid": uid, "start": start, "data": data}
                connection.execute(_SET_SERIAL_OUTPUT, written)
            return start + len(data)

        return api.AppendSerialPortOutputResponse(next_offset=await self.runtime.db.run(append))
