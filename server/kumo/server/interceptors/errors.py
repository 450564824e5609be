"""Turns exceptions into gRPC statuses with google.rpc details.

A KumoError becomes its status (with `grpc-status-details-bin`, readable by
grpcio-status' `rpc_status.from_call`); anything else is logged with the
request id and reported as a bare INTERNAL, never with its text or traceback.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
from sqlalchemy.exc import DBAPIError

from kumo.server.db.engine import is_conflict
from kumo.server.errors import Aborted, InvalidArgument, KumoError, Unavailable, internal_status
from kumo.server.interceptors.base import Behavior, Context, StreamBehavior, UnaryInterceptor
from kumo.server.request_ids import current_request_id

log = logging.getLogger(__name__)
_CODES = {code.value[0]: code for code in grpc.StatusCode}
_BAD_REGEX = "2201B"  # PostgreSQL's invalid_regular_expression


async def abort_with(context: grpc.aio.ServicerContext[Any, Any], error: Exception) -> None:
    """Ends the call with the status for `error` (raises grpc's AbortError)."""
    rid = current_request_id()
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        error = Unavailable("the database connection was lost; retry")
    elif is_conflict(error):  # (Database.transaction already ran it again, and again lost)
        error = Aborted("the request conflicted with concurrent ones; retry")
    elif isinstance(error, DBAPIError) and getattr(error.orig, "sqlstate", None) == _BAD_REGEX:
        # (a list filter's pattern that Python's `re` read and PostgreSQL does not)
        error = InvalidArgument.field("filter", "PostgreSQL cannot read this regular expression")
    if isinstance(error, KumoError):
        status = error.to_status()
    else:
        log.error("unexpected error in request %s", rid, exc_info=error)
        status = internal_status(f"internal error (request {rid})")
    await context.abort(
        _CODES[status.code],
        status.message,
        trailing_metadata=(
            ("grpc-status-details-bin", status.SerializeToString()),
            ("x-request-id", rid),
        ),
    )


class ErrorInterceptor(UnaryInterceptor):
    """Maps the exception tree of kumo.server.errors onto statuses."""

    def wrap(self, method: str, behavior: Behavior) -> Behavior:
        async def mapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            try:
                return await behavior(request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as error:  # every failure must reach the caller as a status
                await abort_with(context, error)

        return mapped

    def wrap_unary_stream(self, method: str, behavior: StreamBehavior) -> StreamBehavior:
        async def mapped(request: Any, context: Context) -> AsyncIterator[Any]:
            try:
                async for item in behavior(request, context):
                    yield item
            except grpc.aio.AbortError:
                raise
            except Exception as error:  # every failure must reach the caller as a status
                await abort_with(context, error)

        return mapped
