"""Nova's `/servers/{id}/metadata[/{key}]`: a server's metadata is its Kumo labels, written
with UpdateInstance (see label_metadata)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from kumo.compute.v1 import resources_pb2 as cpb
from kumo.gateway.openstack.common import Scope
from kumo.gateway.openstack.label_metadata import LabelMetadata, Labels
from kumo.gateway.openstack.nova.base import NovaBase


class ServerMetadata(NovaBase, LabelMetadata):
    """A server's metadata routes (DELETE of an item answers 204)."""

    async def labelled(self, scope: Scope, request: Request) -> cpb.Instance:
        """The path's server; 404 if there is none."""
        return await self.server_of(scope, request)

    async def relabel(self, scope: Scope, resource: Any, labels: Labels) -> Labels:
        """UpdateInstance of the labels under the server's etag."""
        message = cpb.Instance(name=resource.name, labels=labels, etag=resource.etag)
        return dict((await self.update_instance(scope, message, "labels")).labels)
