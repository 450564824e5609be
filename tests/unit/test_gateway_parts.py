"""The gateway's pure parts: path templates, request building, microversions, status
mapping, dialect error bodies, times and JSON answers, and Nova's attached volumes."""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2
from google.rpc import code_pb2
from starlette.requests import Request
from starlette.responses import JSONResponse

from kumo.gateway.errors import HTTP_STATUS, RpcFailure
from kumo.gateway.native.bindings import bindings, compile_template
from kumo.gateway.native.rest import build_request
from kumo.gateway.native.services import SERVICES
from kumo.gateway.openstack import paging
from kumo.gateway.openstack.common import FastJSONResponse, iso
from kumo.gateway.openstack.errors import NOVA_OVERRIDES, neutron_error, nova_error
from kumo.gateway.openstack.microversions import Microversions, Version
from kumo.gateway.openstack.nova.block_devices import volumes_under
from kumo.storage.v1 import resources_pb2 as spb

UUIDS = [str(uuid.UUID(int=n)) for n in range(1, 6)]


def _binding(method: str, verb: str) -> object:
    return next(b for b in bindings(SERVICES) if b.method.name == method and b.http_method == verb)


def test_template_with_custom_verb() -> None:
    regex, variables = compile_template("/v1/{name=projects/*/zones/*/instances/*}:start")
    found = regex.fullmatch("/v1/projects/p/zones/z/instances/i:start")
    assert found is not None and found.group("v0") == "projects/p/zones/z/instances/i"
    assert regex.fullmatch("/v1/projects/p/zones/z/instances/i") is None
    assert regex.fullmatch("/v1/projects/p/instances/i:start") is None
    assert [v.field for v in variables] == ["name"]


def test_double_wildcard() -> None:
    regex, _ = compile_template("/v1/{name=operations/**}")
    assert regex.fullmatch("/v1/operations/a/b/c") is not None


def test_every_unary_kumo_method_is_bound() -> None:
    """Every Kumo RPC has an http option (google.longrunning's WaitOperation has none)."""
    bound = {b.method.full_name for b in bindings(SERVICES)}
    for service in SERVICES:
        if not service.full_name.startswith("kumo."):
            continue
        for method in service.methods:
            if not (method.client_streaming or method.server_streaming):
                assert method.full_name in bound


def test_request_from_query_body_and_path() -> None:
    binding = _binding("CreateKeyPair", "POST")
    message = build_request(
        binding,  # type: ignore[arg-type]
        {"parent": "projects/p"},
        [("keyPairId", "k"), ("request_id", "r")],
        {"publicKey": "ssh-ed25519 AAAA"},
    )
    assert (message.parent, message.key_pair_id, message.request_id) == ("projects/p", "k", "r")
    assert message.key_pair.public_key == "ssh-ed25519 AAAA"


@pytest.mark.parametrize(
    ("query", "body"),
    [([("nope", "1")], {}), ([], {"nope": 1}), ([("pageSize", "x")], None)],
)
def test_unknown_or_malformed_fields_are_rejected(
    query: list[tuple[str, str]], body: object
) -> None:
    binding = _binding(
        "CreateKeyPair" if body is not None else "ListKeyPairs",
        "POST" if body is not None else "GET",
    )
    with pytest.raises(RpcFailure) as raised:
        build_request(binding, {"parent": "projects/p"}, query, body)  # type: ignore[arg-type]
    assert raised.value.code == code_pb2.INVALID_ARGUMENT


def _request(headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": raw})


def test_microversion_negotiation() -> None:
    versions = Microversions(
        "compute", Version(2, 1), Version(2, 38), "x-openstack-nova-api-version"
    )
    assert versions.negotiate(_request({})) == Version(2, 1)
    assert versions.negotiate(_request({"OpenStack-API-Version": "compute 2.10"})) == Version(2, 10)
    assert versions.negotiate(_request({"OpenStack-API-Version": "compute latest"})) == Version(
        2, 38
    )
    assert versions.negotiate(_request({"X-OpenStack-Nova-API-Version": "2.2"})) == Version(2, 2)
    assert versions.negotiate(_request({"OpenStack-API-Version": "image 2.5"})) == Version(2, 1)
    with pytest.raises(RpcFailure) as too_new:
        versions.negotiate(_request({"OpenStack-API-Version": "compute 2.99"}))
    assert too_new.value.http_status() == 406
    with pytest.raises(RpcFailure) as malformed:
        versions.negotiate(_request({"OpenStack-API-Version": "compute two"}))
    assert malformed.value.http_status() == 400


def test_status_table_and_overrides() -> None:
    assert HTTP_STATUS[code_pb2.FAILED_PRECONDITION] == 400
    assert HTTP_STATUS[code_pb2.ABORTED] == 409
    failure = RpcFailure.of(grpc.StatusCode.RESOURCE_EXHAUSTED, "quota")
    assert failure.http_status() == 429
    assert failure.http_status(NOVA_OVERRIDES) == 403
    assert RpcFailure.of(grpc.StatusCode.NOT_FOUND, "x", 410).http_status() == 410


def test_dialect_bodies() -> None:
    failure = RpcFailure.of(grpc.StatusCode.NOT_FOUND, "Instance x could not be found.")
    assert nova_error(failure, 404).body == (
        b'{"itemNotFound":{"code":404,"message":"Instance x could not be found."}}'
    )
    assert b'"NeutronError"' in neutron_error(failure, 404).body


def _paging_request(query: str) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "query_string": query.encode(),
                    "headers": []})  # fmt: skip


def _fetcher(ids: list[str]) -> Any:
    async def fetch(token: str, size: int) -> tuple[list[str], str]:
        start = int(token or 0)
        end = start + size
        return ids[start:end], str(end) if end < len(ids) else ""

    return fetch


@pytest.mark.parametrize(
    ("query", "items", "marker"),
    [
        ("", 5, ""),  # no limit: every page
        ("limit=2", 2, "2"),  # a page and the token of the next as its marker
        ("limit=2&marker=4", 1, ""),  # our own token as marker: the last page
        (f"marker={UUIDS[1]}", 3, ""),  # an id: the items after it
        (f"marker={UUIDS[1]}&limit=2", 2, UUIDS[3]),
        (f"marker={UUIDS[4]}&limit=2", 0, ""),  # after the last one (openstacksdk's extra ask)
    ],
)
def test_paging(query: str, items: int, marker: str) -> None:
    result = asyncio.run(paging.page(_paging_request(query), _fetcher(UUIDS), lambda i: i))
    assert (len(result.items), result.next_marker) == (items, marker)


def test_paging_unknown_id_marker() -> None:
    with pytest.raises(RpcFailure) as raised:
        asyncio.run(
            paging.page(_paging_request(f"marker={uuid.uuid4()}"), _fetcher(UUIDS), lambda i: i)
        )
    assert raised.value.http_status() == 400


@pytest.mark.parametrize(
    ("seconds", "nanos", "plain", "micro"),
    [
        (0, 0, None, None),  # unset
        (0, 1000, "1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000001Z"),
        (1764100000, 123456789, "2025-11-25T19:46:40Z", "2025-11-25T19:46:40.123456Z"),
        (253402300799, 999999999, "9999-12-31T23:59:59Z", "9999-12-31T23:59:59.999999Z"),
    ],
)
def test_iso_times(seconds: int, nanos: int, plain: str | None, micro: str | None) -> None:
    stamp = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
    assert (iso(stamp), iso(stamp, micro=True)) == (plain, micro)


def test_fast_json_answers_are_starlettes_bytes() -> None:
    body = {
        "servers": [{"id": "1", "name": 'é\u2028\U0001f600"\\\t\x00', "progress": 0}],
        "none": None,
        "flags": [True, False],
        "ratio": 1.0,
        "big": 2**62,
        7: "a non-string key",
    }
    assert FastJSONResponse(body).body == JSONResponse(body).body


class _Volumes:
    """A backend whose ListVolumes answers `volumes` (under the asked parent) a page at a
    time, counting the calls."""

    def __init__(self, volumes: list[spb.Volume]) -> None:
        self.volumes = volumes
        self.calls = 0

    def stub(self, stub_class: Any) -> Any:
        return SimpleNamespace(ListVolumes="ListVolumes")

    async def call(self, method: Any, request: Any, token: str | None) -> Any:
        self.calls += 1
        zone = request.parent.removesuffix("/zones/-")
        under = [v for v in self.volumes if v.name.startswith(zone + "/")]
        start = int(request.page_token or 0)
        end = start + 1  # one volume per page: the paging is followed
        token = str(end) if end < len(under) else ""
        return SimpleNamespace(volumes=under[start:end], next_page_token=token)


def test_volumes_under_a_zone_or_a_project_follow_the_pages() -> None:
    a, b = "projects/p/zones/a", "projects/p/zones/b"
    names = [f"{a}/volumes/v1", f"{a}/volumes/v2", f"{b}/volumes/v3"]
    backend = _Volumes([spb.Volume(name=n) for n in names])

    async def listed(parent: str) -> list[str]:
        return [v.name async for v in volumes_under(backend, "t", parent)]

    assert asyncio.run(listed("projects/p/zones/-")) == names
    assert backend.calls == 3
    assert asyncio.run(listed(a)) == names[:2]
    assert asyncio.run(listed("projects/q/zones/-")) == []
