"""Nova's os-instance-actions over Kumo operations: `openstack server event list/show` on a
server of fake hosts, request ids joining the action to the HTTP call that made it."""

from __future__ import annotations

import time

import pytest
import requests

from kumo.drivers.compute.fake import FakeDriver
from tests.e2e.test_openstack_clients import (  # noqa: F401
    _upload_with_cli,
    clouds,
    drivers,
    hostless_server,
    site,
)
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

    # From 2.58: `updated_at`, and pages by `limit` and `marker` (a request id) with a
    # `next` link when a page is full; `changes-since` keeps the actions updated since.
    v258 = {**member, "OpenStack-API-Version": "compute 2.58"}
    pages = f"{url}/os-instance-actions"
    first = requests.get(pages, headers=v258, params={"limit": "1"}).json()
    ((stop,),) = [first["instanceActions"]]
    assert stop["request_id"] == request_id and stop["updated_at"]
    following = requests.get(first["links"][0]["href"], headers=v258).json()
    assert [a["action"] for a in following["instanceActions"]] == ["create"]
    assert "links" in following  # (full: one asked, one given)
    after = requests.get(
        pages,
        headers=v258,
        params={"limit": "1", "marker": following["instanceActions"][0]["request_id"]},
    ).json()
    assert after == {"instanceActions": []}
    since = requests.get(pages, headers=v258, params={"changes-since": stop["updated_at"]}).json()
    assert [a["action"] for a in since["instanceActions"]] == ["stop"]
    v266 = {**member, "OpenStack-API-Version": "compute 2.66"}
    before = requests.get(pages, headers=v266, params={"changes-before": stop["updated_at"]})
    assert [a["action"] for a in before.json()["instanceActions"]] == ["stop", "create"]
    created_at = following["instanceActions"][0]["updated_at"]
    before = requests.get(pages, headers=v266, params={"changes-before": created_at})
    assert [a["action"] for a in before.json()["instanceActions"]] == ["create"]
    assert "updated_at" not in requests.get(pages, headers=member).json()["instanceActions"][0]
    for bad in ({"limit": "0"}, {"limit": "x"}, {"marker": "req-nope"}, {"changes-since": "soon"}):
        refused = requests.get(pages, headers=v258, params=bad)
        assert refused.status_code == 400 and "badRequest" in refused.json(), (bad, refused.text)

    # From 2.62 an event has its host's hostId, and the host itself for administrators.
    v262 = {"OpenStack-API-Version": "compute 2.62"}
    host_id = clouds.json("member", "server", "show", server)["hostId"]
    (event,) = requests.get(f"{pages}/{request_id}", headers={**member, **v262}).json()[
        "instanceAction"
    ]["events"]
    assert event["hostId"] == host_id != "" and "host" not in event
    root = {"X-Auth-Token": admin.token or "", **v262}
    (event,) = requests.get(f"{pages}/{request_id}", headers=root).json()["instanceAction"][
        "events"
    ]
    assert event["host"] == clouds.json("root", "server", "show", server)["OS-EXT-SRV-ATTR:host"]

    # Unknown request ids and other projects' servers are 404.
    theirs = {"X-Auth-Token": other_tenant.stubs["admin"].token or ""}
    for where, headers in (
        (f"{url}/os-instance-actions/req-nope", member),
        (f"{url}/os-instance-actions", theirs),
        (f"{url}/os-instance-actions/{request_id}", theirs),
    ):
        answer = requests.get(where, headers=headers)
        assert answer.status_code == 404 and "itemNotFound" in answer.json(), answer.text
    # changes-since lists what changed since, deleted servers included (DELETED), and
    # from 2.66 changes-before what changed before; a window ending before it starts is 400.
    mark = requests.get(f"{url}/os-instance-actions", headers=v258).json()
    since = mark["instanceActions"][0]["updated_at"]
    clouds.run("member", "server", "delete", "--wait", server)
    servers = f"{gateway.url}/compute/v2.1/servers/detail"
    changed = requests.get(servers, headers=member, params={"changes-since": since}).json()
    assert [(s["id"], s["status"]) for s in changed["servers"]] == [(server, "DELETED")]
    earlier = requests.get(servers, headers=v266, params={"changes-before": since}).json()
    assert server not in {s["id"] for s in earlier["servers"]}
    for bad in (
        {"changes-since": "later"},
        {"changes-since": since, "changes-before": "2000-01-01"},
    ):
        refused = requests.get(servers, headers=v266, params=bad)
        assert refused.status_code == 400 and "badRequest" in refused.json(), (bad, refused.text)


def test_failed_event_details(
    clouds: Clouds,  # noqa: F811
    gateway: GatewayThread,
    admin: Stubs,
    tenant: Tenant,
) -> None:
    """From 2.84 an event has `details`: a failed one's error message (here a build in a
    zone without hosts), for members too."""
    server, _ = hostless_server(clouds, gateway, admin, tenant)
    member = {"X-Auth-Token": tenant.stubs["member"].token or ""}
    url = f"{gateway.url}/compute/v2.1/servers/{server}"
    deadline = time.monotonic() + 60
    while requests.get(url, headers=member).json()["server"]["status"] != "ERROR":
        assert time.monotonic() < deadline, "the build did not fail"
        time.sleep(0.2)
    (created,) = requests.get(f"{url}/os-instance-actions", headers=member).json()[
        "instanceActions"
    ]
    action = f"{url}/os-instance-actions/{created['request_id']}"

    def event(version: str) -> dict[str, object]:
        headers = {**member, "OpenStack-API-Version": f"compute {version}"}
        (found,) = requests.get(action, headers=headers).json()["instanceAction"]["events"]
        return dict(found)

    assert "details" not in event("2.83")
    failed = event("2.84")
    assert failed["result"] == "Error" and isinstance(failed["details"], str), failed
    assert failed["details"] and "traceback" not in failed
