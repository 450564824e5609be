"""Nova's os-services (cloud administrators): each Kumo host is one `nova-compute`
service; disabling one is DisableHost (no new placements, its guests run on), enabling it
EnableHost. A host in maintenance shows as disabled. Service ids are positions in the host
list, as the hypervisors' `service.id` (microversions before 2.53 have integer ids).

`force-down` is not offered: a Kumo host is down when its heartbeats stop, not by order.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from kumo.gateway.dialect import invalid, json_body
from kumo.gateway.openstack.common import iso, last_segment
from kumo.gateway.openstack.nova.base import NovaBase, admin_only, not_offered
from kumo.topology.v1 import resources_pb2 as tpb
from kumo.topology.v1 import topology_service_pb2 as tapi

BINARY = "nova-compute"
_STATUS = {
    tpb.Host.STATE_ENABLED: ("enabled", "up"),
    tpb.Host.STATE_DISABLED: ("disabled", "up"),
    tpb.Host.STATE_MAINTENANCE: ("disabled", "up"),
    tpb.Host.STATE_DOWN: ("enabled", "down"),
}


def host_status(host: tpb.Host) -> tuple[str, str]:
    """Nova's (status, state) of a host: enabled/disabled and up/down."""
    return _STATUS.get(host.state, ("disabled", "down"))


def _view(index: int, host: tpb.Host) -> dict[str, Any]:
    status, state = host_status(host)
    return {
        "id": index,
        "binary": BINARY,
        "host": last_segment(host.name),
        "zone": last_segment(host.zone),
        "status": status,
        "state": state,
        "updated_at": iso(host.last_heartbeat_time, micro=True),
        "disabled_reason": host.disabled_reason or None,
        "forced_down": False,
    }


class Services(NovaBase):
    """GET /os-services; PUT /os-services/{enable,disable,disable-log-reason}."""

    async def list(self, request: Request) -> Response:
        """GET /os-services[?host=&binary=]."""
        scope, version = await self.begin(request)
        host = request.query_params.get("host")
        binary = request.query_params.get("binary")
        services = [
            _view(index, item)
            for index, item in enumerate(await self.hosts(scope, "os-services:list"), start=1)
            if host in (None, last_segment(item.name)) and binary in (None, BINARY)
        ]
        return self.reply(version, {"services": services})

    async def _target(self, request: Request) -> tuple[str, dict[str, Any]]:
        """The `hosts/{host}` a PUT names, and its body; 400 without host and binary, or
        for a binary other than nova-compute (an unknown host is the API's 404)."""
        body = await json_body(request)
        host, binary = body.get("host"), body.get("binary")
        if not isinstance(host, str) or not host or not isinstance(binary, str):
            raise invalid("The body needs 'host' and 'binary' strings.")
        if binary != BINARY:
            raise invalid(f"Kumo's hosts run one service, {BINARY}; not {binary!r}.")
        return f"hosts/{host}", body

    async def enable(self, request: Request) -> Response:
        """PUT /os-services/enable: EnableHost."""
        scope, version = await self.begin(request)
        admin_only(scope, "os-services:update")
        name, _ = await self._target(request)
        await self.call(self.topology.EnableHost, tapi.EnableHostRequest(name=name), scope)
        service = {"host": last_segment(name), "binary": BINARY, "status": "enabled"}
        return self.reply(version, {"service": service})

    async def disable(self, request: Request) -> Response:
        """PUT /os-services/disable and /disable-log-reason: DisableHost (with the
        `disabled_reason` of the latter)."""
        scope, version = await self.begin(request)
        admin_only(scope, "os-services:update")
        name, body = await self._target(request)
        logged = request.url.path.endswith("/disable-log-reason")
        reason = body.get("disabled_reason") if logged else ""
        if not isinstance(reason, str) or (logged and not reason.strip()):
            raise invalid("disabled_reason must be a non-empty string.")
        await self.call(
            self.topology.DisableHost, tapi.DisableHostRequest(name=name, reason=reason), scope
        )
        service: dict[str, Any] = {
            "host": last_segment(name), "binary": BINARY, "status": "disabled",
        }  # fmt: skip
        if logged:
            service["disabled_reason"] = reason
        return self.reply(version, {"service": service})

    async def force_down(self, request: Request) -> Response:
        """PUT /os-services/force-down: 501 (see the module's docstring)."""
        await self.begin(request)
        raise not_offered("Forcing a service down")
