"""Helpers for network API tests: a stub per caller and one-call resource builders."""

from __future__ import annotations

from typing import Any

from kumo.network.v1 import network_service_pb2 as napi
from kumo.network.v1 import network_service_pb2_grpc as nrpc
from kumo.network.v1 import resources_pb2 as npb
from tests.support.cloud import Stubs, unique


def net(stubs: Stubs) -> nrpc.NetworkServiceStub:
    """The NetworkService stub on the caller's channel."""
    return nrpc.NetworkServiceStub(stubs.channel)


def make_network(
    stubs: Stubs, project: str, cidr: str = "10.0.0.0/24", **fields: Any
) -> tuple[npb.Network, npb.Subnet]:
    """A network of `project` with one subnet `cidr`."""
    stub = net(stubs)
    network = stub.CreateNetwork(
        napi.CreateNetworkRequest(
            parent=f"projects/{project}", network_id=unique("net"), network=npb.Network(**fields)
        )
    )
    subnet = stub.CreateSubnet(
        napi.CreateSubnetRequest(
            parent=network.name, subnet_id=unique("sub"), subnet=npb.Subnet(cidr=cidr)
        )
    )
    return network, subnet


def make_port(stubs: Stubs, project: str, network: str, **fields: Any) -> npb.Port:
    """A port of `project` on `network`."""
    return net(stubs).CreatePort(
        napi.CreatePortRequest(
            parent=f"projects/{project}",
            port_id=unique("port"),
            port=npb.Port(network=network, **fields),
        )
    )


def make_external(admin: Stubs, cidr: str = "172.24.4.0/24") -> tuple[npb.Network, npb.Subnet]:
    """An external FLAT network of the admin project on physical network `external`."""
    return make_network(
        admin,
        "admin",
        cidr,
        type=npb.Network.TYPE_FLAT,
        physical_network="external",
        external=True,
    )
