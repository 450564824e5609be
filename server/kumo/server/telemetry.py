"""Tracers as the `[tracing]` config section asks for them (API server, gateway, kumo up)."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

from kumo.server.config import Config


def tracer_for(config: Config, name: str) -> trace.Tracer | None:
    """The tracer `config.tracing` asks for (None: no spans recorded), named `name`."""
    if config.tracing.exporter == "none":
        return None
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    return provider.get_tracer(name)
