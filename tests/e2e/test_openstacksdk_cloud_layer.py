"""openstacksdk's cloud layer against the gateway: `Connection.create_server(auto_ip=True,
wait=True)` and the other `Connection` methods Ansible's openstack.cloud modules call, each
of which makes several Nova, Neutron and Cinder calls of its own choosing (extension and
network lookups, floating IP search and attachment, server refreshes)."""

from __future__ import annotations

import time
from pathlib import Path

import openstack
import pytest

from tests.e2e.test_openstack_clients import _upload_with_cli, clouds, drivers, site  # noqa: F401
from tests.e2e.test_openstack_network import _external
from tests.integration.test_compute_resources import make_flavor
from tests.support.cloud import PASSWORD, Stubs, Tenant, unique
from tests.support.gateway import Clouds
from tests.support.images import small_qcow2
from tests.support.storage import ensure_default_type
from tests.support.topology import Site, make_site

# These runs test the clients against the gateway's dialects; both databases are
# covered beneath the gateway by the integration tests, so SQLite only here.
pytestmark = pytest.mark.parametrize("api", ["sqlite"], indirect=True)


def test_a_server_with_a_floating_ip_and_a_volume_through_the_cloud_layer(
    clouds: Clouds,  # noqa: F811
    site: Site,  # noqa: F811
    admin: Stubs,
    tenant: Tenant,
) -> None:
    """Network, subnet, router to an external network, security group and rule, key pair;
    create_server with auto_ip and wait (ACTIVE, with a public and a private address; its
    port found by device_id); a volume created, attached and detached with wait (one of
    another zone refused with 400); delete_server with delete_ips and wait leaves no
    floating IP; then the rest is deleted."""
    external = _external(clouds)
    ensure_default_type(admin)
    flavor = make_flavor(admin, 1, 128, 1).split("/")[-1]
    image = _upload_with_cli(clouds, unique("im"))
    # The cloud may have other external networks (other tests'): name the one floating IPs
    # come from, as clouds.yaml lets a cloud with several do (by name).
    source = {"name": clouds.json("member", "network", "show", external)["name"]}
    member = clouds.add(
        "member-nat", tenant.users["member"], PASSWORD, tenant.project,
        networks=[{**source, "nat_source": True, "routes_externally": True}],
    )  # fmt: skip
    conn = clouds.connect(member)

    net = conn.create_network(unique("net"))
    subnet = conn.create_subnet(net.id, cidr="10.22.0.0/24", ip_version=4, subnet_name=unique("s"))
    router = conn.create_router(unique("rtr"), ext_gateway_net_id=external)
    conn.add_router_interface(router, subnet_id=subnet.id)
    group = conn.create_security_group(unique("sg"), "ssh in")
    conn.create_security_group_rule(
        group.id, port_range_min=22, port_range_max=22, protocol="tcp", direction="ingress"
    )
    key = conn.create_keypair(unique("key"))
    assert key.private_key

    server = conn.create_server(
        unique("vm"), image=image, flavor=flavor, network=net.id,
        availability_zone=site.zone, security_groups=[group.name], key_name=key.name,
        auto_ip=True, wait=True, timeout=120,
    )  # fmt: skip
    assert server.status == "ACTIVE"
    # (create_server answers with the server its floating IP wait last read, whose
    # addresses the cloud layer has not sorted into private_v4 and public_v4 yet)
    shown = conn.get_server(server.name)
    assert shown.id == server.id
    assert shown.private_v4.startswith("10.22.0."), shown.addresses
    assert shown.public_v4.startswith("198.51.100."), shown.addresses
    assert server.id in {s.id for s in conn.list_servers(detailed=True)}
    (port,) = conn.network.ports(device_id=server.id)  # Neutron's view of a server's port
    assert port.device_owner == f"compute:{site.zone}" and port.network_id == net.id
    (fip,) = conn.list_floating_ips()
    assert (fip.floating_ip_address, fip.fixed_ip_address) == (shown.public_v4, shown.private_v4)

    volume = conn.create_volume(
        size=1, name=unique("vol"), availability_zone=site.zone, wait=True, timeout=60
    )
    far = conn.create_volume(
        size=1, name=unique("far"), availability_zone=make_site(admin).zone, wait=True, timeout=60
    )
    with pytest.raises(openstack.exceptions.BadRequestException, match="same zone"):
        conn.attach_volume(server, far)  # (Kumo attaches in the server's zone only)
    assert conn.delete_volume(far.id, wait=True, timeout=60)
    attachment = conn.attach_volume(server, volume, wait=True, timeout=60)
    assert attachment["volumeId"] == volume.id
    assert conn.get_volume(volume.id).status == "in-use"
    conn.detach_volume(server, conn.get_volume(volume.id), wait=True, timeout=60)
    assert conn.delete_volume(volume.id, wait=True, timeout=60)

    assert conn.delete_server(server.id, wait=True, timeout=60, delete_ips=True)
    assert conn.get_server(server.id) is None
    assert conn.list_floating_ips() == []
    assert conn.delete_keypair(key.name)
    assert conn.delete_security_group(group.id)
    conn.remove_router_interface(router, subnet_id=subnet.id)
    assert conn.delete_router(router.id)
    assert conn.delete_network(net.id)


def test_images_flavors_limits_and_boot_from_volume_through_the_cloud_layer(
    clouds: Clouds,  # noqa: F811
    site: Site,  # noqa: F811
    admin: Stubs,
    tmp_path: Path,
) -> None:
    """create_image from a file with wait; flavors and limits; a server booted from a new
    volume (boot_from_volume, terminate_volume) on the project's only network (no network
    named); a volume snapshot; the admin's identity calls (project, user, role grant)."""
    ensure_default_type(admin)
    flavor = make_flavor(admin, 1, 128, 1).split("/")[-1]
    conn = clouds.connect("member")
    disk = tmp_path / "disk.qcow2"
    disk.write_bytes(small_qcow2())
    image = conn.create_image(
        unique("im"), filename=str(disk), disk_format="qcow2", container_format="bare", wait=True
    )
    assert image.status == "active"
    assert conn.get_image(image.id).name == image.name
    assert flavor in {f.id for f in conn.list_flavors()}
    assert conn.get_flavor(flavor).ram == 128
    assert conn.get_compute_limits().max_total_instances > 0
    assert conn.get_volume_limits()

    # No network named: Nova's `auto` puts the server on the project's only network.
    net = conn.create_network(unique("net"))
    conn.create_subnet(net.id, cidr="10.23.0.0/24", ip_version=4)
    server = conn.create_server(
        unique("bfv"), image=image.id, flavor=flavor, availability_zone=site.zone,
        boot_from_volume=True, volume_size=1, terminate_volume=True, auto_ip=False,
        wait=True, timeout=120,
    )  # fmt: skip
    assert server.status == "ACTIVE"
    assert list(server.addresses) == [net.name], server.addresses
    (attached,) = conn.get_server(server.id).volumes
    volume = conn.get_volume(attached["id"])
    assert volume.status == "in-use" and volume.is_bootable
    snapshot = conn.create_volume_snapshot(volume.id, force=True, wait=True, timeout=60)
    assert snapshot.status == "available"
    assert conn.delete_volume_snapshot(snapshot.id, wait=True, timeout=60)
    assert conn.delete_server(server.id, wait=True, timeout=60)
    deadline = time.monotonic() + 30
    while conn.get_volume(volume.id) is not None:  # terminate_volume: it goes with the server
        assert time.monotonic() < deadline, "the boot volume outlived its server"
        time.sleep(0.5)
    assert conn.delete_image(image.id, wait=True)
    assert conn.delete_network(net.id)

    root = clouds.connect("root")
    project = root.create_project(unique("p"), domain_id="default")
    user = root.create_user(unique("u"), password=PASSWORD, domain_id="default")
    assert root.grant_role("member", user=user.id, project=project.id)
    assert [a.user["id"] for a in root.list_role_assignments({"project": project.id})] == [user.id]
    assert root.delete_user(user.id) and root.delete_project(project.id)
