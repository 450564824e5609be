"""Cinder backups over Kumo's: `openstack volume backup create/list/show/restore/delete`,
incremental after the first, and the refusals over HTTP."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from tests.e2e.test_openstack_clients import clouds, drivers, site  # noqa: F401
from tests.e2e.test_openstack_volume import _delete_volume_and_type, _new_volume, _until
from tests.support.cloud import Tenant
from tests.support.gateway import Clouds, GatewayThread
from tests.support.topology import Site

pytestmark = pytest.mark.parametrize("api", ["sqlite"], indirect=True)


def _gone(cli: Clouds, kind: list[str], ident: str) -> None:
    deadline = time.monotonic() + 60
    while ident in {item["ID"] for item in cli.json("member", *kind, "list")}:
        assert time.monotonic() < deadline, f"{ident} was not deleted"
        time.sleep(0.5)


def test_volume_backups_with_the_cli(
    clouds: Clouds,  # noqa: F811
    gateway: GatewayThread,
    site: Site,  # noqa: F811
    tenant: Tenant,
    other_tenant: Tenant,
) -> None:
    kind, name, volume = _new_volume(clouds, site.zone)

    first = clouds.json("member", "volume", "backup", "create", "--name", "b1", name)["id"]
    assert _until(clouds, ["volume", "backup"], first, "available")["status"] == "available"
    second = clouds.json("member", "volume", "backup", "create", "--name", "b2", name)["id"]
    shown = _until(clouds, ["volume", "backup"], second, "available")
    assert (shown["volume_id"], shown["is_incremental"], shown["size"]) == (volume, True, 1)
    base = clouds.json("member", "volume", "backup", "show", first)
    assert (base["is_incremental"], base["has_dependent_backups"]) == (False, True)
    listed = {b["ID"]: b["Name"] for b in clouds.json("member", "volume", "backup", "list")}
    assert listed == {first: "b1", second: "b2"}

    restored = clouds.json("member", "volume", "backup", "restore", second, "restored")
    assert (restored["id"], restored["volume_name"]) == (second, "restored")
    again = _until(clouds, ["volume"], restored["volume_id"], "available")
    assert (again["name"], again["size"], again["availability_zone"]) == ("restored", 1, site.zone)

    # Refusals over HTTP: each Cinder's shape, nothing made.
    url = f"{gateway.url}/volume/v3/backups"
    member = {"X-Auth-Token": tenant.stubs["member"].token or ""}
    theirs = {"X-Auth-Token": other_tenant.stubs["admin"].token or ""}
    cases: list[tuple[str, str, Any, dict[str, str], int]] = [
        ("POST", url, {"backup": {"volume_id": "nope"}}, member, 404),
        ("POST", url, {"backup": {"volume_id": volume, "force": "yes"}}, member, 400),
        ("POST", url, {"backup": {"volume_id": volume, "snapshot_id": "s"}}, member, 501),
        ("POST", url, {"backup": [volume]}, member, 400),
        ("POST", url, {"volume_id": volume}, member, 400),
        ("POST", f"{url}/{first}/restore", {"restore": {"volume_id": volume}}, member, 501),
        ("POST", f"{url}/{first}/restore", {"restore": "x"}, member, 400),
        ("GET", f"{url}/{first}", None, theirs, 404),
        ("DELETE", f"{url}/{first}", None, theirs, 404),
        ("POST", f"{url}/{first}/restore", {"restore": {"name": "x"}}, theirs, 404),
    ]
    for method, where, body, headers, status in cases:
        answer = requests.request(method, where, json=body, headers=headers)
        assert answer.status_code == status, (method, where, body, answer.text)
        shape = "itemNotFound" if status == 404 else "badRequest" if status == 400 else ""
        assert shape in answer.text, answer.text
    assert set(listed) == {b["ID"] for b in clouds.json("member", "volume", "backup", "list")}

    for backup in (second, first):
        clouds.run("member", "volume", "backup", "delete", backup)
        _gone(clouds, ["volume", "backup"], backup)
    clouds.run("member", "volume", "delete", restored["volume_id"])
    _gone(clouds, ["volume"], restored["volume_id"])
    _delete_volume_and_type(clouds, name, kind)
