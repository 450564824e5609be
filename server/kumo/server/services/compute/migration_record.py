"""The record of a running migration (live or cold), kept in `InstanceRow.migration` (JSON).

Keys: `source` and `destination` (host ids), `options` (MigrationOptions as
JSON, `mode` always resolved to LIVE or COLD), `resize` (for a resize onto another
host: the new flavor's id and sizes, applied when the guest has arrived; else
None), `phase`, `target` (the destination driver's JSON, once PREPARED),
`progress` (MigrationProgress as JSON), `message` (why it failed or is being
aborted) and `abort`. Phases, in order:

    placed    the destination is claimed; its agent prepares (ROLE_DESTINATION)
    prepared  the destination reported its target
    go        the API handed the target to the source; the source migrates
    running   the source reports progress
    completed the source reports the guest gone to the destination (final)
    failed    either side reports it did not happen (final)

Agents write phases through ReportMigrationStatus (`apply_report`); the MIGRATE
operation writes `go`, `abort` and, at the end, clears the record
(services/compute/migration.py). Everything here is a pure function over rows.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format

from kumo.agent.v1 import agent_service_pb2 as agent_api
from kumo.compute.v1 import resources_pb2 as pb
from kumo.server.db.models import InstanceRow

PLACED, PREPARED, GO, RUNNING, COMPLETED, FAILED = (
    "placed",
    "prepared",
    "go",
    "running",
    "completed",
    "failed",
)
FINAL = (COMPLETED, FAILED)
Phase = agent_api.ReportMigrationStatusRequest.Phase
Role = agent_api.MigrationAssignment.Role


def new_record(
    source: str,
    destination: str,
    options: pb.MigrationOptions,
    resize: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The record of a migration just placed."""
    return {
        "source": source,
        "destination": destination,
        "options": json_format.MessageToDict(options),
        "resize": resize,
        "phase": PLACED,
        "target": "",
        "progress": {},
        "message": "",
        "abort": False,
    }


def progress_of(record: dict[str, Any]) -> pb.MigrationProgress:
    """The record's progress with its hosts, as a message."""
    progress = pb.MigrationProgress()
    json_format.ParseDict(record.get("progress") or {}, progress)
    progress.source_host = f"hosts/{record['source']}"
    progress.destination_host = f"hosts/{record['destination']}"
    return progress


def update(row: InstanceRow, **changes: Any) -> dict[str, Any]:
    """Sets keys of the row's record (a new dict, so the JSON column sees the change)."""
    assert row.migration is not None
    record = {**row.migration, **changes}
    row.migration = record
    return record


def apply_report(
    row: InstanceRow, host: str, request: agent_api.ReportMigrationStatusRequest
) -> bool:
    """Applies an agent's report to the row's record if it is about the current migration
    and comes from the side that may report that phase; returns whether it changed."""
    record = row.migration
    if record is None or request.serial != row.migration_serial or record["phase"] in FINAL:
        return False
    phase = record["phase"]
    from_source, from_destination = host == record["source"], host == record["destination"]
    progress = json_format.MessageToDict(request.progress)
    if request.phase == Phase.PHASE_PREPARED and from_destination and phase == PLACED:
        update(row, phase=PREPARED, target=request.target)
    elif request.phase == Phase.PHASE_RUNNING and from_source and phase in (GO, RUNNING):
        update(row, phase=RUNNING, progress=progress)
    elif request.phase == Phase.PHASE_COMPLETED and from_source and phase in (GO, RUNNING):
        update(row, phase=COMPLETED, progress=progress or record["progress"])
    elif request.phase == Phase.PHASE_FAILED and (from_source or from_destination):
        update(row, phase=FAILED, message=record["message"] or request.message[:1024])
    else:
        return False
    return True


def assignment_part(row: InstanceRow, host: str) -> agent_api.MigrationAssignment | None:
    """What the host's agent must do for the row's migration, if anything."""
    record = row.migration
    if record is None:
        return None
    part = agent_api.MigrationAssignment(serial=row.migration_serial)
    if host == record["destination"]:
        part.role = Role.ROLE_DESTINATION
        return part
    part.role = Role.ROLE_SOURCE
    part.abort = bool(record["abort"])
    json_format.ParseDict(record["options"], part.options)
    if record["phase"] in (GO, RUNNING, COMPLETED):
        part.target = record["target"]
    return part
