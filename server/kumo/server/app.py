"""`create_server(config)`: the API process's gRPC server, fully wired.

Builds the database (migrated), the keys, the first administrator, the
services, the interceptor chain, health checking and reflection, and the
operations controller. Call it inside the event loop that will run the server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

import grpc
from google.longrunning import operations_pb2, operations_pb2_grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from kumo.agent.v1 import agent_service_pb2, agent_service_pb2_grpc
from kumo.compute.v1 import compute_service_pb2, compute_service_pb2_grpc
from kumo.drivers.network.loader import load_network_driver
from kumo.identity.v1 import identity_service_pb2, identity_service_pb2_grpc
from kumo.image.v1 import image_service_pb2, image_service_pb2_grpc
from kumo.network.v1 import network_service_pb2, network_service_pb2_grpc
from kumo.server.api.paging import Pager
from kumo.server.auth.authenticator import Authenticator
from kumo.server.auth.keys import load_keys
from kumo.server.auth.policy import missing_rules
from kumo.server.auth.tokens import TokenCodec
from kumo.server.bootstrap import bootstrap, password_file
from kumo.server.config import Config
from kumo.server.controllers.janitor import Janitor
from kumo.server.controllers.operations import OperationExecutor
from kumo.server.db.engine import Database
from kumo.server.db.migrate import upgrade
from kumo.server.images.store import ImageStore
from kumo.server.interceptors.auth import AuthenticationInterceptor, AuthorizationInterceptor
from kumo.server.interceptors.errors import ErrorInterceptor
from kumo.server.interceptors.priority import PriorityInterceptor
from kumo.server.interceptors.request_id import RequestIdInterceptor
from kumo.server.interceptors.tracing import TracingInterceptor
from kumo.server.interceptors.validation import ValidationInterceptor
from kumo.server.network.reconciler import NetworkReconciler
from kumo.server.notifier import NETWORK, OPERATIONS, Notifier
from kumo.server.operations.handlers import HandlerRegistry
from kumo.server.priority import Foreground
from kumo.server.replica_wakeups import PostgresWakeups
from kumo.server.runtime import Runtime
from kumo.server.services.agent import AgentService
from kumo.server.services.compute import ComputeService
from kumo.server.services.identity import IdentityService
from kumo.server.services.images import ImageService
from kumo.server.services.network import NetworkService
from kumo.server.services.operations import OperationsService
from kumo.server.services.storage import StorageService
from kumo.server.services.topology import TopologyService
from kumo.server.storage.backends import Backends
from kumo.server.storage.reconciler import StorageReconciler
from kumo.server.telemetry import tracer_for
from kumo.storage.v1 import storage_service_pb2, storage_service_pb2_grpc
from kumo.topology.v1 import topology_service_pb2, topology_service_pb2_grpc

log = logging.getLogger(__name__)

SERVICES = (
    identity_service_pb2.DESCRIPTOR.services_by_name["IdentityService"],
    topology_service_pb2.DESCRIPTOR.services_by_name["TopologyService"],
    image_service_pb2.DESCRIPTOR.services_by_name["ImageService"],
    compute_service_pb2.DESCRIPTOR.services_by_name["ComputeService"],
    agent_service_pb2.DESCRIPTOR.services_by_name["AgentService"],
    network_service_pb2.DESCRIPTOR.services_by_name["NetworkService"],
    storage_service_pb2.DESCRIPTOR.services_by_name["StorageService"],
    operations_pb2.DESCRIPTOR.services_by_name["Operations"],
)


def method_names(services: Iterable[object] = SERVICES) -> list[str]:
    """Full gRPC method paths (`/package.Service/Method`) of Kumo's services."""
    return [
        f"/{service.full_name}/{method.name}"  # type: ignore[attr-defined]
        for service in services
        for method in service.methods  # type: ignore[attr-defined]
    ]


class KumoServer:
    """A built, not yet started, API server."""

    def __init__(
        self,
        server: grpc.aio.Server,
        runtime: Runtime,
        health_servicer: health.aio.HealthServicer,
        port: int,
        admin_password: str | None,
    ) -> None:
        self.server = server
        self.runtime = runtime
        self.health = health_servicer
        self.port = port
        self.janitor = Janitor(runtime.db)
        self.network = _network_reconciler(runtime)
        self.storage_reconciler = StorageReconciler(runtime)
        # Wake-ups to and from the other replicas (PostgreSQL only: SQLite has one process).
        self.wakeups = (
            None if runtime.db.is_sqlite else PostgresWakeups(runtime.db.engine, runtime.notifier)
        )
        runtime.notifier.relay = self.wakeups
        # Set only on the first start, when the password was generated.
        self.admin_password = admin_password

    async def start(self) -> None:
        """Starts serving and the controllers; health becomes SERVING."""
        await self.server.start()
        if self.wakeups is not None:
            self.wakeups.start()
        if self.runtime.executor is not None:
            self.runtime.executor.start()
            self.janitor.start()
            if self.network is not None:
                self.network.start()
            self.storage_reconciler.start()
        for name in ["", *(s.full_name for s in SERVICES)]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float | None = None) -> None:
        """Health NOT_SERVING, lets calls finish for `grace` seconds, stops the
        controllers (releasing their operations) and closes the database."""
        grace = self.runtime.config.shutdown_grace_seconds if grace is None else grace
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        await self.janitor.stop()
        if self.network is not None:
            await self.network.stop()
        await self.storage_reconciler.stop()
        if self.runtime.executor is not None:
            await self.runtime.executor.stop()
        if self.wakeups is not None:
            await asyncio.to_thread(self.wakeups.stop)  # (joins its threads)
        self.runtime.db.close()

    async def wait_for_termination(self) -> None:
        """Returns when the server has stopped."""
        await self.server.wait_for_termination()


def _network_reconciler(runtime: Runtime) -> NetworkReconciler | None:
    """The network reconciler over the configured driver (None: no backend)."""
    config = runtime.config.network
    if config.driver == "none":
        return None
    options: dict[str, object] = {}
    if config.driver == "ovn":
        options = {"remote": config.ovn_nb_remote, "gateway_chassis": config.gateway_chassis}
    driver = load_network_driver(config.driver, **options)
    reconciler = NetworkReconciler(runtime.db, driver, config.reconcile_seconds)
    runtime.notifier.subscribe(NETWORK, reconciler.wake)
    return reconciler


def create_server(config: Config) -> tuple[KumoServer, int]:
    """Builds the server and binds its port (0 picks a free one); returns it and the port.

    Raises RuntimeError if a method has no policy rule or the port cannot be bound.
    """
    if missing := missing_rules(method_names()):
        raise RuntimeError(f"methods without a policy rule: {missing}")
    db = Database(config.database_url, config.database.pool_size)
    if config.database.auto_migrate:
        upgrade(db.engine)
    keys = load_keys(db, config.auth.secret)
    admin_password = bootstrap(db, config)
    codec = TokenCodec(keys.tokens, config.auth.token_ttl_seconds)
    handlers = HandlerRegistry()
    notifier = Notifier()
    foreground = Foreground(
        config.operations.foreground_quiet_seconds, config.operations.background_share
    )
    executor = (
        OperationExecutor(db, handlers, notifier, config.operations, foreground)
        if config.operations.enabled
        else None
    )
    if executor is not None:
        notifier.subscribe(OPERATIONS, executor.wake)
    runtime = Runtime(
        config=config,
        db=db,
        keys=keys,
        pager=Pager(keys.pages),
        authenticator=Authenticator(db, codec, config.bootstrap.project, config.auth.cache_seconds),
        handlers=handlers,
        notifier=notifier,
        executor=executor,
        images=ImageStore(config.images_dir, config.images.max_bytes),
        storage=Backends(config),
    )
    interceptors: list[grpc.aio.ServerInterceptor] = [RequestIdInterceptor()]
    if (tracer := tracer_for(config, "kumo.server")) is not None:
        interceptors.append(TracingInterceptor(tracer))
    interceptors += [
        PriorityInterceptor(foreground),
        ErrorInterceptor(),
        AuthenticationInterceptor(runtime.authenticator),
        AuthorizationInterceptor(),
        ValidationInterceptor(),
    ]
    server = grpc.aio.server(interceptors=interceptors)
    identity_service_pb2_grpc.add_IdentityServiceServicer_to_server(
        IdentityService(runtime), server
    )
    topology_service_pb2_grpc.add_TopologyServiceServicer_to_server(
        TopologyService(runtime), server
    )
    operations_pb2_grpc.add_OperationsServicer_to_server(OperationsService(runtime), server)
    image_service_pb2_grpc.add_ImageServiceServicer_to_server(ImageService(runtime), server)
    compute_service_pb2_grpc.add_ComputeServiceServicer_to_server(ComputeService(runtime), server)
    agent_service_pb2_grpc.add_AgentServiceServicer_to_server(AgentService(runtime), server)
    network_service_pb2_grpc.add_NetworkServiceServicer_to_server(NetworkService(runtime), server)
    storage_service_pb2_grpc.add_StorageServiceServicer_to_server(StorageService(runtime), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [*(s.full_name for s in SERVICES), health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    port = server.add_insecure_port(f"{config.listen.host}:{config.listen.port}")
    if admin_password is not None:
        log.info(
            "created administrator %r; password in %s",
            config.bootstrap.admin_user,
            password_file(config),
        )
    return KumoServer(server, runtime, health_servicer, port, admin_password), port
