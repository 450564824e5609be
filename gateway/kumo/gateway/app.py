"""The gateway's ASGI app: `create_app(settings)`.

    /                    Keystone version discovery       /v3/...     Keystone v3
    /compute/...         Nova v2.1                        /image/...  Glance v2
    /network/...         Neutron v2.0                     /volume/... Cinder v3
    /aws[/...]           EC2 (Query API, SigV4): `--endpoint-url http://HOST:PORT/aws`
    /v1/...              native REST from the contracts' HTTP bindings
    /openapi.json        the native REST API's OpenAPI document
    /healthz             liveness (no backend call)

Middleware, outermost first: request context (id, deadline), access log, tracing, body limit.
The gRPC channel opens at start-up and closes at shutdown (the app's lifespan).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from opentelemetry import trace
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from kumo.gateway.aws.app import Ec2App
from kumo.gateway.aws.app import create_app as create_ec2
from kumo.gateway.grpc_backend import Backend
from kumo.gateway.middleware import (
    AccessLogMiddleware,
    BodyLimitMiddleware,
    RequestContextMiddleware,
    TracingMiddleware,
)
from kumo.gateway.native.openapi import document
from kumo.gateway.native.rest import NativeRest
from kumo.gateway.native.services import SERVICES
from kumo.gateway.openstack.cinder.app import create_cinder
from kumo.gateway.openstack.common import Scopes
from kumo.gateway.openstack.glance import Glance
from kumo.gateway.openstack.keystone.app import Keystone
from kumo.gateway.openstack.lookup import ImageIndex
from kumo.gateway.openstack.neutron.app import create_neutron
from kumo.gateway.openstack.nova.app import create_nova


@dataclass(frozen=True)
class Settings:
    """What the app needs (see `GatewayConfig` in kumo.server.config)."""

    api_endpoint: str
    public_url: str = ""
    max_body_bytes: int = 1 << 20
    max_image_bytes: int = 64 << 30
    timeout_seconds: float = 60.0


def is_image_upload(scope: Scope) -> bool:
    """`PUT /image/v2/images/{id}/file`: the one route with a large body."""
    path = str(scope.get("path", ""))
    return scope.get("method") == "PUT" and path.startswith("/image/") and path.endswith("/file")


MOUNT_ROOTS = frozenset({"/v3", "/compute", "/image", "/network", "/volume"})
EC2_PREFIX = "/aws"


def is_ec2(scope: Scope) -> bool:
    """A request for the EC2 app: `/aws` or below (HTTP only)."""
    path = str(scope.get("path", ""))
    return scope["type"] == "http" and (path == EC2_PREFIX or path.startswith(EC2_PREFIX + "/"))


class _Lazy:
    """The routed app, built on first use inside the server's event loop (grpc.aio
    channels belong to the loop that creates them)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.backend: Backend | None = None
        self.router: Starlette | None = None
        # EC2 signs the path as the client sent it, so it gets the scope untouched.
        self.ec2: Ec2App = create_ec2(settings.api_endpoint)

    def build(self) -> Starlette:
        settings = self.settings
        backend = Backend(settings.api_endpoint)
        scopes = Scopes(backend)
        images = ImageIndex(backend)
        native = NativeRest(backend, SERVICES)
        openapi = document(native.bindings)

        async def openapi_json(request: Request) -> Response:
            return JSONResponse(openapi)

        async def healthz(request: Request) -> Response:
            return JSONResponse({"status": "ok"})

        keystone = Keystone(backend, scopes, settings.public_url)
        self.backend = backend
        return Starlette(
            routes=[
                Route("/openapi.json", openapi_json, methods=["GET"]),
                Route("/healthz", healthz, methods=["GET"]),
                Mount("/v1", app=native.app()),
                Mount("/compute", app=create_nova(backend, scopes, images, settings.public_url)),
                Mount("/image", app=Glance(backend, scopes, images, settings.public_url).app()),
                Mount("/network", app=create_neutron(backend, scopes, settings.public_url)),
                Mount("/volume", app=create_cinder(backend, scopes, settings.public_url)),
                *keystone.routes(),
            ]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if is_ec2(scope):
            await self.ec2(scope, receive, send)
            return
        if self.router is None:
            self.router = self.build()
        if scope["type"] == "http" and scope["path"] in MOUNT_ROOTS:
            # `/v3` is Keystone's version document itself (clients fail on a redirect to
            # `/v3/` with some proxies); the same for each mounted service's root.
            scope = {**scope, "path": scope["path"] + "/", "raw_path": None}
        await self.router(scope, receive, send)

    async def close(self) -> None:
        await self.ec2.close()
        if self.backend is not None:
            await self.backend.close()


def create_app(settings: Settings, tracer: trace.Tracer | None = None) -> Starlette:
    """The gateway's ASGI app."""
    routed = _Lazy(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await routed.close()

    return Starlette(
        routes=[Mount("/", app=routed)],
        middleware=[
            Middleware(RequestContextMiddleware, timeout_seconds=settings.timeout_seconds),
            Middleware(AccessLogMiddleware),
            Middleware(TracingMiddleware, tracer=tracer or trace.get_tracer("kumo.gateway")),
            Middleware(
                BodyLimitMiddleware,
                limit=settings.max_body_bytes,
                large_limit=settings.max_image_bytes,
                large=is_image_upload,
            ),
        ],
        lifespan=lifespan,
    )
