"""Cinder's `/volumes/{id}/metadata[/{key}]` and `/snapshots/{id}/metadata[/{key}]`: the
metadata of a volume or a snapshot is its Kumo labels, written with UpdateVolume or
UpdateSnapshot (see label_metadata). Deleting an item answers 200, as Cinder does."""

from __future__ import annotations

from typing import Any

from google.protobuf import field_mask_pb2
from starlette.requests import Request

from kumo.gateway.openstack.cinder.base import CinderBase
from kumo.gateway.openstack.common import Scope, with_uid
from kumo.gateway.openstack.label_metadata import LabelMetadata, Labels
from kumo.storage.v1 import resources_pb2 as spb
from kumo.storage.v1 import storage_service_pb2 as sapi

_LABELS = field_mask_pb2.FieldMask(paths=["labels"])


class VolumeMetadata(CinderBase, LabelMetadata):
    """A volume's metadata routes."""

    deleted_status = 200

    async def labelled(self, scope: Scope, request: Request) -> spb.Volume:
        """The path's volume; 404 if the project has none with that id."""
        return await self.volume(scope, request.path_params["id"])

    async def relabel(self, scope: Scope, resource: Any, labels: Labels) -> Labels:
        """UpdateVolume of the labels under the volume's etag."""
        change = spb.Volume(name=resource.name, labels=labels, etag=resource.etag)
        request = sapi.UpdateVolumeRequest(volume=change, update_mask=_LABELS)
        return dict((await self.call(self.storage.UpdateVolume, request, scope)).labels)


class SnapshotMetadata(CinderBase, LabelMetadata):
    """A snapshot's metadata routes."""

    deleted_status = 200

    async def labelled(self, scope: Scope, request: Request) -> spb.Snapshot:
        """The path's snapshot; 404 if the project has none with that id."""
        return with_uid(await self.snapshots(scope), request.path_params["id"], "Snapshot")

    async def relabel(self, scope: Scope, resource: Any, labels: Labels) -> Labels:
        """UpdateSnapshot of the labels under the snapshot's etag."""
        change = spb.Snapshot(name=resource.name, labels=labels, etag=resource.etag)
        request = sapi.UpdateSnapshotRequest(snapshot=change, update_mask=_LABELS)
        return dict((await self.call(self.storage.UpdateSnapshot, request, scope)).labels)
