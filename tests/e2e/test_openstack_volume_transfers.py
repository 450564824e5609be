"""Cinder volume transfers over Kumo's: `openstack volume transfer request
create/list/show/accept/delete` moving a volume between two projects."""

from __future__ import annotations

import pytest
import requests

from tests.e2e.test_openstack_clients import clouds, drivers, site  # noqa: F401
from tests.e2e.test_openstack_volume import _delete_volume_and_type, _new_volume
from tests.support.cloud import PASSWORD, Tenant
from tests.support.gateway import Clouds, GatewayThread
from tests.support.topology import Site

pytestmark = pytest.mark.parametrize("api", ["sqlite"], indirect=True)


def test_volume_transfers_with_the_cli(
    clouds: Clouds,  # noqa: F811
    gateway: GatewayThread,
    site: Site,  # noqa: F811
    tenant: Tenant,
    other_tenant: Tenant,
) -> None:
    clouds.add("other", other_tenant.users["member"], PASSWORD, other_tenant.project)
    kind, _, volume = _new_volume(clouds, site.zone)

    request = ["volume", "transfer", "request"]
    offered = clouds.json("member", *request, "create", "--name", "gift", volume)
    assert offered["volume_id"] == volume and offered["auth_key"]
    assert offered["id"].startswith(f"{tenant.project}.")
    listed = clouds.json("member", *request, "list")
    assert [(t["ID"], t["Volume"]) for t in listed] == [(offered["id"], volume)]
    assert clouds.json("member", *request, "show", offered["id"])["volume_id"] == volume

    # A wrong key looks like no transfer; the right one moves the volume.
    url = f"{gateway.url}/volume/v3/volume-transfers/{offered['id']}/accept"
    theirs = {"X-Auth-Token": other_tenant.stubs["member"].token or ""}
    wrong = requests.post(url, json={"accept": {"auth_key": "wrong"}}, headers=theirs)
    assert wrong.status_code == 404 and "itemNotFound" in wrong.json(), wrong.text
    malformed = requests.post(url, json={"accept": {}}, headers=theirs)
    assert malformed.status_code == 400 and "badRequest" in malformed.json()
    accepted = clouds.json(
        "other", *request, "accept", "--auth-key", offered["auth_key"], offered["id"]
    )
    assert accepted["volume_id"] == volume
    assert clouds.json("other", "volume", "show", volume)["status"] == "available"
    assert volume not in {v["ID"] for v in clouds.json("member", "volume", "list")}
    assert clouds.json("member", *request, "list") == []
    again = requests.post(url, json={"accept": {"auth_key": offered["auth_key"]}}, headers=theirs)
    assert again.status_code == 404

    # Offered back, then withdrawn.
    back = clouds.json("other", *request, "create", volume)
    clouds.run("other", *request, "delete", back["id"])
    assert clouds.json("other", *request, "list") == []
    unknown = requests.get(
        f"{gateway.url}/volume/v3/os-volume-transfer/no-dot-here", headers=theirs
    )
    assert unknown.status_code == 404

    _delete_volume_and_type(clouds, volume, kind, cloud="other")
