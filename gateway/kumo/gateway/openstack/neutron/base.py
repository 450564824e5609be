"""What every Neutron handler shares: the caller's scope, calls, and the list and show
replies with Neutron's filters, `fields=` and `limit`/`marker` paging."""

from __future__ import annotations

import uuid
from typing import Any

from google.protobuf import field_mask_pb2
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from kumo.gateway.dialect import Dialect, json_member
from kumo.gateway.grpc_backend import Backend
from kumo.gateway.openstack.common import Scope, Scopes
from kumo.gateway.openstack.errors import CONFLICT_OVERRIDES, neutron_error
from kumo.gateway.openstack.filters import listing, selected
from kumo.gateway.openstack.neutron.index import Index
from kumo.network.v1 import network_service_pb2_grpc as nrpc

DIALECT = Dialect("neutron", neutron_error, CONFLICT_OVERRIDES)


def new_id(prefix: str) -> str:
    """A Kumo id for a resource the gateway creates."""
    return f"{prefix}-{uuid.uuid4().hex}"


def mask(*paths: str) -> field_mask_pb2.FieldMask:
    """An update mask."""
    return field_mask_pb2.FieldMask(paths=list(paths))


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
        return await json_member(
            request, key, f"Resource body required: the body needs a '{key}' object"
        )

    @staticmethod
    def parent_of(scope: Scope, body: dict[str, Any]) -> str:
        """The project a new resource goes in: the body's (administrators) or the caller's."""
        project = body.get("project_id") or body.get("tenant_id") or scope.project
        return f"projects/{project}"

    def listing(self, request: Request, plural: str, items: list[dict[str, Any]]) -> Response:
        """`{plural: [...]}` filtered, paged (`limit`, id `marker`) with `<plural>_links`."""
        return JSONResponse(listing(request, plural, items, self.public_url))

    @staticmethod
    def one(request: Request, singular: str, item: dict[str, Any], status: int = 200) -> Response:
        """`{singular: {...}}` with `fields=` applied."""
        return JSONResponse({singular: selected(request, item)}, status_code=status)

    @staticmethod
    def gone() -> Response:
        """204 after a delete."""
        return Response(status_code=204)
