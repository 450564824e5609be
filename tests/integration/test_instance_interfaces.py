"""Instances' network interfaces through the API, with agents on fake drivers (both
databases): a port per interface made with the instance and deleted with it, the NICs in
the host's assignment and the driver's spec, and refusals that leave nothing behind."""

from __future__ import annotations

import uuid

import grpc
from google.longrunning import operations_pb2
from google.protobuf import field_mask_pb2
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import resources_pb2 as cpb
from kumo.identity.v1 import identity_service_pb2 as iapi
from kumo.network.v1 import network_service_pb2 as napi
from kumo.network.v1 import resources_pb2 as npb
from kumo.server.db.models import PortRow
from kumo.server.services.compute.interfaces import tap_name
from kumo.server.services.network.ports import INSTANCE_OWNER as OWNER
from tests.integration import test_compute_lifecycle as lifecycle
from tests.integration.test_compute_lifecycle import (
    Cell,
    compute,
    launch,
    wait,
)
from tests.support.cloud import Stubs, Tenant, rpc_error, set_quota, unique
from tests.support.network import make_external, make_network, make_port, net
from tests.support.server import ServerThread

cell = lifecycle.cell  # the fixture: two hosts with agents on fake drivers


def _ports(stubs: Stubs, project: str, instance: str) -> list[npb.Port]:
    return list(
        net(stubs)
        .ListPorts(
            napi.ListPortsRequest(
                parent=project, filter=f'device_owner = "{OWNER}" AND device_id = "{instance}"'
            )
        )
        .ports
    )


def _all_ports(stubs: Stubs, project: str) -> list[npb.Port]:
    return list(net(stubs).ListPorts(napi.ListPortsRequest(parent=project)).ports)


def test_ports_follow_the_instance(cell: Cell, tenant: Tenant) -> None:
    member = tenant.stubs["member"]
    network, subnet = make_network(member, tenant.project, "10.70.0.0/24")
    second, _ = make_network(member, tenant.project, "10.71.0.0/24")
    instance = launch(
        member,
        cell,
        "with-nics",
        network_interfaces=[
            cpb.NetworkInterface(network=network.name, ip_address="10.70.0.50"),
            cpb.NetworkInterface(network=second.name),
        ],
    )
    got = compute(member).GetInstance(capi.GetInstanceRequest(name=instance.name))
    nics = list(got.network_interfaces)
    assert [n.network for n in nics] == [network.name, second.name]
    assert nics[0].ip_addresses == ["10.70.0.50"]
    assert len(nics[1].ip_addresses) == 1 and nics[1].ip_addresses[0].startswith("10.71.0.")
    ports = {p.name: p for p in _ports(member, tenant.name, instance.name)}
    assert set(ports) == {n.port for n in nics}
    for nic in nics:
        port = ports[nic.port]
        assert port.mac_address == nic.mac_address
        assert port.host == got.host  # placed with the instance
        assert port.device_uid == got.uid
        assert port.security_groups == [f"{tenant.name}/securityGroups/default"]
    listed = compute(member).ListInstances(capi.ListInstancesRequest(parent=cell.parent))
    mine = [i for i in listed.instances if i.name == got.name]
    assert [i.network_interfaces for i in mine] == [got.network_interfaces]  # as GetInstance's

    # The host's agent handed the NICs, in order, to its driver.
    host = got.host.removeprefix("hosts/")
    spec = cell.driver(host).spec_of(got.uid)
    assert [(n.tap, n.mac_address) for n in spec.nics] == [
        (tap_name(ports[n.port].uid), n.mac_address) for n in nics
    ]

    # An instance's ports go with it: no delete, no re-owning, no made-up interfaces.
    first = ports[nics[0].port]
    code, status = rpc_error(
        lambda: net(member).DeletePort(napi.DeletePortRequest(name=first.name))
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION and status is not None
    code, _ = rpc_error(
        lambda: net(member).UpdatePort(
            napi.UpdatePortRequest(
                port=npb.Port(name=first.name, device_id=""),
                update_mask=field_mask_pb2.FieldMask(paths=["device_id"]),
            )
        )
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    code, _ = rpc_error(
        lambda: net(member).CreatePort(
            napi.CreatePortRequest(
                parent=tenant.name,
                port_id=unique("extra"),
                port=npb.Port(network=network.name, device_owner=OWNER, device_id=got.name),
            )
        )
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    # ... but their security groups may change, as any port's.
    net(member).UpdatePort(
        napi.UpdatePortRequest(
            port=npb.Port(name=first.name, security_groups=[]),
            update_mask=field_mask_pb2.FieldMask(paths=["security_groups"]),
        )
    )

    wait(member, compute(member).DeleteInstance(capi.DeleteInstanceRequest(name=got.name)))
    assert _ports(member, tenant.name, instance.name) == []
    # Their addresses are free again: a port may take the fixed one.
    port = net(member).CreatePort(
        napi.CreatePortRequest(
            parent=tenant.name,
            port_id="takes-the-address",
            port=npb.Port(
                network=network.name,
                fixed_ips=[npb.FixedIp(subnet=subnet.name, ip_address="10.70.0.50")],
            ),
        )
    )
    assert port.fixed_ips[0].ip_address == "10.70.0.50"


def test_an_interface_shows_the_floating_ips_mapped_to_it(
    cell: Cell, admin: Stubs, tenant: Tenant
) -> None:
    """A floating IP mapped to an instance's port shows in its interface (GetInstance and
    ListInstances alike) until it is unmapped; the instance's delete unmaps it."""
    member = tenant.stubs["member"]
    external, _ = make_external(
        admin, f"172.{20 + uuid.uuid4().int % 8}.{uuid.uuid4().int % 250}.0/24"
    )
    network, subnet = make_network(member, tenant.project, "10.72.0.0/24")
    router = net(member).CreateRouter(
        napi.CreateRouterRequest(
            parent=tenant.name,
            router_id=unique("r"),
            router=npb.Router(external_gateway=npb.ExternalGateway(network=external.name)),
        )
    )
    net(member).AddRouterInterface(
        napi.AddRouterInterfaceRequest(router=router.name, subnet=subnet.name)
    )
    instance = launch(
        member, cell, "floating", network_interfaces=[cpb.NetworkInterface(network=network.name)]
    )
    got = compute(member).GetInstance(capi.GetInstanceRequest(name=instance.name))
    assert list(got.network_interfaces[0].floating_ip_addresses) == []
    fips = [
        net(member).CreateFloatingIp(
            napi.CreateFloatingIpRequest(
                parent=tenant.name,
                floating_ip_id=unique("f"),
                floating_ip=npb.FloatingIp(
                    network=external.name, port=got.network_interfaces[0].port
                ),
            )
        )
        for _ in range(2)
    ]

    def shown() -> list[list[str]]:
        one = compute(member).GetInstance(capi.GetInstanceRequest(name=instance.name))
        listed = compute(member).ListInstances(capi.ListInstancesRequest(parent=cell.parent))
        (same,) = [i for i in listed.instances if i.name == instance.name]
        assert same.network_interfaces == one.network_interfaces
        return [list(n.floating_ip_addresses) for n in one.network_interfaces]

    assert shown() == [sorted(f.ip_address for f in fips)]
    assert got.network_interfaces[0].ip_addresses == [fips[0].fixed_ip]
    net(member).DeleteFloatingIp(napi.DeleteFloatingIpRequest(name=fips[0].name))
    assert shown() == [[fips[1].ip_address]]
    wait(member, compute(member).DeleteInstance(capi.DeleteInstanceRequest(name=instance.name)))
    kept = net(member).GetFloatingIp(napi.GetFloatingIpRequest(name=fips[1].name))
    assert (kept.port, kept.fixed_ip) == ("", "")  # unmapped, not deleted (as in Neutron)


def test_refusals_leave_nothing(
    cell: Cell, tenant: Tenant, other_tenant: Tenant, admin: Stubs
) -> None:
    member = tenant.stubs["member"]
    network, _ = make_network(member, tenant.project, "10.72.0.0/24")
    foreign, _ = make_network(other_tenant.stubs["member"], other_tenant.project, "10.73.0.0/24")
    before = len(_all_ports(member, tenant.name))

    def create(instance_id: str, *interfaces: cpb.NetworkInterface) -> operations_pb2.Operation:
        return compute(member).CreateInstance(
            capi.CreateInstanceRequest(
                parent=cell.parent,
                instance_id=instance_id,
                instance=cpb.Instance(
                    flavor=cell.flavor, image=cell.image, network_interfaces=interfaces
                ),
            )
        )

    good = cpb.NetworkInterface(network=network.name)
    cases = [
        (cpb.NetworkInterface(network="not a network"), grpc.StatusCode.INVALID_ARGUMENT),
        (cpb.NetworkInterface(), grpc.StatusCode.INVALID_ARGUMENT),
        (cpb.NetworkInterface(network=foreign.name), grpc.StatusCode.NOT_FOUND),
        (
            cpb.NetworkInterface(network=f"{tenant.name}/networks/nope"),
            grpc.StatusCode.NOT_FOUND,
        ),
        (
            cpb.NetworkInterface(network=network.name, ip_address="192.0.2.1"),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
    ]
    for index, (bad, code) in enumerate(cases):
        # The good interface first: its port must not survive the refusal.
        got, status = rpc_error(lambda b=bad, i=index: create(f"refused-{i}", good, b))
        assert got == code, (bad, got, status)
    assert len(_all_ports(member, tenant.name)) == before
    listed = compute(member).ListInstances(capi.ListInstancesRequest(parent=cell.parent))
    assert not [i for i in listed.instances if i.name.rsplit("/", 1)[-1].startswith("refused")]

    # The network's port quota counts instance interfaces too.
    set_quota(admin, tenant, ports=before + 1)
    got, _ = rpc_error(lambda: create("over-quota", good, good))
    assert got == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert len(_all_ports(member, tenant.name)) == before


def test_deleting_the_project_takes_the_interfaces(
    api: ServerThread, cell: Cell, tenant: Tenant, admin: Stubs
) -> None:
    member = tenant.stubs["member"]
    network, _ = make_network(member, tenant.project, "10.75.0.0/24")
    launch(member, cell, "doomed", network_interfaces=[cpb.NetworkInterface(network=network.name)])
    deleting = admin.identity.DeleteProject(iapi.DeleteProjectRequest(name=tenant.name))
    wait(admin, deleting)

    def count(session: Session) -> int:
        query = select(func.count()).select_from(PortRow)
        return int(session.scalar(query.where(PortRow.project_id == tenant.project)) or 0)

    assert api.call(api.server.runtime.db.run(count)) == 0


def _nics(cell: Cell, instance: cpb.Instance) -> set[str]:
    """MACs of the guest's NICs, as its host's driver has them."""
    return cell.driver(instance.host.removeprefix("hosts/")).attached_nics(instance.uid)


def test_attach_and_detach_interfaces(
    cell: Cell, tenant: Tenant, other_tenant: Tenant, admin: Stubs
) -> None:
    """AttachNetworkInterface makes the port of the instance's next interface and the
    host's driver gets the NIC (running, then stopped); DetachNetworkInterface deletes the
    port and the driver drops it; each refusal leaves ports and guest as they were."""
    member = tenant.stubs["member"]
    service = compute(member)
    network, _ = make_network(member, tenant.project, "10.74.0.0/24")
    second, _ = make_network(member, tenant.project, "10.75.0.0/24")
    instance = launch(
        member, cell, "grows-nics", network_interfaces=[cpb.NetworkInterface(network=network.name)]
    )

    def settled(operation: operations_pb2.Operation) -> cpb.Instance:
        done = wait(member, operation)
        assert not done.HasField("error"), done.error
        return service.GetInstance(capi.GetInstanceRequest(name=instance.name))

    def attach(interface: cpb.NetworkInterface) -> cpb.Instance:
        request = capi.AttachNetworkInterfaceRequest(
            name=instance.name, network_interface=interface
        )
        return settled(service.AttachNetworkInterface(request))

    def detach(port: str) -> cpb.Instance:
        request = capi.DetachNetworkInterfaceRequest(name=instance.name, port=port)
        return settled(service.DetachNetworkInterface(request))

    grown = attach(cpb.NetworkInterface(network=second.name, ip_address="10.75.0.9"))
    assert [n.network for n in grown.network_interfaces] == [network.name, second.name]
    first, added = grown.network_interfaces
    assert added.ip_addresses == ["10.75.0.9"] and added.port.endswith(f"/nic1-{instance.uid}")
    assert _nics(cell, grown) == {first.mac_address, added.mac_address}
    (port,) = [p for p in _ports(member, tenant.name, instance.name) if p.name == added.port]
    assert (port.host, port.security_groups) == (
        grown.host,
        [f"{tenant.name}/securityGroups/default"],
    )
    host = grown.host.removeprefix("hosts/")

    # The first interface goes; a new one takes its index (and so its place in the order).
    assert detach(first.port).network_interfaces == [added]
    assert _nics(cell, grown) == {added.mac_address}
    again = attach(cpb.NetworkInterface(network=network.name))
    assert [n.port.rsplit("/", 1)[-1] for n in again.network_interfaces] == [
        f"nic0-{instance.uid}",
        f"nic1-{instance.uid}",
    ]

    # A stopped instance: its definition changes, the guest has the NICs when it starts.
    settled(service.StopInstance(capi.StopInstanceRequest(name=instance.name)))
    stopped = detach(added.port)
    assert [n.network for n in stopped.network_interfaces] == [network.name]
    assert _nics(cell, stopped) == {stopped.network_interfaces[0].mac_address}
    assert cell.driver(host).state(instance.uid).value == "shutoff"
    settled(service.StartInstance(capi.StartInstanceRequest(name=instance.name)))
    assert _nics(cell, stopped) == {stopped.network_interfaces[0].mac_address}

    # Refusals: nothing changes.
    before = {p.name for p in _all_ports(member, tenant.name)}
    foreign, _ = make_network(other_tenant.stubs["member"], other_tenant.project, "10.76.0.0/24")
    theirs = other_tenant.stubs["member"]
    cases = [
        (lambda: attach(cpb.NetworkInterface()), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda: attach(cpb.NetworkInterface(network="nope")), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda: attach(cpb.NetworkInterface(network=foreign.name)), grpc.StatusCode.NOT_FOUND),
        (
            lambda: attach(cpb.NetworkInterface(network=network.name, ip_address="192.0.2.1")),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            lambda: service.AttachNetworkInterface(
                capi.AttachNetworkInterfaceRequest(name=instance.name)
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (lambda: detach(f"{tenant.name}/ports/nope"), grpc.StatusCode.NOT_FOUND),
        (lambda: detach("not a port"), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda: detach(""), grpc.StatusCode.INVALID_ARGUMENT),
        (
            lambda: compute(theirs).AttachNetworkInterface(
                capi.AttachNetworkInterfaceRequest(
                    name=instance.name,
                    network_interface=cpb.NetworkInterface(network=foreign.name),
                )
            ),
            grpc.StatusCode.NOT_FOUND,
        ),
    ]
    for call, code in cases:
        got, status = rpc_error(call)
        assert got == code, (got, status)
    assert {p.name for p in _all_ports(member, tenant.name)} == before

    # The port quota counts attached interfaces; at most eight interfaces.
    set_quota(admin, tenant, ports=len(before))
    got, _ = rpc_error(lambda: attach(cpb.NetworkInterface(network=network.name)))
    assert got == grpc.StatusCode.RESOURCE_EXHAUSTED
    set_quota(admin, tenant, ports=len(before) + 10)
    for _ in range(7):
        attach(cpb.NetworkInterface(network=network.name))
    got, status = rpc_error(lambda: attach(cpb.NetworkInterface(network=network.name)))
    assert got == grpc.StatusCode.INVALID_ARGUMENT and status is not None
    final = service.GetInstance(capi.GetInstanceRequest(name=instance.name))
    assert len(final.network_interfaces) == 8
    assert _nics(cell, final) == {n.mac_address for n in final.network_interfaces}

    wait(member, service.DeleteInstance(capi.DeleteInstanceRequest(name=instance.name)))
    assert _ports(member, tenant.name, instance.name) == []


def test_existing_ports_are_adopted_and_kept(
    cell: Cell, tenant: Tenant, other_tenant: Tenant, admin: Stubs
) -> None:
    """An interface naming an existing port takes it (at create and by attach) with its
    MAC and addresses; detached or with the instance deleted, the port stays, free for
    another device, while the ports Kumo made go. A port in use, another project's, or
    named with a network or security groups is refused and nothing changes."""
    member = tenant.stubs["member"]
    service = compute(member)
    network, subnet = make_network(member, tenant.project, "10.77.0.0/24")
    mine = make_port(
        member,
        tenant.project,
        network.name,
        fixed_ips=[npb.FixedIp(subnet=subnet.name, ip_address="10.77.0.33")],
    )
    instance = launch(
        member,
        cell,
        "adopts",
        network_interfaces=[
            cpb.NetworkInterface(network=network.name),
            cpb.NetworkInterface(port=mine.name),
        ],
    )
    got = service.GetInstance(capi.GetInstanceRequest(name=instance.name))
    made, adopted = got.network_interfaces
    assert (adopted.port, adopted.mac_address, list(adopted.ip_addresses)) == (
        mine.name,
        mine.mac_address,
        ["10.77.0.33"],
    )
    taken = net(member).GetPort(napi.GetPortRequest(name=mine.name))
    assert (taken.device_owner, taken.device_id, taken.host) == (OWNER, got.name, got.host)
    assert taken.device_uid == got.uid
    assert _nics(cell, got) == {made.mac_address, adopted.mac_address}
    spec = cell.driver(got.host.removeprefix("hosts/")).spec_of(got.uid)
    assert [n.mac_address for n in spec.nics] == [made.mac_address, adopted.mac_address]
    made_uid = net(member).GetPort(napi.GetPortRequest(name=made.port)).uid
    assert [n.tap for n in spec.nics] == [tap_name(made_uid), tap_name(mine.uid, got.uid)]

    def settled(operation: operations_pb2.Operation) -> cpb.Instance:
        done = wait(member, operation)
        assert not done.HasField("error"), done.error
        return service.GetInstance(capi.GetInstanceRequest(name=instance.name))

    # Detached, the adopted port stays, free; attached again it takes its old place.
    freed = settled(
        service.DetachNetworkInterface(
            capi.DetachNetworkInterfaceRequest(name=instance.name, port=mine.name)
        )
    )
    assert [n.port for n in freed.network_interfaces] == [made.port]
    kept = net(member).GetPort(napi.GetPortRequest(name=mine.name))
    assert (kept.device_owner, kept.device_id, kept.host, kept.device_uid) == ("", "", "", "")
    assert [f.ip_address for f in kept.fixed_ips] == ["10.77.0.33"]
    assert _nics(cell, freed) == {made.mac_address}
    back = settled(
        service.AttachNetworkInterface(
            capi.AttachNetworkInterfaceRequest(
                name=instance.name, network_interface=cpb.NetworkInterface(port=mine.name)
            )
        )
    )
    assert [n.port for n in back.network_interfaces] == [made.port, mine.name]
    assert _nics(cell, back) == {made.mac_address, mine.mac_address}

    # Refusals: nothing changes.
    before = {p.name: (p.device_owner, p.device_id) for p in _all_ports(member, tenant.name)}
    spare = make_port(member, tenant.project, network.name)
    before[spare.name] = ("", "")
    theirs_net, _ = make_network(other_tenant.stubs["member"], other_tenant.project, "10.78.0.0/24")
    theirs = make_port(other_tenant.stubs["member"], other_tenant.project, theirs_net.name)
    for interface, code in (
        (cpb.NetworkInterface(port=mine.name), grpc.StatusCode.FAILED_PRECONDITION),  # in use
        (cpb.NetworkInterface(port=theirs.name), grpc.StatusCode.NOT_FOUND),
        (cpb.NetworkInterface(port=f"{tenant.name}/ports/nope"), grpc.StatusCode.NOT_FOUND),
        (cpb.NetworkInterface(port="not a port"), grpc.StatusCode.INVALID_ARGUMENT),
        (
            cpb.NetworkInterface(port=spare.name, network=network.name),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            cpb.NetworkInterface(
                port=spare.name, security_groups=[f"{tenant.name}/securityGroups/default"]
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
    ):
        request = capi.AttachNetworkInterfaceRequest(
            name=instance.name, network_interface=interface
        )
        got_code, status = rpc_error(lambda r=request: service.AttachNetworkInterface(r))
        assert got_code == code, (interface, got_code, status)
        refused, status = rpc_error(
            lambda i=interface: service.CreateInstance(
                capi.CreateInstanceRequest(
                    parent=cell.parent,
                    instance_id=unique("refused"),
                    instance=cpb.Instance(
                        flavor=cell.flavor, image=cell.image, network_interfaces=[i]
                    ),
                )
            )
        )
        assert refused == code, (interface, refused, status)
    after = {p.name: (p.device_owner, p.device_id) for p in _all_ports(member, tenant.name)}
    assert after == before

    # Deleting the instance deletes the port Kumo made and frees the adopted one.
    wait(member, service.DeleteInstance(capi.DeleteInstanceRequest(name=instance.name)))
    left = {p.name: p for p in _all_ports(member, tenant.name)}
    assert made.port not in left
    assert (left[mine.name].device_owner, left[mine.name].device_id) == ("", "")
