"""`kumo up`: start the all-in-one control plane on this machine.

The server code is imported only when the command runs, so the rest of the CLI
works where only the client is installed.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.command("up")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where state lives (default: $KUMO_DATA_DIR, else ~/.local/share/kumo).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Listen address.")
@click.option("--port", type=int, default=7900, show_default=True, help="gRPC port (0: any).")
@click.option(
    "--gateway-port",
    type=int,
    default=None,
    help="REST gateway (OpenStack, native REST) port (default 7980; 0: any).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="TOML configuration file (default: $KUMO_CONFIG); KUMO_* variables override it.",
)
@click.option(
    "--no-compute",
    is_flag=True,
    help="Do not run a libvirtd and a host agent for this machine (no guests).",
)
def up(
    data_dir: Path | None,
    host: str,
    port: int,
    gateway_port: int | None,
    config_file: Path | None,
    no_compute: bool,
) -> None:
    """Start the all-in-one Kumo cloud (SQLite; guests on this machine) until Ctrl-C."""
    from kumo.server.allinone import main
    from kumo.server.config import load_config

    overrides: dict[str, object] = {"listen": {"host": host, "port": port}}
    gateway: dict[str, object] = {"host": host}
    if gateway_port is not None:
        gateway["port"] = gateway_port
    overrides["gateway"] = gateway
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    main(load_config(config_file, **overrides), compute=not no_compute)


def register(cli: click.Group) -> None:
    """Adds `kumo up` to the root group."""
    cli.add_command(up)
