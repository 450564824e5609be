"""Nova servers and server actions over the compute service's instances.

A server's id is the instance's uid; its name the display name. The gateway picks the Kumo
instance id (`srv-` and 32 hex digits) and, when the request names no availability zone,
the first zone. Actions map one to one to the instance RPCs (`os-migrateLive` and
`migrate` to MigrateInstance, live and cold; `evacuate` to EvacuateInstance;
`pause`/`unpause` to SuspendInstance with `pause` set and ResumeInstance: Kumo's
suspension is an in-memory pause, Nova's pause; `lock`/`unlock` to UpdateInstance of
`locked`); Nova's actions without a Kumo RPC (shelve, rescue, createBackup, ...) answer
501 in Nova's shape, an action Nova does not know 400. A cold migration
ends ACTIVE (or SHUTOFF) on the new host: unlike Nova's, it needs no confirmResize.
`addSecurityGroup`/`removeSecurityGroup` change the groups of the server's ports (see
security_groups.py).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import grpc
from google.protobuf import field_mask_pb2
from starlette.requests import Request
from starlette.responses import Response

from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import resources_pb2 as cpb
from kumo.gateway.dialect import invalid, json_body, json_member
from kumo.gateway.errors import RpcFailure
from kumo.gateway.key_pair_names import key_pair_ref
from kumo.gateway.openstack import paging
from kumo.gateway.openstack.common import Scope, last_segment
from kumo.gateway.openstack.microversions import Version
from kumo.gateway.openstack.neutron.index import Index
from kumo.gateway.openstack.nova import hostnames, server_tags, views
from kumo.gateway.openstack.nova.addresses import Labels, addresses, interfaces
from kumo.gateway.openstack.nova.base import NovaBase, not_offered
from kumo.gateway.openstack.nova.block_devices import (
    BootDisk,
    find_snapshot,
    find_volume,
    find_volume_type,
    read_mappings,
)
from kumo.gateway.openstack.nova.consoles import ACTION_TYPES, console_action
from kumo.gateway.openstack.nova.security_groups import (
    GroupNames,
    change_group,
    requested_groups,
    server_groups,
)
from kumo.gateway.openstack.nova.server_queries import server_query
from kumo.gateway.openstack.nova.volume_attachments import check_attachable
from kumo.storage.v1 import resources_pb2 as spb
from kumo.type.v1 import operation_metadata_pb2

V2_54, V2_57, V2_68, V2_71, V2_74, V2_78 = (Version(2, n) for n in (54, 57, 68, 71, 74, 78))
_REBOOT: dict[str, Any] = {"SOFT": capi.REBOOT_TYPE_SOFT, "HARD": capi.REBOOT_TYPE_HARD}
_BLOCK: dict[Any, Any] = {
    "auto": cpb.MigrationOptions.BLOCK_MIGRATION_UNSPECIFIED,
    True: cpb.MigrationOptions.BLOCK_MIGRATION_ENABLED,
    "true": cpb.MigrationOptions.BLOCK_MIGRATION_ENABLED,
    False: cpb.MigrationOptions.BLOCK_MIGRATION_DISABLED,
    "false": cpb.MigrationOptions.BLOCK_MIGRATION_DISABLED,
}
# Actions without a Kumo RPC yet.
_NOT_OFFERED = {
    "shelve": "Shelving a server",
    "shelveOffload": "Shelving a server",
    "unshelve": "Unshelving a server",
    "rescue": "Rescuing a server",
    "unrescue": "Rescuing a server",
    "changePassword": "Changing a server's password",
    "createBackup": "Backing up a server",
    "os-resetState": "Resetting a server's state",
    "forceDelete": "Soft deletion (deletes are immediate)",
    "restore": "Soft deletion (deletes are immediate)",
    "trigger_crash_dump": "Triggering a crash dump",
    "injectNetworkInfo": "Injecting network information",
    "resetNetwork": "Resetting a server's network",
}


class Servers(NovaBase):
    """`/servers` and `/servers/{id}/action`."""

    async def _detail(
        self, scope: Scope, version: Version, base: str, item: cpb.Instance
    ) -> dict[str, Any]:
        """One server in the detailed shape (show, update, rebuild: from 2.71 with the ids of
        its server groups, one at most in Kumo)."""
        labels, groups = await self._names(scope, [item])
        view = await self._view(scope, version, base, [item])
        server = await self._render(view, scope, item, labels, groups)
        if version >= V2_71:
            server["server_groups"] = [last_segment(item.server_group)] if item.server_group else []
        return server

    async def _view(
        self, scope: Scope, version: Version, base: str, items: list[cpb.Instance]
    ) -> views.DetailView:
        """The detailed view for `items` (with their flavors from microversion 2.47, and the
        names of their key pairs)."""
        flavors = None
        if version >= views.V2_47:
            flavors = await self.flavors(scope, {i.flavor for i in items})
        keys = await self.key_pair_names(scope, (i.key_pairs[0] for i in items if i.key_pairs))
        return views.DetailView(base, version, scope.cloud_admin, flavors, keys)

    async def _names(self, scope: Scope, items: list[cpb.Instance]) -> tuple[Labels, GroupNames]:
        """The labels of the servers' networks and the names of their ports' groups, read
        together."""
        labels = Labels(self.backend, scope.token)
        groups = GroupNames(Index(self.backend, scope))
        await asyncio.gather(labels.read(items), groups.read(items))
        return labels, groups

    async def _render(
        self,
        view: views.DetailView,
        scope: Scope,
        item: cpb.Instance,
        labels: Labels,
        groups: GroupNames,
    ) -> dict[str, Any]:
        """One server in the detailed shape, its networks' labels and its groups' names
        read (`labels.read`, `groups.read`)."""
        return view.render(
            item,
            await self._image_uid(scope, item),
            labels.addresses(item, detail=True),
            groups.view(item),
        )

    async def _image_uid(self, scope: Scope, item: cpb.Instance) -> str:
        """The id of the server's image; '' when it boots from a volume (Nova shows no
        image then) or the image is gone."""
        if not item.image or item.boot_volume:
            return ""
        return await self.images.uid(scope.token, item.image)

    async def _list(self, request: Request, detail: bool) -> Response:
        scope, version = await self.begin(request)
        query = await server_query(request.query_params, version, scope, self.images)

        async def fetch(token: str, size: int) -> tuple[list[cpb.Instance], str]:
            if query.nothing:
                return [], ""
            answer = await self.call(
                self.compute.ListInstances,
                capi.ListInstancesRequest(
                    parent=query.parent,
                    filter=query.filter,
                    order_by=query.order_by,
                    page_size=size,
                    page_token=token,
                    show_deleted=query.show_deleted,
                ),
                scope,
            )
            return list(answer.instances), str(answer.next_page_token)

        base = self.base(request)
        if detail:
            result = await paging.page(request, fetch, lambda i: i.uid)
            found = result.items
            labels, groups = await self._names(scope, found)
            view = await self._view(scope, version, base, found)
            servers = [await self._render(view, scope, i, labels, groups) for i in found]
        else:
            result = await paging.page(request, fetch, lambda i: i.uid)
            servers = [views.server_brief(i, base) for i in result.items]
        body: dict[str, Any] = {"servers": servers}
        if result.next_marker:
            path = f"{base}/compute/v2.1/servers{'/detail' if detail else ''}"
            body["servers_links"] = [{"rel": "next", "href": result.next_href(request, path)}]
        return self.reply(version, body)

    async def list(self, request: Request) -> Response:
        """GET /servers, with Nova's filters, sort keys and paging (server_queries.py)."""
        return await self._list(request, detail=False)

    async def list_detail(self, request: Request) -> Response:
        """GET /servers/detail."""
        return await self._list(request, detail=True)

    async def show(self, request: Request) -> Response:
        """GET /servers/{id}."""
        scope, version = await self.begin(request)
        item = await self.server_of(scope, request)
        server = await self._detail(scope, version, self.base(request), item)
        return self.reply(version, {"server": server})

    async def ips(self, request: Request) -> Response:
        """GET /servers/{id}/ips: the server's addresses by network label."""
        scope, version = await self.begin(request)
        item = await self.server_of(scope, request)
        found = await addresses(item, Labels(self.backend, scope.token), detail=False)
        return self.reply(version, {"addresses": found})

    async def numa_topology(self, request: Request) -> Response:
        """GET /servers/{id}/topology (2.78; 404 before, as Nova): a Kumo guest has no NUMA
        topology of its own, which Nova shows as no nodes."""
        scope, version = await self.begin(request)
        if version < V2_78:
            raise RpcFailure.of(grpc.StatusCode.NOT_FOUND, "The resource could not be found.")
        await self.server_of(scope, request)
        return self.reply(version, {"nodes": [], "pagesize_kb": None})

    async def security_groups(self, request: Request) -> Response:
        """GET /servers/{id}/os-security-groups: the groups of the server's ports."""
        scope, version = await self.begin(request)
        item = await self.server_of(scope, request)
        found = await server_groups(self.backend, scope, item)
        return self.reply(version, {"security_groups": found})

    async def ips_of_network(self, request: Request) -> Response:
        """GET /servers/{id}/ips/{network}: {label: [...]}; 404 when the server has no
        address on a network of that label."""
        scope, version = await self.begin(request)
        item = await self.server_of(scope, request)
        label = request.path_params["network"]
        found = await addresses(item, Labels(self.backend, scope.token), detail=False)
        if label not in found:
            raise RpcFailure.of(
                grpc.StatusCode.NOT_FOUND, f"Server {item.uid} has no network {label}."
            )
        return self.reply(version, {label: found[label]})

    async def _boot_volume(
        self, scope: Scope, version: Version, disk: BootDisk, instance: cpb.Instance
    ) -> spb.Volume | None:
        """Gives the instance the boot volume the mappings ask for (an existing one, or a new
        one from its image or a snapshot); returns the volume that says the server's zone
        (the boot volume, or the snapshot's), None for none. 400 if it cannot be found, if it
        is multiattach before microversion 2.60, or if it was not made from an image and no
        imageRef says what it holds."""
        instance.delete_boot_volume = disk.delete_on_termination
        if disk.volume_type:
            wanted = await find_volume_type(self.backend, scope, disk.volume_type)
            instance.new_boot_volume.volume_type = wanted
        if disk.volume_uid:
            volume = await find_volume(self.backend, scope, disk.volume_uid)
            check_attachable(volume, version)
            instance.boot_volume = volume.name
        elif disk.snapshot_uid:
            snapshot, volume = await find_snapshot(self.backend, scope, disk.snapshot_uid)
            instance.new_boot_volume.source_snapshot = snapshot.name
            instance.new_boot_volume.size_gib = disk.new_volume_gib
        else:
            if disk.new_volume_gib:  # made from the image
                instance.new_boot_volume.size_gib = disk.new_volume_gib
            return None
        if not instance.image:
            if not volume.source_image:
                raise invalid(
                    f"Volume {volume.uid} was not made from an image: give the imageRef "
                    "of what it holds"
                )
            instance.image = volume.source_image
        return volume

    async def _volumes_at_boot(
        self, scope: Scope, version: Version, disk: BootDisk, instance: cpb.Instance
    ) -> tuple[spb.Volume, ...]:
        """Gives the instance the other volumes the mappings ask for; returns the volumes
        that say which zone they must share with it (the existing ones, the snapshots').
        400 if one cannot be found."""
        placed: tuple[spb.Volume, ...] = ()
        for extra in disk.extra:
            wanted = instance.volumes_at_boot.add(
                size_gib=extra.size_gib,
                delete_with_instance=extra.delete_on_termination,
                device=extra.device_name,
            )
            if extra.volume_type:
                wanted.volume_type = await find_volume_type(self.backend, scope, extra.volume_type)
            if extra.volume_uid:
                volume = await find_volume(self.backend, scope, extra.volume_uid)
                check_attachable(volume, version)
                wanted.volume = volume.name
                placed += (volume,)
            elif extra.snapshot_uid:
                snapshot, volume = await find_snapshot(self.backend, scope, extra.snapshot_uid)
                wanted.source_snapshot = snapshot.name
                placed += (volume,)
        return placed

    async def create(self, request: Request) -> Response:
        """POST /servers: 202 with the new server's id."""
        scope, version = await self.begin(request)
        whole = await json_body(request)
        body = whole.get("server")
        if not isinstance(body, dict):
            raise invalid("the body needs a 'server' object")
        if str(body.get("min_count", 1)) != "1" or str(body.get("max_count", 1)) != "1":
            raise invalid("Kumo creates one server per request")
        if body.get("block_device_mapping"):
            raise invalid("Kumo reads block_device_mapping_v2, not the legacy block_device_mapping")
        disk = read_mappings(body.get("block_device_mapping_v2"))
        display_name = str(body.get("name") or "")
        instance = cpb.Instance(
            display_name=display_name,
            hostname=hostnames.given(body, version) or hostnames.derived(display_name),
            flavor=f"flavors/{last_segment(str(body.get('flavorRef') or ''))}",
            labels=_labels(body.get("metadata")),
            network_interfaces=await interfaces(self.backend, scope, body.get("networks")),
        )
        asked = body.get("security_groups")
        groups = await requested_groups(Index(self.backend, scope), asked)
        for interface in instance.network_interfaces:
            if not interface.port:  # (an existing port keeps its own groups)
                interface.security_groups[:] = groups
        if image_ref := body.get("imageRef") or disk.image_uid:
            instance.image = await self.images.name(scope.token, last_segment(str(image_ref)))
        volume = await self._boot_volume(scope, version, disk, instance)
        placed = await self._volumes_at_boot(scope, version, disk, instance)
        if key_name := body.get("key_name"):
            instance.key_pairs.append(key_pair_ref(scope.project, str(key_name)))
        if "tags" in body:
            if version < server_tags.V2_52:
                raise invalid("tags at creation need microversion 2.52")
            instance.tags[:] = server_tags.checked_list(body["tags"])
        _refuse_injection(body, version)
        if user_data := body.get("user_data"):
            instance.user_data = _user_data(user_data)
        hints = whole.get("os:scheduler_hints") or whole.get("OS-SCH-HNT:scheduler_hints") or {}
        if group := (hints.get("group") if isinstance(hints, dict) else None):
            instance.server_group = f"{scope.parent}/serverGroups/{group}"
        zone = str(body.get("availability_zone") or "")
        zone, _, host = zone.partition(":")
        if host := _requested_host(body, version, host):
            instance.requested_host = f"hosts/{host}"
        for each in placed if volume is None else (volume, *placed):
            volume_zone = each.name.split("/")[3]
            if zone and zone != volume_zone:
                raise invalid(f"Volume {each.uid} is in availability zone {volume_zone}")
            zone = volume_zone
        if not zone:
            zones = await self.zones(scope)
            if not zones:
                raise invalid("the cloud has no availability zone yet")
            zone = zones[0]
        operation = await self.call(
            self.compute.CreateInstance,
            capi.CreateInstanceRequest(
                parent=f"{scope.parent}/zones/{zone}",
                instance_id=f"srv-{uuid.uuid4().hex}",
                instance=instance,
            ),
            scope,
        )
        uid = _created_uid(operation)
        base = self.base(request)
        server = {
            "id": uid,
            "links": views.server_links(base, uid),
            "OS-DCF:diskConfig": "MANUAL",
            "security_groups": [{"name": g["name"]} for g in asked or [{"name": "default"}]],
        }
        location = f"{base}/compute/v2.1/servers/{uid}"
        return self.reply(version, {"server": server}, 202, Location=location)

    async def update(self, request: Request) -> Response:
        """PUT /servers/{id}: renames, and from 2.90 changes the hostname (for the guest's
        next build, as Nova's reaches a guest through its metadata)."""
        scope, version = await self.begin(request)
        body = await json_member(request, "server")
        hostname = hostnames.given(body, version)
        item = await self.server_of(scope, request)
        changes, paths = cpb.Instance(name=item.name), []
        if "name" in body:
            changes.display_name = str(body["name"] or "")
            paths.append("display_name")
        if hostname is not None:
            changes.hostname = hostname
            paths.append("hostname")
        if paths:
            item = await self.update_instance(scope, changes, *paths)
        server = await self._detail(scope, version, self.base(request), item)
        return self.reply(version, {"server": server})

    async def delete(self, request: Request) -> Response:
        """DELETE /servers/{id}: 204; the server goes away in the background. Again while
        it is being deleted: 204 as well (Nova ignores the repeat)."""
        scope, version = await self.begin(request)
        item = await self.server_of(scope, request)
        try:
            await self.call(
                self.compute.DeleteInstance, capi.DeleteInstanceRequest(name=item.name), scope
            )
        except RpcFailure as failure:
            if "INSTANCE_DELETING" not in failure.precondition_types():
                raise
        return self.reply(version, status=204)

    async def action(self, request: Request) -> Response:
        """POST /servers/{id}/action: one action per body."""
        scope, version = await self.begin(request)
        body = await json_body(request)
        if len(body) != 1:
            raise invalid("the body names exactly one action")
        ((name, argument),) = body.items()
        if name in _NOT_OFFERED:
            raise not_offered(_NOT_OFFERED[name])
        handler = self._actions(self.base(request)).get(name)
        if handler is None:
            raise invalid(f"There is no such action: {name}")
        item = await self.server_of(scope, request)
        arg = argument if isinstance(argument, dict) else {}
        if "force" in arg and name in ("evacuate", "os-migrateLive") and version >= V2_68:
            raise invalid(f"force is not accepted in {name} from microversion 2.68")
        return await handler(scope, version, item, arg)

    def _actions(
        self, base: str
    ) -> dict[str, Callable[[Scope, Version, cpb.Instance, dict[str, Any]], Awaitable[Response]]]:
        """The action handlers by name (`base`: this gateway's URL, for those that answer
        with the server)."""

        def simple(method: Any, make: Callable[[str, dict[str, Any]], Any]) -> Any:
            async def run(
                scope: Scope, version: Version, item: cpb.Instance, arg: dict[str, Any]
            ) -> Response:
                await self.call(method, make(item.name, arg), scope)
                return self.reply(version, status=202)

            return run

        c = self.compute
        return {
            "os-start": simple(c.StartInstance, lambda n, a: capi.StartInstanceRequest(name=n)),
            "os-stop": simple(c.StopInstance, lambda n, a: capi.StopInstanceRequest(name=n)),
            "reboot": simple(
                c.RebootInstance,
                lambda n, a: capi.RebootInstanceRequest(
                    name=n, type=_REBOOT.get(str(a.get("type", "SOFT")).upper(), 0)
                ),
            ),
            "suspend": simple(c.SuspendInstance, lambda n, a: capi.SuspendInstanceRequest(name=n)),
            "resume": self._resume,
            # Kumo's one suspension is an in-memory pause; `paused` only records the verb.
            "pause": simple(
                c.SuspendInstance, lambda n, a: capi.SuspendInstanceRequest(name=n, pause=True)
            ),
            "unpause": self._unpause,
            "lock": partial(self._lock, True),
            "unlock": partial(self._lock, False),
            "resize": simple(
                c.ResizeInstance,
                lambda n, a: capi.ResizeInstanceRequest(
                    name=n, flavor=f"flavors/{last_segment(str(a.get('flavorRef') or ''))}"
                ),
            ),
            "confirmResize": simple(
                c.ConfirmResizeInstance, lambda n, a: capi.ConfirmResizeInstanceRequest(name=n)
            ),
            "revertResize": simple(
                c.RevertResizeInstance, lambda n, a: capi.RevertResizeInstanceRequest(name=n)
            ),
            "os-migrateLive": simple(
                c.MigrateInstance,
                lambda n, a: capi.MigrateInstanceRequest(
                    name=n,
                    host=_host(a),
                    options=cpb.MigrationOptions(block_migration=_block(a)),
                ),
            ),
            "migrate": simple(
                c.MigrateInstance,
                lambda n, a: capi.MigrateInstanceRequest(
                    name=n,
                    host=_host(a),
                    options=cpb.MigrationOptions(mode=cpb.MigrationOptions.MODE_COLD),
                ),
            ),
            "evacuate": self._evacuate,
            "rebuild": partial(self._rebuild, base=base),
            "createImage": self._create_image,
            "os-getConsoleOutput": self._console,
            "addSecurityGroup": partial(self._security_group, True),
            "removeSecurityGroup": partial(self._security_group, False),
            **{name: partial(console_action, types) for name, types in ACTION_TYPES.items()},
        }

    async def _security_group(
        self, add: bool, scope: Scope, version: Version, item: cpb.Instance, arg: dict[str, Any]
    ) -> Response:
        await change_group(self.backend, scope, item, arg.get("name"), add)
        return self.reply(version, status=202)

    async def _resume_if(
        self, scope: Scope, version: Version, item: cpb.Instance, paused: bool, verb: str
    ) -> Response:
        """ResumeInstance, if the server is suspended the way `verb` undoes (Nova answers
        409 to `resume` of a paused server and to `unpause` of a suspended one)."""
        suspended = item.state == cpb.Instance.STATE_SUSPENDED
        if suspended and item.paused != paused:
            shown = "paused" if item.paused else "suspended"
            raise RpcFailure.of(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"Cannot '{verb}' instance {item.uid} while it is in vm_state {shown}",
            )
        await self.call(
            self.compute.ResumeInstance, capi.ResumeInstanceRequest(name=item.name), scope
        )
        return self.reply(version, status=202)

    async def _resume(
        self, scope: Scope, version: Version, item: cpb.Instance, arg: dict[str, Any]
    ) -> Response:
        return await self._resume_if(scope, version, item, False, "resume")

    async def _unpause(
        self, scope: Scope, version: Version, item: cpb.Instance, arg: dict[str, Any]
    ) -> Response:
        return await self._resume_if(scope, version, item, True, "unpause")

    async def _lock(
        self, locked: bool, scope: Scope, version: Version, item: cpb.Instance, arg: dict[str, Any]
    ) -> Response:
        """`lock` ({"locked_reason"} optional) and `unlock`: UpdateInstance of the lock."""
        reason = arg.get("locked_reason") or ""
        if not isinstance(reason, str):
            raise invalid("locked_reason must be a string")
        lock = cpb.Instance(name=item.name, locked=locked, locked_reason=reason)
        await self.update_instance(scope, lock, "locked", "locked_reason")
        return self.reply(version, status=202)

    async def _evacuate(
        self, scope: Scope, version: Version, item: cpb.Instance, arg: dict[str, Any]
    ) -> Response:
        await self.call(
            self.compute.EvacuateInstance,
            capi.EvacuateInstanceRequest(name=item.name, host=_host(arg)),
            scope,
        )
        # Nova answers 200; before 2.14 with the admin password (Kumo sets none).
        return self.reply(version, {} if version >= Version(2, 14) else {"adminPass": ""})

    async def _rebuild(
        self, scope: Scope, version: Version, item: cpb.Instance, arg: dict[str, Any], base: str
    ) -> Response:
        """`rebuild`: from `imageRef`, also changing what the body gives of `name`,
        `metadata` (all of it), `key_name` (2.54; null: none), `user_data` (2.57; null:
        none) and `hostname` (2.90). 202 with the server as it is then, as Nova answers."""
        _refuse_injection(arg, version)
        changes, paths = cpb.Instance(), []
        if "name" in arg:
            changes.display_name = str(arg["name"] or "")
            paths.append("display_name")
        if "metadata" in arg:
            changes.labels.update(_labels(arg["metadata"]))
            paths.append("labels")
        if "key_name" in arg:
            if version < V2_54:
                raise invalid("key_name in a rebuild needs microversion 2.54")
            if arg["key_name"]:
                changes.key_pairs.append(key_pair_ref(scope.project, str(arg["key_name"])))
            paths.append("key_pairs")
        if "user_data" in arg:
            if version < V2_57:
                raise invalid("user_data in a rebuild needs microversion 2.57")
            changes.user_data = _user_data(arg["user_data"]) if arg["user_data"] else b""
            paths.append("user_data")
        if (hostname := hostnames.given(arg, version)) is not None:
            changes.hostname = hostname
            paths.append("hostname")
        image = await self.images.name(scope.token, last_segment(str(arg.get("imageRef") or "")))
        await self.call(
            self.compute.RebuildInstance,
            capi.RebuildInstanceRequest(
                name=item.name,
                image=image,
                instance=changes,
                update_mask=field_mask_pb2.FieldMask(paths=paths),
            ),
            scope,
        )
        rebuilt = await self.call(
            self.compute.GetInstance, capi.GetInstanceRequest(name=item.name), scope
        )
        server = await self._detail(scope, version, base, rebuilt)
        return self.reply(version, {"server": server}, 202)

    async def _create_image(
        self, scope: Scope, version: Version, item: cpb.Instance, arg: dict[str, Any]
    ) -> Response:
        image_id = f"img-{uuid.uuid4().hex}"
        await self.call(
            self.compute.SnapshotInstance,
            capi.SnapshotInstanceRequest(name=item.name, image_id=image_id),
            scope,
        )
        uid = await self.images.uid(scope.token, f"{scope.parent}/images/{image_id}")
        if version >= Version(2, 45):  # the image's id in the body, no Location
            return self.reply(version, {"image_id": uid}, 202)
        headers = {"Location": f"/image/v2/images/{uid}"} if uid else {}
        return self.reply(version, status=202, **headers)

    async def _console(
        self, scope: Scope, version: Version, item: cpb.Instance, arg: dict[str, Any]
    ) -> Response:
        answer = await self.call(
            self.compute.GetSerialPortOutput,
            capi.GetSerialPortOutputRequest(name=item.name),
            scope,
        )
        text = str(answer.contents)
        length = arg.get("length")
        if length is not None:
            try:
                lines = int(length)
            except (TypeError, ValueError):
                raise invalid("length must be an integer") from None
            text = "".join(text.splitlines(keepends=True)[-lines:]) if lines > 0 else ""
        return self.reply(version, {"output": text})


def _refuse_injection(body: dict[str, Any], version: Version) -> None:
    """400 for what a create or rebuild body may ask and Kumo does not do: `personality`
    (file injection, gone from 2.57) and `trusted_image_certificates` (2.63; Kumo
    verifies no image signatures)."""
    if "personality" in body and version >= V2_57:
        raise invalid("personality (file injection) is not accepted from microversion 2.57")
    if body.get("trusted_image_certificates"):
        raise invalid("Image signature certificate validation is not offered by Kumo.")


def _requested_host(body: dict[str, Any], version: Version, zone_host: str) -> str:
    """The host a create asks for: `zone:host` in its availability zone, or from 2.74 its
    `host` or `hypervisor_hostname` (one name in Kumo). 400 when they differ, or for those
    two keys before 2.74 or not text."""
    wanted = {zone_host} if zone_host else set()
    for key in ("host", "hypervisor_hostname"):
        if key not in body:
            continue
        if version < V2_74:
            raise invalid(f"{key} at creation needs microversion 2.74")
        if not isinstance(body[key], str) or not body[key]:
            raise invalid(f"{key} must be a host's name")
        wanted.add(body[key])
    if len(wanted) > 1:
        raise invalid(f"the create names more than one host: {', '.join(sorted(wanted))}")
    return wanted.pop() if wanted else ""


def _labels(metadata: Any) -> dict[str, str]:
    """A server's labels from Nova metadata (an object; null: none). 400 for another type."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise invalid("metadata must be an object")
    return {str(k): str(v) for k, v in metadata.items()}


def _user_data(value: Any) -> bytes:
    """Decoded base64 `user_data`; 400 if it is not base64."""
    try:
        return base64.b64decode(str(value), validate=True)
    except binascii.Error:
        raise invalid("user_data must be base64") from None


def _host(arg: dict[str, Any]) -> str:
    """`hosts/{host}` from an action's `host` (empty: the scheduler chooses)."""
    host = arg.get("host")
    return f"hosts/{host}" if host else ""


def _block(arg: dict[str, Any]) -> Any:
    """The block migration choice of `os-migrateLive` (`auto`, true or false)."""
    value = arg.get("block_migration", "auto")
    choice = _BLOCK.get(value.lower() if isinstance(value, str) else value)
    if choice is None:
        raise RpcFailure.of(
            grpc.StatusCode.INVALID_ARGUMENT, f"Invalid block_migration value {value!r}"
        )
    return choice


def _created_uid(operation: Any) -> str:
    """The uid of the instance a CreateInstance operation makes (its metadata's
    `target_uid`, known before the build: no GetInstance needed to answer)."""
    metadata = operation_metadata_pb2.OperationMetadata()
    operation.metadata.Unpack(metadata)
    return str(metadata.target_uid)
