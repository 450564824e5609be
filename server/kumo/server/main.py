"""`kumo-api`: runs the API server until SIGINT or SIGTERM, then stops gracefully."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable

from kumo.server.app import KumoServer, create_server
from kumo.server.bootstrap import password_file
from kumo.server.config import Config, load_config
from kumo.server.heap import freeze_startup_heap


def api_banner(config: Config, server: KumoServer) -> str:
    """What `kumo-api` prints once it serves."""
    lines = [
        f"kumo-api: serving gRPC on {config.listen.host}:{server.port} "
        f"(database {config.database_url})"
    ]
    if server.admin_password is not None:
        lines.append(
            f"kumo-api: created administrator {config.bootstrap.admin_user!r} in project "
            f"{config.bootstrap.project!r} with password {server.admin_password} "
            f"(also in {password_file(config)}; shown once)"
        )
    return "\n".join(lines)


def stop_signal() -> asyncio.Event:
    """An event set at the first SIGINT or SIGTERM from now on. Call it before announcing
    that the process serves, so that a signal sent on seeing the announcement is never
    taken by the default handler."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def serve(config: Config, announce: Callable[[Config, KumoServer], str] = api_banner) -> None:
    """Runs one API server until SIGINT or SIGTERM, printing `announce(...)` once it serves."""
    server, _ = create_server(config)
    await server.start()
    freeze_startup_heap()
    stop = stop_signal()
    print(announce(config, server), flush=True)
    await stop.wait()
    print("stopping...", flush=True)
    await server.stop()
    print("stopped.", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `kumo-api` console script."""
    parser = argparse.ArgumentParser(prog="kumo-api", description="Kumo API server")
    parser.add_argument("--config", help="TOML configuration file (default: $KUMO_CONFIG)")
    parser.add_argument("--host", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="listen port (default 7900; 0 picks one)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    overrides = {}
    if args.host or args.port is not None:
        listen = {
            "host": args.host or "127.0.0.1",
            "port": 7900 if args.port is None else args.port,
        }
        overrides["listen"] = listen
    config = load_config(args.config, **overrides)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
