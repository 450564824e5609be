"""Authentication (token → principal) and authorization (the policy table).

Authentication reads `authorization: Bearer <token>`; a token that is present
but invalid is UNAUTHENTICATED even where none is needed, so that clients
learn early that their credentials went bad. Authorization applies the
method's rule from kumo.server.auth.policy, for unary and streaming methods alike.
"""

from __future__ import annotations

from typing import Any

import grpc

from kumo.server.auth.authenticator import Authenticator
from kumo.server.auth.policy import POLICY, authorize
from kumo.server.auth.principal import Principal, optional_principal, set_principal
from kumo.server.errors import Unauthenticated
from kumo.server.interceptors.base import Behavior, UnaryInterceptor, metadata_value


def bearer_token(context: grpc.aio.ServicerContext[Any, Any]) -> str | None:
    """The bearer token of the call, None if absent; Unauthenticated if malformed."""
    header = metadata_value(context, "authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("authorization metadata must be 'Bearer <token>'")
    return token.strip()


class AuthenticationInterceptor(UnaryInterceptor):
    """Sets the current principal from the call's bearer token."""

    def __init__(self, authenticator: Authenticator) -> None:
        super().__init__()
        self._auth = authenticator

    async def _principal(self, context: grpc.aio.ServicerContext[Any, Any]) -> Principal | None:
        token = bearer_token(context)
        return None if token is None else await self._auth.authenticate(token)

    def wrap(self, method: str, behavior: Behavior) -> Behavior:
        async def authenticated(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            set_principal(await self._principal(context))
            return await behavior(request, context)

        return authenticated


class AuthorizationInterceptor(UnaryInterceptor):
    """Checks the method's policy rule against the current principal."""

    def wrap(self, method: str, behavior: Behavior) -> Behavior:
        rule = POLICY.get(method)

        async def authorized(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            if rule is None:  # create_server refuses this; defence in depth
                raise Unauthenticated(f"no policy for {method}")
            authorize(rule, optional_principal())
            return await behavior(request, context)

        return authorized
