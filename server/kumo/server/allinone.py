"""`kumo up`: the whole cloud in one process, on the embedded defaults.

The API server with its controllers on a SQLite file under the data dir; the
defaults of a new cloud (kumo.server.seed); and, where this machine can run
guests (root, libvirt and QEMU installed), a private libvirtd under the data dir
and a host agent for this machine, so that a new user can boot a real guest at
once. Prints the endpoints and where the credentials are, and stops every part
cleanly on Ctrl-C (SIGINT) or SIGTERM: guests are shut off, and started again
by the agent on the next `kumo up` (their desired state is kept).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
from contextlib import AsyncExitStack
from pathlib import Path

import grpc

from kumo.agent.config import (
    AgentConfig,
    CredentialsConfig,
    DriverConfig,
    NetworkConfig,
    VolumesConfig,
    default_host_id,
)
from kumo.agent.main import run_agent
from kumo.drivers.compute.libvirtd import LibvirtDaemon, unavailable_reason
from kumo.drivers.network.ovn_local import OvnCentral
from kumo.gateway.main import settings_from
from kumo.gateway.server import GatewayServer
from kumo.identity.v1 import identity_service_pb2 as iapi
from kumo.identity.v1 import identity_service_pb2_grpc as irpc
from kumo.identity.v1 import resources_pb2 as ipb
from kumo.server.app import KumoServer, create_server
from kumo.server.bootstrap import password_file
from kumo.server.config import Config
from kumo.server.heap import freeze_startup_heap
from kumo.server.main import stop_signal
from kumo.server.network import local as network_local
from kumo.server.network.local_chassis import start_local_chassis
from kumo.server.seed import RACK, ZONE, seed
from kumo.server.storage.defaults import seed_volume_types
from kumo.server.telemetry import tracer_for

log = logging.getLogger(__name__)
# The image scripts/build-image makes, where an editable install finds it.
DEFAULT_GUEST_IMAGE = Path(__file__).resolve().parents[3] / "build" / "images" / "kumo-tiny.qcow2"


def banner(
    config: Config, server: KumoServer, compute: str, image: str, gateway_url: str = ""
) -> str:
    """What `kumo up` prints once everything serves."""
    endpoint = f"{config.listen.host}:{server.port}"
    generated = server.admin_password
    lines = [
        "Kumo is up (all-in-one).",
        f"  gRPC API     {endpoint}   (identity, topology, images, compute, operations)",
    ]
    if gateway_url:
        lines.append(
            f"  REST         {gateway_url}   (OpenStack: auth_url {gateway_url}/v3; "
            f"native REST: {gateway_url}/v1, {gateway_url}/openapi.json)"
        )
        lines.append(f"  EC2          {gateway_url}/aws   (boto3/aws CLI --endpoint-url)")
    lines += [
        f"  data         {config.data_dir}  (database {config.database_url})",
        f"  compute      {compute}",
        f"  network      {network_local.describe(config)}",
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
    lines.append(
        f"  sign in      kumo login --endpoint {endpoint} --user admin --password-file {secret}"
    )
    if image:
        lines.append(
            f"  first guest  kumo instance create demo --zone {ZONE} --flavor tiny --image {image}"
        )
    lines.append("Press Ctrl-C to stop.")
    return "\n".join(lines)


async def _agent_key(
    channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...], path: Path
) -> CredentialsConfig:
    """The access key the local agent signs in with, created once and kept (mode 0600)."""
    if path.exists():
        saved = json.loads(path.read_text())
        return CredentialsConfig(access_key_id=saved["id"], secret_access_key=saved["secret"])
    key = await irpc.IdentityServiceStub(channel).CreateAccessKey(
        iapi.CreateAccessKeyRequest(
            parent="users/admin",
            access_key=ipb.AccessKey(
                project="projects/admin", description="kumo up: local host agent"
            ),
        ),
        metadata=metadata,
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"id": key.access_key_id, "secret": key.secret_access_key}, handle)
    return CredentialsConfig(
        access_key_id=key.access_key_id, secret_access_key=key.secret_access_key
    )


def _agent_volumes(config: Config) -> VolumesConfig:
    """The agent opens RBD volumes with the same Ceph cluster as the API (same machine)."""
    rbd = config.storage.rbd
    if rbd is None:
        return VolumesConfig()
    return VolumesConfig(rbd_conf=rbd.conf, rbd_user=rbd.user, rbd_keyring=rbd.keyring)


async def _start_compute(
    config: Config,
    endpoint: str,
    credentials: CredentialsConfig,
    stack: AsyncExitStack,
    ovn: OvnCentral | None = None,
) -> str:
    """Starts this machine's chassis (with `ovn`, kumo up's OVN central), the private
    libvirtd (in the chassis' namespace) and the agent; returns a line for the banner."""
    if (reason := unavailable_reason()) is not None:
        return f"off: {reason}"
    host = re.sub(r"[^a-z0-9-]+", "-", default_host_id()).strip("-")[:63] or "local"
    if not host[0].isalpha():
        host = f"host-{host}"[:63]
    chassis = await asyncio.to_thread(start_local_chassis, config.data_dir, ovn, host)
    network = NetworkConfig()
    if chassis is not None:
        stack.push_async_callback(asyncio.to_thread, chassis.stop)
        network = NetworkConfig(ovs_db_remote=chassis.db_remote, netns=chassis.netns)
    daemon = LibvirtDaemon(
        config.data_dir / "libvirt", netns=chassis.netns if chassis is not None else None
    )
    await asyncio.to_thread(daemon.start)
    stack.push_async_callback(asyncio.to_thread, daemon.stop)
    agent = await run_agent(
        AgentConfig(
            api_endpoint=endpoint,
            host=host,
            rack=f"racks/{RACK}",
            credentials=credentials,
            driver=DriverConfig(
                name="libvirt",
                options={"uri": daemon.uri, "instances_dir": str(config.data_dir / "instances")},
            ),
            state_dir=config.data_dir / "agent",
            volumes=_agent_volumes(config),
            network=network,
        )
    )
    stack.push_async_callback(agent.stop)
    await asyncio.wait_for(agent.registered.wait(), 120)
    chassis_line = f"; OVN chassis in netns {chassis.netns}" if chassis is not None else ""
    return f"host {host}: libvirt + QEMU, private libvirtd in {daemon.dir}{chassis_line}"


async def run(
    config: Config, compute: bool = True, guest_image: Path | None = DEFAULT_GUEST_IMAGE
) -> None:
    """Runs every part until SIGINT/SIGTERM, then stops them in reverse order."""
    ovn = await asyncio.to_thread(network_local.start_local_ovn, config)
    try:
        server, port = create_server(config)
    except BaseException:
        if ovn is not None:
            ovn.stop()
        raise
    await server.start()
    endpoint = f"127.0.0.1:{port}"
    try:
        async with AsyncExitStack() as stack:
            admin_token, _ = server.runtime.authenticator.codec.issue(
                config.bootstrap.admin_user, config.bootstrap.project
            )
            metadata = (("authorization", f"Bearer {admin_token}"),)
            channel = grpc.aio.insecure_channel(endpoint)
            stack.push_async_callback(channel.close)
            image = await seed(channel, metadata, guest_image)
            if config.network.driver != "none":
                await network_local.seed_external_network(channel, metadata)
            await seed_volume_types(channel, metadata, config)
            gateway = GatewayServer(
                settings_from(config, port),
                config.gateway.host,
                config.gateway.port,
                tracer_for(config, "kumo.gateway"),
            )
            await gateway.start()
            stack.push_async_callback(gateway.stop)
            status = "off (--no-compute)"
            if compute:
                credentials = await _agent_key(
                    channel, metadata, config.data_dir / "agent-credentials.json"
                )
                status = await _start_compute(config, endpoint, credentials, stack, ovn)
            freeze_startup_heap()
            stop = stop_signal()
            print(banner(config, server, status, image, gateway.url), flush=True)
            await stop.wait()
            print("Stopping Kumo...", flush=True)
    finally:
        await server.stop()
        if ovn is not None:
            await asyncio.to_thread(ovn.stop)
    print("Kumo stopped.", flush=True)


def main(config: Config, compute: bool = True) -> None:
    """Blocking entry point used by the CLI."""
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    guest_image = Path(os.environ.get("KUMO_GUEST_IMAGE", DEFAULT_GUEST_IMAGE))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(config, compute, guest_image))
