"""`kumo-gateway`: the REST gateway in front of a Kumo API server.

Reads the same configuration as `kumo-api` (TOML file from `--config` or `KUMO_CONFIG`,
`KUMO_*` variables); its `[gateway]` section says where to listen and which API to use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import click

from kumo.gateway.app import Settings
from kumo.gateway.server import GatewayServer
from kumo.server.config import Config, load_config
from kumo.server.heap import freeze_startup_heap
from kumo.server.main import stop_signal
from kumo.server.telemetry import tracer_for


def settings_from(config: Config, api_port: int | None = None) -> Settings:
    """The gateway's settings from a Kumo configuration (the API at `api_port` if given)."""
    gateway = config.gateway
    endpoint = gateway.api_endpoint or f"{config.listen.host}:{api_port or config.listen.port}"
    return Settings(
        api_endpoint=endpoint,
        public_url=gateway.public_url,
        max_body_bytes=gateway.max_body_bytes,
        max_image_bytes=config.images.max_bytes,
        timeout_seconds=gateway.timeout_seconds,
    )


async def run(config: Config) -> None:
    """Serves until SIGINT or SIGTERM."""
    server = GatewayServer(
        settings_from(config),
        config.gateway.host,
        config.gateway.port,
        tracer_for(config, "kumo.gateway"),
    )
    await server.start()
    freeze_startup_heap()
    stop = stop_signal()
    print(
        f"kumo-gateway listening on {server.url} (API {server.settings.api_endpoint})", flush=True
    )
    try:
        await stop.wait()
    finally:
        await server.stop()


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None)
def main(config_path: str | None) -> None:
    """Runs the REST gateway (OpenStack and native REST) in front of a Kumo API."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(load_config(config_path)))
