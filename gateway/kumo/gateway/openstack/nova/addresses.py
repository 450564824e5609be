"""A server's addresses by network (Nova's `addresses` and `/servers/{id}/ips`), and the
`networks` of a server create as Kumo network interfaces.

An instance's interfaces carry their network's resource name, the port's addresses and the
floating IPs mapped to them; Nova keys addresses by the network's label, which is the Kumo
network's display name (its id when it has none), and lists a port's floating IPs after
its fixed addresses, under the same label. A network the caller cannot read is labelled by
its id.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterable
from typing import Any

import grpc

from kumo.compute.v1 import resources_pb2 as cpb
from kumo.gateway.dialect import invalid
from kumo.gateway.errors import RpcFailure
from kumo.gateway.grpc_backend import Backend
from kumo.gateway.openstack.common import Scope, last_segment
from kumo.gateway.openstack.neutron.index import Index
from kumo.network.v1 import network_service_pb2 as napi
from kumo.network.v1 import network_service_pb2_grpc as nrpc


class Labels:
    """Network labels by network name, read once per request with the caller's token."""

    def __init__(self, backend: Backend, token: str) -> None:
        self.backend = backend
        self.token = token
        self._labels: dict[str, str] = {}

    async def _read(self, network: str) -> None:
        try:
            found = await self.backend.call(
                self.backend.stub(nrpc.NetworkServiceStub).GetNetwork,
                napi.GetNetworkRequest(name=network),
                self.token,
            )
            label = str(found.display_name) or last_segment(network)
        except RpcFailure:
            label = last_segment(network)
        self._labels[network] = label

    async def read(self, instances: Iterable[cpb.Instance]) -> None:
        """Reads the labels of the instances' networks not read yet (all at once)."""
        wanted = {i.network for s in instances for i in s.network_interfaces}
        await asyncio.gather(*(self._read(n) for n in wanted - self._labels.keys()))

    def addresses(self, instance: cpb.Instance, detail: bool) -> dict[str, Any]:
        """{label: [address, ...]} in interface order (the labels `read` first); `detail`
        adds the type and MAC as in a server's `addresses` (the `/ips` routes show version
        and address only)."""
        found: dict[str, list[dict[str, Any]]] = {}
        for interface in instance.network_interfaces:
            entries = found.setdefault(self._labels[interface.network], [])
            for kind, listed in (
                ("fixed", interface.ip_addresses),
                ("floating", interface.floating_ip_addresses),
            ):
                for address in listed:
                    entry: dict[str, Any] = {"version": _version(address), "addr": address}
                    if detail:
                        entry["OS-EXT-IPS:type"] = kind
                        entry["OS-EXT-IPS-MAC:mac_addr"] = interface.mac_address
                    entries.append(entry)
        return found


def _version(address: str) -> int:
    return ipaddress.ip_address(address).version


async def addresses(instance: cpb.Instance, labels: Labels, detail: bool) -> dict[str, Any]:
    """One instance's {label: [address, ...]} (see `Labels.addresses`)."""
    await labels.read([instance])
    return labels.addresses(instance, detail)


async def the_only_network(index: Index, scope: Scope) -> list[cpb.NetworkInterface]:
    """`auto`, as Nova: an interface on the one network the project may use (its own or a
    shared one, not external); 409 if there are several. With none, no interface: Kumo has
    no automatically allocated topology (Nova's 400 if Neutron has none either)."""
    usable = [
        n
        for n in await index.networks()
        if not n.external and (n.shared or n.name.startswith(f"{scope.parent}/"))
    ]
    if len(usable) > 1:
        raise RpcFailure.of(
            grpc.StatusCode.FAILED_PRECONDITION,
            "Multiple possible networks found, use a Network ID to be more specific.",
        )
    return [cpb.NetworkInterface(network=n.name) for n in usable]


async def interfaces(backend: Backend, scope: Scope, networks: Any) -> list[cpb.NetworkInterface]:
    """The interfaces asked for by a create's `networks`: `none` gives none; `auto` (and no
    `networks`, as before microversion 2.37) one on the only network the project may use
    (`the_only_network`); each `{"uuid", "fixed_ip"}` one on that network, each `{"port"}`
    one on that existing port. 400 for anything else, or a network or port the caller
    cannot use."""
    if networks == "none":
        return []
    index = Index(backend, scope)
    if networks is None or networks == "auto":
        return await the_only_network(index, scope)
    if not isinstance(networks, list):
        raise invalid("networks must be 'auto', 'none' or a list")
    made: list[cpb.NetworkInterface] = []
    for entry in networks:
        if not isinstance(entry, dict):
            raise invalid("each networks entry must be an object")
        if port := entry.get("port"):
            if not isinstance(port, str):
                raise invalid("a networks entry's port must be a port id")
            made.append(await interface_with_port(index, port))
            continue
        uid = entry.get("uuid")
        if not isinstance(uid, str) or not uid:
            raise invalid("each networks entry needs a network 'uuid'")
        made.append(await interface_on(index, uid, entry.get("fixed_ip")))
    return made


async def interface_with_port(index: Index, uid: str) -> cpb.NetworkInterface:
    """An interface on the existing port with Neutron id `uid`; 400 for a port the caller
    cannot see (Nova's PortNotFound is 400 too). The port in use: the API's 409."""
    port = next((p for p in await index.ports() if p.uid == uid), None)
    if port is None:
        raise invalid(f"Port id {uid} could not be found.")
    return cpb.NetworkInterface(port=port.name)


async def interface_on(index: Index, uid: str, fixed: Any) -> cpb.NetworkInterface:
    """An interface on the network with Neutron id `uid`, with the address `fixed` unless
    it is None. 400 for a network the caller cannot see (or an external one) and for a
    malformed address."""
    network = next((n for n in await index.networks() if n.uid == uid), None)
    if network is None or network.external:
        raise invalid(f"Network {uid} could not be found.")
    interface = cpb.NetworkInterface(network=network.name)
    if fixed is not None:
        try:
            interface.ip_address = str(ipaddress.ip_address(str(fixed)))
        except ValueError:
            raise invalid(f"Invalid fixed IP address {fixed!r}") from None
    return interface
