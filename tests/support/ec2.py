"""The EC2 dialect served by uvicorn on port 0 in a background thread, and real clients
(boto3, the aws CLI) signed with a Kumo access key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import uvicorn

from kumo.gateway.aws.app import create_app
from kumo.identity.v1 import identity_service_pb2 as iapi
from kumo.identity.v1 import resources_pb2 as ipb
from tests.support.cloud import Stubs, Tenant

REGION = "kumo-1"


class GatewayThread:
    """`create_app(api_endpoint)` under uvicorn on 127.0.0.1, port 0; `stop()` stops it."""

    def __init__(self, api_endpoint: str) -> None:
        config = uvicorn.Config(
            create_app(api_endpoint), host="127.0.0.1", port=0, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the EC2 gateway did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        """Stops serving. Idempotent."""
        self.server.should_exit = True
        self._thread.join(timeout=10)


@dataclass(frozen=True)
class AccessKey:
    """A Kumo access key pair."""

    key_id: str
    secret: str


def access_key(tenant: Tenant, role: str = "member", creator: Stubs | None = None) -> AccessKey:
    """A new access key of the tenant's `role` user in the tenant's project, created by
    that user or by `creator` (a cloud administrator: readers may not create keys)."""
    stubs: Stubs = creator or tenant.stubs[role]
    key = stubs.identity.CreateAccessKey(
        iapi.CreateAccessKeyRequest(
            parent=f"users/{tenant.users[role]}",
            access_key=ipb.AccessKey(project=tenant.name),
        )
    )
    return AccessKey(key.access_key_id, key.secret_access_key)


def ec2_client(url: str, key: AccessKey, **config: Any) -> Any:
    """A boto3 EC2 client for the gateway at `url` (no retries: errors show at once)."""
    from botocore.config import Config

    return boto3.client(
        "ec2",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=key.key_id,
        aws_secret_access_key=key.secret,
        config=Config(retries={"max_attempts": 1}, **config),
    )


def aws_cli(url: str, key: AccessKey, *args: str) -> subprocess.CompletedProcess[str]:
    """Runs `aws ec2 --endpoint-url URL ARGS... --output json` with the key."""
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": key.key_id,
        "AWS_SECRET_ACCESS_KEY": key.secret,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_MAX_ATTEMPTS": "1",
    }
    aws = Path(sys.executable).with_name("aws")
    return subprocess.run(
        [str(aws), "ec2", "--endpoint-url", url, *args, "--output", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def cli_json(result: subprocess.CompletedProcess[str]) -> Any:
    """The JSON output of a successful CLI run (AssertionError with stderr otherwise)."""
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else {}
