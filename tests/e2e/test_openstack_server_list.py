"""GET /servers as Nova answers it: newest first, its filters (names by regular expression,
status, image, key pair, administrators' filters dropped for members), its sort keys,
`all_tenants` for cloud administrators, and from 2.75 a 400 for a parameter Nova does not
know. Servers in zones without hosts (they exist, in ERROR) are enough for lists."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import requests

from tests.e2e.test_openstack_clients import _upload_with_cli, clouds  # noqa: F401
from tests.integration.test_compute_resources import make_flavor
from tests.support.cloud import Stubs, Tenant, unique
from tests.support.gateway import Clouds, GatewayThread
from tests.support.topology import make_site

pytestmark = pytest.mark.parametrize("api", ["sqlite"], indirect=True)


def test_server_list_filters_and_order(
    clouds: Clouds,  # noqa: F811
    gateway: GatewayThread,
    admin: Stubs,
    tenant: Tenant,
    other_tenant: Tenant,
) -> None:
    zone = make_site(admin).zone
    flavor = make_flavor(admin, 1, 128, 1).rsplit("/", 1)[-1]
    images = [
        clouds.json("member", "image", "show", _upload_with_cli(clouds, unique("im")))["id"]
        for _ in range(2)
    ]
    clouds.run("member", "keypair", "create", "lister")
    member = {"X-Auth-Token": tenant.stubs["member"].token or ""}
    root = {"X-Auth-Token": admin.token or ""}
    servers = f"{gateway.url}/compute/v2.1/servers"

    def create(name: str, image: str, **fields: Any) -> str:
        body = {"name": name, "imageRef": image, "flavorRef": flavor, "availability_zone": zone}
        made = requests.post(servers, headers=member, json={"server": {**body, **fields}})
        assert made.status_code == 202, made.text
        return str(made.json()["server"]["id"])

    web1 = create("web-1", images[0])
    web2 = create("web-2", images[1], key_name="lister")
    db = create("db-web", images[1])
    deadline = time.monotonic() + 60
    while {s["status"] for s in requests.get(f"{servers}/detail", headers=member).json()[
        "servers"]} != {"ERROR"}:  # fmt: skip
        assert time.monotonic() < deadline, "the servers did not fail to build"
        time.sleep(0.2)

    def listed(headers: dict[str, str] = member, version: str = "", **params: Any) -> list[str]:
        if version:
            headers = {**headers, "OpenStack-API-Version": f"compute {version}"}
        answer = requests.get(f"{servers}/detail", headers=headers, params=params)
        assert answer.status_code == 200, (params, answer.text)
        return [s["name"] for s in answer.json()["servers"]]

    def refused(code: int, headers: dict[str, str] = member, version: str = "2.75",
                **params: Any) -> dict[str, Any]:  # fmt: skip
        headers = {**headers, "OpenStack-API-Version": f"compute {version}"}
        answer = requests.get(servers, headers=headers, params=params)
        assert answer.status_code == code, (params, answer.text)
        return dict(answer.json())

    # Newest first, as Nova; sort keys (the first Kumo can sort by), either direction.
    assert listed() == ["db-web", "web-2", "web-1"]
    assert listed(sort_key="display_name", sort_dir="asc") == ["db-web", "web-1", "web-2"]
    assert listed(sort_key=["vcpus", "created_at"], sort_dir="asc") == ["web-1", "web-2", "db-web"]
    assert listed(sort_key="host") == ["db-web", "web-2", "web-1"]  # (administrators' only)
    refused(400, sort_key="vcpus")  # ignored before 2.75, refused from 2.75
    refused(400, sort_key="nope", version="2.1")
    refused(400, sort_dir="sideways", version="2.1")
    # The CLI's `--name` is Nova's regular expression; `--status`, `--image`.
    by_cli = clouds.json("member", "server", "list", "--name", "^web-")
    assert sorted(s["Name"] for s in by_cli) == ["web-1", "web-2"]
    assert listed(name="web") == ["db-web", "web-2", "web-1"]
    by_uuid = [name for _, name in sorted([(web1, "web-1"), (web2, "web-2")], reverse=True)]
    assert listed(name="-[12]$", sort_key="uuid") == by_uuid  # (sort_dir: desc by default)
    by_image = clouds.json("member", "server", "list", "--image", images[1])
    assert sorted(s["Name"] for s in by_image) == ["db-web", "web-2"]
    assert listed(image=str(uuid.uuid4())) == []
    assert listed(status="error") == ["db-web", "web-2", "web-1"]
    assert listed(status=["ACTIVE", "SHUTOFF"]) == listed(status="SHELVED") == []
    assert listed(status="sleeping") == []  # before 2.38; from 2.38 400
    refused(400, status="sleeping", version="2.38")
    refused(400, name="(")  # (not a regular expression)
    # A member's administrator filters are dropped (all three), an administrator's kept.
    assert listed(key_name="lister", host="nowhere") == ["db-web", "web-2", "web-1"]
    project = {"project_id": tenant.project, "all_tenants": "1"}
    assert listed(root, key_name="lister", **project) == ["web-2"]
    assert listed(root, vm_state="error", power_state="0", **project) == [
        "db-web", "web-2", "web-1",
    ]  # fmt: skip
    assert listed(root, vm_state="active", **project) == []
    assert listed(root, uuid=web1, **project) == ["web-1"]
    assert listed(root, host="nowhere", **project) == []
    assert listed(root, reservation_id="r-1", **project) == []
    refused(501, root, user_id="u", **project)  # (Kumo does not keep it)
    refused(400, root, metadata="x", **project)  # (as Nova: no joined-table filters)

    # all_tenants: every project for cloud administrators, 403 for members; false: own.
    theirs = {"X-Auth-Token": other_tenant.stubs["member"].token or ""}
    assert listed(theirs) == [] and listed(theirs, all_tenants="False") == []
    refused(403, theirs, all_tenants="1")
    refused(403, theirs, all_tenants="")
    refused(400, root, all_tenants="maybe")
    everyone = listed(root, all_tenants="true", name="^(web-.|db-web)$")
    assert {"web-1", "web-2", "db-web"} <= set(everyone)

    # From 2.75 a parameter Nova does not know is 400; before, ignored.
    assert listed(version="2.74", bogus="1") == ["db-web", "web-2", "web-1"]
    assert "badRequest" in refused(400, bogus="1")
    # Nova's own parameters are still taken at 2.75, and deleted servers come back with
    # `deleted` (administrators).
    assert listed(version="2.75", deleted="False", all_tenants="0", limit="2") == [
        "db-web", "web-2",
    ]  # fmt: skip
    assert requests.delete(f"{servers}/{db}", headers=member).status_code == 204
    while requests.get(f"{servers}/{db}", headers=member).status_code != 404:
        assert time.monotonic() < deadline + 60, "the server was not deleted"
        time.sleep(0.2)
    assert listed(root, deleted="true", **project) == ["db-web"]
    assert listed(root, status="DELETED", **project) == ["db-web"]
    assert listed(root, power_state="0", **project) == ["web-2", "web-1"]
    assert listed(deleted="true") == ["web-2", "web-1"]  # (a member's is dropped)

    # From 2.75 a flavor without swap shows 0, before it the empty string.
    flavor_url = f"{gateway.url}/compute/v2.1/flavors/{flavor}"
    for version, swap in (("2.74", ""), ("2.75", 0)):
        headers = {**member, "OpenStack-API-Version": f"compute {version}"}
        assert requests.get(flavor_url, headers=headers).json()["flavor"]["swap"] == swap
    for server in (web1, web2):
        requests.delete(f"{servers}/{server}", headers=member)


def test_hostnames(
    clouds: Clouds,  # noqa: F811
    gateway: GatewayThread,
    admin: Stubs,
    tenant: Tenant,
) -> None:
    """A server's hostname is made from its name, as Nova makes it, unless given (2.90: at
    create and update, 400 before); members see it from 2.90, administrators from 2.3."""
    zone = make_site(admin).zone
    flavor = make_flavor(admin, 1, 128, 1).rsplit("/", 1)[-1]
    image = clouds.json("member", "image", "show", _upload_with_cli(clouds, unique("im")))["id"]
    member = {"X-Auth-Token": tenant.stubs["member"].token or ""}
    root = {"X-Auth-Token": admin.token or ""}
    servers = f"{gateway.url}/compute/v2.1/servers"

    def at(headers: dict[str, str], version: str) -> dict[str, str]:
        return {**headers, "OpenStack-API-Version": f"compute {version}"}

    def create(version: str, **fields: Any) -> requests.Response:
        body = {"name": "My Web_Server.1", "imageRef": image, "flavorRef": flavor,
                "availability_zone": zone, **fields}  # fmt: skip
        return requests.post(servers, headers=at(member, version), json={"server": body})

    def hostname(server: str, headers: dict[str, str]) -> str | None:
        shown = requests.get(f"{servers}/{server}", headers=headers).json()["server"]
        return shown.get("OS-EXT-SRV-ATTR:hostname")

    derived = create("2.1").json()["server"]["id"]
    assert hostname(derived, at(root, "2.3")) == "my-web-server-1"
    assert hostname(derived, at(member, "2.89")) is None  # (not shown to members yet)
    assert hostname(derived, at(member, "2.90")) == "my-web-server-1"
    given = create("2.90", hostname="Front-1").json()["server"]["id"]
    assert hostname(given, at(member, "2.90")) == "front-1"
    for version, name in (("2.89", "front-2"), ("2.90", "front_2"), ("2.90", 7)):
        refused = create(version, hostname=name)
        assert refused.status_code == 400 and "badRequest" in refused.json(), refused.text
    renamed = requests.put(
        f"{servers}/{given}", headers=at(member, "2.90"), json={"server": {"hostname": "back"}}
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["server"]["OS-EXT-SRV-ATTR:hostname"] == "back"
    early = requests.put(
        f"{servers}/{given}", headers=at(member, "2.89"), json={"server": {"hostname": "x"}}
    )
    assert early.status_code == 400 and hostname(given, at(member, "2.90")) == "back"
    for server in (derived, given):
        requests.delete(f"{servers}/{server}", headers=member)
