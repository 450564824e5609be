"""Nova's os-services (cloud administrators): each Kumo host is one `nova-compute`
service; disabling one is DisableHost (no new placements, its guests run on), enabling it
EnableHost. A host in maintenance shows as disabled. Service ids are positions in the host
list before microversion 2.53 (integers, as the hypervisors' `service.id`), the host's uid
from 2.53, when a PUT names the service in its path (`PUT /os-services/{id}` with
`status` and `disabled_reason`) rather than by host and binary in the body.

`force-down` is not offered: a Kumo host is down when its heartbeats stop, not by order.
"""

from __future__ import annotations

import uuid
from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import Response

from kumo.gateway.dialect import invalid, json_body
from kumo.gateway.errors import RpcFailure
from kumo.gateway.openstack.common import Scope, iso, last_segment
from kumo.gateway.openstack.microversions import Version
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


V2_53 = Version(2, 53)


def _view(service_id: int | str, host: tpb.Host) -> dict[str, Any]:
    status, state = host_status(host)
    return {
        "id": service_id,
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
    """GET /os-services; PUT /os-services/{enable,disable,disable-log-reason} before 2.53,
    PUT /os-services/{id} from 2.53."""

    async def list(self, request: Request) -> Response:
        """GET /os-services[?host=&binary=]."""
        scope, version = await self.begin(request)
        host = request.query_params.get("host")
        binary = request.query_params.get("binary")
        services = [
            _view(item.uid if version >= V2_53 else index, item)
            for index, item in enumerate(await self.hosts(scope, "os-services:list"), start=1)
            if host in (None, last_segment(item.name)) and binary in (None, BINARY)
        ]
        return self.reply(version, {"services": services})

    async def update(self, request: Request) -> Response:
        """PUT /os-services/{id}: before 2.53 `id` is an action (enable, disable,
        disable-log-reason, force-down; 404 for another), from 2.53 the service's uid
        (`_update_by_uid`)."""
        scope, version = await self.begin(request)
        service_id = request.path_params["service_id"]
        if version >= V2_53:
            return await self._update_by_uid(request, scope, version, service_id)
        actions = {
            "enable": self.enable,
            "disable": self.disable,
            "disable-log-reason": self.disable,
            "force-down": self.force_down,
        }
        if service_id not in actions:
            raise RpcFailure.of(grpc.StatusCode.NOT_FOUND, "Unknown action")
        return await actions[service_id](request)

    async def _update_by_uid(
        self, request: Request, scope: Scope, version: Version, uid: str
    ) -> Response:
        """PUT /os-services/{uid} (2.53+): the body's `status` (`enabled`, `disabled`) and
        `disabled_reason` (with `disabled`; `forced_down` is 501), answered with the whole
        service. 400 for a malformed body or uid, 404 for an unknown service."""
        admin_only(scope, "os-services:update")
        try:
            uuid.UUID(uid)
        except ValueError:
            raise invalid(f"Invalid uuid {uid}") from None
        body = await json_body(request)
        if set(body) - {"status", "disabled_reason", "forced_down"}:
            raise invalid("Only 'status', 'disabled_reason' and 'forced_down' can be updated.")
        if "forced_down" in body:
            raise not_offered("Forcing a service down")
        status, reason = body.get("status"), body.get("disabled_reason")
        if status not in ("enabled", "disabled"):
            raise invalid(
                "No updates were requested. Fields 'status' or 'forced_down' should be specified."
            )
        if reason is not None and (
            status == "enabled" or not isinstance(reason, str) or not 0 < len(reason) <= 255
        ):
            raise invalid(
                "disabled_reason is a string of 1-255 characters, with status 'disabled' only."
            )
        hosts = await self.hosts(scope, "os-services:update")
        host = next((h for h in hosts if h.uid == uid), None)
        if host is None:
            raise RpcFailure.of(grpc.StatusCode.NOT_FOUND, f"Service {uid} could not be found.")
        if status == "enabled":
            changed = await self.call(
                self.topology.EnableHost, tapi.EnableHostRequest(name=host.name), scope
            )
        else:
            disable = tapi.DisableHostRequest(name=host.name, reason=reason or "")
            changed = await self.call(self.topology.DisableHost, disable, scope)
        return self.reply(version, {"service": _view(changed.uid, changed)})

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
