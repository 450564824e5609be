"""An instance's output `attached_volumes`, read with the instance.

Read for a whole page of instances of one project in one query (attachments joined with
their volumes), so a listing that shows each server's volumes (Nova's
`volumes_attached`) costs one indexed query rather than a read of every volume of the
project.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, select

from kumo.compute.v1 import resources_pb2 as pb
from kumo.server.db.models import AttachmentRow, VolumeRow
from kumo.server.db.value_lists import OneOf, on_postgres
from kumo.server.services.storage.common import VOLUMES


def _attached_to(ids: ColumnElement[bool]) -> Select[str, str, str, str, bool, str]:
    """The attachments of a project's instances (`ids`: a condition on their ids) with
    their volumes' uids, in volume id order."""
    return (
        select(
            AttachmentRow.zone_id,
            AttachmentRow.instance_id,
            AttachmentRow.volume_id,
            VolumeRow.uid,
            AttachmentRow.delete_with_instance,
            AttachmentRow.device,
        )
        .join(
            VolumeRow,
            (VolumeRow.project_id == AttachmentRow.project_id)
            & (VolumeRow.zone_id == AttachmentRow.zone_id)
            & (VolumeRow.id == AttachmentRow.volume_id),
        )
        .where(AttachmentRow.project_id == bindparam("project"), ids)
        .order_by(AttachmentRow.volume_id)
    )


# Made once, with the instance ids one parameter (db/value_lists.py), for PostgreSQL
# (True) and for SQLite (False).
_IDS = OneOf(AttachmentRow.instance_id, "ids")
_ATTACHED = {postgres: _attached_to(_IDS.condition(postgres)) for postgres in (True, False)}


def fill_volumes(executor: Any, instances: Sequence[pb.Instance]) -> None:
    """Sets each instance's output `attached_volumes` (`executor`: a Session or a
    Connection; one query per project of the list: a listing's instances have one)."""
    by_project: dict[str, dict[tuple[str, str], pb.Instance]] = {}
    for instance in instances:
        _, project, _, zone, _, instance_id = instance.name.split("/")
        by_project.setdefault(project, {})[(zone, instance_id)] = instance
    if not by_project:
        return
    postgres = on_postgres(executor)
    for project, by_key in by_project.items():
        ids = _IDS.bind(postgres, sorted({instance_id for _, instance_id in by_key}))
        rows = executor.execute(_ATTACHED[postgres], {"project": project, "ids": ids})
        for zone, instance_id, volume_id, uid, doomed, device in rows:
            owner = by_key.get((zone, instance_id))
            if owner is not None:
                owner.attached_volumes.add(
                    volume=VOLUMES.name_of(project, zone, volume_id),
                    uid=uid,
                    delete_with_instance=doomed,
                    device=device,
                )
