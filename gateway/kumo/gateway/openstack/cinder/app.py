"""Cinder's routes: `/volume` (versions, unauthenticated) and `/volume/v3/...`."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from kumo.gateway.grpc_backend import Backend
from kumo.gateway.openstack.cinder.attachments import Attachments
from kumo.gateway.openstack.cinder.backups import Backups
from kumo.gateway.openstack.cinder.base import DIALECT, MICROVERSIONS
from kumo.gateway.openstack.cinder.extra_specs import ExtraSpecs
from kumo.gateway.openstack.cinder.metadata import SnapshotMetadata, VolumeMetadata
from kumo.gateway.openstack.cinder.quota_sets import QuotaSets
from kumo.gateway.openstack.cinder.transfers import Transfers
from kumo.gateway.openstack.cinder.volumes import Volumes
from kumo.gateway.openstack.common import Scopes, base_url
from kumo.identity.v1 import identity_service_pb2 as iapi
from kumo.identity.v1 import identity_service_pb2_grpc as irpc

# Cinder's absolute limit names -> Kumo quota resources.
_LIMITS = {
    "Volumes": "volumes",
    "Snapshots": "snapshots",
    "VolumeGigabytes": "gigabytes",
    "Backups": "backups",
}
_USED = {
    "Volumes": "totalVolumesUsed",
    "Snapshots": "totalSnapshotsUsed",
    "VolumeGigabytes": "totalGigabytesUsed",
    "Backups": "totalBackupsUsed",
}


def version_entry(base: str) -> dict[str, Any]:
    """The v3 version document."""
    return {
        "id": "v3.0",
        "status": "CURRENT",
        "version": str(MICROVERSIONS.maximum),
        "min_version": str(MICROVERSIONS.minimum),
        "updated": "2016-02-08T12:20:21Z",
        "links": [{"rel": "self", "href": f"{base}/volume/v3/"}],
        "media-types": [
            {"base": "application/json", "type": "application/vnd.openstack.volume+json;version=3"}
        ],
    }


def create_cinder(backend: Backend, scopes: Scopes, public_url: str) -> Starlette:
    """The ASGI app to mount at `/volume`."""
    volumes = Volumes(backend, scopes, public_url)

    async def versions(request: Request) -> Response:
        return JSONResponse({"versions": [version_entry(base_url(request, public_url))]})

    async def limits(request: Request) -> Response:
        scope, version = await volumes.begin(request)
        quota = await volumes.call(
            backend.stub(irpc.IdentityServiceStub).GetQuota,
            iapi.GetQuotaRequest(name=f"{scope.parent}/quota"),
            scope,
        )
        by_resource = {q.resource: q for q in quota.limits}
        absolute: dict[str, int] = {"maxTotalBackupGigabytes": -1, "totalBackupGigabytesUsed": 0}
        for cinder, kumo in _LIMITS.items():
            limit = by_resource.get(kumo)
            absolute[f"maxTotal{cinder}"] = int(limit.limit) if limit else -1
            absolute[_USED[cinder]] = int(limit.in_use) if limit else 0
        return volumes.reply(version, {"limits": {"rate": [], "absolute": absolute}})

    r = DIALECT.route
    v = "/v3"
    specs = ExtraSpecs(backend, scopes, public_url)
    attachments = Attachments(backend, scopes, public_url)
    quota_sets = QuotaSets(backend, scopes, public_url)
    backups = Backups(backend, scopes, public_url)
    transfers = Transfers(backend, scopes, public_url)
    volume_metadata = VolumeMetadata(backend, scopes, public_url)
    snapshot_metadata = SnapshotMetadata(backend, scopes, public_url)
    moved = [
        route
        for prefix in (v + "/volume-transfers", v + "/os-volume-transfer")
        for route in (
            r(prefix, transfers.list, ["GET"]),
            r(prefix, transfers.create, ["POST"]),
            r(prefix + "/detail", transfers.list, ["GET"]),
            r(prefix + "/{id}", transfers.show, ["GET"]),
            r(prefix + "/{id}", transfers.delete, ["DELETE"]),
            r(prefix + "/{id}/accept", transfers.accept, ["POST"]),
        )
    ]
    specs_path = v + "/types/{id}/extra_specs"
    return DIALECT.app(
        [
            r("/", versions, ["GET"]),
            r(v, versions, ["GET"]),
            r(v + "/", versions, ["GET"]),
            r(v + "/limits", limits, ["GET"]),
            r(v + "/os-quota-sets/{project_id}", quota_sets.show, ["GET"]),
            r(v + "/os-quota-sets/{project_id}", quota_sets.update, ["PUT"]),
            r(v + "/os-quota-sets/{project_id}", quota_sets.revert, ["DELETE"]),
            r(v + "/os-quota-sets/{project_id}/defaults", quota_sets.defaults, ["GET"]),
            r(v + "/volumes", volumes.list_volumes, ["GET"]),
            r(v + "/volumes", volumes.create, ["POST"]),
            r(v + "/volumes/detail", volumes.list_detail, ["GET"]),
            r(v + "/volumes/{id}", volumes.show, ["GET"]),
            r(v + "/volumes/{id}", volumes.update, ["PUT"]),
            r(v + "/volumes/{id}", volumes.delete, ["DELETE"]),
            r(v + "/volumes/{id}/action", volumes.action, ["POST"]),
            r(v + "/snapshots", volumes.list_snapshots, ["GET"]),
            r(v + "/snapshots", volumes.create_snapshot, ["POST"]),
            r(v + "/snapshots/detail", volumes.list_snapshots, ["GET"]),
            r(v + "/snapshots/{id}", volumes.show_snapshot, ["GET"]),
            r(v + "/snapshots/{id}", volumes.delete_snapshot, ["DELETE"]),
            *volume_metadata.routes(DIALECT, v + "/volumes/{id}/metadata"),
            *snapshot_metadata.routes(DIALECT, v + "/snapshots/{id}/metadata"),
            r(v + "/types", volumes.list_types, ["GET"]),
            r(v + "/types", volumes.create_type, ["POST"]),
            r(v + "/types/{id}", volumes.show_type, ["GET"]),
            r(v + "/types/{id}", volumes.delete_type, ["DELETE"]),
            r(v + "/backups", backups.list, ["GET"]),
            r(v + "/backups", backups.create, ["POST"]),
            r(v + "/backups/detail", backups.list_detail, ["GET"]),
            r(v + "/backups/{id}", backups.show, ["GET"]),
            r(v + "/backups/{id}", backups.delete, ["DELETE"]),
            r(v + "/backups/{id}/restore", backups.restore, ["POST"]),
            r(v + "/attachments", attachments.list, ["GET"]),
            r(v + "/attachments", attachments.create, ["POST"]),
            r(v + "/attachments/detail", attachments.list_detail, ["GET"]),
            r(v + "/attachments/{id}", attachments.show, ["GET"]),
            r(v + "/attachments/{id}", attachments.update, ["PUT"]),
            r(v + "/attachments/{id}", attachments.delete, ["DELETE"]),
            r(v + "/attachments/{id}/action", attachments.action, ["POST"]),
            r(specs_path, specs.list, ["GET"]),
            r(specs_path, specs.create, ["POST"]),
            r(specs_path + "/{key}", specs.show, ["GET"]),
            r(specs_path + "/{key}", specs.update, ["PUT"]),
            r(specs_path + "/{key}", specs.delete, ["DELETE"]),
            *moved,
        ]
    )
