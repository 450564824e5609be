"""Server tags through Nova's `/servers/{id}/tags` (microversion 2.26): `openstack server
set/unset --tag`, `server list --tags/--not-tags`, the endpoints over HTTP (each tag,
replace, clear, concurrent adds) and their refusals. They are the instance's Kumo tags."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.e2e.test_openstack_clients import (  # noqa: F401
    _upload_with_cli,
    clouds,
    hostless_server,
    instance_of,
)
from tests.integration.test_compute_resources import make_flavor
from tests.support.cloud import Stubs, Tenant, unique
from tests.support.gateway import Clouds, GatewayThread
from tests.support.topology import make_site

pytestmark = pytest.mark.parametrize("api", ["sqlite"], indirect=True)

TAGS_VERSION = ("--os-compute-api-version", "2.26")


def kumo_tags(tenant: Tenant, server_id: str) -> list[str]:
    """The instance's tags as the gRPC API has them."""
    return list(instance_of(tenant, server_id).tags)


def test_server_tags(
    clouds: Clouds,  # noqa: F811
    gateway: GatewayThread,
    admin: Stubs,
    tenant: Tenant,
    other_tenant: Tenant,
) -> None:
    first, _ = hostless_server(clouds, gateway, admin, tenant)
    second, _ = hostless_server(clouds, gateway, admin, tenant)
    v226 = {
        "X-Auth-Token": tenant.stubs["member"].token or "",
        "OpenStack-API-Version": "compute 2.26",
    }
    url = f"{gateway.url}/compute/v2.1/servers/{first}/tags"

    # The CLI: set and unset tags, show them, list by them.
    clouds.run("member", *TAGS_VERSION, "server", "set", "--tag", "web", "--tag", "prod", first)
    clouds.run("member", *TAGS_VERSION, "server", "set", "--tag", "prod", second)
    assert kumo_tags(tenant, first) == ["web", "prod"]
    shown = clouds.json("member", *TAGS_VERSION, "server", "show", first)
    assert sorted(shown["tags"]) == ["prod", "web"]

    def listed(*args: str) -> set[str]:
        found = clouds.json("member", *TAGS_VERSION, "server", "list", *args)
        return {s["ID"] for s in found} & {first, second}

    assert listed("--tags", "prod") == {first, second}
    assert listed("--tags", "prod,web") == {first}
    assert listed("--not-tags", "web") == {second}
    clouds.run("member", *TAGS_VERSION, "server", "unset", "--tag", "web", first)
    assert kumo_tags(tenant, first) == ["prod"]

    # Each tag; replace; clear; Nova's filters over HTTP.
    assert requests.get(f"{url}/prod", headers=v226).status_code == 204
    added = requests.put(f"{url}/blue", headers=v226)
    assert added.status_code == 201 and added.headers["Location"].endswith(f"{first}/tags/blue")
    assert requests.put(f"{url}/blue", headers=v226).status_code == 204
    assert requests.get(url, headers=v226).json() == {"tags": ["prod", "blue"]}
    replaced = requests.put(url, headers=v226, json={"tags": ["a", "b", "a"]})
    assert replaced.status_code == 200 and replaced.json() == {"tags": ["a", "b"]}
    servers = f"{gateway.url}/compute/v2.1/servers"
    for query, expected in [
        ("tags-any=a,prod", {first, second}),
        ("not-tags-any=a", {second}),
        ("not-tags=a,b", {second}),
        ("tags=a&not-tags-any=prod", {first}),
    ]:
        found = requests.get(f"{servers}/detail?{query}", headers=v226).json()["servers"]
        assert {s["id"] for s in found} & {first, second} == expected, query
        assert all(s["tags"] for s in found if s["id"] == first)
    assert requests.delete(url, headers=v226).status_code == 204
    assert kumo_tags(tenant, first) == []

    # Concurrent adds of different tags all land (each write is under the etag it read).
    with ThreadPoolExecutor(8) as pool:
        codes = list(
            pool.map(lambda i: requests.put(f"{url}/t{i}", headers=v226).status_code, range(8))
        )
    assert codes == [201] * 8
    assert sorted(kumo_tags(tenant, first)) == [f"t{i}" for i in range(8)]

    # 404s, refusals and bad input change nothing.
    theirs = {**v226, "X-Auth-Token": other_tenant.stubs["admin"].token or ""}
    old = {**v226, "OpenStack-API-Version": "compute 2.25"}
    refused: list[tuple[str, str, dict[str, str], Any, int, str]] = [
        ("GET", f"{url}/absent", v226, None, 404, "itemNotFound"),
        ("DELETE", f"{url}/absent", v226, None, 404, "itemNotFound"),
        ("GET", url, theirs, None, 404, "itemNotFound"),
        ("PUT", f"{url}/x", theirs, None, 404, "itemNotFound"),
        ("GET", url, old, None, 404, "itemNotFound"),
        ("PUT", f"{url}/{'x' * 61}", v226, None, 400, "badRequest"),
        ("PUT", f"{url}/a,b", v226, None, 400, "badRequest"),
        ("PUT", url, v226, {"tags": "a"}, 400, "badRequest"),
        ("PUT", url, v226, {"tags": [1]}, 400, "badRequest"),
        ("PUT", url, v226, {"tags": [f"n{i}" for i in range(51)]}, 400, "badRequest"),
        ("PUT", url, v226, {"nothing": []}, 400, "badRequest"),
    ]
    for method, where, headers, body, status, shape in refused:
        answer = requests.request(method, where, headers=headers, json=body)
        assert answer.status_code == status and shape in answer.json(), (method, where, answer.text)
    assert sorted(kumo_tags(tenant, first)) == [f"t{i}" for i in range(8)]
    for server in (first, second):
        requests.delete(f"{servers}/{server}", headers=v226)


def test_server_tags_at_creation(
    clouds: Clouds,  # noqa: F811
    gateway: GatewayThread,
    admin: Stubs,
    tenant: Tenant,
) -> None:
    """`openstack server create --tag` (microversion 2.52, which the CLI negotiates); tags
    in a create below 2.52, or ones Nova refuses, are 400 and create nothing."""
    zone = make_site(admin).zone
    flavor = make_flavor(admin, 1, 128, 1).rsplit("/", 1)[-1]
    image = _upload_with_cli(clouds, unique("im"))
    made = clouds.json(
        "member", "server", "create", "--flavor", flavor, "--image", image,
        "--availability-zone", zone, "--nic", "none", "--tag", "blue", "--tag", "green",
        unique("tagged"),
    )  # fmt: skip
    assert kumo_tags(tenant, made["id"]) == ["blue", "green"]
    assert sorted(clouds.json("member", "server", "show", made["id"])["tags"]) == ["blue", "green"]

    image_id = clouds.json("member", "image", "show", image)["id"]
    servers = f"{gateway.url}/compute/v2.1/servers"
    name = unique("refused")
    body = {"name": name, "imageRef": image_id, "flavorRef": flavor, "availability_zone": zone,
            "networks": "none"}  # fmt: skip
    token = tenant.stubs["member"].token or ""
    for version, tags in (("2.51", ["a"]), ("2.52", ["a/b"]), ("2.52", "a"), ("2.52", [""])):
        headers = {"X-Auth-Token": token, "OpenStack-API-Version": f"compute {version}"}
        answer = requests.post(servers, headers=headers, json={"server": {**body, "tags": tags}})
        assert answer.status_code == 400 and "badRequest" in answer.json(), (version, tags)
    listed = requests.get(f"{servers}?name={name}", headers={"X-Auth-Token": token}).json()
    assert listed["servers"] == []
    clouds.run("member", "server", "delete", made["id"])
