"""Neutron v2.0's place (`/network`): it arrives with Kumo's network service.

Until then every request answers 501 in Neutron's own error shape, and the catalog does not
list a network endpoint, so clients report "no network service" rather than failing oddly.
Routes for networks, subnets, ports, routers, floating IPs and security groups go here, over
the network service's stub, in the way `nova/` maps compute.
"""

from __future__ import annotations

import grpc
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from kumo.gateway.dialect import Dialect
from kumo.gateway.errors import RpcFailure
from kumo.gateway.openstack.errors import neutron_error

DIALECT = Dialect("neutron", neutron_error)


async def not_yet(request: Request) -> Response:
    """Every Neutron request, until the network service lands."""
    raise RpcFailure.of(
        grpc.StatusCode.UNIMPLEMENTED, "Kumo's network service is not available yet."
    )


def create_neutron() -> Starlette:
    """The ASGI app to mount at `/network`."""
    methods = ["GET", "POST", "PUT", "DELETE"]
    return DIALECT.app([DIALECT.route("/{path:path}", not_yet, methods)])
