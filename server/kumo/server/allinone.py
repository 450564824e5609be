"""`kumo up`: the all-in-one control plane in one process, on the embedded defaults.

Today that is the API server with its controllers on a SQLite file under the
data dir; later issues add the host agent and the REST gateway here. Prints the
endpoints and where the administrator's credentials are, and stops cleanly on
Ctrl-C (SIGINT) or SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from kumo.server.app import KumoServer
from kumo.server.bootstrap import password_file
from kumo.server.config import Config
from kumo.server.main import serve


def banner(config: Config, server: KumoServer) -> str:
    """What `kumo up` prints once everything serves."""
    endpoint = f"{config.listen.host}:{server.port}"
    generated = server.admin_password
    lines = [
        "Kumo is up (all-in-one).",
        f"  gRPC API     {endpoint}   (identity, topology, operations; health + reflection)",
        f"  data         {config.data_dir}  (database {config.database_url})",
    ]
    secret = password_file(config)
    if generated is not None:
        lines.append(
            f"  admin        user 'admin', password {generated} "
            f"(shown once; also written to {secret})"
        )
    elif config.bootstrap.admin_password:
        lines.append("  admin        user 'admin', password from your configuration")
    elif secret.exists():
        lines.append(f"  admin        user 'admin', password in {secret}")
    lines += [
        f"  sign in      kumo login --endpoint {endpoint} --user admin --password-file {secret}",
        "Press Ctrl-C to stop.",
    ]
    return "\n".join(lines)


def main(config: Config) -> None:
    """Blocking entry point used by the CLI."""
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(config, announce=banner))
