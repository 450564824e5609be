"""Nova flavors, key pairs, server groups, availability zones, hypervisors and limits.

Flavor ids, key pair names and server group ids/names are the Kumo ids; hypervisors are
Kumo hosts (cloud administrators only, as in Nova); limits are the project's quota.
"""

from __future__ import annotations

import re
from typing import Any

import grpc
from google.protobuf import field_mask_pb2
from starlette.requests import Request
from starlette.responses import Response

from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import resources_pb2 as cpb
from kumo.gateway.dialect import invalid, json_body, json_member
from kumo.gateway.errors import RpcFailure
from kumo.gateway.key_pair_names import key_pair_id, key_pair_ref
from kumo.gateway.openstack.common import Scope, last_segment
from kumo.gateway.openstack.microversions import Version
from kumo.gateway.openstack.nova import views
from kumo.gateway.openstack.nova.base import (
    MAX_METADATA_ITEMS,
    NovaBase,
    admin_only,
    not_offered,
)
from kumo.gateway.openstack.nova.services import V2_53, host_status
from kumo.identity.v1 import identity_service_pb2 as iapi
from kumo.identity.v1 import identity_service_pb2_grpc as irpc
from kumo.topology.v1 import resources_pb2 as tpb
from kumo.topology.v1 import topology_service_pb2 as tapi

V2_88, V2_92 = Version(2, 88), Version(2, 92)
_KEY_NAME = re.compile(r"[a-zA-Z0-9 _-]{1,255}")
_KEY_NAME_V2_92 = re.compile(r"[a-zA-Z0-9 @._-]{1,255}")
# Nova absolute limit -> Kumo quota resource
_LIMITS = {
    "Instances": "instances",
    "Cores": "vcpus",
    "RAMSize": "ram_mib",
}


class Resources(NovaBase):
    """Everything under /compute/v2.1 but servers."""

    # --- flavors ----------------------------------------------------------------------

    async def _flavors(self, request: Request, detail: bool) -> Response:
        scope, version = await self.begin(request)
        answer = await self.call(
            self.compute.ListFlavors, capi.ListFlavorsRequest(page_size=1000), scope
        )
        base = self.base(request)
        flavors = [views.flavor_json(f, base, detail, version) for f in answer.flavors]
        return self.reply(version, {"flavors": flavors})

    async def list_flavors(self, request: Request) -> Response:
        """GET /flavors."""
        return await self._flavors(request, detail=False)

    async def list_flavors_detail(self, request: Request) -> Response:
        """GET /flavors/detail."""
        return await self._flavors(request, detail=True)

    async def show_flavor(self, request: Request) -> Response:
        """GET /flavors/{id}."""
        scope, version = await self.begin(request)
        flavor = await self._flavor(scope, request)
        base = self.base(request)
        return self.reply(version, {"flavor": views.flavor_json(flavor, base, True, version)})

    async def _flavor(self, scope: Scope, request: Request) -> cpb.Flavor:
        """The flavor the path names; 404 when there is no such flavor."""
        flavor: cpb.Flavor = await self.call(
            self.compute.GetFlavor,
            capi.GetFlavorRequest(name=f"flavors/{request.path_params['flavor_id']}"),
            scope,
        )
        return flavor

    async def flavor_extra_specs(self, request: Request) -> Response:
        """GET /flavors/{id}/os-extra_specs: Kumo flavors have none."""
        scope, version = await self.begin(request)
        await self._flavor(scope, request)
        return self.reply(version, {"extra_specs": {}})

    async def flavor_extra_spec(self, request: Request) -> Response:
        """GET and DELETE /flavors/{id}/os-extra_specs/{key}: 404, as Nova for a key the
        flavor does not have (Kumo flavors have none); DELETE is for cloud administrators."""
        scope, _ = await self.begin(request)
        if request.method == "DELETE":
            admin_only(scope, "os-flavor-extra-specs:delete")
        flavor = last_segment((await self._flavor(scope, request)).name)
        key = request.path_params["key"]
        raise RpcFailure.of(
            grpc.StatusCode.NOT_FOUND, f"Flavor {flavor} has no extra specs with key {key}."
        )

    async def set_flavor_extra_specs(self, request: Request) -> Response:
        """POST /flavors/{id}/os-extra_specs and PUT .../{key} (cloud administrators): 501.
        Kumo places and runs guests by a flavor's sizes alone, so an extra spec (a CPU
        policy, say) would be stored and never honoured."""
        scope, _ = await self.begin(request)
        admin_only(scope, "os-flavor-extra-specs:create")
        await self._flavor(scope, request)
        raise not_offered("Flavor extra specs")

    async def create_flavor(self, request: Request) -> Response:
        """POST /flavors (cloud administrators): the id is `id`, else (absent or `auto`) the
        name."""
        scope, version = await self.begin(request)
        body = await json_member(request, "flavor")
        try:
            flavor = cpb.Flavor(
                display_name=str(body.get("name") or ""),
                description=_description(body, version),
                vcpus=int(body.get("vcpus", 0)),
                memory_mib=int(body.get("ram", 0)),
                disk_gib=int(body.get("disk", 0)),
            )
        except (TypeError, ValueError):
            raise invalid("vcpus, ram and disk must be integers") from None
        given = body.get("id")
        flavor_id = str(given if given not in (None, "", "auto") else body.get("name") or "")
        created = await self.call(
            self.compute.CreateFlavor,
            capi.CreateFlavorRequest(flavor_id=flavor_id, flavor=flavor),
            scope,
        )
        base = self.base(request)
        return self.reply(version, {"flavor": views.flavor_json(created, base, True, version)})

    async def update_flavor(self, request: Request) -> Response:
        """PUT /flavors/{id} (2.55, cloud administrators): sets the description, the one
        thing of a flavor Nova changes; 200 with the flavor."""
        scope, version = await self.begin(request)
        if version < views.V2_55:
            raise RpcFailure.of(grpc.StatusCode.NOT_FOUND, "The resource could not be found.")
        body = (await json_body(request)).get("flavor")
        if not isinstance(body, dict) or "description" not in body:
            raise invalid("the body needs a 'flavor' object with a 'description'")
        changed = cpb.Flavor(
            name=f"flavors/{request.path_params['flavor_id']}",
            description=_description(body, version),
        )
        updated = await self.call(
            self.compute.UpdateFlavor,
            capi.UpdateFlavorRequest(
                flavor=changed, update_mask=field_mask_pb2.FieldMask(paths=["description"])
            ),
            scope,
        )
        base = self.base(request)
        return self.reply(version, {"flavor": views.flavor_json(updated, base, True, version)})

    async def delete_flavor(self, request: Request) -> Response:
        """DELETE /flavors/{id}: 202."""
        scope, version = await self.begin(request)
        await self.call(
            self.compute.DeleteFlavor,
            capi.DeleteFlavorRequest(name=f"flavors/{request.path_params['flavor_id']}"),
            scope,
        )
        return self.reply(version, status=202)

    # --- key pairs --------------------------------------------------------------------

    def _key_name(self, scope: Scope, request: Request) -> str:
        return key_pair_ref(scope.project, request.path_params["name"])

    async def list_key_pairs(self, request: Request) -> Response:
        """GET /os-keypairs."""
        scope, version = await self.begin(request)
        answer = await self.call(
            self.compute.ListKeyPairs,
            capi.ListKeyPairsRequest(parent=scope.parent, page_size=1000),
            scope,
        )
        items = [{"keypair": views.key_pair_json(k, scope.user, version)} for k in answer.key_pairs]
        return self.reply(version, {"keypairs": items})

    async def create_key_pair(self, request: Request) -> Response:
        """POST /os-keypairs: imports `public_key`, or before 2.92 has Kumo generate a pair
        (the private key is in this answer only). 200 before microversion 2.2, 201 from
        it. A name is Nova's (letters, digits, spaces, `_`, `-`; from 2.92 `@` and `.`
        too; 400 otherwise), kept as the key pair's display name (key_pair_names.py)."""
        scope, version = await self.begin(request)
        body = await json_member(request, "keypair")
        name = _key_pair_name(body.get("name"), version)
        public_key = body.get("public_key")
        if public_key is not None and not isinstance(public_key, str):
            raise invalid("public_key must be a string")
        if version >= V2_92 and not public_key:
            raise invalid("a public_key is required: from 2.92 key pairs are imported only")
        created = await self.call(
            self.compute.CreateKeyPair,
            capi.CreateKeyPairRequest(
                parent=scope.parent,
                key_pair_id=key_pair_id(name),
                key_pair=cpb.KeyPair(public_key=str(public_key or ""), display_name=name),
            ),
            scope,
        )
        status = 201 if version >= Version(2, 2) else 200
        return self.reply(
            version, {"keypair": views.key_pair_json(created, scope.user, version)}, status
        )

    async def show_key_pair(self, request: Request) -> Response:
        """GET /os-keypairs/{name}."""
        scope, version = await self.begin(request)
        key = await self.call(
            self.compute.GetKeyPair,
            capi.GetKeyPairRequest(name=self._key_name(scope, request)),
            scope,
        )
        return self.reply(version, {"keypair": views.key_pair_json(key, scope.user, version)})

    async def delete_key_pair(self, request: Request) -> Response:
        """DELETE /os-keypairs/{name}: 202 before 2.2, 204 from it."""
        scope, version = await self.begin(request)
        await self.call(
            self.compute.DeleteKeyPair,
            capi.DeleteKeyPairRequest(name=self._key_name(scope, request)),
            scope,
        )
        return self.reply(version, status=204 if version >= Version(2, 2) else 202)

    # --- server groups ----------------------------------------------------------------

    async def _group_json(
        self, scope: Scope, version: Version, group: cpb.ServerGroup
    ) -> dict[str, Any]:
        uids = []
        for member in group.members:
            try:
                instance = await self.call(
                    self.compute.GetInstance, capi.GetInstanceRequest(name=member), scope
                )
            except RpcFailure:
                continue
            uids.append(str(instance.uid))
        return views.server_group_json(group, uids, version)

    async def list_server_groups(self, request: Request) -> Response:
        """GET /os-server-groups."""
        scope, version = await self.begin(request)
        answer = await self.call(
            self.compute.ListServerGroups,
            capi.ListServerGroupsRequest(parent=scope.parent, page_size=1000),
            scope,
        )
        groups = [await self._group_json(scope, version, g) for g in answer.server_groups]
        return self.reply(version, {"server_groups": groups})

    async def create_server_group(self, request: Request) -> Response:
        """POST /os-server-groups: `policies` (one of them; `policy` is taken too), or from
        2.64 `policy` and `rules`."""
        scope, version = await self.begin(request)
        body = await json_member(request, "server_group")
        if version >= views.V2_64:
            if "policies" in body:
                raise invalid("from microversion 2.64 a group has a 'policy', not 'policies'")
            policy = body.get("policy")
            _check_rules(policy, body.get("rules"))
        else:
            policies = body.get("policies") or [body.get("policy")]
            if not isinstance(policies, list) or len(policies) != 1:
                raise invalid("policies must hold one policy")
            policy = policies[0]
        if not isinstance(policy, str) or policy not in views.POLICIES:
            raise invalid(f"the policy must be one of {sorted(views.POLICIES)}")
        created = await self.call(
            self.compute.CreateServerGroup,
            capi.CreateServerGroupRequest(
                parent=scope.parent,
                server_group_id=str(body.get("name") or ""),
                server_group=cpb.ServerGroup(policy=views.POLICIES[policy]),
            ),
            scope,
        )
        return self.reply(
            version, {"server_group": await self._group_json(scope, version, created)}
        )

    async def show_server_group(self, request: Request) -> Response:
        """GET /os-server-groups/{id}."""
        scope, version = await self.begin(request)
        group = await self.call(
            self.compute.GetServerGroup,
            capi.GetServerGroupRequest(
                name=f"{scope.parent}/serverGroups/{request.path_params['group_id']}"
            ),
            scope,
        )
        return self.reply(version, {"server_group": await self._group_json(scope, version, group)})

    async def delete_server_group(self, request: Request) -> Response:
        """DELETE /os-server-groups/{id}: 204."""
        scope, version = await self.begin(request)
        await self.call(
            self.compute.DeleteServerGroup,
            capi.DeleteServerGroupRequest(
                name=f"{scope.parent}/serverGroups/{request.path_params['group_id']}"
            ),
            scope,
        )
        return self.reply(version, status=204)

    # --- zones, hypervisors, limits ---------------------------------------------------

    async def availability_zones(self, request: Request) -> Response:
        """GET /os-availability-zone[/detail]: the Kumo zones."""
        scope, version = await self.begin(request)
        answer = await self.call(
            self.topology.ListZones, tapi.ListZonesRequest(page_size=1000), scope
        )
        zones = [
            {"zoneName": last_segment(z.name), "zoneState": {"available": True}, "hosts": None}
            for z in answer.zones
        ]
        return self.reply(version, {"availabilityZoneInfo": zones})

    @staticmethod
    def _hypervisor(version: Version, index: int, host: tpb.Host, detail: bool) -> dict[str, Any]:
        """A host as a hypervisor: from 2.53 its id (and its service's) is the host's uid,
        before its position in the host list; from 2.88 in detail without its sizes and
        usage, and with `uptime` (null: Kumo hosts report none), as Nova from 2.88."""
        status, state = host_status(host)
        host_id: int | str = host.uid if version >= V2_53 else index
        item: dict[str, Any] = {
            "id": host_id,
            "hypervisor_hostname": last_segment(host.name),
            "state": state,
            "status": status,
        }
        if detail:
            item.update(
                {
                    "hypervisor_type": tpb.HypervisorKind.Name(host.hypervisor_kind)
                    .removeprefix("HYPERVISOR_KIND_")
                    .lower(),
                    "host_ip": host.address,
                    "service": {
                        "host": last_segment(host.name),
                        "id": host_id,
                        "disabled_reason": host.disabled_reason or None,
                    },
                }
            )
            if version >= V2_88:
                item["uptime"] = None
            else:
                item.update(_usage(host))
        return item

    async def _hypervisors(self, request: Request, detail: bool) -> Response:
        """GET /os-hypervisors[/detail][?hypervisor_hostname_pattern=] (2.53+: the hosts
        whose names contain the pattern)."""
        scope, version = await self.begin(request)
        pattern = ""  # (before 2.53 Nova ignores it)
        if version >= V2_53:
            pattern = request.query_params.get("hypervisor_hostname_pattern", "")
        hosts = await self.hosts(scope, "os-hypervisors:list")
        items = [
            self._hypervisor(version, index, host, detail)
            for index, host in enumerate(hosts, start=1)
            if pattern in last_segment(host.name)
        ]
        return self.reply(version, {"hypervisors": items})

    async def show_hypervisor(self, request: Request) -> Response:
        """GET /os-hypervisors/{id}: one in detail (its uid from 2.53, before its
        position); 404 for no such hypervisor."""
        scope, version = await self.begin(request)
        wanted = request.path_params["hypervisor_id"]
        hosts = await self.hosts(scope, "os-hypervisors:show")
        for index, host in enumerate(hosts, start=1):
            if wanted == (host.uid if version >= V2_53 else str(index)):
                return self.reply(
                    version, {"hypervisor": self._hypervisor(version, index, host, True)}
                )
        raise RpcFailure.of(
            grpc.StatusCode.NOT_FOUND, f"Hypervisor with ID {wanted} could not be found."
        )

    async def hypervisor_statistics(self, request: Request) -> Response:
        """GET /os-hypervisors/statistics: the sums of every hypervisor's sizes and usage
        (cloud administrators); 404 from 2.88, which removed it."""
        scope, version = await self.begin(request)
        if version >= V2_88:
            raise RpcFailure.of(grpc.StatusCode.NOT_FOUND, "The resource could not be found.")
        hosts = await self.hosts(scope, "os-hypervisors:statistics")
        totals: dict[str, int] = {"count": len(hosts)}
        for host in hosts:
            for key, value in _usage(host).items():
                totals[key] = totals.get(key, 0) + value
        return self.reply(version, {"hypervisor_statistics": totals})

    async def hypervisors(self, request: Request) -> Response:
        """GET /os-hypervisors (cloud administrators)."""
        return await self._hypervisors(request, detail=False)

    async def hypervisors_detail(self, request: Request) -> Response:
        """GET /os-hypervisors/detail (cloud administrators)."""
        return await self._hypervisors(request, detail=True)

    async def hypervisor_uptime(self, request: Request) -> Response:
        """GET /os-hypervisors/{id}/uptime: 501, as Nova answers for a driver that cannot
        tell (Kumo hosts report no uptime); 404 from 2.88, which removed it."""
        scope, version = await self.begin(request)
        if version >= V2_88:
            raise RpcFailure.of(grpc.StatusCode.NOT_FOUND, "The resource could not be found.")
        admin_only(scope, "os-hypervisors:uptime")
        raise not_offered("A hypervisor's uptime")

    async def limits(self, request: Request) -> Response:
        """GET /limits: the project's quota as Nova's absolute limits."""
        scope, version = await self.begin(request)
        quota = await self.call(
            self.backend.stub(irpc.IdentityServiceStub).GetQuota,
            iapi.GetQuotaRequest(name=f"{scope.parent}/quota"),
            scope,
        )
        by_resource = {q.resource: q for q in quota.limits}
        absolute: dict[str, int] = {}
        for nova, kumo in _LIMITS.items():
            limit = by_resource.get(kumo)
            absolute[f"maxTotal{nova}"] = int(limit.limit) if limit else -1
            absolute[f"total{nova.removesuffix('Size')}Used"] = int(limit.in_use) if limit else 0
        absolute.update(
            {
                "maxTotalKeypairs": -1,
                "maxServerMeta": MAX_METADATA_ITEMS,
                "maxServerGroups": -1,
                "maxServerGroupMembers": -1,
                "totalServerGroupsUsed": 0,
            }
        )
        if version < Version(2, 57):  # file injection's, gone since
            absolute.update({"maxPersonality": 0, "maxPersonalitySize": 0})
        if version < Version(2, 39):  # the image metadata proxy's limit, gone since
            absolute["maxImageMeta"] = MAX_METADATA_ITEMS
        return self.reply(version, {"limits": {"rate": [], "absolute": absolute}})


def _usage(host: tpb.Host) -> dict[str, int]:
    """A hypervisor's sizes and usage as Nova shows them before 2.88 (in detail, and summed
    in the statistics): what its claims hold, and the instances placed on it. Kumo does not
    measure what guests' disks really use, so `disk_available_least` is what the claims
    leave, as `free_disk_gb`; Nova's `current_workload` (instances with a task under way) is
    left out."""
    capacity, allocated = host.capacity, host.allocated
    free_disk = capacity.disk_gib - allocated.disk_gib
    return {
        "vcpus": capacity.vcpus,
        "memory_mb": capacity.memory_mib,
        "local_gb": capacity.disk_gib,
        "vcpus_used": allocated.vcpus,
        "memory_mb_used": allocated.memory_mib,
        "local_gb_used": allocated.disk_gib,
        "free_ram_mb": capacity.memory_mib - allocated.memory_mib,
        "free_disk_gb": free_disk,
        "disk_available_least": free_disk,
        "running_vms": host.instance_count,
    }


def _key_pair_name(value: Any, version: Version) -> str:
    """A key pair name as Nova's schema takes it (see create_key_pair); 400 otherwise."""
    pattern = _KEY_NAME_V2_92 if version >= V2_92 else _KEY_NAME
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise invalid(f"Keypair data is invalid: {value!r} is not a valid key pair name")
    return value


def _description(body: dict[str, Any], version: Version) -> str:
    """A flavor body's `description` (2.55; null: none); 400 if given before 2.55 or not
    text."""
    value = body.get("description")
    if "description" in body and version < views.V2_55:
        raise invalid("a flavor's description needs microversion 2.55")
    if value is not None and not isinstance(value, str):
        raise invalid("description must be a string or null")
    return value or ""


def _check_rules(policy: Any, rules: Any) -> None:
    """A 2.64 group's `rules`: none, or `max_server_per_host` with anti-affinity (400
    otherwise). Kumo's anti-affinity puts one member per host, so only 1 is offered."""
    if rules is None or rules == {}:
        return
    if not isinstance(rules, dict) or set(rules) != {"max_server_per_host"}:
        raise invalid("rules may hold max_server_per_host only")
    if policy != "anti-affinity":
        raise invalid("max_server_per_host is a rule of the anti-affinity policy only")
    most = rules["max_server_per_host"]
    if isinstance(most, bool) or not isinstance(most, int | str) or not str(most).isdigit():
        raise invalid("max_server_per_host must be a positive integer")
    if int(most) < 1:
        raise invalid("max_server_per_host must be a positive integer")
    if int(most) > 1:
        raise not_offered("More than one anti-affinity group member per host")
