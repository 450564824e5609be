"""What CreateInstance must know before it writes, read in one statement.

A create checks its project (ACTIVE), its zone, its flavor and its image (visible to the
caller, ACTIVE). Read one by one that is four round trips to the database on every create;
here it is one SELECT: the project's row, outer-joined to the zone, the flavor and the
image by their keys, so each part comes back empty when it is absent. The errors are the
ones the separate reads raised, in the same order.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, bindparam, select, true
from sqlalchemy.orm import Session

from kumo.image.v1 import resources_pb2 as ipb
from kumo.server.auth.principal import Principal
from kumo.server.db.models import FlavorRow, ImageRow, ProjectRow, ZoneRow
from kumo.server.errors import FailedPrecondition, NotFound
from kumo.server.services.compute.common import FLAVORS
from kumo.server.services.identity.common import PROJECTS, require_active_state
from kumo.server.services.images import IMAGES, visible_in


@dataclass(frozen=True)
class LaunchFacts:
    """The flavor's sizes and the image's requirements of a create."""

    flavor_id: str
    vcpus: int
    memory_mib: int
    disk_gib: int
    image_project_id: str
    image_id: str
    image_min_ram_mib: int
    image_min_disk_gib: int
    image_virtual_size_bytes: int


@functools.cache
def _query(admin: bool) -> Select[*tuple[Any, ...]]:
    """The statement of `launch_facts`, for a cloud administrator (who sees every image) or
    not; built once each (docs/decisions.md, "Statements built once")."""
    visible = true() if admin else visible_in(bindparam("caller_project"))
    return (
        select(
            ProjectRow.state.label("project_state"),
            ZoneRow.id.label("zone_id"),
            FlavorRow.id.label("flavor_id"),
            FlavorRow.vcpus,
            FlavorRow.memory_mib,
            FlavorRow.disk_gib,
            ImageRow.id.label("image_id"),
            ImageRow.state.label("image_state"),
            ImageRow.min_ram_mib,
            ImageRow.min_disk_gib,
            ImageRow.virtual_size_bytes,
        )
        .select_from(ProjectRow)
        .outerjoin(ZoneRow, ZoneRow.id == bindparam("zone"))
        .outerjoin(FlavorRow, FlavorRow.id == bindparam("flavor"))
        .outerjoin(
            ImageRow,
            and_(
                ImageRow.project_id == bindparam("image_project"),
                ImageRow.id == bindparam("image"),
                visible,
            ),
        )
        .where(ProjectRow.id == bindparam("project"))
    )


def launch_facts(
    session: Session,
    caller: Principal,
    project_id: str,
    zone_id: str,
    flavor: str,
    image: str,
) -> LaunchFacts:
    """Reads the project, zone, flavor (`instance.flavor`) and image (`instance.image`) of a
    create in one statement. Raises InvalidArgument for a malformed flavor or image name,
    NotFound for an absent project, zone or flavor and for an image the caller does not
    see, FailedPrecondition for a project being deleted or an image not ACTIVE."""
    (flavor_id,) = FLAVORS.key(flavor, "instance.flavor")
    image_project_id, image_id = IMAGES.key(image, "instance.image")
    values = {
        "project": project_id,
        "zone": zone_id,
        "flavor": flavor_id,
        "image_project": image_project_id,
        "image": image_id,
        "caller_project": caller.project_id,
    }
    row = session.connection().execute(_query(caller.cloud_admin), values).one_or_none()
    if row is None:
        raise NotFound(PROJECTS.type_name, f"projects/{project_id}")
    require_active_state(project_id, row.project_state)
    if row.zone_id is None:
        raise NotFound("topology.kumo.dev/Zone", f"zones/{zone_id}")
    if row.flavor_id is None:
        raise NotFound(FLAVORS.type_name, flavor)
    if row.image_id is None:
        raise NotFound(IMAGES.type_name, image)
    if row.image_state != ipb.Image.STATE_ACTIVE:
        raise FailedPrecondition(f"{image} is not ACTIVE", type="IMAGE_NOT_ACTIVE", subject=image)
    return LaunchFacts(
        flavor_id=flavor_id,
        vcpus=row.vcpus,
        memory_mib=row.memory_mib,
        disk_gib=row.disk_gib,
        image_project_id=image_project_id,
        image_id=image_id,
        image_min_ram_mib=row.min_ram_mib,
        image_min_disk_gib=row.min_disk_gib,
        image_virtual_size_bytes=row.virtual_size_bytes,
    )
