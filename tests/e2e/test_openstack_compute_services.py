"""Nova's os-services over Kumo hosts: `openstack compute service list/set` disable and
enable hosts (DisableHost/EnableHost), and the endpoints' refusals over HTTP."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from kumo.topology.v1 import resources_pb2 as tpb
from kumo.topology.v1 import topology_service_pb2 as tapi
from tests.e2e.test_openstack_clients import clouds, drivers, site  # noqa: F401
from tests.support.cloud import Stubs, Tenant
from tests.support.gateway import Clouds, GatewayThread
from tests.support.topology import Site

pytestmark = pytest.mark.parametrize("api", ["sqlite"], indirect=True)


def host_state(admin: Stubs, host: str) -> tuple[int, str]:
    found = admin.topology.GetHost(tapi.GetHostRequest(name=f"hosts/{host}"))
    return found.state, found.disabled_reason


def test_compute_services_disable_and_enable_hosts(
    clouds: Clouds,  # noqa: F811
    site: Site,  # noqa: F811
    admin: Stubs,
    tenant: Tenant,
    gateway: GatewayThread,
) -> None:
    listed = clouds.json("root", "compute", "service", "list", "--long")
    ours = sorted((s for s in listed if s["Zone"] == site.zone), key=lambda s: s["Host"])
    assert len(ours) == 2
    assert {(s["Binary"], s["Status"], s["State"]) for s in ours} == {
        ("nova-compute", "enabled", "up")
    }
    host = ours[0]["Host"]
    hypervisor_ids = {h["Hypervisor Hostname"] for h in clouds.json("root", "hypervisor", "list")}
    assert {s["Host"] for s in ours} <= hypervisor_ids

    clouds.run(
        "root", "compute", "service", "set", "--disable", "--disable-reason", "disk swap",
        host, "nova-compute",
    )  # fmt: skip
    assert host_state(admin, host) == (tpb.Host.STATE_DISABLED, "disk swap")
    (shown,) = clouds.json("root", "compute", "service", "list", "--long", "--host", host)
    assert (shown["Status"], shown["Disabled Reason"]) == ("disabled", "disk swap")
    clouds.run("root", "compute", "service", "set", "--enable", host, "nova-compute")
    assert host_state(admin, host) == (tpb.Host.STATE_ENABLED, "")

    # Members may neither list nor change services, nor list hypervisors (Nova's policy,
    # though Kumo's own API shows hosts to everyone signed in).
    for args in (("compute", "service", "list"), ("hypervisor", "list")):
        refused = clouds.run("member", *args, check=False)
        assert refused.returncode != 0 and "403" in refused.stderr, refused.stderr
    failed = clouds.run(
        "member", "compute", "service", "set", "--disable", host, "nova-compute", check=False
    )
    assert failed.returncode != 0  # (the CLI prints no status code here)
    url = f"{gateway.url}/compute/v2.1/os-services"
    member = {"X-Auth-Token": tenant.stubs["member"].token or ""}
    mine = {"host": host, "binary": "nova-compute"}
    assert requests.put(f"{url}/disable", json=mine, headers=member).status_code == 403
    assert host_state(admin, host)[0] == tpb.Host.STATE_ENABLED

    # Bad input over HTTP; nothing changes.
    root = {"X-Auth-Token": admin.token or ""}
    cases: list[tuple[str, Any, int, str]] = [
        ("disable", {"binary": "nova-compute"}, 400, "badRequest"),
        ("disable", {"host": host, "binary": "nova-scheduler"}, 400, "badRequest"),
        ("disable", ["x"], 400, "badRequest"),
        ("disable-log-reason", {"host": host, "binary": "nova-compute"}, 400, "badRequest"),
        ("disable", {"host": "no-such-host", "binary": "nova-compute"}, 404, "itemNotFound"),
        ("force-down", {"host": host, "binary": "nova-compute", "forced_down": True}, 501, ""),
    ]
    for action, body, status, shape in cases:
        answer = requests.put(f"{url}/{action}", json=body, headers=root)
        assert answer.status_code == status and shape in answer.text, (action, answer.text)
    assert host_state(admin, host)[0] == tpb.Host.STATE_ENABLED
    assert requests.get(url, params={"binary": "nova-scheduler"}, headers=root).json() == {
        "services": []
    }

    # From 2.53 services and hypervisors are named by the host's uid, and a PUT names the
    # service in its path; the old action paths are then 400 (not uuids).
    v253 = {**root, "OpenStack-API-Version": "compute 2.53"}
    (service,) = requests.get(url, params={"host": host}, headers=v253).json()["services"]
    uid = admin.topology.GetHost(tapi.GetHostRequest(name=f"hosts/{host}")).uid
    assert service["id"] == uid
    changed = requests.put(
        f"{url}/{uid}", json={"status": "disabled", "disabled_reason": "fans"}, headers=v253
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["service"]["status"] == "disabled"
    assert changed.json()["service"]["disabled_reason"] == "fans"
    assert host_state(admin, host) == (tpb.Host.STATE_DISABLED, "fans")
    refusals: list[tuple[str, Any, int]] = [
        ("disable", mine, 400),
        (uid, {"status": "enabled", "disabled_reason": "x"}, 400),
        (uid, {"status": "sideways"}, 400),
        (uid, {}, 400),
        (uid, {"host": host}, 400),
        (uid, {"forced_down": True}, 501),
        ("00000000-0000-4000-8000-000000000000", {"status": "enabled"}, 404),
    ]
    for where, body, status in refusals:
        answer = requests.put(f"{url}/{where}", json=body, headers=v253)
        assert answer.status_code == status, (where, body, answer.text)
    assert host_state(admin, host) == (tpb.Host.STATE_DISABLED, "fans")
    enabled = requests.put(f"{url}/{uid}", json={"status": "enabled"}, headers=v253)
    assert enabled.json()["service"]["status"] == "enabled"
    assert host_state(admin, host) == (tpb.Host.STATE_ENABLED, "")
    assert requests.put(f"{url}/nonsense", json=mine, headers=root).status_code == 404

    hypervisors = f"{gateway.url}/compute/v2.1/os-hypervisors"
    found = requests.get(
        f"{hypervisors}/detail", params={"hypervisor_hostname_pattern": host}, headers=v253
    ).json()["hypervisors"]
    assert [(h["id"], h["service"]["id"]) for h in found] == [(uid, uid)]
    shown = requests.get(f"{hypervisors}/{uid}", headers=v253).json()["hypervisor"]
    assert shown["hypervisor_hostname"] == host
    assert requests.get(f"{hypervisors}/{uid}", headers=root).status_code == 404

    # Host aggregates are Kumo's pools, read only; `hypervisor show` reads them (and the
    # uptime, which is 501 as for a Nova driver that cannot tell).
    aggregates = {a["Name"]: a for a in clouds.json("root", "aggregate", "list", "--long")}
    assert site.pool in aggregates and aggregates[site.pool]["Availability Zone"] == site.zone
    shown = clouds.json("root", "aggregate", "show", site.pool)
    assert sorted(shown["hosts"]) == sorted(s["Host"] for s in ours)
    hypervisor = clouds.json("root", "hypervisor", "show", host)
    assert hypervisor["aggregates"] == [site.pool] and hypervisor["id"] == uid
    made = clouds.run("root", "aggregate", "create", "new-aggregate", check=False)
    assert made.returncode != 0
    aggregates_url = f"{gateway.url}/compute/v2.1/os-aggregates"
    for method, where, headers, status in (
        ("GET", aggregates_url, member, 403),
        ("POST", aggregates_url, root, 501),
        ("POST", aggregates_url, member, 403),
        ("GET", f"{aggregates_url}/999999", root, 404),
        ("DELETE", f"{aggregates_url}/1", root, 501),
    ):
        answer = requests.request(method, where, headers=headers, json={"aggregate": {}})
        assert answer.status_code == status, (method, where, answer.text)


def test_hypervisor_statistics_sum_the_hosts(
    clouds: Clouds,  # noqa: F811
    site: Site,  # noqa: F811
    admin: Stubs,
    tenant: Tenant,
    gateway: GatewayThread,
) -> None:
    """`openstack hypervisor stats show` (GET /os-hypervisors/statistics at 2.1): every
    host's sizes, usage and placed instances summed; administrators only; gone at 2.88."""
    url = f"{gateway.url}/compute/v2.1/os-hypervisors"
    root = {"X-Auth-Token": admin.token or ""}

    def sums() -> tuple[list[tpb.Host], dict[str, int]]:
        hosts = list(admin.topology.ListHosts(tapi.ListHostsRequest(page_size=1000)).hosts)
        return hosts, {
            "count": len(hosts),
            "vcpus": sum(h.capacity.vcpus for h in hosts),
            "vcpus_used": sum(h.allocated.vcpus for h in hosts),
            "memory_mb": sum(h.capacity.memory_mib for h in hosts),
            "memory_mb_used": sum(h.allocated.memory_mib for h in hosts),
            "free_ram_mb": sum(h.capacity.memory_mib - h.allocated.memory_mib for h in hosts),
            "local_gb": sum(h.capacity.disk_gib for h in hosts),
            "local_gb_used": sum(h.allocated.disk_gib for h in hosts),
            "free_disk_gb": sum(h.capacity.disk_gib - h.allocated.disk_gib for h in hosts),
            "disk_available_least": sum(h.capacity.disk_gib - h.allocated.disk_gib for h in hosts),
            "running_vms": sum(h.instance_count for h in hosts),
        }

    # (servers of earlier tests may still be going: compared once two reads agree)
    for _ in range(40):
        hosts, expected = sums()
        answer = requests.get(f"{url}/statistics", headers=root)
        if answer.json() == {"hypervisor_statistics": expected} and sums()[1] == expected:
            break
        time.sleep(0.25)
    assert answer.json() == {"hypervisor_statistics": expected}, answer.text
    assert len(hosts) >= 2
    assert clouds.json("root", "hypervisor", "stats", "show") == expected
    host = hosts[0]
    (detail,) = (
        h
        for h in requests.get(f"{url}/detail", headers=root).json()["hypervisors"]
        if h["hypervisor_hostname"] == host.name.removeprefix("hosts/")
    )
    assert (detail["running_vms"], detail["free_ram_mb"]) == (
        host.instance_count,
        host.capacity.memory_mib - host.allocated.memory_mib,
    )
    member = {"X-Auth-Token": tenant.stubs["member"].token or ""}
    assert requests.get(f"{url}/statistics", headers=member).status_code == 403
    v288 = {**root, "OpenStack-API-Version": "compute 2.88"}
    gone = requests.get(f"{url}/statistics", headers=v288)
    assert gone.status_code == 404 and "itemNotFound" in gone.text, gone.text
