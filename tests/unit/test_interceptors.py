"""Unit tests of the interceptors' behaviour wrappers, without a network."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import psycopg
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy.exc import OperationalError

from kumo.server.errors import InvalidArgument
from kumo.server.interceptors.errors import ErrorInterceptor
from kumo.server.interceptors.request_id import RequestIdInterceptor
from kumo.server.interceptors.tracing import TracingInterceptor
from kumo.server.request_ids import current_request_id


class _Metadatum:
    def __init__(self, key: str, value: str) -> None:
        self.key, self.value = key, value


class FakeContext:
    """Just enough of grpc.aio.ServicerContext for the wrappers."""

    def __init__(self, metadata: dict[str, str]) -> None:
        self._metadata = [_Metadatum(k, v) for k, v in metadata.items()]
        self.trailing: Any = None
        self.aborted: Any = None

    def invocation_metadata(self) -> list[_Metadatum]:
        return self._metadata

    def set_trailing_metadata(self, metadata: Any) -> None:
        self.trailing = metadata

    async def abort(self, code: grpc.StatusCode, details: str, trailing_metadata: Any) -> None:
        self.aborted = (code, details, dict(trailing_metadata))
        raise grpc.aio.AbortError()


def test_tracing_continues_the_callers_trace() -> None:
    """The server span is a child of the trace in the caller's traceparent."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    interceptor = TracingInterceptor(provider.get_tracer("test"))

    async def behavior(request: Any, context: Any) -> str:
        return "ok"

    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    context = FakeContext({"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
    wrapped = interceptor.wrap("/kumo.identity.v1.IdentityService/GetProject", behavior)
    assert asyncio.run(wrapped(None, context)) == "ok"
    (span,) = exporter.get_finished_spans()
    assert format(span.context.trace_id, "032x") == trace_id
    assert span.attributes is not None and span.attributes["rpc.method"] == "GetProject"


def test_request_id_kept_or_made() -> None:
    """A sane caller id is kept; an insane one is replaced; both are returned."""

    async def behavior(request: Any, context: Any) -> str:
        return current_request_id()

    wrapped = RequestIdInterceptor().wrap("/m", behavior)
    sane = FakeContext({"x-request-id": "abc-123"})
    assert asyncio.run(wrapped(None, sane)) == "abc-123"
    assert sane.trailing == (("x-request-id", "abc-123"),)
    odd = FakeContext({"x-request-id": "spaces are <bad>"})
    assert asyncio.run(wrapped(None, odd)).startswith("req-")


def test_errors_become_statuses_with_details() -> None:
    """A KumoError aborts with its code and google.rpc details; others hide their text."""

    async def invalid(request: Any, context: Any) -> None:
        raise InvalidArgument.field("name", "bad")

    async def broken(request: Any, context: Any) -> None:
        raise RuntimeError("secret internal detail")

    interceptor = ErrorInterceptor()
    context = FakeContext({})
    with pytest.raises(grpc.aio.AbortError):
        asyncio.run(interceptor.wrap("/m", invalid)(None, context))
    code, _, trailers = context.aborted
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    details = error_details_pb2.BadRequest()
    status.details[0].Unpack(details)
    assert details.field_violations[0].field == "name"

    context = FakeContext({})
    with pytest.raises(grpc.aio.AbortError):
        asyncio.run(interceptor.wrap("/m", broken)(None, context))
    code, message, _ = context.aborted
    assert code is grpc.StatusCode.INTERNAL and "secret" not in message


def deadlock() -> OperationalError:
    """What SQLAlchemy raises when PostgreSQL aborts a transaction to break a deadlock."""
    return OperationalError("UPDATE ...", {}, psycopg.errors.DeadlockDetected("deadlock"))


def test_a_database_conflict_becomes_aborted() -> None:
    """A transaction the database aborted for a conflict (Database.transaction ran it again
    and it lost again) tells the caller to retry: ABORTED, not INTERNAL."""

    async def conflicting(request: Any, context: Any) -> None:
        raise deadlock()

    context = FakeContext({})
    with pytest.raises(grpc.aio.AbortError):
        asyncio.run(ErrorInterceptor().wrap("/m", conflicting)(None, context))
    code, message, _ = context.aborted
    assert code is grpc.StatusCode.ABORTED and "retry" in message
