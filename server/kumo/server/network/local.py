"""What `kumo up` does for networking: a private OVN central under the data dir
(unless a backend is configured), and the default external network.

With `[network] driver = "none"` (the default) and `local_ovn = true`, `kumo up`
starts OVN's NB/SB databases and northd under `<data_dir>/ovn` and drives them;
with `driver = "ovn"` and `ovn_nb_remote` set, it connects to that OVN instead.
"""

from __future__ import annotations

import logging
import shutil

import grpc

from kumo.drivers.network.ovn_local import OvnCentral
from kumo.network.v1 import network_service_pb2 as napi
from kumo.network.v1 import network_service_pb2_grpc as nrpc
from kumo.network.v1 import resources_pb2 as npb
from kumo.server.config import Config

log = logging.getLogger(__name__)

PUBLIC_NETWORK = "projects/admin/networks/public"
PUBLIC_CIDR = "172.24.4.0/24"
PUBLIC_POOL = ("172.24.4.10", "172.24.4.250")


def start_local_ovn(config: Config) -> OvnCentral | None:
    """Starts a private OVN central and points the configuration at it, if no backend is
    configured and OVN is installed; returns it (the caller stops it) or None."""
    if config.network.driver != "none" or not config.network.local_ovn:
        return None
    if not shutil.which("ovn-northd") or not shutil.which("ovsdb-server"):
        log.warning("OVN is not installed: networks are stored but not carried")
        return None
    central = OvnCentral(config.data_dir / "ovn")
    central.start()
    config.network.driver = "ovn"
    config.network.ovn_nb_remote = central.nb_remote
    return central


def describe(config: Config) -> str:
    """The banner line for networking."""
    if config.network.driver == "none":
        return "off (no OVN): networks are stored, not carried"
    if config.network.driver == "fake":
        return "fake driver (nothing carried)"
    return f"OVN northbound {config.network.ovn_nb_remote}; external network {PUBLIC_NETWORK}"


async def seed_external_network(
    channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...]
) -> None:
    """Creates the default external network `public` (FLAT on physical network
    `external`, PUBLIC_CIDR) if it is missing. Idempotent."""
    stub = nrpc.NetworkServiceStub(channel)
    try:
        await stub.GetNetwork(napi.GetNetworkRequest(name=PUBLIC_NETWORK), metadata=metadata)
        return
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
    network = await stub.CreateNetwork(
        napi.CreateNetworkRequest(
            parent="projects/admin",
            network_id="public",
            network=npb.Network(
                type=npb.Network.TYPE_FLAT,
                physical_network="external",
                external=True,
                description="default external network (router gateways, floating IPs)",
            ),
        ),
        metadata=metadata,
    )
    await stub.CreateSubnet(
        napi.CreateSubnetRequest(
            parent=network.name,
            subnet_id="public",
            subnet=npb.Subnet(
                cidr=PUBLIC_CIDR,
                dhcp_enabled=False,
                allocation_pools=[npb.AllocationPool(start=PUBLIC_POOL[0], end=PUBLIC_POOL[1])],
            ),
        ),
        metadata=metadata,
    )
