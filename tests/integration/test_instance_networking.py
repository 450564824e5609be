"""Real guests on OVN: CreateInstance with network interfaces → ports (IPAM) → the network
reconciler writes them to OVN → the host's kumo-agent makes taps in the chassis namespace,
binds them on br-int (iface-id = port uid) and spawns QEMU guests (libvirt, TCG) on them →
each guest's udhcpc gets the address Kumo allocated from OVN's DHCP and prints it on its
console → one guest pings the other and reads its TCP greeting (its user data script; TCP
proves the NICs' host checksum offload is off) → ports go ACTIVE when OVN says they are up →
a namespace on the same network pings both guests and connects to them → stop unbinds a
guest's tap and start binds it again → an interface on a second network hot-plugged into a
running guest leases its address and answers there, and detached it is gone from guest,
chassis and API; a port of the user's own, attached, does the same and stays when
detached → deleting the instances unbinds the taps and deletes the ports.

The chassis (OVS netdev + ovn-controller), the OVN central and the API are the session's
(tests/support/ovn.py); libvirtd runs in the chassis namespace, as QEMU must open the taps
there.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.longrunning import operations_pb2

from kumo.agent.config import NetworkConfig
from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import compute_service_pb2_grpc as crpc
from kumo.compute.v1 import resources_pb2 as cpb
from kumo.drivers.compute.libvirt import LibvirtDriver
from kumo.drivers.compute.libvirtd import LibvirtDaemon, unavailable_reason
from kumo.network.v1 import network_service_pb2 as napi
from kumo.network.v1 import resources_pb2 as npb
from kumo.server.services.compute.interfaces import tap_name
from tests.integration.test_compute_lifecycle import console_until
from tests.integration.test_compute_resources import make_flavor
from tests.support.agent import AgentThread
from tests.support.cloud import ADMIN_PASSWORD, Stubs, make_tenant, sign_in, unique
from tests.support.images import upload_image
from tests.support.network import make_network, make_port, net
from tests.support.ovn import Chassis, reconcile
from tests.support.server import ServerThread
from tests.support.topology import make_site

pytestmark = pytest.mark.slow


@pytest.fixture
def chassis_libvirtd(ovn_chassis: Chassis, tmp_path: Path) -> Iterator[LibvirtDaemon]:
    """A libvirtd in the chassis namespace (where the taps are)."""
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    daemon = LibvirtDaemon(tmp_path / "libvirt", netns=ovn_chassis.netns)
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


def _wait(stubs: Stubs, operation: operations_pb2.Operation) -> cpb.Instance:
    done = stubs.operations.WaitOperation(
        operations_pb2.WaitOperationRequest(name=operation.name, timeout={"seconds": 180})
    )
    assert done.done and not done.HasField("error"), done
    instance = cpb.Instance()
    done.response.Unpack(instance)
    return instance


def test_guests_get_their_addresses_from_ovn_and_answer_on_their_network(
    ovn_api: ServerThread,
    ovn_chassis: Chassis,
    chassis_libvirtd: LibvirtDaemon,
    guest_image: Path,
    tmp_path: Path,
) -> None:
    channel = grpc.insecure_channel(ovn_api.address)
    admin = Stubs(channel, sign_in(channel, "admin", ADMIN_PASSWORD, "admin"))
    site = make_site(admin)
    tenant = make_tenant(channel, admin)
    member = tenant.stubs["member"]
    driver = LibvirtDriver(uri=chassis_libvirtd.uri, instances_dir=tmp_path / "instances")
    agent = AgentThread(
        ovn_api.address,
        admin.token or "",
        unique("net"),
        site.rack,
        driver,
        network=NetworkConfig(
            ovs_db_remote=ovn_chassis.ovs.db_remote,
            netns=ovn_chassis.netns,
            up_timeout_seconds=5,
        ),
    )
    try:
        service = crpc.ComputeServiceStub(member.channel)
        network, _ = make_network(member, tenant.project, "10.80.0.0/24")
        image = upload_image(member, tenant.name, guest_image.read_bytes(), min_ram_mib=128)
        flavor = make_flavor(admin, 1, 128, 1)
        # guest-0 asks for a fixed address; guest-1 gets one from IPAM and, from its user
        # data, pings guest-0 and reads guest-0's TCP greeting (scripts/build-image).
        fixed = "10.80.0.20"
        talker = (
            "#!/bin/sh\n"
            f"for i in $(seq 90); do ping -c 1 -W 1 {fixed} >/dev/null 2>&1 && break;"
            " sleep 1; done\n"
            f"ping -c 2 -W 1 {fixed} >/dev/null 2>&1 && echo 'ping {fixed} ok'\n"
            f'for i in $(seq 30); do r=$(nc -w 2 {fixed} 7000 </dev/null) && [ -n "$r" ] && break;'
            " sleep 1; done\n"
            f'echo "tcp {fixed}: $r"\n'
        )
        started = time.monotonic()
        operations = [
            service.CreateInstance(
                capi.CreateInstanceRequest(
                    parent=f"{tenant.name}/zones/{site.zone}",
                    instance_id=f"guest-{index}",
                    instance=cpb.Instance(
                        flavor=flavor,
                        image=image,
                        network_interfaces=[
                            cpb.NetworkInterface(network=network.name, ip_address=address)
                        ],
                        user_data=user_data.encode(),
                    ),
                )
            )
            for index, (address, user_data) in enumerate([(fixed, ""), ("", talker)])
        ]
        reconcile(ovn_api)  # the ports reach OVN before the guests ask for leases
        instances = [_wait(member, op) for op in operations]
        print(f"2 instances RUNNING: {time.monotonic() - started:.1f} s")
        instances = [service.GetInstance(capi.GetInstanceRequest(name=i.name)) for i in instances]
        addresses = []
        for instance in instances:
            (nic,) = instance.network_interfaces
            (address,) = nic.ip_addresses
            addresses.append(address)
            console = console_until(service, instance.name, f"ip eth0={address}/24", timeout=120)
            assert f"ip eth0={address}/24" in console.contents, console.contents[-2000:]
        print(f"both guests leased Kumo's addresses: {time.monotonic() - started:.1f} s")
        assert addresses[0] == fixed
        console = console_until(service, instances[1].name, f"tcp {fixed}:", timeout=120)
        assert f"ping {fixed} ok" in console.contents, console.contents[-2000:]
        assert f"tcp {fixed}: hello from guest-0" in console.contents, console.contents[-2000:]
        print(
            f"guest-1 pinged guest-0 and read its TCP greeting: {time.monotonic() - started:.1f} s"
        )

        # OVN reports the ports up on this chassis: ACTIVE after a pass.
        reconcile(ovn_api)
        ports = [
            net(member).GetPort(napi.GetPortRequest(name=i.network_interfaces[0].port))
            for i in instances
        ]
        assert [p.status for p in ports] == [npb.Port.STATUS_ACTIVE] * 2
        assert {p.host for p in ports} == {instances[0].host}
        for port in ports:
            assert _installed(ovn_chassis, tap_name(port.uid))

        # A namespace on the same network reaches both guests.
        probe_port = make_port(member, tenant.project, network.name)
        reconcile(ovn_api)
        probe = ovn_chassis.plug(probe_port.uid, probe_port.mac_address)
        probe.set_address(f"{probe_port.fixed_ips[0].ip_address}/24")
        for index, address in enumerate(addresses):
            assert probe.ping(address, count=2), f"{address} does not answer"
            assert probe.tcp(address, 7000) == f"hello from guest-{index}"
        print(f"pinged both guests: {time.monotonic() - started:.1f} s")

        # Stopping a guest unbinds its tap; starting binds it again.
        first = instances[0]
        _wait_done(member, service.StopInstance(capi.StopInstanceRequest(name=first.name)))
        assert _bound(ovn_chassis, first.uid) == []
        _wait_done(member, service.StartInstance(capi.StartInstanceRequest(name=first.name)))
        assert _bound(ovn_chassis, first.uid) == [tap_name(ports[0].uid)]
        console_until(service, first.name, f"ip eth0={addresses[0]}/24", count=2, timeout=120)
        assert probe.ping(addresses[0], count=2)

        # An interface on a second network, hot-plugged into the running guest: it leases
        # its address from OVN and answers there; detached, the guest loses it, its tap is
        # unbound and its port deleted.
        other, _ = make_network(member, tenant.project, "10.81.0.0/24")
        attaching = service.AttachNetworkInterface(
            capi.AttachNetworkInterfaceRequest(
                name=first.name,
                network_interface=cpb.NetworkInterface(network=other.name, ip_address="10.81.0.7"),
            )
        )
        reconcile(ovn_api)  # the new port reaches OVN while the agent plugs it
        _wait_done(member, attaching)
        grown = service.GetInstance(capi.GetInstanceRequest(name=first.name))
        added = grown.network_interfaces[1]
        assert (added.network, list(added.ip_addresses)) == (other.name, ["10.81.0.7"])
        added_port = net(member).GetPort(napi.GetPortRequest(name=added.port))
        assert _bound(ovn_chassis, first.uid) == sorted(
            [tap_name(ports[0].uid), tap_name(added_port.uid)]
        )
        console_until(service, first.name, "ip eth1=10.81.0.7/24", timeout=120)
        other_probe_port = make_port(member, tenant.project, other.name)
        reconcile(ovn_api)
        other_probe = ovn_chassis.plug(other_probe_port.uid, other_probe_port.mac_address)
        other_probe.set_address(f"{other_probe_port.fixed_ips[0].ip_address}/24")
        assert other_probe.ping("10.81.0.7", count=2), "the hot-plugged NIC does not answer"
        assert other_probe.tcp("10.81.0.7", 7000) == "hello from guest-0"
        print(f"hot-plugged a NIC and reached it: {time.monotonic() - started:.1f} s")
        _wait_done(
            member,
            service.DetachNetworkInterface(
                capi.DetachNetworkInterfaceRequest(name=first.name, port=added.port)
            ),
        )
        console_until(service, first.name, "nic eth1 gone", timeout=60)
        assert _bound(ovn_chassis, first.uid) == [tap_name(ports[0].uid)]
        assert [
            n.port
            for n in service.GetInstance(
                capi.GetInstanceRequest(name=first.name)
            ).network_interfaces
        ] == [ports[0].name]
        assert not other_probe.ping("10.81.0.7", count=1)
        assert probe.ping(addresses[0], count=2)  # the first NIC is untouched

        # A port of the user's own, attached: the guest leases the port's address on its
        # own device; detached, the port stays (free), as the user made it.
        own = make_port(
            member,
            tenant.project,
            other.name,
            fixed_ips=[npb.FixedIp(ip_address="10.81.0.8")],
        )
        _wait_done(
            member,
            service.AttachNetworkInterface(
                capi.AttachNetworkInterfaceRequest(
                    name=first.name, network_interface=cpb.NetworkInterface(port=own.name)
                )
            ),
        )
        reconcile(ovn_api)
        assert _bound(ovn_chassis, first.uid) == sorted(
            [tap_name(ports[0].uid), tap_name(own.uid, first.uid)]
        )
        console_until(service, first.name, "ip eth1=10.81.0.8/24", timeout=120)
        assert other_probe.ping("10.81.0.8", count=2), "the adopted port does not answer"
        _wait_done(
            member,
            service.DetachNetworkInterface(
                capi.DetachNetworkInterfaceRequest(name=first.name, port=own.name)
            ),
        )
        console_until(service, first.name, "nic eth1 gone", count=2, timeout=60)
        kept = net(member).GetPort(napi.GetPortRequest(name=own.name))
        assert (kept.device_id, kept.fixed_ips[0].ip_address) == ("", "10.81.0.8")
        assert _bound(ovn_chassis, first.uid) == [tap_name(ports[0].uid)]
        print(f"adopted a port and gave it back: {time.monotonic() - started:.1f} s")

        for instance in instances:
            _wait_done(
                member, service.DeleteInstance(capi.DeleteInstanceRequest(name=instance.name))
            )
            assert _bound(ovn_chassis, instance.uid) == []
        left = net(member).ListPorts(napi.ListPortsRequest(parent=tenant.name)).ports
        assert sorted(p.name for p in left) == sorted(
            [probe_port.name, other_probe_port.name, own.name]
        )
        reconcile(ovn_api)
        interfaces = ovn_chassis.ovs.vsctl("--bare", "--columns=name", "list", "Interface")
        assert not any(tap_name(p.uid) in interfaces for p in ports)
    finally:
        agent.stop()
        driver.close()
        channel.close()


def _bound(chassis: Chassis, vm_uuid: str) -> list[str]:
    """The devices bound for the guest, read from the chassis' ovsdb-server itself: the
    test binder's replica of the database takes the agent's writes a moment later."""
    found = chassis.ovs.vsctl(
        "--bare", "--columns=name", "find", "Interface", f"external_ids:vm-uuid={vm_uuid}"
    )
    return sorted(found.split())


def _installed(chassis: Chassis, device: str) -> bool:
    """Whether ovn-controller has installed the port on `device` (from ovsdb-server)."""
    found = chassis.ovs.vsctl(
        "--bare",
        "--columns=name",
        "find",
        "Interface",
        f"name={device}",
        "external_ids:ovn-installed=true",
    )
    return found.split() == [device]


def _wait_done(stubs: Stubs, operation: operations_pb2.Operation) -> None:
    done = stubs.operations.WaitOperation(
        operations_pb2.WaitOperationRequest(name=operation.name, timeout={"seconds": 120})
    )
    assert done.done and not done.HasField("error"), done
