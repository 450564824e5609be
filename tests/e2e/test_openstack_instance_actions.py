"""Nova's os-instance-actions over Kumo operations: `openstack server event list/show` on a
server of fake hosts, request ids joining the action to the HTTP call that made it."""

from __future__ import annotations

import time

import pytest
import requests

from kumo.drivers.compute.fake import FakeDriver
from tests.e2e.test_openstack_clients import _upload_with_cli, clouds, drivers, site  # noqa: F401
from tests.integration.test_compute_resources import make_flavor
from tests.support.cloud import Stubs, Tenant, unique
from tests.support.gateway import Clouds, GatewayThread
from tests.support.topology import Site

pytestmark = pytest.mark.parametrize("api", ["sqlite"], indirect=True)


def test_server_events(
    clouds: Clouds,  # noqa: F811
    site: Site,  # noqa: F811
    drivers: list[FakeDriver],  # noqa: F811
    admin: Stubs,
    tenant: Tenant,
    other_tenant: Tenant,
    gateway: GatewayThread,
) -> None:
    flavor = make_flavor(admin, 1, 128, 1).rsplit("/", 1)[-1]
    image = _upload_with_cli(clouds, unique("im"))
    server = clouds.json(
        "member", "server", "create", "--flavor", flavor, "--image", image,
        "--availability-zone", site.zone, "--wait", unique("ev"),
    )["id"]  # fmt: skip
    member = {"X-Auth-Token": tenant.stubs["member"].token or ""}
    url = f"{gateway.url}/compute/v2.1/servers/{server}"
    stopped = requests.post(f"{url}/action", headers=member, json={"os-stop": None})
    assert stopped.status_code == 202, stopped.text
    request_id = stopped.headers["x-openstack-request-id"]
    deadline = time.monotonic() + 60
    while clouds.json("member", "server", "show", server)["status"] != "SHUTOFF":
        assert time.monotonic() < deadline, "the server did not stop"
        time.sleep(0.5)

    listed = clouds.json("member", "server", "event", "list", "--long", server)
    assert [(e["Action"], e["Server ID"]) for e in listed] == [
        ("stop", server), ("create", server),
    ]  # fmt: skip
    assert listed[0]["Request ID"] == request_id
    assert listed[0]["User ID"] == tenant.users["member"]
    assert listed[0]["Project ID"] == tenant.project

    # Events are for cloud administrators (Nova before 2.51); the member sees the action.
    shown = clouds.json("root", "server", "event", "show", server, request_id)
    assert shown["action"] == "stop" and shown["request_id"] == request_id
    (event,) = shown["events"]
    assert (event["event"], event["result"]) == ("compute_stop", "Success")
    assert event["finish_time"] is not None
    mine = requests.get(f"{url}/os-instance-actions/{request_id}", headers=member).json()
    assert mine["instanceAction"]["action"] == "stop" and "events" not in mine["instanceAction"]
    # From 2.51 members see them too, without the traceback.
    v251 = {**member, "OpenStack-API-Version": "compute 2.51"}
    mine = requests.get(f"{url}/os-instance-actions/{request_id}", headers=v251).json()
    (event,) = mine["instanceAction"]["events"]
    assert event["event"] == "compute_stop" and "traceback" not in event

    # Unknown request ids and other projects' servers are 404.
    theirs = {"X-Auth-Token": other_tenant.stubs["admin"].token or ""}
    for where, headers in (
        (f"{url}/os-instance-actions/req-nope", member),
        (f"{url}/os-instance-actions", theirs),
        (f"{url}/os-instance-actions/{request_id}", theirs),
    ):
        answer = requests.get(where, headers=headers)
        assert answer.status_code == 404 and "itemNotFound" in answer.json(), answer.text
    clouds.run("member", "server", "delete", "--wait", server)
