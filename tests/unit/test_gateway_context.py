"""What the gateway sends along with each gRPC call: the request id it answers with and the
caller's W3C trace context (a child of it when a tracer records spans)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from starlette.types import Message, Receive, Scope, Send

from kumo.gateway.grpc_backend import call_metadata
from kumo.gateway.middleware import (
    AccessLogMiddleware,
    RequestContextMiddleware,
    TracingMiddleware,
)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


async def _metadata_app(scope: Scope, receive: Receive, send: Send) -> None:
    body = json.dumps(dict(call_metadata("t0ken"))).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def _serve(app: Any, headers: dict[str, str]) -> tuple[dict[str, str], dict[str, Any]]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/x",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    asyncio.run(app(scope, receive, send))
    response_headers = {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in sent[0]["headers"]
    }
    return response_headers, json.loads(sent[1]["body"])


def test_request_id_token_and_trace_context_reach_the_call() -> None:
    tracer = TracerProvider().get_tracer("test")
    app = RequestContextMiddleware(TracingMiddleware(_metadata_app, tracer), timeout_seconds=5)
    headers, metadata = _serve(app, {"traceparent": PARENT})
    assert metadata["x-request-id"] == headers["x-openstack-request-id"]
    assert metadata["authorization"] == "Bearer t0ken"
    version, trace_id, span_id, _ = metadata["traceparent"].split("-")
    assert (version, trace_id) == ("00", TRACE_ID)
    assert span_id != "00f067aa0ba902b7"  # the gateway's own span, child of the caller's


def test_without_a_recording_tracer_the_callers_context_passes_through() -> None:
    app = RequestContextMiddleware(
        TracingMiddleware(_metadata_app, trace.NoOpTracerProvider().get_tracer("x")), 5
    )
    _, metadata = _serve(app, {"traceparent": PARENT})
    assert metadata["traceparent"] == PARENT


def test_a_request_past_its_deadline_is_answered_504() -> None:
    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(30)

    app = RequestContextMiddleware(slow, timeout_seconds=0.01)  # answered at deadline + 1 s
    headers, body = _serve(app, {})
    assert body["code"] == 4 and headers["x-openstack-request-id"].startswith("req-")


def test_access_log_line(caplog: pytest.LogCaptureFixture) -> None:
    app = RequestContextMiddleware(AccessLogMiddleware(_metadata_app), timeout_seconds=5)
    with caplog.at_level(logging.INFO, logger="kumo.gateway.access"):
        headers, _ = _serve(app, {})
    (line,) = [r.getMessage() for r in caplog.records if r.name == "kumo.gateway.access"]
    assert line.startswith("GET /x 200 ") and line.endswith(headers["x-openstack-request-id"])
