"""Malformed input to every route of the OpenStack dialects is a 4xx, never a 500.

The routes come from the gateway's own router, so a route added later is called without a
change here (a write route whose body wrapper the table below does not know fails the test,
so that someone decides). Each route is called on real resources of a project (so that a
body is read after its lookup succeeds) and on ids that name nothing or are malformed:

- every route with microversion and content-type headers it cannot take; collections with
  malformed query parameters;
- writes, with bodies that are not JSON or not a JSON object, the route's wrapper object as
  some other JSON type, and (as the member, or the cloud administrator where members are
  refused) each field the dialects read as a value of each wrong JSON type in turn, inside
  an otherwise valid body on the create routes (so that it is read, not refused for a
  missing field);
- actions, with each action name Nova and Cinder know and arguments of the wrong shape.

Every answer must be below 500, or 501 (what Kumo does not offer), and every refusal a JSON
body (the dialect's error, never a stack trace). Nothing here checks what changed: some of
the values are valid for some fields.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from starlette.routing import Mount, Route

from kumo.gateway.app import Settings, create_app
from tests.integration.test_compute_resources import make_flavor
from tests.support.cloud import Stubs, Tenant
from tests.support.gateway import GatewayThread
from tests.support.storage import ensure_default_type
from tests.support.topology import make_site

pytestmark = pytest.mark.parametrize("api", ["sqlite"], indirect=True)

# The body wrapper of the write routes, by the last fixed segment of their path ("" for a
# flat body, None for a body that is not JSON).
WRAPPERS: dict[str, str | None] = {
    "servers": "server", "flavors": "flavor", "os-keypairs": "keypair",
    "os-server-groups": "server_group", "os-aggregates": "aggregate", "os-services": "",
    "os-quota-sets": "quota_set", "metadata": "", "tags": "",
    "os-interface": "interfaceAttachment", "os-volume_attachments": "volumeAttachment",
    "images": "", "members": "", "file": None, "networks": "network", "subnets": "subnet",
    "ports": "port", "routers": "router", "floatingips": "floatingip",
    "security-groups": "security_group", "security-group-rules": "security_group_rule",
    "add_router_interface": "", "remove_router_interface": "", "quotas": "quota",
    "volumes": "volume", "snapshots": "snapshot", "types": "volume_type",
    "extra_specs": "extra_specs", "os-extra_specs": "extra_specs", "backups": "backup",
    "restore": "restore",
    "attachments": "attachment", "volume-transfers": "transfer",
    "os-volume-transfer": "transfer", "accept": "accept", "tokens": "auth",
    "projects": "project", "users": "user", "roles": "",
    "application_credentials": "application_credential", "remote-consoles": "remote_console",
}  # fmt: skip
# What each dialect reads from request bodies, and what the small flat bodies hold.
FIELDS = {
    "/compute": "name description metadata meta tags id status type policies policy rules "
    "networks uuid port fixed_ip net_id port_id fixed_ips imageRef image_ref flavorRef "
    "availability_zone key_name user_data hostname min_count max_count block_device_mapping "
    "block_device_mapping_v2 personality adminPass accessIPv4 ram vcpus disk swap "
    "os-flavor-access:is_public public_key volumeId delete_on_termination device tag host "
    "security_groups instances cores protocol",
    "/image": "name visibility disk_format container_format min_disk min_ram protected tags "
    "member status id os_hidden",
    "/network": "name description tags id network_id subnet_id port_id cidr ip_version "
    "allocation_pools host_routes dns_nameservers gateway_ip enable_dhcp routes "
    "external_gateway_info floating_network_id floating_ip_address fixed_ips "
    "fixed_ip_address allowed_address_pairs direction ethertype protocol port_range_min "
    "port_range_max remote_ip_prefix remote_group_id security_group_id security_groups "
    "admin_state_up shared mtu router:external provider:network_type "
    "provider:physical_network provider:segmentation_id port_security_enabled device_id "
    "device_owner mac_address project_id network subnet port router floatingip",
    "/volume": "name description metadata size volume_type extra_specs snapshot_id "
    "source_volid multiattach force volume_id volume_uuid instance_uuid connector mode "
    "auth_key status imageRef backup_id container incremental availability_zone volumes "
    "gigabytes snapshots",
    "/v3": "name description domain domain_id password user scope project identity methods "
    "token secret email enabled default_project_id roles expires_at unrestricted id",
}
FLAT_FIELDS = {
    "tags": "tags", "metadata": "metadata meta", "members": "member status",
    "add_router_interface": "subnet_id port_id", "remove_router_interface": "subnet_id port_id",
    "os-services": "status disabled_reason forced_down host binary", "roles": "",
}  # fmt: skip
WRONG: list[Any] = ["x", 1, [{"a": []}], {"a": {"b": 1}}]
ACTIONS = [
    "os-start", "os-stop", "reboot", "pause", "unpause", "suspend", "resume", "resize",
    "confirmResize", "revertResize", "createImage", "os-getConsoleOutput", "os-migrateLive",
    "migrate", "evacuate", "rebuild", "lock", "unlock", "addSecurityGroup", "removeSecurityGroup",
    "addFloatingIp", "removeFloatingIp", "os-getVNCConsole", "os-getSerialConsole", "shelve",
    "unshelve", "add_host", "remove_host", "set_metadata", "os-attach", "os-detach", "os-extend",
    "os-reserve", "os-unreserve", "os-begin_detaching", "os-roll_detaching",
    "os-initialize_connection", "os-terminate_connection", "os-set_bootable", "os-retype",
    "os-reset_status", "os-force_delete", "os-volume_upload_image", "revert", "os-complete",
]  # fmt: skip
ARGUMENTS: list[Any] = [None, "x", 1, [], {"a": {"b": 1}}, {"type": []}, {"flavorRef": []},
                        {"length": "x"}, {"new_size": "x"}, {"name": []}, {"host": []},
                        {"adminPass": 1, "imageRef": []}, {"connector": "x"}, {"metadata": []},
                        {"bootable": []}, {"block_migration": "x"}, {"image_name": []}]  # fmt: skip
QUERIES = (
    "limit=abc",
    "limit=-5",
    "limit=99999999999999999999",
    "marker=zz",
    "sort_dir=sideways",
    "sort_key=zz",
    "changes-since=notadate",
    "all_tenants=maybe",
    "status=XYZ",
    "fields=zzz",
    "name=%00",
    "name=(",
    "ip=(",
    "tags=",
    "sort=zz:up",
    "is_public=maybe",
    "minRam=x",
    "created_at=gte:zz",
    "visibility=x",
    "offset=x",
    "usage=x",
)
HEADERS: list[dict[str, str]] = [
    {"OpenStack-API-Version": "compute 2.x"}, {"OpenStack-API-Version": "volume 3.999"},
    {"X-OpenStack-Nova-API-Version": "3"}, {"Content-Type": "text/plain"},
]  # fmt: skip
RAW_BODIES = (b"{not json", b"null", b"[]", b"1", b'"s"', b"\xff\xfe")
BAD_IDS = ("zz", "%2F", "x" * 300, "%C3%A9", "%00")


def _walk(app: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(path template, method) of every route below `app`."""
    for route in getattr(app, "routes", ()):
        if isinstance(route, Mount):
            yield from _walk(route.app, prefix + route.path)
        elif isinstance(route, Route):
            yield from (
                (prefix + route.path, m) for m in sorted(route.methods or ()) if m != "HEAD"
            )


def openstack_routes() -> list[tuple[str, str]]:
    """Every route of the OpenStack dialects (the native REST and EC2 ones are not
    hand-written: they are derived from the contracts and botocore's model)."""

    async def built() -> list[tuple[str, str]]:
        (root,) = create_app(Settings("127.0.0.1:1")).routes
        assert isinstance(root, Mount)
        return list(_walk(root.app.build()))  # type: ignore[attr-defined]

    return [r for r in asyncio.run(built()) if not r[0].startswith(("/v1", "/openapi", "/healthz"))]


def segment(template: str) -> str:
    """The last fixed segment of a path template."""
    return [part for part in template.split("/") if part and "{" not in part][-1]


class Caller:
    """Requests to the gateway, keeping each answer that breaks the rule."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()
        self.broken: list[str] = []

    def __call__(self, method: str, path: str, headers: dict[str, str], **body: Any) -> int:
        answer = self.session.request(method, self.url + path, headers=headers, timeout=60, **body)
        status = answer.status_code
        shown = f"{method} {path} {headers.get('OpenStack-API-Version', '')} {body}"[:300]
        if status >= 500 and status != 501:
            self.broken.append(f"{shown} -> {status} {answer.text[:200]}")
        elif status >= 400:
            try:
                answer.json()
            except ValueError:
                self.broken.append(f"{shown} -> {status} not JSON: {answer.text[:200]}")
        return status


def _resources(url: str, admin: Stubs, tenant: Tenant) -> dict[str, str]:
    """A project's resources of each kind, by the path parameter (or, for `{id}`, the
    collection) that names them."""
    member = {"X-Auth-Token": tenant.stubs["member"].token or ""}

    def made(path: str, body: dict[str, Any], key: str) -> str:
        answer = requests.post(url + path, headers=member, json=body, timeout=60)
        assert answer.status_code in (200, 201, 202), (path, answer.text)
        return str(answer.json()[key]["id"]) if key else str(answer.json()["id"])

    zone = make_site(admin).zone
    flavor = make_flavor(admin, 1, 128, 1).rsplit("/", 1)[-1]
    ensure_default_type(admin)
    image = made("/image/v2/images", {"name": "i", "disk_format": "raw"}, "")
    requests.put(
        f"{url}/image/v2/images/{image}/file",
        headers={**member, "Content-Type": "application/octet-stream"},
        data=bytes(1024),
        timeout=60,
    ).raise_for_status()
    network = made("/network/v2.0/networks", {"network": {"name": "n"}}, "network")
    subnet = {"network_id": network, "cidr": "10.9.0.0/24", "ip_version": 4}
    port = made("/network/v2.0/ports", {"port": {"network_id": network}}, "port")
    requests.post(f"{url}/compute/v2.1/os-keypairs", headers=member,
                  json={"keypair": {"name": "k"}}, timeout=60).raise_for_status()  # fmt: skip
    server = {"name": "s", "imageRef": image, "flavorRef": flavor, "availability_zone": zone,
              "networks": "none"}  # fmt: skip
    return {
        "zone": zone, "project_id": tenant.project, "user_id": tenant.users["member"],
        "flavor_id": flavor,
        "image_id": image, "port_id": port, "name": "k", "key": "k", "tag": "t",
        "server_id": made("/compute/v2.1/servers", {"server": server}, "server"),
        "volume_id": made("/volume/v3/volumes", {"volume": {"size": 1}}, "volume"),
        "group_id": made(
            "/compute/v2.1/os-server-groups",
            {"server_group": {"name": "g", "policies": ["affinity"]}}, "server_group",
        ),
        "networks": network, "ports": port, "types": "local",
        "subnets": made("/network/v2.0/subnets", {"subnet": subnet}, "subnet"),
        "routers": made("/network/v2.0/routers", {"router": {"name": "r"}}, "router"),
        "security-groups": made(
            "/network/v2.0/security-groups", {"security_group": {"name": "g"}}, "security_group"
        ),
    }  # fmt: skip


def _creations(ids: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Valid bodies of the create routes, by their last segment: each wrong field goes in
    one, so that it is read rather than refused for a missing one."""
    volume = ids["volume_id"]
    return {
        "servers": {"name": "s", "imageRef": ids["image_id"], "flavorRef": ids["flavor_id"],
                    "availability_zone": ids["zone"], "networks": "none"},
        "flavors": {"name": "f", "ram": 128, "vcpus": 1, "disk": 1},
        "os-keypairs": {"name": "k2"}, "os-server-groups": {"name": "g2", "policy": "affinity"},
        "os-interface": {"net_id": ids["networks"]}, "os-volume_attachments": {"volumeId": volume},
        "images": {"name": "i", "disk_format": "raw"}, "networks": {"name": "n"},
        "subnets": {"network_id": ids["networks"], "cidr": "10.8.0.0/24", "ip_version": 4},
        "ports": {"network_id": ids["networks"]}, "routers": {"name": "r"},
        "floatingips": {"floating_network_id": ids["networks"]},
        "security-groups": {"name": "g"},
        "security-group-rules": {"security_group_id": ids["security-groups"],
                                 "direction": "ingress"},
        "volumes": {"size": 1}, "snapshots": {"volume_id": volume},
        "backups": {"volume_id": volume}, "volume-transfers": {"volume_id": volume},
        "os-volume-transfer": {"volume_id": volume},
        "attachments": {"volume_uuid": volume, "instance_uuid": ids["server_id"]},
        "projects": {"name": "p"}, "users": {"name": "u", "password": "a-long-password"},
        "application_credentials": {"name": "c"},
    }  # fmt: skip


def _concrete(template: str, ids: dict[str, str]) -> tuple[str, list[str]]:
    """The template on the project's resources, and on each of BAD_IDS."""

    def real(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "id":
            return next((v for k, v in ids.items() if f"/{k}/{{id}}" in template), "zz")
        if name == "volume_id" and "/volume/" in template:
            return ids["volume_id"]
        return ids.get(name, "zz")

    pattern = r"{(\w+)(?::\w+)?}"
    bad = [re.sub(pattern, value, template) for value in BAD_IDS] if "{" in template else []
    return re.sub(pattern, real, template), bad


DIALECTS = ("/compute", "/image", "/network", "/volume", "/v3")


@pytest.mark.timeout(900)
@pytest.mark.parametrize("dialect", DIALECTS)
def test_malformed_input_is_a_4xx(
    dialect: str, gateway: GatewayThread, admin: Stubs, tenant: Tenant
) -> None:
    """Every route of the dialect (`/v3` is Keystone, the rest of `/` too) against the
    inputs above: no answer is a 500 other than 501, every refusal is JSON."""
    routes = sorted(
        ((t, m) for t, m in openstack_routes()
         if t.startswith(dialect) or (dialect == "/v3" and not t.startswith(DIALECTS[:-1]))),
        key=lambda route: route[1] == "DELETE",  # deletes last: the rest acts on live resources
    )  # fmt: skip
    unknown = {segment(t) for t, m in routes if m != "GET" and segment(t) not in WRAPPERS}
    assert not unknown - {"action"}, f"write routes without a known body: {unknown}"
    ids = _resources(gateway.url, admin, tenant)
    creations = _creations(ids)
    member = {"X-Auth-Token": tenant.stubs["member"].token or ""}
    root = {"X-Auth-Token": admin.token or ""}
    call = Caller(gateway.url)
    for template, method in routes:
        path, bad_paths = _concrete(template, ids)
        for each in bad_paths:
            call(method, each, member, data=b"")
        for who in (member, root):
            call(method, path, who, data=b"")
            if method == "GET" and "{" not in template:  # (item routes read no query)
                for query in QUERIES:
                    call("GET", f"{path}?{query}", who)
            elif method != "GET":
                for raw in RAW_BODIES:
                    call(method, path, who, data=raw)
        for header in HEADERS:
            call(method, path, {**member, **header}, data=b"{}")
        if method in ("GET", "DELETE"):  # (deletes read no body)
            continue
        who = root if call(method, path, member, json={}) == 403 else member
        if segment(template) == "action":
            for action in ACTIONS:
                for argument in ARGUMENTS:
                    call(method, path, who, json={action: argument})
            continue
        wrapper = WRAPPERS.get(segment(template), "")
        if wrapper is None:
            continue
        for wrong in (None, *WRONG):
            call(method, path, who, json={wrapper: wrong} if wrapper else wrong)
        fields = FLAT_FIELDS.get(segment(template), FIELDS[dialect]).split()
        base = creations.get(segment(template), {}) if method == "POST" else {}
        for field in fields:
            for wrong in WRONG:
                body = {**base, field: wrong}
                call(method, path, who, json={wrapper: body} if wrapper else body)
        if method == "PATCH" and template.startswith("/image/"):  # a JSON patch
            for field in fields:
                for wrong in WRONG:
                    patch = [{"op": "replace", "path": f"/{field}", "value": wrong}]
                    call(method, path, who, json=patch)
        if wrapper == "auth":
            for kind in ("password", "token", "application_credential"):
                for wrong in WRONG:
                    for given in (wrong, {"user": wrong, "id": wrong, "secret": wrong}):
                        identity = {"methods": [kind], kind: given}
                        call(method, path, who, json={"auth": {"identity": identity}})
    assert not call.broken, f"{len(call.broken)} answers broke the rule:\n" + "\n".join(
        call.broken[:50]
    )
