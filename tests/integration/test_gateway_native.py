"""The gateway's native REST API (routes from the contracts' HTTP bindings) and its
middleware: request ids, body limits, google.rpc.Status errors, the OpenAPI document."""

from __future__ import annotations

from collections.abc import Iterator

import requests

from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import compute_service_pb2_grpc as crpc
from kumo.gateway.errors import HTTP_STATUS
from kumo.gateway.native.bindings import bindings
from kumo.gateway.native.services import SERVICES
from tests.support.cloud import Stubs, Tenant, rpc_error, unique
from tests.support.gateway import GatewayThread
from tests.support.server import ServerThread


def _auth(stubs: Stubs) -> dict[str, str]:
    return {"Authorization": f"Bearer {stubs.token}"}


def test_get_create_list_delete(gateway: GatewayThread, tenant: Tenant) -> None:
    """Standard methods through their bindings, JSON in lowerCamelCase."""
    member = _auth(tenant.stubs["member"])
    url = f"{gateway.url}/v1/{tenant.name}"
    project = requests.get(url, headers=member)
    assert project.status_code == 200 and project.json()["name"] == tenant.name

    key = unique("kp")
    created = requests.post(f"{url}/keyPairs", params={"keyPairId": key}, headers=member, json={})
    assert created.status_code == 200, created.text
    assert created.json()["name"] == f"{tenant.name}/keyPairs/{key}"
    assert "privateKey" in created.json()
    listed = requests.get(f"{url}/keyPairs", params={"pageSize": 1000}, headers=member).json()
    assert f"{tenant.name}/keyPairs/{key}" in [k["name"] for k in listed["keyPairs"]]
    deleted = requests.delete(f"{url}/keyPairs/{key}", headers=member)
    assert deleted.status_code == 200 and deleted.json() == {}


def test_custom_method_and_operations(gateway: GatewayThread, admin: Stubs) -> None:
    """A `:verb` binding, a long-running delete and the Operations service's `**` binding."""
    headers = _auth(admin)
    checked = requests.post(
        f"{gateway.url}/v1/tokens:validate", json={"token": admin.token}, headers=headers
    )
    assert checked.status_code == 200 and checked.json()["token"]["cloudAdmin"] is True

    project = unique("np")
    created = requests.post(
        f"{gateway.url}/v1/projects", params={"project_id": project}, json={}, headers=headers
    )
    assert created.status_code == 200, created.text
    operation = requests.delete(f"{gateway.url}/v1/projects/{project}", headers=headers).json()
    assert operation["name"].startswith("operations/")
    fetched = requests.get(f"{gateway.url}/v1/{operation['name']}", headers=headers)
    assert fetched.status_code == 200 and fetched.json()["name"] == operation["name"]


def test_errors_are_google_rpc_status(gateway: GatewayThread, tenant: Tenant) -> None:
    """grpc-gateway's status -> HTTP table and its JSON body; unknown fields rejected."""
    member = _auth(tenant.stubs["member"])
    missing = requests.get(
        f"{gateway.url}/v1/{tenant.name}/keyPairs/{unique('no')}", headers=member
    )
    assert missing.status_code == 404
    body = missing.json()
    assert body["code"] == 5 and body["message"] and isinstance(body["details"], list)

    unknown = requests.post(
        f"{gateway.url}/v1/{tenant.name}/keyPairs",
        params={"keyPairId": unique("kp")},
        headers=member,
        json={"notAField": 1},
    )
    assert unknown.status_code == 400 and unknown.json()["code"] == 3

    anonymous = requests.get(f"{gateway.url}/v1/{tenant.name}")
    assert anonymous.status_code == 401 and anonymous.json()["code"] == 16

    reader = _auth(tenant.stubs["reader"])
    refused = requests.post(
        f"{gateway.url}/v1/{tenant.name}/keyPairs",
        params={"keyPairId": "k"},
        headers=reader,
        json={},
    )
    assert refused.status_code == 403 and refused.json()["code"] == 7

    no_route = requests.get(f"{gateway.url}/v1/nothing/here", headers=member)
    assert no_route.status_code == 404 and no_route.json()["code"] == 5
    wrong_method = requests.put(f"{gateway.url}/v1/{tenant.name}", headers=member, json={})
    assert wrong_method.status_code == 405


def test_tenancy_over_native_rest(
    gateway: GatewayThread, tenant: Tenant, other_tenant: Tenant
) -> None:
    """Another project's resources are refused with the very status the gRPC call gets."""
    key = unique("kp")
    mine = _auth(tenant.stubs["member"])
    outsider = other_tenant.stubs["admin"]
    url = f"{gateway.url}/v1/{tenant.name}/keyPairs"
    assert requests.post(url, params={"keyPairId": key}, headers=mine, json={}).ok
    stub = crpc.ComputeServiceStub(outsider.channel)
    name = f"{tenant.name}/keyPairs/{key}"
    for method, path, call in (
        ("GET", f"{url}/{key}", lambda: stub.GetKeyPair(capi.GetKeyPairRequest(name=name))),
        (
            "DELETE",
            f"{url}/{key}",
            lambda: stub.DeleteKeyPair(capi.DeleteKeyPairRequest(name=name)),
        ),
        ("GET", url, lambda: stub.ListKeyPairs(capi.ListKeyPairsRequest(parent=tenant.name))),
    ):
        code, _ = rpc_error(call)
        answer = requests.request(method, path, headers=_auth(outsider))
        assert answer.json()["code"] == code.value[0], (method, path, answer.text)
        assert answer.status_code == HTTP_STATUS[code.value[0]]
    assert requests.get(f"{url}/{key}", headers=mine).ok


def test_request_ids_and_body_limit(api: ServerThread, tenant: Tenant) -> None:
    """Every answer carries x-openstack-request-id; a caller's well-formed id is kept; a
    body over the bound is 413 before it reaches a service."""
    gateway = GatewayThread(api.address, max_body_bytes=1024)
    try:
        mine = "req-12345678-1234-1234-1234-123456789abc"
        answer = requests.get(f"{gateway.url}/healthz", headers={"X-OpenStack-Request-ID": mine})
        assert answer.headers["x-openstack-request-id"] == mine
        other = requests.get(f"{gateway.url}/nothing")
        assert other.headers["x-openstack-request-id"].startswith("req-")
        assert other.headers["x-openstack-request-id"] != mine

        big = requests.post(
            f"{gateway.url}/v1/{tenant.name}/keyPairs",
            params={"keyPairId": "k"},
            headers=_auth(tenant.stubs["member"]),
            data=b"{" + b" " * 4096 + b"}",
        )
        assert big.status_code == 413 and big.json()["code"] == 11

        def chunks() -> Iterator[bytes]:
            yield b"{"
            yield b" " * 4096
            yield b"}"

        streamed = requests.post(
            f"{gateway.url}/v1/{tenant.name}/keyPairs",
            params={"keyPairId": "k"},
            headers=_auth(tenant.stubs["member"]),
            data=chunks(),
        )
        assert streamed.status_code == 413

        # Image data is bounded by the image store, not the gateway's body limit.
        glance = {"X-Auth-Token": tenant.stubs["member"].token or ""}
        image = requests.post(
            f"{gateway.url}/image/v2/images",
            headers=glance,
            json={"name": "big", "disk_format": "raw", "container_format": "bare"},
        )
        assert image.status_code == 201, image.text
        file = f"{gateway.url}/image/v2/images/{image.json()['id']}/file"
        data = bytes(range(256)) * 64
        uploaded = requests.put(file, headers=glance, data=data)
        assert uploaded.status_code == 204, uploaded.text
        assert requests.get(file, headers=glance).content == data
    finally:
        gateway.stop()


def test_openapi_document(gateway: GatewayThread) -> None:
    """/openapi.json has one operation per binding, with its path parameters."""
    document = requests.get(f"{gateway.url}/openapi.json").json()
    assert document["openapi"].startswith("3.")
    operations = {
        op["operationId"] for methods in document["paths"].values() for op in methods.values()
    }
    expected = {f"{b.method.containing_service.name}_{b.method.name}" for b in bindings(SERVICES)}
    assert operations == expected
    start = document["paths"][
        "/v1/projects/{projects_id}/zones/{zones_id}/instances/{instances_id}:start"
    ]["post"]
    assert [p["name"] for p in start["parameters"]] == ["projects_id", "zones_id", "instances_id"]
    assert "kumo.compute.v1.Instance" in document["components"]["schemas"]


def test_network_and_storage_services(gateway: GatewayThread, tenant: Tenant) -> None:
    """The network and storage services' bindings are served too."""
    member = _auth(tenant.stubs["member"])
    url = f"{gateway.url}/v1/{tenant.name}"
    network = unique("n")
    created = requests.post(
        f"{url}/networks", params={"networkId": network}, headers=member, json={"mtu": 1400}
    )
    assert created.status_code == 200, created.text
    assert created.json()["name"] == f"{tenant.name}/networks/{network}"
    listed = requests.get(f"{url}/networks", headers=member).json()["networks"]
    assert f"{tenant.name}/networks/{network}" in [n["name"] for n in listed]
    assert requests.delete(f"{url}/networks/{network}", headers=member).status_code == 200
    types = requests.get(f"{gateway.url}/v1/volumeTypes", headers=member)
    assert types.status_code == 200, types.text
