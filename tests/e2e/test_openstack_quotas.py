"""Project quotas through the OpenStack dialects: `openstack quota show/set` (Nova's and
Cinder's os-quota-sets, Neutron's quotas) against the gateway and the real API, and the
same endpoints over HTTP for usage, microversions, refusals and bad input."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from kumo.identity.v1 import identity_service_pb2 as iapi
from tests.support.cloud import ADMIN_PASSWORD, PASSWORD, Stubs, Tenant
from tests.support.gateway import Clouds, GatewayThread
from tests.support.network import make_network

pytestmark = pytest.mark.parametrize("api", ["sqlite"], indirect=True)


@pytest.fixture
def clouds(gateway: GatewayThread, tenant: Tenant) -> Clouds:
    """clouds.yaml: `root` (the cloud administrator) and the tenant's member."""
    result = Clouds(gateway.url)
    result.add("root", "admin", ADMIN_PASSWORD, "admin")
    result.add("member", tenant.users["member"], PASSWORD, tenant.project)
    return result


def limits(admin: Stubs, project: str) -> dict[str, int]:
    """The project's limits as the gRPC API has them."""
    quota = admin.identity.GetQuota(iapi.GetQuotaRequest(name=f"projects/{project}/quota"))
    return {q.resource: int(q.limit) for q in quota.limits}


def shown(clouds: Clouds, cloud: str, *args: str) -> dict[str, Any]:
    """`openstack quota show ...` as {resource: limit}."""
    return {row["Resource"]: row["Limit"] for row in clouds.json(cloud, "quota", "show", *args)}


# `openstack quota show` names -> Kumo quota resources
RESOURCES = {
    "instances": "instances",
    "cores": "vcpus",
    "ram": "ram_mib",
    "volumes": "volumes",
    "gigabytes": "gigabytes",
    "snapshots": "snapshots",
    "networks": "networks",
    "subnets": "subnets",
    "ports": "ports",
    "routers": "routers",
    "floating_ips": "floating_ips",
    "security_groups": "security_groups",
}


def test_quota_show_and_set_with_the_cli(clouds: Clouds, tenant: Tenant, admin: Stubs) -> None:
    """An administrator sets compute, volume and network limits in one `quota set`; every
    service shows them, the gRPC API has them, the project's member sees them and their
    usage, and a member cannot set them; `quota list` finds the project off its defaults,
    and `quota delete` puts them back."""
    before = shown(clouds, "root", tenant.project)
    kumo = limits(admin, tenant.project)
    assert {name: before[name] for name in RESOURCES} == {
        name: kumo[resource] for name, resource in RESOURCES.items()
    }
    # What Kumo does not count shows as no limit; metadata items and injected files as
    # GET /limits has them.
    assert (before["key-pairs"], before["server-groups"], before["backups"]) == (-1, -1, -1)
    assert (before["properties"], before["injected-files"]) == (64, 0)

    clouds.run(
        "root", "quota", "set", "--instances", "3", "--cores", "6", "--ram", "1024",
        "--volumes", "4", "--gigabytes", "50", "--snapshots", "2", "--networks", "2",
        "--subnets", "3", "--ports", "8", "--routers", "1", "--floating-ips", "1",
        "--secgroups", "4", tenant.project,
    )  # fmt: skip
    wanted = {
        "instances": 3, "cores": 6, "ram": 1024, "volumes": 4, "gigabytes": 50,
        "snapshots": 2, "networks": 2, "subnets": 3, "ports": 8, "routers": 1,
        "floating_ips": 1, "security_groups": 4,
    }  # fmt: skip
    kumo = limits(admin, tenant.project)
    assert {name: kumo[resource] for name, resource in RESOURCES.items()} == wanted
    after = shown(clouds, "member", tenant.project)
    assert {name: after[name] for name in RESOURCES} == wanted

    make_network(tenant.stubs["member"], tenant.project, "10.61.0.0/24")
    usage = {
        row["Resource"]: (row["Limit"], row["In Use"])
        for row in clouds.json("member", "quota", "show", "--usage", tenant.project)
    }
    assert (usage["networks"], usage["subnets"], usage["instances"]) == ((2, 1), (3, 1), (3, 0))

    refused = clouds.run("member", "quota", "set", "--instances", "9", tenant.project, check=False)
    assert refused.returncode != 0 and "403" in refused.stderr, refused.stderr
    assert limits(admin, tenant.project)["instances"] == 3

    # The defaults; the projects whose limits differ from them; back to the defaults.
    assert shown(clouds, "member", "--default", tenant.project) == before
    listed = clouds.json("root", "quota", "list", "--compute")
    (row,) = [row for row in listed if row["Project ID"] == tenant.project]
    assert (row["Instances"], row["Cores"]) == (3, 6)
    refused = clouds.run("member", "quota", "delete", tenant.project, check=False)
    assert refused.returncode != 0 and limits(admin, tenant.project)["instances"] == 3
    clouds.run("root", "quota", "delete", tenant.project)
    assert shown(clouds, "root", tenant.project) == before


def test_quota_endpoints_over_http(
    gateway: GatewayThread, tenant: Tenant, other_tenant: Tenant, admin: Stubs
) -> None:
    """Usage in each dialect's shape, Nova's microversions, the usage checks Nova (unless
    `force`) and Neutron (with `check_limit`) make, each dialect's 400 for bad input and
    404 for another project's quota, and nothing changed by a refused request."""
    project = tenant.project
    nova = f"{gateway.url}/compute/v2.1/os-quota-sets/{project}"
    cinder = f"{gateway.url}/volume/v3/os-quota-sets/{project}"
    neutron = f"{gateway.url}/network/v2.0/quotas/{project}"
    root = {"X-Auth-Token": admin.token or ""}
    make_network(tenant.stubs["member"], project, "10.62.0.0/24")
    kumo = limits(admin, project)

    # Usage, each dialect its own way.
    detail = requests.get(f"{nova}/detail", headers=root).json()["quota_set"]
    assert detail["id"] == project
    assert detail["cores"] == {"limit": kumo["vcpus"], "in_use": 0, "reserved": 0}
    volumes = requests.get(cinder, params={"usage": "True"}, headers=root).json()["quota_set"]
    assert volumes["volumes"] == {
        "limit": kumo["volumes"], "in_use": 0, "reserved": 0, "allocated": 0,
    }  # fmt: skip
    network = requests.get(f"{neutron}/details", headers=root).json()["quota"]
    assert network["network"] == {"limit": kumo["networks"], "used": 1, "reserved": 0}
    assert network["security_group_rule"] == {"limit": -1, "used": 0, "reserved": 0}

    # Nova showed the network quotas before 2.36 (and can set them there).
    old = {**root, "OpenStack-API-Version": "compute 2.1"}
    legacy = requests.get(nova, headers=old).json()["quota_set"]
    assert legacy["networks"] == kumo["networks"] and legacy["fixed_ips"] == -1
    current = requests.get(nova, headers={**root, "OpenStack-API-Version": "compute 2.36"})
    assert "networks" not in current.json()["quota_set"]

    # Under usage: Nova refuses unless forced; Neutron only when asked to check.
    below = requests.put(nova, json={"quota_set": {"networks": 0}}, headers=old)
    assert below.status_code == 400, below.text
    assert "already used" in below.json()["badRequest"]["message"]
    checked = requests.put(
        neutron, json={"quota": {"network": 0, "check_limit": True}}, headers=root
    )
    assert checked.status_code == 400, checked.text
    assert "already used" in checked.json()["NeutronError"]["message"]
    assert limits(admin, project) == kumo
    forced = requests.put(nova, json={"quota_set": {"networks": 0, "force": True}}, headers=old)
    assert forced.status_code == 200 and forced.json()["quota_set"]["networks"] == 0
    unchecked = requests.put(neutron, json={"quota": {"network": 5}}, headers=root)
    assert unchecked.status_code == 200 and unchecked.json()["quota"]["network"] == 5
    kumo["networks"] = 5
    assert limits(admin, project) == kumo

    # Bad input: each dialect's 400 (or 413/404 as the dialect has it), nothing changed.
    bad: list[tuple[str, Any, str]] = [
        (nova, {"quota_set": {"instances": "many"}}, "badRequest"),
        (nova, {"quota_set": {"instances": -2}}, "badRequest"),
        (nova, {"quota_set": {"instances": True}}, "badRequest"),
        (nova, {"quota_set": {"key_pairs": 5}}, "badRequest"),
        (nova, {"quota_set": {"no_such_quota": 5}}, "badRequest"),
        (nova, {"quota_set": {"instances": 5, "force": "yes"}}, "badRequest"),
        (nova, {"quota_set": [1]}, "badRequest"),
        (nova, {"instances": 5}, "badRequest"),
        (nova, {"quota_set": {"instances": 2**60}}, "badRequest"),
        (nova, {"quota_set": {"instances": 2**70}}, "badRequest"),
        (cinder, {"quota_set": {"backups": 5}}, "badRequest"),
        (cinder, {"quota_set": {"volumes": 1.5}}, "badRequest"),
        (cinder, {"volumes": 5}, "badRequest"),
        (neutron, {"quota": {"network": "x"}}, "NeutronError"),
        (neutron, {"quota": {"subnetpool": 3}}, "NeutronError"),
        (neutron, {"quota": {"network": 1, "check_limit": "no"}}, "NeutronError"),
        (neutron, {"network": 1}, "NeutronError"),
    ]
    for url, body, shape in bad:
        answer = requests.put(url, json=body, headers=root)
        assert answer.status_code == 400 and shape in answer.json(), (url, body, answer.text)
    malformed = requests.put(nova, data=b"{not json", headers=root)
    assert malformed.status_code == 400 and "badRequest" in malformed.json()
    per_user = requests.get(nova, params={"user_id": "someone"}, headers=root)
    assert per_user.status_code == 400 and "per-user" in per_user.text
    assert limits(admin, project) == kumo

    # Another project's quota is not there for this project's members; nor is setting
    # their own for anyone but a cloud administrator.
    theirs = {"X-Auth-Token": other_tenant.stubs["admin"].token or ""}
    mine = {"X-Auth-Token": tenant.stubs["admin"].token or ""}
    for url, shape in ((nova, "itemNotFound"), (cinder, "itemNotFound"), (neutron, "NeutronError")):
        hidden = requests.get(url, headers=theirs)
        assert hidden.status_code == 404 and shape in hidden.json(), (url, hidden.text)
        assert requests.get(url, headers=mine).status_code == 200
    for url, body in (
        (nova, {"quota_set": {"instances": 1}}),
        (cinder, {"quota_set": {"volumes": 1}}),
        (neutron, {"quota": {"port": 1}}),
    ):
        assert requests.put(url, json=body, headers=mine).status_code == 403, url
    assert limits(admin, project) == kumo

    # Defaults in each dialect; reverting to them is for cloud administrators only.
    defaults = {
        q.resource: int(q.default_limit)
        for q in admin.identity.GetQuota(
            iapi.GetQuotaRequest(name=f"projects/{project}/quota")
        ).limits
    }
    nova_defaults = requests.get(f"{nova}/defaults", headers=mine).json()["quota_set"]
    assert (nova_defaults["id"], nova_defaults["cores"]) == (project, defaults["vcpus"])
    cinder_defaults = requests.get(f"{cinder}/defaults", headers=mine).json()["quota_set"]
    assert cinder_defaults["gigabytes"] == defaults["gigabytes"]
    neutron_defaults = requests.get(f"{neutron}/default", headers=mine).json()["quota"]
    assert neutron_defaults["network"] == defaults["networks"] != kumo["networks"]
    for url in (nova, cinder, neutron):
        assert requests.delete(url, headers=mine).status_code == 403, url
    assert limits(admin, project) == kumo
    assert requests.delete(neutron, headers=root).status_code == 204
    assert limits(admin, project) == {**kumo, "networks": defaults["networks"]}
    assert requests.delete(nova, headers=root).status_code == 202
    assert requests.delete(cinder, headers=root).status_code == 200
    assert limits(admin, project) == defaults
