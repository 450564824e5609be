"""The agent's connection to the API: one grpc.aio channel, the AgentService,
ImageService and IdentityService stubs, bearer-token metadata, token renewal,
and retries with backoff.

Every call carries `authorization: Bearer <token>`. With an access key pair
the token comes from IdentityService.IssueToken and is issued again shortly
before it expires (and at once after an UNAUTHENTICATED answer). Unary calls
that fail with UNAVAILABLE are retried with exponential backoff and jitter;
every agent call is idempotent (registration, heartbeats, level-based
reports, offset-addressed console appends), so a retry is always safe.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import grpc
import grpc.aio

from kumo.agent.config import AgentConfig
from kumo.agent.v1 import agent_service_pb2_grpc
from kumo.identity.v1 import identity_service_pb2, identity_service_pb2_grpc
from kumo.image.v1 import image_service_pb2_grpc

log = logging.getLogger(__name__)

Metadata = tuple[tuple[str, str], ...]

RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE})
"""Codes a unary call is retried on."""


class Backoff:
    """Exponential backoff with full jitter between `initial` and `maximum` seconds."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial = initial
        self.maximum = max(initial, maximum)
        self._attempt = 0

    def next_delay(self) -> float:
        """The delay before the next attempt; each call doubles the ceiling."""
        ceiling = min(self.maximum, self.initial * (2**self._attempt))
        self._attempt = min(self._attempt + 1, 32)
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        """Starts again from `initial` (after a success)."""
        self._attempt = 0


class ApiClient:
    """The agent's channel to the API and the stubs it uses.

    `agent`, `images` and `identity` are the raw generated stubs (their calls
    need `metadata=await client.metadata()`); `call` wraps a unary method with
    metadata, deadline and retries.
    """

    def __init__(
        self,
        config: AgentConfig,
        *,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        """Opens an insecure channel to `config.api_endpoint`; never raises for an
        unreachable server (calls then fail with UNAVAILABLE and are retried)."""
        self.config = config
        self.channel = grpc.aio.insecure_channel(
            config.api_endpoint,
            options=[
                ("grpc.max_receive_message_length", 16 * 1024 * 1024),
                # Reconnect to an API that comes back as fast as the agent retries
                # (gRPC's own default backs off up to two minutes).
                ("grpc.initial_reconnect_backoff_ms", int(config.retry_initial_seconds * 1000)),
                ("grpc.max_reconnect_backoff_ms", int(config.retry_max_seconds * 1000)),
                *options,
            ],
        )
        self.agent = agent_service_pb2_grpc.AgentServiceStub(self.channel)
        self.images = image_service_pb2_grpc.ImageServiceStub(self.channel)
        self.identity = identity_service_pb2_grpc.IdentityServiceStub(self.channel)
        credentials = config.credentials
        self._token = credentials.token
        self._renew_at = float("inf")  # monotonic time; inf for a static token
        if credentials.uses_access_key:
            self._renew_at = 0.0  # issue on first use
        self._token_lock = asyncio.Lock()
        self.unavailable = 0
        """How many calls failed with UNAVAILABLE (for logs and tests)."""

    def backoff(self) -> Backoff:
        """A fresh backoff with the configured bounds."""
        return Backoff(self.config.retry_initial_seconds, self.config.retry_max_seconds)

    async def metadata(self) -> Metadata:
        """`authorization` metadata with a valid token (issuing or renewing one first
        if needed). Raises grpc.aio.AioRpcError if IssueToken fails for good."""
        if time.monotonic() >= self._renew_at:
            async with self._token_lock:
                if time.monotonic() >= self._renew_at:
                    await self._issue_token()
        if not self._token:
            return ()
        return (("authorization", f"Bearer {self._token}"),)

    def invalidate_token(self) -> None:
        """Forces a new IssueToken before the next call (after UNAUTHENTICATED);
        no-op for a static token."""
        if self.config.credentials.uses_access_key:
            self._renew_at = 0.0

    async def _issue_token(self) -> None:
        credentials = self.config.credentials
        request = identity_service_pb2.IssueTokenRequest(
            access_key=identity_service_pb2.AccessKeyCredentials(
                access_key_id=credentials.access_key_id,
                secret_access_key=credentials.secret_access_key,
            )
        )
        response = await self._with_retries(
            lambda: self.identity.IssueToken(request, timeout=self.config.call_timeout_seconds),
            what="IssueToken",
        )
        token = response.token
        now_wall = time.time()
        lifetime = token.expire_time.seconds - now_wall if token.HasField("expire_time") else 0.0
        if lifetime <= 0:
            self._renew_at = time.monotonic() + 3600.0  # no expiry given: check hourly
        else:
            margin = min(credentials.renew_before_seconds, lifetime / 5)
            self._renew_at = time.monotonic() + lifetime - margin
        self._token = token.token
        log.info(
            "issued a token for the agent (renewal in %.0f s)", self._renew_at - time.monotonic()
        )

    async def call(
        self,
        method: Callable[..., Any],
        request: Any,
        *,
        attempts: int | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Calls unary `method` (a stub attribute) with the token and a deadline.

        Retries UNAVAILABLE with backoff up to `attempts` times in all (None: until
        it succeeds or the task is cancelled), and UNAUTHENTICATED once after
        renewing an issued token. Raises grpc.aio.AioRpcError for other failures
        and for the last failed attempt.
        """
        deadline = timeout or self.config.call_timeout_seconds
        reauthenticated = False
        while True:
            metadata = await self.metadata()

            def attempt(metadata: Metadata = metadata) -> Any:
                return method(request, metadata=metadata, timeout=deadline)

            try:
                return await self._with_retries(
                    attempt,
                    what=_method_name(method),
                    attempts=attempts,
                )
            except grpc.aio.AioRpcError as error:
                if (
                    error.code() == grpc.StatusCode.UNAUTHENTICATED
                    and self.config.credentials.uses_access_key
                    and not reauthenticated
                ):
                    reauthenticated = True
                    self.invalidate_token()
                    continue
                raise

    async def _with_retries(
        self, attempt: Callable[[], Any], *, what: str, attempts: int | None = None
    ) -> Any:
        backoff = self.backoff()
        tried = 0
        while True:
            tried += 1
            try:
                return await attempt()
            except grpc.aio.AioRpcError as error:
                if error.code() == grpc.StatusCode.UNAVAILABLE:
                    self.unavailable += 1
                if error.code() not in RETRYABLE or (attempts is not None and tried >= attempts):
                    raise
                delay = backoff.next_delay()
                log.debug("%s: %s; retrying in %.1f s", what, error.code().name, delay)
                await asyncio.sleep(delay)

    async def close(self) -> None:
        """Closes the channel; calls in flight are cancelled."""
        await self.channel.close()


def _method_name(method: Callable[..., Any]) -> str:
    name = getattr(method, "_method", b"")
    if isinstance(name, bytes):
        name = name.decode(errors="replace")
    return str(name) or "call"
