"""What every Neutron handler shares: the caller's scope, calls, and the list and show
replies with Neutron's filters, `fields=` and `limit`/`marker` paging."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

import grpc
from google.protobuf import field_mask_pb2
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from kumo.gateway.dialect import Dialect, invalid, json_body
from kumo.gateway.errors import RpcFailure
from kumo.gateway.grpc_backend import Backend
from kumo.gateway.openstack.common import Scope, Scopes, base_url, int_param
from kumo.gateway.openstack.errors import CONFLICT_OVERRIDES, neutron_error
from kumo.gateway.openstack.neutron.index import Index
from kumo.network.v1 import network_service_pb2_grpc as nrpc

DIALECT = Dialect("neutron", neutron_error, CONFLICT_OVERRIDES)
# Query parameters that are not attribute filters.
_NOT_FILTERS = frozenset({"fields", "limit", "marker", "page_reverse", "sort_key", "sort_dir"})


def new_id(prefix: str) -> str:
    """A Kumo id for a resource the gateway creates."""
    return f"{prefix}-{uuid.uuid4().hex}"


def mask(*paths: str) -> field_mask_pb2.FieldMask:
    """An update mask."""
    return field_mask_pb2.FieldMask(paths=list(paths))


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
        if key not in _NOT_FILTERS:
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


class NeutronBase:
    """Backend, scopes and the reply helpers."""

    def __init__(self, backend: Backend, scopes: Scopes, public_url: str) -> None:
        self.backend = backend
        self.scopes = scopes
        self.public_url = public_url
        self.network = backend.stub(nrpc.NetworkServiceStub)

    async def begin(self, request: Request) -> tuple[Scope, Index]:
        """The caller's scope and a fresh index of their resources."""
        scope = await self.scopes.of(request)
        return scope, Index(self.backend, scope)

    async def call(self, method: Any, message: Any, scope: Scope) -> Any:
        """A call with the caller's token."""
        return await self.backend.call(method, message, scope.token)

    @staticmethod
    async def body_of(request: Request, key: str) -> dict[str, Any]:
        """The `{key: {...}}` object of a request body; 400 otherwise."""
        body = (await json_body(request)).get(key)
        if not isinstance(body, dict):
            raise invalid(f"Resource body required: the body needs a '{key}' object")
        return body

    @staticmethod
    def parent_of(scope: Scope, body: dict[str, Any]) -> str:
        """The project a new resource goes in: the body's (administrators) or the caller's."""
        project = body.get("project_id") or body.get("tenant_id") or scope.project
        return f"projects/{project}"

    def listing(self, request: Request, plural: str, items: list[dict[str, Any]]) -> Response:
        """`{plural: [...]}` filtered, paged (`limit`, id `marker`) with `<plural>_links`."""
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
            query = [(k, v) for k, v in request.query_params.multi_items() if k != "marker"] + [
                ("marker", found[-1]["id"])
            ]

            href = f"{base_url(request, self.public_url)}{request.url.path}?{urlencode(query)}"
            body[f"{plural}_links"] = [{"rel": "next", "href": href}]
        body[plural] = [selected(request, item) for item in found]
        return JSONResponse(body)

    @staticmethod
    def one(request: Request, singular: str, item: dict[str, Any], status: int = 200) -> Response:
        """`{singular: {...}}` with `fields=` applied."""
        return JSONResponse({singular: selected(request, item)}, status_code=status)

    @staticmethod
    def gone() -> Response:
        """204 after a delete."""
        return Response(status_code=204)
