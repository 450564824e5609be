"""Neutron v2.0 through the gateway with the real `openstack` CLI and openstacksdk.

The tenant builds a network, subnet, port, security group and rule, router with an
interface and an external gateway (on an external network the cloud administrator made
with provider attributes), and a floating IP; filters, `fields=`, paging, error bodies,
tenancy and shared networks are checked over HTTP.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.e2e.test_openstack_clients import _upload_with_cli, clouds, drivers, site  # noqa: F401
from tests.integration.test_compute_resources import make_flavor
from tests.support.cloud import Stubs, Tenant, unique
from tests.support.gateway import Clouds, GatewayThread
from tests.support.topology import Site

# These runs test the clients against the gateway's dialects; both databases are
# covered beneath the gateway by the integration tests, so SQLite only here.
pytestmark = pytest.mark.parametrize("api", ["sqlite"], indirect=True)


def _external(clouds: Clouds) -> str:  # noqa: F811
    """An external FLAT network with a subnet, made by the cloud administrator."""
    name = unique("ext")
    made = clouds.json(
        "root", "network", "create", "--external", "--provider-network-type", "flat",
        "--provider-physical-network", "external", name,
    )  # fmt: skip
    assert made["router:external"] is True and made["provider:network_type"] == "flat"
    clouds.run(
        "root", "subnet", "create", "--network", made["id"], "--subnet-range",
        "198.51.100.0/24", "--no-dhcp", unique("extsub"),
    )  # fmt: skip
    return str(made["id"])


def test_network_resources_with_the_cli(clouds: Clouds) -> None:  # noqa: F811
    """network, subnet, port, security group and rule, router, floating IP: create, show,
    list, delete with `openstack`."""
    external = _external(clouds)
    net = clouds.json("member", "network", "create", unique("net"))
    assert net["status"] in ("ACTIVE", "BUILD") and net["router:external"] is False
    assert net["id"] in {n["ID"] for n in clouds.json("member", "network", "list")}
    subnet = clouds.json(
        "member", "subnet", "create", "--network", net["id"], "--subnet-range", "10.20.0.0/24",
        unique("sub"),
    )  # fmt: skip
    assert subnet["cidr"] == "10.20.0.0/24" and subnet["network_id"] == net["id"]
    assert clouds.json("member", "network", "show", net["id"])["subnets"] == [subnet["id"]]

    group = clouds.json("member", "security", "group", "create", unique("sg"))
    rule = clouds.json(
        "member", "security", "group", "rule", "create", "--protocol", "tcp", "--dst-port",
        "22", "--ingress", group["id"],
    )  # fmt: skip
    assert (rule["port_range_min"], rule["protocol"]) == (22, "tcp")
    port = clouds.json(
        "member", "port", "create", "--network", net["id"], "--security-group", group["id"],
        unique("port"),
    )  # fmt: skip
    assert port["fixed_ips"][0]["subnet_id"] == subnet["id"]
    assert port["security_group_ids"] == [group["id"]]

    router = clouds.json("member", "router", "create", unique("rtr"))
    clouds.run("member", "router", "add", "subnet", router["id"], subnet["id"])
    clouds.run("member", "router", "set", "--external-gateway", external, router["id"])
    shown = clouds.json("member", "router", "show", router["id"])
    assert shown["external_gateway_info"]["network_id"] == external
    assert subnet["id"] in str(shown["interfaces_info"])

    fip = clouds.json("member", "floating", "ip", "create", "--port", port["id"], external)
    assert fip["port_id"] == port["id"] and fip["floating_ip_address"].startswith("198.51.100.")
    listed = clouds.json("member", "floating", "ip", "list")
    assert fip["id"] in {f["ID"] for f in listed}

    clouds.run("member", "floating", "ip", "delete", fip["id"])
    clouds.run("member", "router", "unset", "--external-gateway", router["id"])
    clouds.run("member", "router", "remove", "subnet", router["id"], subnet["id"])
    clouds.run("member", "router", "delete", router["id"])
    clouds.run("member", "port", "delete", port["id"])
    clouds.run("member", "security", "group", "rule", "delete", rule["id"])
    clouds.run("member", "security", "group", "delete", group["id"])
    clouds.run("member", "network", "delete", net["id"])
    assert net["id"] not in {n["ID"] for n in clouds.json("member", "network", "list")}


def test_filters_fields_paging_errors_and_tenancy(
    clouds: Clouds,  # noqa: F811
    gateway: GatewayThread,
    admin: Stubs,
    tenant: Tenant,
    other_tenant: Tenant,
) -> None:
    """`?name=`, `fields=`, `limit`/`marker` with links (the SDK follows them),
    NeutronError bodies, admin-only attributes refused to members, other projects' 404,
    shared networks."""
    url = f"{gateway.url}/network/v2.0"
    mine = {"X-Auth-Token": tenant.stubs["member"].token or ""}
    made = [
        requests.post(f"{url}/networks", headers=mine, json={"network": {"name": f"pg{i}"}})
        for i in range(3)
    ]
    assert all(m.status_code == 201 for m in made), made[0].text
    ids = {m.json()["network"]["id"] for m in made}

    named = requests.get(f"{url}/networks", headers=mine, params={"name": "pg1"}).json()
    assert [n["name"] for n in named["networks"]] == ["pg1"]
    slim = requests.get(
        f"{url}/networks", headers=mine, params=[("fields", "id"), ("fields", "name")]
    ).json()
    assert all(set(n) == {"id", "name"} for n in slim["networks"])
    first = requests.get(f"{url}/networks", headers=mine, params={"limit": 2}).json()
    assert len(first["networks"]) == 2 and first["networks_links"][0]["rel"] == "next"
    rest = requests.get(first["networks_links"][0]["href"], headers=mine).json()
    assert "networks_links" not in rest
    assert {n["id"] for n in first["networks"] + rest["networks"]} >= ids
    paged = clouds.connect("member").network.networks(limit=1)
    assert ids <= {n.id for n in paged}

    one = next(iter(ids))
    theirs = {"X-Auth-Token": other_tenant.stubs["admin"].token or ""}
    for method in ("GET", "DELETE"):
        answer = requests.request(method, f"{url}/networks/{one}", headers=theirs)
        assert answer.status_code == 404, answer.text
        assert answer.json()["NeutronError"]["type"] == "HTTPNotFound"
    provider = requests.post(
        f"{url}/networks", headers=mine, json={"network": {"router:external": True}}
    )
    assert provider.status_code == 403 and "NeutronError" in provider.json()
    bad = requests.post(f"{url}/subnets", headers=mine, json={"subnet": {"network_id": one}})
    assert bad.status_code == 400 and bad.json()["NeutronError"]["message"]
    assert requests.get(f"{url}/networks").status_code == 401
    shown = requests.get(f"{url}/networks/{one}", headers=mine).json()["network"]
    assert "provider:network_type" not in shown
    for network_id in ids:
        assert requests.delete(f"{url}/networks/{network_id}", headers=mine).status_code == 204

    # A shared network (`openstack network create --share`, cloud administrators only):
    # other projects see it with its subnet, and put ports on it.
    refused = requests.post(f"{url}/networks", headers=mine, json={"network": {"shared": True}})
    assert refused.status_code == 403 and "NeutronError" in refused.json()
    shared = clouds.json("root", "network", "create", "--share", unique("shr"))
    assert shared["shared"] is True
    root = {"X-Auth-Token": admin.token or ""}
    subnet = requests.post(
        f"{url}/subnets",
        headers=root,
        json={"subnet": {"network_id": shared["id"], "cidr": "10.77.0.0/24", "ip_version": 4}},
    )
    assert subnet.status_code == 201, subnet.text
    seen = requests.get(f"{url}/networks", headers=mine, params={"shared": "True"}).json()
    assert shared["id"] in {n["id"] for n in seen["networks"]}
    assert all(n["shared"] for n in seen["networks"])
    subnets = requests.get(f"{url}/subnets", headers=mine).json()["subnets"]
    assert subnet.json()["subnet"]["id"] in {s["id"] for s in subnets}
    port = requests.post(f"{url}/ports", headers=mine, json={"port": {"network_id": shared["id"]}})
    assert port.status_code == 201, port.text
    assert port.json()["port"]["fixed_ips"][0]["ip_address"].startswith("10.77.0.")
    network_url = f"{url}/networks/{shared['id']}"
    unshare = {"network": {"shared": False}}
    kept = requests.put(network_url, headers=root, json=unshare)
    assert kept.status_code == 409 and "NeutronError" in kept.json()  # its port is there
    port_url = f"{url}/ports/{port.json()['port']['id']}"
    assert requests.delete(port_url, headers=mine).status_code == 204
    unshared = requests.put(network_url, headers=root, json=unshare)
    assert unshared.status_code == 200 and unshared.json()["network"]["shared"] is False
    assert requests.get(network_url, headers=mine).status_code == 404
    assert requests.delete(network_url, headers=root).status_code == 204


def _network_with_subnet(clouds: Clouds, label: str, cidr: str) -> dict[str, Any]:  # noqa: F811
    """The member's new network `label` (as the CLI shows it), with one subnet of `cidr`."""
    net: dict[str, Any] = clouds.json("member", "network", "create", label)
    clouds.run("member", "subnet", "create", "--network", net["id"], "--subnet-range", cidr,
               unique("sub"))  # fmt: skip
    return net


def test_server_addresses_by_network(
    clouds: Clouds,  # noqa: F811
    gateway: GatewayThread,
    site: Site,  # noqa: F811
    admin: Stubs,
    tenant: Tenant,
    other_tenant: Tenant,
) -> None:
    """`server create --nic net-id=...,v4-fixed-ip=...` makes the server's port; `server
    show` and `GET /servers/{id}/ips[/{network}]` show its address under the network's
    name, `os-interface` its port; `server add network`, `server add port` and `server
    remove port` plug and unplug more, and `--nic port-id=` boots on a user's port, which
    outlives the server; an unknown label or port, a port in use, a foreign network and
    another project answer 4xx."""
    label = unique("net")
    net = _network_with_subnet(clouds, label, "10.21.0.0/24")
    flavor = make_flavor(admin, 1, 128, 1).split("/")[-1]
    image = _upload_with_cli(clouds, unique("im"))
    server = clouds.json(
        "member", "server", "create", "--flavor", flavor, "--image", image,
        "--availability-zone", site.zone, "--nic", f"net-id={net['id']},v4-fixed-ip=10.21.0.50",
        "--wait", unique("vm"),
    )  # fmt: skip
    shown = clouds.json("member", "server", "show", server["id"])
    assert shown["addresses"] == {label: ["10.21.0.50"]}, shown["addresses"]

    def by_ip(*args: str) -> set[str]:
        return {s["ID"] for s in clouds.json("member", "server", "list", *args)}

    # `--ip`/`--ip6`: Nova's regular expression, from the start of a fixed IPv4 (IPv6) address.
    assert server["id"] in by_ip("--ip", "10.21.0.5")
    assert server["id"] not in by_ip("--ip", "21.0") | by_ip("--ip6", "10.21")
    conn = clouds.connect("member")
    got = conn.compute.get_server(server["id"])
    ((entry,),) = got.addresses.values()
    assert entry["OS-EXT-IPS:type"] == "fixed" and entry["OS-EXT-IPS-MAC:mac_addr"]

    url = f"{gateway.url}/compute/v2.1/servers/{server['id']}/ips"
    mine = {"X-Auth-Token": tenant.stubs["member"].token or ""}
    whole = requests.get(url, headers=mine)
    assert whole.status_code == 200
    assert whole.json() == {"addresses": {label: [{"version": 4, "addr": "10.21.0.50"}]}}
    one = requests.get(f"{url}/{label}", headers=mine)
    assert one.status_code == 200 and one.json() == whole.json()["addresses"]
    missing = requests.get(f"{url}/{unique('nope')}", headers=mine)
    assert missing.status_code == 404 and missing.json()["itemNotFound"]["code"] == 404
    theirs = {"X-Auth-Token": other_tenant.stubs["admin"].token or ""}
    for path in (url, f"{url}/{label}"):
        hidden = requests.get(path, headers=theirs)
        assert hidden.status_code == 404 and "itemNotFound" in hidden.json(), path

    # os-interface: the server's port, as Neutron has it.
    (port,) = conn.network.ports(device_id=server["id"])
    (nic,) = conn.compute.server_interfaces(server["id"])
    assert (nic.port_id, nic.net_id, nic.mac_addr, nic.port_state) == (
        port.id, net["id"], port.mac_address, port.status,
    )  # fmt: skip
    assert nic.fixed_ips == [
        {"ip_address": "10.21.0.50", "subnet_id": port.fixed_ips[0]["subnet_id"]}
    ]
    plugged = f"{gateway.url}/compute/v2.1/servers/{server['id']}/os-interface"
    one_nic = requests.get(f"{plugged}/{port.id}", headers=mine).json()["interfaceAttachment"]
    assert one_nic["port_id"] == port.id
    # `server add network` plugs a second interface (a new port); `server remove port` takes
    # it away with its port.
    extra_label = unique("net")
    extra = _network_with_subnet(clouds, extra_label, "10.22.0.0/24")
    clouds.run("member", "server", "add", "network", server["id"], extra["id"])
    grown = clouds.json("member", "server", "show", server["id"])["addresses"]
    assert set(grown) == {label, extra_label} and grown[extra_label][0].startswith("10.22.0.")
    added = [n for n in conn.compute.server_interfaces(server["id"]) if n.port_id != port.id]
    assert [(n.net_id, n.fixed_ips[0]["ip_address"]) for n in added] == [
        (extra["id"], grown[extra_label][0])
    ]
    attached = requests.post(
        plugged,
        headers=mine,
        json={
            "interfaceAttachment": {
                "net_id": extra["id"],
                "fixed_ips": [{"ip_address": "10.22.0.9"}],
            }
        },
    )
    assert attached.status_code == 200, attached.text
    third = attached.json()["interfaceAttachment"]
    assert (third["net_id"], third["fixed_ips"][0]["ip_address"]) == (extra["id"], "10.22.0.9")
    ports = {p.id for p in conn.network.ports(device_id=server["id"])}
    assert ports == {port.id, added[0].port_id, third["port_id"]}

    # Refusals change nothing.
    for method, path, who, body, status in (
        ("GET", f"{plugged}/{unique('nope')}", mine, None, 404),
        ("GET", plugged, theirs, None, 404),
        ("POST", plugged, theirs, {"interfaceAttachment": {"net_id": extra["id"]}}, 404),
        ("POST", plugged, mine, {"interfaceAttachment": {"port_id": port.id}}, 409),  # in use
        ("POST", plugged, mine, {"interfaceAttachment": {"port_id": unique("nope")}}, 400),
        ("POST", plugged, mine, {"interfaceAttachment": {"net_id": unique("nope")}}, 400),
        (
            "POST",
            plugged,
            mine,
            {"interfaceAttachment": {"fixed_ips": [{"ip_address": "10.22.0.3"}]}},
            400,
        ),
        (
            "POST",
            plugged,
            mine,
            {"interfaceAttachment": {"net_id": extra["id"], "fixed_ips": "x"}},
            400,
        ),
        ("POST", plugged, mine, {"interfaceAttachment": []}, 400),
        ("POST", plugged, mine, {"interfaceAttachment": {}}, 409),  # two networks: which?
        ("DELETE", f"{plugged}/{unique('nope')}", mine, None, 404),
        ("DELETE", f"{plugged}/{port.id}", theirs, None, 404),
    ):
        answer = requests.request(method, path, headers=who, json=body)
        assert answer.status_code == status, (method, path, body, answer.text)
    assert {p.id for p in conn.network.ports(device_id=server["id"])} == ports

    clouds.run("member", "server", "remove", "port", server["id"], third["port_id"])
    gone = requests.delete(f"{plugged}/{added[0].port_id}", headers=mine)
    assert gone.status_code == 202, gone.text
    deadline = time.monotonic() + 60
    while {n.port_id for n in conn.compute.server_interfaces(server["id"])} != {port.id}:
        assert time.monotonic() < deadline, "the interfaces were not detached"
        time.sleep(0.5)
    assert [p.id for p in conn.network.ports(device_id=server["id"])] == [port.id]
    assert clouds.json("member", "server", "show", server["id"])["addresses"] == {
        label: ["10.21.0.50"]
    }
    actions = {a["Action"] for a in clouds.json("admin", "server", "event", "list", server["id"])}
    assert {"attach_interface", "detach_interface"} <= actions, actions

    # A port of the user's own: `server add port` takes it, `server remove port` gives it
    # back (it stays, free), `server create --nic port-id=` boots on it and `server delete`
    # leaves it.
    own = clouds.json(
        "member", "port", "create", "--network", extra["id"], "--fixed-ip",
        "ip-address=10.22.0.44", unique("port"),
    )  # fmt: skip
    clouds.run("member", "server", "add", "port", server["id"], own["id"])
    assert {n.port_id for n in conn.compute.server_interfaces(server["id"])} == {
        port.id,
        own["id"],
    }
    taken = clouds.json("member", "port", "show", own["id"])
    assert (taken["device_id"], taken["mac_address"]) == (server["id"], own["mac_address"])
    clouds.run("member", "server", "remove", "port", server["id"], own["id"])
    deadline = time.monotonic() + 60
    while clouds.json("member", "port", "show", own["id"])["device_id"]:
        assert time.monotonic() < deadline, "the port was not given back"
        time.sleep(0.5)
    booted = clouds.json(
        "member", "server", "create", "--flavor", flavor, "--image", image,
        "--availability-zone", site.zone, "--nic", f"port-id={own['id']}", "--wait",
        unique("vm"),
    )  # fmt: skip
    assert clouds.json("member", "server", "show", booted["id"])["addresses"] == {
        extra_label: ["10.22.0.44"]
    }
    clouds.run("member", "server", "delete", "--wait", booted["id"])
    left = clouds.json("member", "port", "show", own["id"])
    assert (left["device_id"], left["fixed_ips"][0]["ip_address"]) == ("", "10.22.0.44")
    clouds.run("member", "port", "delete", own["id"])
    clouds.run("member", "network", "delete", extra["id"])

    create = f"{gateway.url}/compute/v2.1/servers"
    base = {"name": "x", "imageRef": got.image.id, "flavorRef": flavor}
    for networks in (
        [{"port": net["id"]}],  # a network's id is no port's
        [{"uuid": unique("nope")}],
        [{"uuid": net["id"], "fixed_ip": "not-an-ip"}],
        "everything",
    ):
        refused = requests.post(
            create, headers=mine, json={"server": {**base, "networks": networks}}
        )
        assert refused.status_code == 400 and "badRequest" in refused.json(), networks
    # `auto` (and no `networks` before 2.37) picks the project's only network; with two,
    # which one is ambiguous: Nova's 409, and no server.
    second = clouds.json("member", "network", "create", unique("net2"))
    before = clouds.json("member", "server", "list")
    for version, server_networks in (("2.37", {"networks": "auto"}), ("2.1", {})):
        ambiguous = requests.post(
            create,
            headers={**mine, "OpenStack-API-Version": f"compute {version}"},
            json={"server": {**base, **server_networks}},
        )
        assert ambiguous.status_code == 409, ambiguous.text
        assert "Multiple possible networks" in ambiguous.json()["conflictingRequest"]["message"]
    assert clouds.json("member", "server", "list") == before
    clouds.run("member", "network", "delete", second["id"])
    # Another project's network cannot be named.
    foreign = requests.post(
        create, headers=theirs, json={"server": {**base, "networks": [{"uuid": net["id"]}]}}
    )
    assert foreign.status_code == 400, foreign.text
    clouds.run("member", "server", "delete", "--wait", server["id"])


def test_server_security_groups(
    clouds: Clouds,  # noqa: F811
    gateway: GatewayThread,
    site: Site,  # noqa: F811
    admin: Stubs,
    tenant: Tenant,
    other_tenant: Tenant,
) -> None:
    """`server create --security-group` puts the server's port in that group; server views
    list the groups of its ports by name; `server add/remove security group` change every
    port of the server; unknown groups, a group it lacks, another project and a server
    without ports answer Nova's 4xx and change nothing."""
    net = _network_with_subnet(clouds, unique("net"), "10.23.0.0/24")
    web = clouds.json("member", "security group", "create", unique("web"))
    flavor = make_flavor(admin, 1, 128, 1).split("/")[-1]
    image = _upload_with_cli(clouds, unique("im"))
    server = clouds.json(
        "member", "server", "create", "--flavor", flavor, "--image", image,
        "--availability-zone", site.zone, "--nic", f"net-id={net['id']}",
        "--security-group", web["name"], "--wait", unique("vm"),
    )  # fmt: skip
    default = next(  # (the project's default group exists once it has a port)
        g for g in clouds.json("member", "security group", "list") if g["Name"] == "default"
    )
    mine = {"X-Auth-Token": tenant.stubs["member"].token or ""}
    url = f"{gateway.url}/compute/v2.1/servers/{server['id']}"
    conn = clouds.connect("member")

    def groups() -> tuple[list[dict[str, str]], list[str]]:
        """The server's groups as Nova shows them, and its port's group ids."""
        shown = requests.get(url, headers=mine).json()["server"].get("security_groups", [])
        (port,) = conn.network.ports(device_id=server["id"])
        return shown, sorted(port.security_group_ids)

    assert groups() == ([{"name": web["name"]}], [web["id"]])
    clouds.run("member", "server", "add", "security", "group", server["id"], "default")
    assert groups() == (
        [{"name": web["name"]}, {"name": "default"}],
        sorted([web["id"], default["ID"]]),
    )
    detail = requests.get(f"{gateway.url}/compute/v2.1/servers/detail", headers=mine).json()
    (listed,) = [s for s in detail["servers"] if s["id"] == server["id"]]
    assert listed["security_groups"] == [{"name": web["name"]}, {"name": "default"}]
    clouds.run(
        "member", "security group", "rule", "create", "--protocol", "tcp", "--dst-port", "22",
        "--remote-ip", "10.0.0.0/8", web["id"],
    )  # fmt: skip
    whole = requests.get(f"{url}/os-security-groups", headers=mine).json()["security_groups"]
    assert [(g["id"], g["name"]) for g in whole] == [
        (web["id"], web["name"]),
        (default["ID"], "default"),
    ]
    ssh = {
        (r["ip_protocol"], r["from_port"], r["to_port"], r["ip_range"].get("cidr"))
        for r in whole[0]["rules"]
    }
    assert ssh == {("tcp", 22, 22, "10.0.0.0/8")}  # (its egress rules are not shown)
    assert all(r["parent_group_id"] == default["ID"] for r in whole[1]["rules"])
    assert {r["group"].get("name") for r in whole[1]["rules"]} == {"default"}  # from members
    clouds.run("member", "server", "remove", "security", "group", server["id"], web["id"])
    assert groups() == ([{"name": "default"}], [default["ID"]])

    theirs = {"X-Auth-Token": other_tenant.stubs["admin"].token or ""}
    action = f"{url}/action"
    for who, body, status in (
        (mine, {"removeSecurityGroup": {"name": web["name"]}}, 404),  # not on the server
        (mine, {"addSecurityGroup": {"name": unique("nope")}}, 404),
        (mine, {"addSecurityGroup": {}}, 400),
        (theirs, {"addSecurityGroup": {"name": "default"}}, 404),
    ):
        answer = requests.post(action, headers=who, json=body)
        assert answer.status_code == status, (body, answer.text)
    hidden = requests.get(f"{url}/os-security-groups", headers=theirs)
    assert hidden.status_code == 404 and "itemNotFound" in hidden.json()
    assert groups() == ([{"name": "default"}], [default["ID"]])
    image_id = conn.image.find_image(image).id
    servers = f"{gateway.url}/compute/v2.1/servers"
    portless = requests.post(
        servers,
        headers=mine,
        json={
            "server": {
                "name": unique("vm"), "flavorRef": flavor, "imageRef": image_id,
                "networks": "none", "availability_zone": site.zone,
            }
        },
    )  # fmt: skip
    assert portless.status_code == 202, portless.text
    portless_id = portless.json()["server"]["id"]
    lonely = requests.post(
        f"{gateway.url}/compute/v2.1/servers/{portless_id}/action",
        headers=mine,
        json={"addSecurityGroup": {"name": "default"}},
    )
    assert lonely.status_code == 404 and "itemNotFound" in lonely.json(), lonely.text
    for groups_asked in ([{"name": unique("no")}], "default", [{"name": 5}]):
        refused = requests.post(
            servers,
            headers=mine,
            json={
                "server": {
                    "name": unique("vm"), "flavorRef": flavor, "imageRef": image_id,
                    "networks": [{"uuid": net["id"]}], "security_groups": groups_asked,
                }
            },
        )  # fmt: skip
        assert refused.status_code == 400 and "badRequest" in refused.json(), refused.text
    assert {s["id"] for s in conn.compute.servers()} == {server["id"], portless_id}

    # `openstack port delete` of a server's port detaches it from the server first (as
    # Nova does when Neutron deletes one): the user's port it took, then the one Kumo made.
    own = clouds.json("member", "port", "create", "--network", net["id"], unique("port"))
    clouds.run("member", "server", "add", "port", server["id"], own["id"])
    (made,) = [p for p in conn.network.ports(device_id=server["id"]) if p.id != own["id"]]
    for port_id in (own["id"], made.id):
        clouds.run("member", "port", "delete", port_id)
        assert port_id not in {p.id for p in conn.network.ports()}
        assert port_id not in {n.port_id for n in conn.compute.server_interfaces(server["id"])}
    assert requests.get(url, headers=mine).json()["server"]["addresses"] == {}
    clouds.run("member", "server", "delete", "--wait", server["id"], portless_id)


def test_tags(
    clouds: Clouds,  # noqa: F811
    gateway: GatewayThread,
    tenant: Tenant,
    other_tenant: Tenant,
) -> None:
    """`--tag` on create, `set --tag`, `unset --tag` and Neutron's tag routes of every
    tagged kind: list, check, add, remove, replace, remove all; concurrent adds all land;
    bad input and another project's resources answer 4xx and change nothing."""
    made = clouds.json("member", "network", "create", "--tag", "red", "--tag", "blue", unique("n"))
    assert made["tags"] == ["blue", "red"], made
    clouds.run("member", "network", "set", "--tag", "green", made["id"])
    clouds.run("member", "network", "unset", "--tag", "red", made["id"])
    assert clouds.json("member", "network", "show", made["id"])["tags"] == ["blue", "green"]

    mine = {"X-Auth-Token": tenant.stubs["member"].token or ""}
    v2 = f"{gateway.url}/network/v2.0"
    url = f"{v2}/networks/{made['id']}/tags"
    assert requests.get(url, headers=mine).json() == {"tags": ["blue", "green"]}
    assert requests.get(f"{url}/blue", headers=mine).status_code == 204
    assert requests.get(f"{url}/red", headers=mine).status_code == 404
    assert requests.put(f"{url}/env=prod", headers=mine).status_code == 201
    assert requests.put(f"{url}/env=prod", headers=mine).status_code == 201  # (already there)
    assert requests.delete(f"{url}/green", headers=mine).status_code == 204
    replaced = requests.put(url, headers=mine, json={"tags": ["a", "env=prod"]})
    assert replaced.status_code == 200 and replaced.json() == {"tags": ["a", "env=prod"]}

    def add(index: int) -> int:
        return requests.put(f"{url}/t{index}", headers=mine).status_code

    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(add, range(6))) == [201] * 6
    expected = ["a", "env=prod", *(f"t{i}" for i in range(6))]
    theirs = {"X-Auth-Token": other_tenant.stubs["admin"].token or ""}
    for method, where, who, body, status in (
        ("DELETE", f"{url}/absent", mine, None, 404),
        ("PUT", url, mine, {"tags": "a"}, 400),
        ("PUT", url, mine, {"tags": [5]}, 400),
        ("PUT", f"{url}/{'x' * 64}", mine, None, 400),
        ("PUT", f"{url}/kumo:cidr-block", mine, None, 400),
        ("PUT", url, mine, {"tags": ["ok", "kumo:x"]}, 400),
        ("GET", url, theirs, None, 404),
        ("PUT", f"{url}/theirs", theirs, None, 404),
        ("GET", f"{v2}/ports/{unique('no')}/tags", mine, None, 404),
    ):
        answer = requests.request(method, where, headers=who, json=body)
        assert answer.status_code == status, (method, where, answer.text)
        assert "NeutronError" in answer.json(), answer.text
    assert requests.get(url, headers=mine).json() == {"tags": expected}

    # The other kinds: a subnet, a port, a router and a security group.
    subnet = clouds.json(
        "member", "subnet", "create", "--network", made["id"], "--subnet-range", "10.24.0.0/24",
        unique("s"),
    )  # fmt: skip
    port = clouds.json("member", "port", "create", "--network", made["id"], unique("p"))
    router = clouds.json("member", "router", "create", unique("r"))
    group = clouds.json("member", "security group", "create", unique("g"))
    for plural, ident in (
        ("subnets", subnet["id"]), ("ports", port["id"]), ("routers", router["id"]),
        ("security-groups", group["id"]),
    ):  # fmt: skip
        assert requests.put(f"{v2}/{plural}/{ident}/tags/k", headers=mine).status_code == 201
        shown = requests.get(f"{v2}/{plural}/{ident}", headers=mine).json()
        assert next(iter(shown.values()))["tags"] == ["k"], (plural, shown)
        assert requests.delete(f"{v2}/{plural}/{ident}/tags", headers=mine).status_code == 204
        assert requests.get(f"{v2}/{plural}/{ident}/tags", headers=mine).json() == {"tags": []}
    clouds.run("member", "port", "delete", port["id"])
    clouds.run("member", "router", "delete", router["id"])
    clouds.run("member", "security group", "delete", group["id"])
    clouds.run("member", "network", "delete", made["id"])
