"""Server metadata through Nova's `/servers/{id}/metadata`: `openstack server set/unset
--property` and the endpoints over HTTP (each item, replace, merge, concurrent merges,
refusals and bad input). Metadata is the instance's Kumo labels."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.e2e.test_openstack_clients import clouds, hostless_server, instance_of  # noqa: F401
from tests.support.cloud import Stubs, Tenant, unique
from tests.support.gateway import Clouds, GatewayThread

pytestmark = pytest.mark.parametrize("api", ["sqlite"], indirect=True)


def labels(tenant: Tenant, server_id: str) -> dict[str, str]:
    """The instance's labels as the gRPC API has them."""
    return dict(instance_of(tenant, server_id).labels)


def test_server_metadata(
    clouds: Clouds,  # noqa: F811
    gateway: GatewayThread,
    admin: Stubs,
    tenant: Tenant,
    other_tenant: Tenant,
) -> None:
    server_id, _ = hostless_server(clouds, gateway, admin, tenant, metadata={"role": "web"})
    member = {"X-Auth-Token": tenant.stubs["member"].token or ""}
    url = f"{gateway.url}/compute/v2.1/servers/{server_id}/metadata"

    # The CLI: set and unset properties; show lists them.
    clouds.run("member", "server", "set", "--property", "tier=gold", "--property", "x=1", server_id)
    assert labels(tenant, server_id) == {"role": "web", "tier": "gold", "x": "1"}
    clouds.run("member", "server", "unset", "--property", "x", server_id)
    shown = clouds.json("member", "server", "show", server_id)
    assert shown["properties"] == {"role": "web", "tier": "gold"}

    # Each item; replace; merge.
    item = requests.get(f"{url}/tier", headers=member)
    assert item.status_code == 200 and item.json() == {"meta": {"tier": "gold"}}
    put = requests.put(f"{url}/tier", headers=member, json={"meta": {"tier": "silver"}})
    assert put.status_code == 200 and put.json() == {"meta": {"tier": "silver"}}
    replaced = requests.put(url, headers=member, json={"metadata": {"only": "this"}})
    assert replaced.json() == {"metadata": {"only": "this"}}
    merged = requests.post(url, headers=member, json={"metadata": {"more": "yes"}})
    assert merged.json() == {"metadata": {"only": "this", "more": "yes"}}
    assert requests.delete(f"{url}/more", headers=member).status_code == 204
    assert requests.get(url, headers=member).json() == {"metadata": {"only": "this"}}

    # Concurrent merges of different keys all land (each write is under the etag it read).
    def add(index: int) -> int:
        body = {"metadata": {f"k{index}": str(index)}}
        return requests.post(url, headers=member, json=body).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(add, range(8)))
    assert codes == [200] * 8
    expected = {"only": "this", **{f"k{i}": str(i) for i in range(8)}}
    assert labels(tenant, server_id) == expected

    # 404s, refusals and bad input change nothing.
    theirs = {"X-Auth-Token": other_tenant.stubs["admin"].token or ""}
    refused: list[tuple[str, str, Any, int, str]] = [
        ("GET", f"{url}/absent", None, 404, "itemNotFound"),
        ("DELETE", f"{url}/absent", None, 404, "itemNotFound"),
        ("GET", url, None, 404, "itemNotFound"),  # another project's server, as theirs
        ("PUT", f"{url}/only", {"meta": {"other": "x"}}, 400, "badRequest"),
        ("PUT", f"{url}/only", {"meta": {"only": "x", "two": "y"}}, 400, "badRequest"),
        ("PUT", f"{url}/only", {"meta": {"only": 5}}, 400, "badRequest"),
        ("POST", url, {"metadata": {"n": None}}, 400, "badRequest"),
        ("POST", url, {"metadata": ["a"]}, 400, "badRequest"),
        ("POST", url, {"meta": {"a": "b"}}, 400, "badRequest"),
        ("POST", url, {"metadata": {"k" * 64: "v"}}, 400, "badRequest"),
        ("POST", url, {"metadata": {f"m{i}": "v" for i in range(64)}}, 400, "badRequest"),
        ("PUT", url, {"metadata": {"": "v"}}, 400, "badRequest"),
    ]
    for method, where, body, status, shape in refused:
        headers = theirs if (method, where) == ("GET", url) else member
        answer = requests.request(method, where, headers=headers, json=body)
        assert answer.status_code == status and shape in answer.json(), (method, body, answer.text)
    assert labels(tenant, server_id) == expected
    unknown = f"{gateway.url}/compute/v2.1/servers/{unique('nope')}/metadata"
    assert requests.get(unknown, headers=member).status_code == 404
    requests.delete(f"{gateway.url}/compute/v2.1/servers/{server_id}", headers=member)
