"""What `GET /servers` and `GET /servers/detail` ask for, read as Nova reads the query.

Nova knows a fixed set of query parameters (its query schema, by microversion). A member's
filters are those Nova lets everyone use (more from 2.83); an administrator's every
filter. Parameters a member may not use are dropped, as Nova drops them; parameters Nova
does not know are ignored before 2.75 and 400 from 2.75. The filters become ListInstances terms:

- `name` (and `display_name`), `hostname`: the regular expression matched anywhere in the
  name (`display_name ~`), as Nova matches them; `ip` and `ip6`: matched from the start of
  one of the server's fixed IPv4 (IPv6) addresses (`ip_addresses ~`).
- `status`, `vm_state`, `power_state` (several values allowed): the Kumo states that the
  server view (views.py) shows with those values; `task_state` `deleting`.
- `image` (and `image_ref`), `flavor`, `key_name`, `uuid`, `host` and `node` (a Kumo host
  is Nova's host and node alike), `availability_zone`, `locked`, tags, `changes-since`,
  `changes-before`: equality, as Nova's.
- `all_tenants` (administrators; 403 for members, as Nova's policy): every project, or
  the one `project_id` (`tenant_id`) names; `deleted`: the deleted servers.
- `reservation_id`: Kumo makes no reservations, so nothing matches.
- What Kumo keeps nothing for (`user_id`, `launched_at`, `config_drive`, `progress`, ...):
  501, rather than an answer that silently ignores the filter.

The order is Nova's default, newest first (`created_at` descending), or the first
`sort_key` Kumo can sort by (`created_at`, `updated_at`, `display_name`, `uuid`) in its
`sort_dir` (default descending); other keys Nova accepts leave the default order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import grpc
from starlette.datastructures import QueryParams

from kumo.compute.v1 import resources_pb2 as cpb
from kumo.gateway.dialect import invalid
from kumo.gateway.errors import RpcFailure
from kumo.gateway.key_pair_names import key_pair_id
from kumo.gateway.openstack.common import Scope, quoted
from kumo.gateway.openstack.lookup import ImageIndex
from kumo.gateway.openstack.microversions import Version
from kumo.gateway.openstack.nova import server_tags, views
from kumo.gateway.openstack.nova.base import admin_only, not_offered
from kumo.gateway.openstack.nova.changes import changes

V2_5, V2_38, V2_66, V2_73, V2_75, V2_83 = (Version(2, n) for n in (5, 38, 66, 73, 75, 83))

_PAGING = {"limit", "marker", "sort_key", "sort_dir"}
# Filters for everyone (Nova's non-administrator search options), by first microversion.
_EVERYONE = {
    "reservation_id", "name", "status", "image", "flavor", "ip", "changes-since",
    "all_tenants",
}  # fmt: skip
_EVERYONE_SINCE = {
    "ip6": V2_5,
    **dict.fromkeys(("tags", "tags-any", "not-tags", "not-tags-any"), server_tags.V2_26),
    "changes-before": V2_66,
    "locked": V2_73,
    **dict.fromkeys(
        (
            "availability_zone", "config_drive", "key_name", "created_at", "launched_at",
            "terminated_at", "power_state", "task_state", "vm_state", "progress", "user_id",
        ),
        V2_83,
    ),
}  # fmt: skip
# Filters for cloud administrators only.
_ADMINS = {
    "user_id", "project_id", "tenant_id", "launch_index", "image_ref", "kernel_id",
    "ramdisk_id", "hostname", "key_name", "power_state", "vm_state", "task_state", "host",
    "node", "launched_at", "terminated_at", "availability_zone", "display_name",
    "description", "display_description", "locked_by", "uuid", "root_device_name",
    "config_drive", "access_ip_v4", "access_ip_v6", "auto_disk_config", "progress",
    "soft_deleted", "deleted", "created_at", "ip6",
}  # fmt: skip
# Filters on what Nova keeps in other tables: 400, as Nova answers them.
_JOINED = {
    "block_device_mapping", "services", "metadata", "system_metadata", "info_cache",
    "security_groups", "pci_devices",
}  # fmt: skip
# Every parameter Nova knows (in some version, for someone).
_KNOWN = _PAGING | _EVERYONE | set(_EVERYONE_SINCE) | _ADMINS | _JOINED
# Filters on what Kumo keeps nothing for.
_NOT_KEPT = {
    "user_id", "launch_index", "kernel_id", "ramdisk_id", "launched_at", "terminated_at",
    "description", "display_description", "locked_by", "root_device_name", "config_drive",
    "access_ip_v4", "access_ip_v6", "auto_disk_config", "progress", "created_at",
}  # fmt: skip

# Nova's sort keys; the ignored ones it dropped before 2.75 and refuses from 2.75
# (`locked` is one of them before 2.73).
_SORT_KEYS = {
    "access_ip_v4", "access_ip_v6", "auto_disk_config", "availability_zone", "config_drive",
    "created_at", "display_description", "display_name", "host", "hostname", "image_ref",
    "instance_type_id", "kernel_id", "key_name", "launch_index", "launched_at", "locked_by",
    "node", "power_state", "progress", "project_id", "ramdisk_id", "root_device_name",
    "task_state", "terminated_at", "updated_at", "user_id", "uuid", "vm_state",
}  # fmt: skip
_IGNORED_SORT_KEYS = {
    "architecture", "cell_name", "cleaned", "default_ephemeral_device",
    "default_swap_device", "deleted", "deleted_at", "disable_terminate", "ephemeral_gb",
    "ephemeral_key_uuid", "id", "key_data", "launched_on", "memory_mb", "os_type",
    "reservation_id", "root_gb", "shutdown_terminate", "user_data", "vcpus", "vm_mode",
}  # fmt: skip
_ADMIN_SORT_KEYS = {"host", "node"}
# Nova sort key -> ListInstances order field.
_ORDERS = {
    "created_at": "create_time",
    "updated_at": "update_time",
    "display_name": "display_name",
    "uuid": "uid",
}

# Nova's server statuses that no Kumo state is shown as: known, and matching nothing.
_OTHER_STATUSES = {
    "HARD_REBOOT", "MIGRATING", "PASSWORD", "REBUILD", "RESCUE", "RESIZE", "REVERT_RESIZE",
    "SHELVED", "SHELVED_OFFLOADED", "SOFT_DELETED", "UNKNOWN",
}  # fmt: skip
_STATE = cpb.Instance.State
_SUSPENDED = _STATE.STATE_SUSPENDED
# A Kumo state, and for a suspended one whether it must be paused (None: either way).
Shown = tuple[int, bool | None]
Normal = Callable[[str], str] | None  # how a value's case is made Nova's


def _shown_as(position: int, normal: Normal) -> dict[str, list[Shown]]:
    """Each value of the view's status (`position` 0), vm_state (1) or power_state (2),
    as text (`normal` the case), with the Kumo states shown with it."""
    found: dict[str, list[Shown]] = {}

    def note(value: str | int, shown: Shown) -> None:
        text = str(value)
        found.setdefault(normal(text) if normal else text, []).append(shown)

    for state, values in views.STATUS.items():
        if state == _STATE.STATE_DELETED and position == 2:
            continue  # (the deleted are asked for by status or vm_state, or `deleted`)
        note(values[position], (state, False if state == _SUSPENDED else None))
    note(views.PAUSED[position], (_SUSPENDED, True))
    return found


_BY_STATUS = _shown_as(0, str.upper)
_BY_VM_STATE = _shown_as(1, str.lower)
_BY_POWER_STATE = _shown_as(2, None)
_BY_TASK_STATE: dict[str, list[Shown]] = {"deleting": [(_STATE.STATE_DELETING, None)]}
_TRUE = {"1", "t", "true", "on", "y", "yes"}
_FALSE = {"0", "f", "false", "off", "n", "no"}


@dataclass(frozen=True)
class ServerQuery:
    """A server list request as ListInstances arguments; `nothing` when no server can
    match (an image that is not there, a reservation id), so no call is needed."""

    parent: str
    filter: str
    order_by: str
    show_deleted: bool
    nothing: bool = False


def boolean(text: str, key: str) -> bool:
    """A query parameter read as Nova reads booleans (`true`, `1`, `yes`, `on` and their
    opposites, any case); 400 otherwise."""
    lowered = text.strip().lower()
    if lowered in _TRUE | _FALSE:
        return lowered in _TRUE
    raise invalid(f"Invalid input for query parameters {key}. Value: {text}.")


def _state_terms(wanted: Iterable[Shown]) -> list[str]:
    """Terms for servers in one of the `wanted` states (paused or not where given)."""
    wanted = list(wanted)
    states = sorted({state for state, _ in wanted})
    names = {state: _STATE.Name(state) for state in states}
    terms = ["(" + " OR ".join(f"state = {names[s]}" for s in states) + ")"]
    paused = {p for state, p in wanted if state == _SUSPENDED}
    if len(paused) == 1 and None not in paused:  # the suspended ones are paused, or not
        others = [f"state = {names[s]}" for s in states if s != _SUSPENDED]
        pause = "true" if paused == {True} else "false"
        terms.append("(" + " OR ".join([f"paused = {pause}", *others]) + ")")
    return terms


class _Reader:
    """Reads one request's query into terms."""

    def __init__(self, query: QueryParams, version: Version, scope: Scope) -> None:
        self.query = query
        self.version = version
        self.scope = scope
        self.terms: list[str] = []
        self.nothing = False
        self.show_deleted = False

    def allowed(self) -> set[str]:
        """The parameters this caller may use at this version (the others are dropped)."""
        names = _PAGING | _EVERYONE
        names |= {k for k, since in _EVERYONE_SINCE.items() if self.version >= since}
        if self.scope.cloud_admin:
            names |= _ADMINS | _JOINED
        return names

    def check_known(self) -> None:
        """From 2.75, 400 for a parameter Nova does not know."""
        if self.version < V2_75:
            return
        for key in self.query:
            if key not in _KNOWN:
                raise invalid(f"Additional properties are not allowed ({key!r} was unexpected)")

    def states(self, key: str, table: dict[str, list[Shown]], normal: Normal) -> None:
        """The `key` filter (several values allowed) over the states shown as them."""
        values = self.query.getlist(key)
        if not values:
            return
        wanted = [s for v in values for s in table.get(normal(v) if normal else v, [])]
        if not wanted:
            self.nothing = True
            return
        self.terms += _state_terms(wanted)
        self.show_deleted |= any(s == _STATE.STATE_DELETED for s, _ in wanted)

    def statuses(self) -> None:
        """`status`: unknown values are 400 from 2.38, match nothing before."""
        for value in self.query.getlist("status"):
            status = value.upper()
            if status not in _BY_STATUS and status not in _OTHER_STATUSES:
                if self.version >= V2_38:
                    raise invalid(f"Invalid status value {value}")
                self.nothing = True
        self.states("status", _BY_STATUS, str.upper)


def _order(query: QueryParams, version: Version, scope: Scope) -> str:
    """The ListInstances order of Nova's `sort_key`/`sort_dir` (see the module's notes)."""
    keys = query.getlist("sort_key")
    directions = query.getlist("sort_dir")
    for direction in directions:
        if direction not in ("asc", "desc"):
            raise invalid("Unknown sort direction, must be 'desc' or 'asc'")
    ignored = set(_IGNORED_SORT_KEYS)
    if version < V2_73:
        ignored.add("locked")
    valid = _SORT_KEYS | ({"locked"} if version >= V2_73 else set())
    for index, key in enumerate(keys):
        if key in ignored and version < V2_75:
            continue
        if key not in valid:
            raise invalid(f"Invalid input for query parameters sort_key. Value: {key}.")
        if key in _ADMIN_SORT_KEYS and not scope.cloud_admin:
            continue
        if key in _ORDERS:
            direction = directions[min(index, len(directions) - 1)] if directions else "desc"
            return _ORDERS[key] + (" desc" if direction == "desc" else "")
    return "create_time desc"


async def server_query(
    query: QueryParams, version: Version, scope: Scope, images: ImageIndex
) -> ServerQuery:
    """The ListInstances arguments for a server list's query (see the module's notes).
    400 for a bad value (or from 2.75 an unknown parameter), 403 for `all_tenants` from a
    member, 501 for a filter on what Kumo does not keep."""
    reader = _Reader(query, version, scope)
    reader.check_known()
    allowed = reader.allowed()
    given = {key: query[key] for key in query if key in allowed}
    for key in given:
        if key in _JOINED:
            raise invalid(f"Invalid filter field: {key}.")
        if key in _NOT_KEPT:
            raise not_offered(f"Filtering servers by {key}")
    terms = reader.terms
    if name := given.get("name", given.get("display_name")):
        terms.append(f"display_name ~ {quoted(name)}")
    if hostname := given.get("hostname"):
        terms.append(f"hostname ~ {quoted(hostname)}")
    if ip := given.get("ip"):
        terms.append(f"ip_addresses ~ {quoted(f'^(?=[0-9.]+$)(?:{ip})')}")
    if ip6 := given.get("ip6"):
        terms.append(f"ip_addresses ~ {quoted(f'^(?=.*:)(?:{ip6})')}")
    if "status" in given:
        reader.statuses()
    if "vm_state" in given:
        reader.states("vm_state", _BY_VM_STATE, str.lower)
    if "power_state" in given:
        reader.states("power_state", _BY_POWER_STATE, None)
    if "task_state" in given:
        reader.states("task_state", _BY_TASK_STATE, str.lower)
    if flavor := given.get("flavor"):
        terms.append(f"flavor = {quoted('flavors/' + flavor)}")
    if image := given.get("image", given.get("image_ref")):
        try:
            terms.append(f"image = {quoted(await images.name(scope.token, image))}")
        except RpcFailure as failure:
            if failure.code != grpc.StatusCode.NOT_FOUND.value[0]:
                raise
            reader.nothing = True  # (Nova: no server has an image that is not there)
    if key_name := given.get("key_name"):
        # (the key pair of that name in the server's project, whichever is listed)
        wanted = re.escape(key_pair_id(key_name))
        terms.append(f"key_pairs ~ {quoted('/keyPairs/' + wanted + '$')}")
    if uid := given.get("uuid"):
        terms.append(f"uid = {quoted(uid)}")
    if host := given.get("host", given.get("node")):
        terms.append(f"host = {quoted('hosts/' + host)}")
    if "reservation_id" in given:
        reader.nothing = True
    terms += server_tags.filter_terms(given)  # (given from 2.26 only)
    if (locked := given.get("locked")) is not None:
        terms.append(f"locked = {str(boolean(locked, 'locked')).lower()}")
    if "deleted" in given and given["deleted"].strip().lower() in _TRUE:
        terms.append(f"state = {_STATE.Name(_STATE.STATE_DELETED)}")
        reader.show_deleted = True
    # Changed since (or before): deleted servers too, as Nova lists them then.
    window = changes(given, version)
    terms += window.filter_terms("update_time")
    return ServerQuery(
        parent=f"{_project(given, scope)}/zones/{given.get('availability_zone') or '-'}",
        filter=" AND ".join(terms),
        order_by=_order(query, version, scope),
        show_deleted=window.asked or reader.show_deleted,
        nothing=reader.nothing,
    )


def _project(given: dict[str, str], scope: Scope) -> str:
    """The projects listed: the caller's, or with `all_tenants` (administrators) every
    one (`projects/-`) or the one `project_id` or `tenant_id` names."""
    if "all_tenants" not in given:
        return scope.parent
    text = given["all_tenants"]
    if text and not boolean(text, "all_tenants"):
        return scope.parent
    admin_only(scope, "servers:index:get_all_tenants")
    wanted = given.get("project_id") or given.get("tenant_id")
    return f"projects/{wanted}" if wanted else "projects/-"
