"""Filters, `fields=` and id-marker paging over rendered resources, as Neutron and Cinder
apply them: any attribute may be a filter (`?name=x&status=ACTIVE`); several values of one
filter match any of them; unknown attributes are ignored."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import grpc
from starlette.requests import Request

from kumo.gateway.errors import RpcFailure
from kumo.gateway.openstack.common import base_url, int_param

# Query parameters that are not attribute filters.
NOT_FILTERS = frozenset(
    {"fields", "limit", "marker", "page_reverse", "sort_key", "sort_dir", "sort", "all_tenants",
     "with_count", "is_public"}
)  # fmt: skip


def _matches(value: Any, wanted: list[str]) -> bool:
    if isinstance(value, bool):
        return str(value).lower() in [w.lower() for w in wanted]
    if isinstance(value, list):
        # `fixed_ips=ip_address=10.0.0.5`, `security_groups=<id>`, `tags=a`.
        for entry in value:
            if isinstance(entry, dict):
                for term in wanted:
                    key, _, expected = term.partition("=")
                    if str(entry.get(key)) == expected:
                        return True
            elif str(entry) in wanted:
                return True
        return False
    return ("" if value is None else str(value)) in wanted


def filtered(request: Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The items every attribute filter of the query matches (values of one filter: any)."""
    terms: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        if key not in NOT_FILTERS:
            terms.setdefault(key, []).append(value)
    return [
        item
        for item in items
        if all(key not in item or _matches(item[key], wanted) for key, wanted in terms.items())
    ]


def selected(request: Request, item: dict[str, Any]) -> dict[str, Any]:
    """The item with only the `fields=` asked for (all when none)."""
    fields = request.query_params.getlist("fields")
    if not fields:
        return item
    return {k: v for k, v in item.items() if k in fields}


def listing(
    request: Request, plural: str, items: list[dict[str, Any]], public_url: str
) -> dict[str, Any]:
    """`{plural: [...]}` filtered, after the `marker` id, at most `limit` items, with a
    `<plural>_links` next link when more follow."""
    found = filtered(request, items)
    if marker := request.query_params.get("marker"):
        ids = [item["id"] for item in found]
        if marker not in ids:
            raise RpcFailure.of(grpc.StatusCode.NOT_FOUND, f"marker {marker} not found")
        found = found[ids.index(marker) + 1 :]
    limit = int_param(request, "limit")
    body: dict[str, Any] = {}
    if limit and len(found) > limit:
        found = found[:limit]
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "marker"]
        query.append(("marker", found[-1]["id"]))
        href = f"{base_url(request, public_url)}{request.url.path}?{urlencode(query)}"
        body[f"{plural}_links"] = [{"rel": "next", "href": href}]
    body[plural] = [selected(request, item) for item in found]
    return body
