"""Nova's routes: `/compute` (versions, unauthenticated) and `/compute/v2.1/...`."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from kumo.gateway.grpc_backend import Backend
from kumo.gateway.openstack.common import Scopes, base_url
from kumo.gateway.openstack.lookup import ImageIndex
from kumo.gateway.openstack.nova.aggregates import Aggregates
from kumo.gateway.openstack.nova.base import DIALECT, MICROVERSIONS
from kumo.gateway.openstack.nova.consoles import Consoles
from kumo.gateway.openstack.nova.instance_actions import InstanceActions
from kumo.gateway.openstack.nova.interfaces import Interfaces
from kumo.gateway.openstack.nova.quota_sets import QuotaSets
from kumo.gateway.openstack.nova.resources import Resources
from kumo.gateway.openstack.nova.server_metadata import ServerMetadata
from kumo.gateway.openstack.nova.server_tags import ServerTags
from kumo.gateway.openstack.nova.servers import Servers
from kumo.gateway.openstack.nova.services import Services
from kumo.gateway.openstack.nova.volume_attachments import VolumeAttachments


def version_entry(base: str) -> dict[str, Any]:
    """The v2.1 version document."""
    return {
        "id": "v2.1",
        "status": "CURRENT",
        "version": str(MICROVERSIONS.maximum),
        "min_version": str(MICROVERSIONS.minimum),
        "updated": "2013-07-23T11:33:21Z",
        "links": [{"rel": "self", "href": f"{base}/compute/v2.1/"}],
        "media-types": [
            {
                "base": "application/json",
                "type": "application/vnd.openstack.compute+json;version=2.1",
            }
        ],
    }


def create_nova(backend: Backend, scopes: Scopes, images: ImageIndex, public_url: str) -> Starlette:
    """The ASGI app to mount at `/compute`."""
    r = DIALECT.route
    v = "/v2.1"
    servers = Servers(backend, scopes, images, public_url)
    consoles = Consoles(backend, scopes, images, public_url)
    other = Resources(backend, scopes, images, public_url)
    specs = v + "/flavors/{flavor_id}/os-extra_specs/{key}"
    attachments = VolumeAttachments(backend, scopes, images, public_url)
    quota_sets = QuotaSets(backend, scopes, images, public_url)
    metadata = ServerMetadata(backend, scopes, images, public_url)
    services = Services(backend, scopes, images, public_url)
    actions = InstanceActions(backend, scopes, images, public_url)
    acted = v + "/servers/{server_id}/os-instance-actions"
    interfaces = Interfaces(backend, scopes, images, public_url)
    plugged = v + "/servers/{server_id}/os-interface"
    meta = v + "/servers/{server_id}/metadata"
    tags = ServerTags(backend, scopes, images, public_url)
    tagged = v + "/servers/{server_id}/tags"
    quota_set = v + "/os-quota-sets/{project_id}"
    attached = v + "/servers/{server_id}/os-volume_attachments"
    aggregates = Aggregates(backend, scopes, images, public_url)
    aggregate = v + "/os-aggregates/{aggregate_id}"

    async def versions(request: Request) -> Response:
        return JSONResponse({"versions": [version_entry(base_url(request, public_url))]})

    async def version(request: Request) -> Response:
        return JSONResponse({"version": version_entry(base_url(request, public_url))})

    return DIALECT.app(
        [
            r("/", versions, ["GET"]),
            r(v, version, ["GET"]),
            r(v + "/", version, ["GET"]),
            r(v + "/servers", servers.list, ["GET"]),
            r(v + "/servers", servers.create, ["POST"]),
            r(v + "/servers/detail", servers.list_detail, ["GET"]),
            r(v + "/servers/{server_id}", servers.show, ["GET"]),
            r(v + "/servers/{server_id}", servers.update, ["PUT"]),
            r(v + "/servers/{server_id}", servers.delete, ["DELETE"]),
            r(v + "/servers/{server_id}/ips", servers.ips, ["GET"]),
            r(v + "/servers/{server_id}/topology", servers.numa_topology, ["GET"]),
            r(v + "/servers/{server_id}/os-security-groups", servers.security_groups, ["GET"]),
            r(v + "/servers/{server_id}/ips/{network}", servers.ips_of_network, ["GET"]),
            r(v + "/servers/{server_id}/action", servers.action, ["POST"]),
            r(v + "/servers/{server_id}/remote-consoles", consoles.create, ["POST"]),
            *metadata.routes(DIALECT, meta),
            r(tagged, tags.list, ["GET"]),
            r(tagged, tags.replace, ["PUT"]),
            r(tagged, tags.clear, ["DELETE"]),
            r(tagged + "/{tag}", tags.check, ["GET"]),
            r(tagged + "/{tag}", tags.add, ["PUT"]),
            r(tagged + "/{tag}", tags.remove, ["DELETE"]),
            r(plugged, interfaces.list, ["GET"]),
            r(plugged, interfaces.attach, ["POST"]),
            r(plugged + "/{port_id}", interfaces.show, ["GET"]),
            r(plugged + "/{port_id}", interfaces.detach, ["DELETE"]),
            r(acted, actions.list, ["GET"]),
            r(acted + "/{request_id}", actions.show, ["GET"]),
            r(attached, attachments.list_attached, ["GET"]),
            r(attached, attachments.create, ["POST"]),
            r(attached + "/{volume_id}", attachments.show, ["GET"]),
            r(attached + "/{volume_id}", attachments.update, ["PUT"]),
            r(attached + "/{volume_id}", attachments.delete, ["DELETE"]),
            r(v + "/flavors", other.list_flavors, ["GET"]),
            r(v + "/flavors", other.create_flavor, ["POST"]),
            r(v + "/flavors/detail", other.list_flavors_detail, ["GET"]),
            r(v + "/flavors/{flavor_id}", other.show_flavor, ["GET"]),
            r(v + "/flavors/{flavor_id}", other.delete_flavor, ["DELETE"]),
            r(v + "/flavors/{flavor_id}", other.update_flavor, ["PUT"]),
            r(v + "/flavors/{flavor_id}/os-extra_specs", other.flavor_extra_specs, ["GET"]),
            r(v + "/flavors/{flavor_id}/os-extra_specs", other.set_flavor_extra_specs, ["POST"]),
            r(specs, other.flavor_extra_spec, ["GET", "DELETE"]),
            r(specs, other.set_flavor_extra_specs, ["PUT"]),
            r(v + "/os-keypairs", other.list_key_pairs, ["GET"]),
            r(v + "/os-keypairs", other.create_key_pair, ["POST"]),
            r(v + "/os-keypairs/{name}", other.show_key_pair, ["GET"]),
            r(v + "/os-keypairs/{name}", other.delete_key_pair, ["DELETE"]),
            r(v + "/os-server-groups", other.list_server_groups, ["GET"]),
            r(v + "/os-server-groups", other.create_server_group, ["POST"]),
            r(v + "/os-server-groups/{group_id}", other.show_server_group, ["GET"]),
            r(v + "/os-server-groups/{group_id}", other.delete_server_group, ["DELETE"]),
            r(v + "/os-availability-zone", other.availability_zones, ["GET"]),
            r(v + "/os-availability-zone/detail", other.availability_zones, ["GET"]),
            r(v + "/os-hypervisors", other.hypervisors, ["GET"]),
            r(v + "/os-hypervisors/detail", other.hypervisors_detail, ["GET"]),
            r(v + "/os-hypervisors/statistics", other.hypervisor_statistics, ["GET"]),
            r(v + "/os-hypervisors/{hypervisor_id}", other.show_hypervisor, ["GET"]),
            r(v + "/os-hypervisors/{hypervisor_id}/uptime", other.hypervisor_uptime, ["GET"]),
            r(v + "/os-aggregates", aggregates.list, ["GET"]),
            r(v + "/os-aggregates", aggregates.change, ["POST"]),
            r(aggregate, aggregates.show, ["GET"]),
            r(aggregate, aggregates.change, ["PUT", "DELETE"]),
            r(aggregate + "/action", aggregates.change, ["POST"]),
            r(aggregate + "/images", aggregates.change, ["POST"]),  # (2.81's image cache)
            r(v + "/limits", other.limits, ["GET"]),
            r(v + "/os-services", services.list, ["GET"]),
            r(v + "/os-services/{service_id}", services.update, ["PUT"]),
            r(quota_set, quota_sets.show, ["GET"]),
            r(quota_set, quota_sets.update, ["PUT"]),
            r(quota_set, quota_sets.revert, ["DELETE"]),
            r(quota_set + "/defaults", quota_sets.defaults, ["GET"]),
            r(quota_set + "/detail", quota_sets.detail, ["GET"]),
        ]
    )
