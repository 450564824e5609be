"""Neutron's tags (`/v2.0/{resources}/{id}/tags[/{tag}]`, the standard-attr-tag extension)
of networks, subnets, ports, routers, floating IPs and security groups, over Kumo labels.

A resource's tags are its labels as the views show them (`key` for an empty value,
`key=value` otherwise), the reserved `kumo:` labels aside (the dialects keep their own
facts there, as the EC2 dialect's VPC block). A tag added here is a label with that key and
an empty value; a tag removed takes away the label that shows it, in either form. Kumo's
label limits apply (tags of 1-63 characters, 64 in all: more is 400), and a tag may not
start with `kumo:` (400). Each change reads the resource and writes its labels under its
etag, again while it changes meanwhile (etag_retry). Answers as Neutron's: the list 200,
replace 200 with the tags, add 201, check 204 or 404, remove 204 or 404, remove all 204.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from kumo.gateway.dialect import invalid, json_body
from kumo.gateway.etag_retry import aborted, until_written
from kumo.gateway.openstack.common import not_found, with_uid
from kumo.gateway.openstack.neutron.base import NeutronBase, mask
from kumo.gateway.openstack.neutron.index import Index
from kumo.gateway.reserved_labels import RESERVED
from kumo.network.v1 import network_service_pb2 as api
from kumo.network.v1 import resources_pb2 as pb

Labels = dict[str, str]


def tag_of(key: str, value: str) -> str:
    """The tag a label shows."""
    return f"{key}={value}" if value else key


def tags_of(labels: Any) -> list[str]:
    """The tags of a resource's labels, sorted, reserved labels left out."""
    return sorted(tag_of(k, v) for k, v in labels.items() if not k.startswith(RESERVED))


@dataclass(frozen=True)
class Kind:
    """How to find one kind of resource and write its labels."""

    singular: str  # as 404s name it
    listing: Callable[[Index], Awaitable[list[Any]]]
    update: str  # the NetworkService method
    request: type
    field: str  # the request's resource field
    message: type


KINDS = {
    "networks": Kind(
        "Network", Index.networks, "UpdateNetwork", api.UpdateNetworkRequest, "network", pb.Network
    ),
    "subnets": Kind(
        "Subnet", Index.subnets, "UpdateSubnet", api.UpdateSubnetRequest, "subnet", pb.Subnet
    ),
    "ports": Kind("Port", Index.ports, "UpdatePort", api.UpdatePortRequest, "port", pb.Port),
    "routers": Kind(
        "Router", Index.routers, "UpdateRouter", api.UpdateRouterRequest, "router", pb.Router
    ),
    "floatingips": Kind(
        "Floating IP",
        Index.floating_ips,
        "UpdateFloatingIp",
        api.UpdateFloatingIpRequest,
        "floating_ip",
        pb.FloatingIp,
    ),
    "security-groups": Kind(
        "Security group",
        Index.security_groups,
        "UpdateSecurityGroup",
        api.UpdateSecurityGroupRequest,
        "security_group",
        pb.SecurityGroup,
    ),
}


def _checked(tags: Any) -> set[str]:
    """Tags given to add: non-empty strings, none of them reserved; 400 otherwise."""
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        raise invalid("Invalid input: tags must be a list of non-empty strings")
    if reserved := [t for t in tags if t.startswith(RESERVED)]:
        raise invalid(f"Tags starting with '{RESERVED}' are Kumo's: {reserved[0]}")
    return set(tags)


def _without(labels: Labels, tags: set[str]) -> Labels:
    return {k: v for k, v in labels.items() if k.startswith(RESERVED) or tag_of(k, v) not in tags}


class Tags(NeutronBase):
    """The tag routes of one kind of resource (each handler takes the kind first)."""

    @staticmethod
    async def _resource(kind: Kind, request: Request, index: Index) -> Any:
        """The path's resource; 404 for one the caller cannot see."""
        return with_uid(await kind.listing(index), request.path_params["id"], kind.singular)

    async def _change(
        self, kind: Kind, request: Request, change: Callable[[Labels], Labels]
    ) -> Labels:
        """Applies `change` to the resource's labels under its etag (again, read anew, while
        it changes meanwhile); the labels after. Raises what `change` raises."""
        scope = await self.scopes.of(request)

        async def attempt() -> Labels:
            resource = await self._resource(kind, request, Index(self.backend, scope))
            message = kind.message(
                name=resource.name, etag=resource.etag, labels=change(dict(resource.labels))
            )
            update = kind.request(**{kind.field: message}, update_mask=mask("labels"))
            changed = await self.call(getattr(self.network, kind.update), update, scope)
            return dict(changed.labels)

        return await until_written(attempt, aborted)

    async def list(self, kind: Kind, request: Request) -> Response:
        """GET /tags."""
        _, index = await self.begin(request)
        resource = await self._resource(kind, request, index)
        return JSONResponse({"tags": tags_of(resource.labels)})

    async def replace(self, kind: Kind, request: Request) -> Response:
        """PUT /tags `{"tags": [...]}`: those become all the tags (labels showing one of them
        stay as they are)."""
        wanted = _checked((await json_body(request)).get("tags"))

        def replaced(labels: Labels) -> Labels:
            kept = {
                k: v for k, v in labels.items() if k.startswith(RESERVED) or tag_of(k, v) in wanted
            }
            shown = {tag_of(k, v) for k, v in kept.items()}
            return {**kept, **{t: "" for t in wanted - shown}}

        return JSONResponse({"tags": tags_of(await self._change(kind, request, replaced))})

    async def clear(self, kind: Kind, request: Request) -> Response:
        """DELETE /tags: every tag goes."""
        await self._change(kind, request, lambda labels: _without(labels, set(tags_of(labels))))
        return self.gone()

    async def check(self, kind: Kind, request: Request) -> Response:
        """GET /tags/{tag}: 204 if the resource has it, 404 otherwise."""
        _, index = await self.begin(request)
        resource = await self._resource(kind, request, index)
        tag = request.path_params["tag"]
        if tag not in tags_of(resource.labels):
            raise not_found("Tag", tag)
        return self.gone()

    async def add(self, kind: Kind, request: Request) -> Response:
        """PUT /tags/{tag}: 201 (the tag kept if it is there already)."""
        (tag,) = _checked([request.path_params["tag"]])

        def added(labels: Labels) -> Labels:
            return labels if tag in tags_of(labels) else {**labels, tag: ""}

        await self._change(kind, request, added)
        return Response(status_code=201)

    async def remove(self, kind: Kind, request: Request) -> Response:
        """DELETE /tags/{tag}: 204; 404 if the resource has no such tag."""
        tag = request.path_params["tag"]

        def removed(labels: Labels) -> Labels:
            if tag not in tags_of(labels):
                raise not_found("Tag", tag)
            return _without(labels, {tag})

        await self._change(kind, request, removed)
        return self.gone()


def tag_routes(tags: Tags, route: Any, prefix: str) -> list[Any]:
    """The tag routes of every kind under `prefix` (`/v2.0`), `route` the dialect's."""
    routes = []
    for plural, kind in KINDS.items():
        path = f"{prefix}/{plural}/{{id}}/tags"
        routes += [
            route(path, partial(tags.list, kind), ["GET"]),
            route(path, partial(tags.replace, kind), ["PUT"]),
            route(path, partial(tags.clear, kind), ["DELETE"]),
            route(path + "/{tag}", partial(tags.check, kind), ["GET"]),
            route(path + "/{tag}", partial(tags.add, kind), ["PUT"]),
            route(path + "/{tag}", partial(tags.remove, kind), ["DELETE"]),
        ]
    return routes
