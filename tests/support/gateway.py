"""The REST gateway on port 0 in a background thread, in front of a test API server, and
the real OpenStack clients pointed at it (a clouds.yaml per test user)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kumo.gateway.app import Settings
from kumo.gateway.server import GatewayServer

OPENSTACK = str(Path(sys.executable).with_name("openstack"))


class GatewayThread:
    """`GatewayServer` on its own event loop; `url` is its base URL."""

    def __init__(self, api_address: str, **settings: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.server: GatewayServer = self._call(self._start(Settings(api_address, **settings)))
        self.url = self.server.url

    async def _start(self, settings: Settings) -> GatewayServer:
        server = GatewayServer(settings)
        await server.start()
        return server

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def stop(self) -> None:
        """Stops the gateway and its loop. Idempotent."""
        if self.loop.is_running():
            self._call(self.server.stop())
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)


class Clouds:
    """A clouds.yaml with one named cloud per signed-in user, for `openstack` and the SDK."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.dir = Path(tempfile.mkdtemp(prefix="kumo-clouds-"))
        self.path = self.dir / "clouds.yaml"
        self.clouds: dict[str, Any] = {}

    def add(self, name: str, user: str, password: str, project: str, **settings: Any) -> str:
        """Adds a cloud entry, with more of clouds.yaml's `settings` if given (such as
        `networks`); returns its name."""
        self.clouds[name] = {
            **settings,
            "auth": {
                "auth_url": f"{self.url}/v3",
                "username": user,
                "password": password,
                "project_name": project,
                "user_domain_name": "Default",
                "project_domain_name": "Default",
            },
            "region_name": "",
            "identity_api_version": 3,
        }
        self.path.write_text(json.dumps({"clouds": self.clouds}))  # JSON is YAML
        return name

    def env(self) -> dict[str, str]:
        """An environment for subprocesses that finds only this clouds.yaml."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env["OS_CLIENT_CONFIG_FILE"] = str(self.path)
        env["HOME"] = str(self.dir)
        return env

    def run(self, cloud: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Runs `openstack --os-cloud <cloud> <args>`."""
        result = subprocess.run(
            [OPENSTACK, "--os-cloud", cloud, *args],
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"openstack {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
            )
        return result

    def connect(self, cloud: str) -> Any:
        """An openstacksdk connection as the cloud's user."""
        import openstack.config  # here: conftest imports this module, most tests need no SDK
        import openstack.connection

        loader = openstack.config.OpenStackConfig(config_files=[str(self.path)])
        return openstack.connection.Connection(config=loader.get_one(cloud))

    def json(self, cloud: str, *args: str) -> Any:
        """Runs `openstack ... -f json` and parses its output."""
        return json.loads(self.run(cloud, *args, "-f", "json").stdout)


@pytest.fixture(scope="session")
def gateway(api: Any) -> Iterator[GatewayThread]:
    """The REST gateway in front of the session's API server (each backend)."""
    server = GatewayThread(api.address)
    try:
        yield server
    finally:
        server.stop()
