"""CreateFlavor, GetFlavor, ListFlavors, UpdateFlavor, DeleteFlavor."""

from __future__ import annotations

from google.protobuf import empty_pb2
from sqlalchemy.orm import Session

from kumo.compute.v1 import compute_service_pb2 as api
from kumo.compute.v1 import resources_pb2 as pb
from kumo.server.api.convert import check_etag
from kumo.server.api.fields import check_required, update_paths
from kumo.server.api.idempotency import idempotent
from kumo.server.api.resources import apply_common
from kumo.server.db.models import FlavorRow
from kumo.server.errors import FieldViolation, InvalidArgument
from kumo.server.interceptors.base import Context
from kumo.server.services.compute.common import FLAVORS, ComputePart, flavor_to_proto

LIMITS = {"vcpus": (1, 256), "memory_mib": (64, 4 << 20), "disk_gib": (1, 65536)}
_EDITABLE = {"display_name", "description", "labels"}


def _check_sizes(flavor: pb.Flavor) -> None:
    violations = [
        FieldViolation(f"flavor.{name}", f"must be {low} to {high}")
        for name, (low, high) in LIMITS.items()
        if not low <= getattr(flavor, name) <= high
    ]
    if violations:
        raise InvalidArgument(violations)


class FlavorMethods(ComputePart):
    """Flavors: global instance sizes."""

    async def CreateFlavor(self, request: api.CreateFlavorRequest, context: Context) -> pb.Flavor:
        check_required(request.flavor, "flavor.")
        _check_sizes(request.flavor)

        def create(session: Session) -> pb.Flavor:
            flavor = request.flavor
            row = FlavorRow(
                vcpus=flavor.vcpus, memory_mib=flavor.memory_mib, disk_gib=flavor.disk_gib
            )
            apply_common(
                row, flavor, {f.name for f, _ in flavor.ListFields()} & _EDITABLE, "flavor"
            )
            FLAVORS.insert(session, request.flavor_id, "flavor_id", row)
            session.flush()
            return flavor_to_proto(row)

        return await idempotent(self.runtime.db, "CreateFlavor", request, pb.Flavor, create)

    async def GetFlavor(self, request: api.GetFlavorRequest, context: Context) -> pb.Flavor:
        return await self.runtime.db.read(
            lambda c: flavor_to_proto(FLAVORS.fetch(c, request.name))  # type: ignore[arg-type]
        )

    async def ListFlavors(
        self, request: api.ListFlavorsRequest, context: Context
    ) -> api.ListFlavorsResponse:
        def page(session: Session) -> api.ListFlavorsResponse:
            result = FLAVORS.list(session, self.runtime.pager, request)
            return api.ListFlavorsResponse(
                flavors=[flavor_to_proto(r) for r in result.rows],
                next_page_token=result.next_page_token,
            )

        return await self.runtime.db.run(page)

    async def UpdateFlavor(self, request: api.UpdateFlavorRequest, context: Context) -> pb.Flavor:
        paths = update_paths(request.flavor, request.update_mask, "flavor")

        def update(session: Session) -> pb.Flavor:
            row = FLAVORS.get(session, request.flavor.name, "flavor.name")
            check_etag(request.flavor.etag, row.version, request.flavor.name)
            apply_common(row, request.flavor, paths, "flavor")
            row.version += 1
            session.flush()
            return flavor_to_proto(row)

        return await idempotent(self.runtime.db, "UpdateFlavor", request, pb.Flavor, update)

    async def DeleteFlavor(
        self, request: api.DeleteFlavorRequest, context: Context
    ) -> empty_pb2.Empty:
        def delete(session: Session) -> empty_pb2.Empty:
            row = FLAVORS.get(session, request.name)
            check_etag(request.etag, row.version, request.name)
            session.delete(row)
            return empty_pb2.Empty()

        return await idempotent(self.runtime.db, "DeleteFlavor", request, empty_pb2.Empty, delete)
