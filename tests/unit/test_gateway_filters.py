"""Neutron's and Cinder's attribute filters, `fields=` and id-marker paging."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.requests import Request

from kumo.gateway.errors import RpcFailure
from kumo.gateway.openstack.filters import filtered, listing, selected

ITEMS: list[dict[str, Any]] = [
    {"id": "a", "name": "x", "router:external": True, "fixed_ips": [{"ip_address": "10.0.0.5"}]},
    {"id": "b", "name": "y", "router:external": False, "fixed_ips": []},
    {"id": "c", "name": "x", "router:external": False, "fixed_ips": []},
]


def _request(query: str) -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/network/v2.0/networks",
            "query_string": query.encode(),
            "headers": [(b"host", b"gw")],
            "scheme": "http",
            "server": ("gw", 80),
        }
    )


def _ids(query: str) -> list[str]:
    return [i["id"] for i in filtered(_request(query), ITEMS)]


def test_filters_match_any_value_booleans_and_list_entries() -> None:
    """Values of one filter: any; booleans in any case; `key=value` inside list entries;
    unknown attributes and paging parameters are not filters."""
    assert _ids("name=x") == ["a", "c"]
    assert _ids("name=x&name=y") == ["a", "b", "c"]
    assert _ids("router%3Aexternal=TRUE") == ["a"]
    assert _ids("fixed_ips=ip_address%3D10.0.0.5") == ["a"]
    assert _ids("nonsense=1&limit=1&fields=id") == ["a", "b", "c"]


def test_fields_and_paging_with_links() -> None:
    """`fields=` keeps only those keys; `limit` gives a next link with the last id as marker;
    an unknown marker is 404."""
    assert selected(_request("fields=id&fields=name"), ITEMS[0]) == {"id": "a", "name": "x"}
    first = listing(_request("limit=2"), "networks", ITEMS, "")
    assert [i["id"] for i in first["networks"]] == ["a", "b"]
    assert first["networks_links"][0]["href"] == "http://gw/network/v2.0/networks?limit=2&marker=b"
    rest = listing(_request("limit=2&marker=b"), "networks", ITEMS, "")
    assert [i["id"] for i in rest["networks"]] == ["c"] and "networks_links" not in rest
    with pytest.raises(RpcFailure) as unknown:
        listing(_request("marker=zzz"), "networks", ITEMS, "")
    assert unknown.value.http_status() == 404
