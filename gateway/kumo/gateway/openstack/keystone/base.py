"""What every Keystone handler shares."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.requests import Request

from kumo.gateway.grpc_backend import Backend
from kumo.gateway.openstack.common import (
    Scopes,
    base_url,
)
from kumo.identity.v1 import identity_service_pb2_grpc as irpc


class KeystoneBase:
    """The backend, the scopes and the helpers every Keystone handler uses."""

    def __init__(self, backend: Backend, scopes: Scopes, public_url: str) -> None:
        self.backend = backend
        self.scopes = scopes
        self.public_url = public_url
        self.identity = backend.stub(irpc.IdentityServiceStub)

    def base(self, request: Request) -> str:
        """This gateway's base URL."""
        return base_url(request, self.public_url)

    async def call(self, method: Any, message: Any, token: str) -> Any:
        """A call with the caller's token."""
        return await self.backend.call(method, message, token)

    async def pages(
        self, method: Any, make: Callable[[str], Any], plural: str, token: str
    ) -> AsyncIterator[Any]:
        """Every item of a paged List call."""
        page_token = ""
        while True:
            answer = await self.call(method, make(page_token), token)
            for item in getattr(answer, plural):
                yield item
            page_token = answer.next_page_token
            if not page_token:
                return
