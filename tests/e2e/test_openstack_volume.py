"""Cinder v3 through the gateway with the real `openstack` CLI and openstacksdk: volume
types (administrators), volumes (create, list, show, extend, delete), snapshots, limits,
error bodies and tenancy."""

from __future__ import annotations

import time
from typing import Any

import requests

from tests.e2e.test_openstack_clients import _upload_with_cli, clouds, site  # noqa: F401
from tests.integration.test_compute_resources import make_flavor
from tests.support.cloud import Stubs, Tenant, unique
from tests.support.gateway import Clouds, GatewayThread
from tests.support.topology import Site


def _until(clouds: Clouds, kind: list[str], ident: str, status: str) -> dict[str, object]:  # noqa: F811
    deadline = time.monotonic() + 60
    while True:
        shown: dict[str, object] = clouds.json("member", *kind, "show", ident)
        if shown["status"] == status or time.monotonic() > deadline:
            return shown
        time.sleep(0.5)


def test_volumes_with_the_cli(
    clouds: Clouds,  # noqa: F811
    gateway: GatewayThread,
    admin: Stubs,
    site: Site,  # noqa: F811
    tenant: Tenant,
    other_tenant: Tenant,
) -> None:
    """type create (root) and list; volume create, show, list, extend; snapshot create,
    list, delete; attach to a server and detach (Nova's os-volume_attachments); volume
    delete; limits; NotFound shapes and another project's 404."""
    zone = site.zone
    kind = unique("vt")
    refused = clouds.run("member", "volume", "type", "create", unique("vt"), check=False)
    assert refused.returncode != 0 and "403" in refused.stderr
    clouds.run("root", "volume", "type", "create", kind)
    assert kind in {t["Name"] for t in clouds.json("member", "volume", "type", "list")}

    name = unique("vol")
    made = clouds.json(
        "member", "volume", "create", "--size", "1", "--type", kind,
        "--availability-zone", zone, name,
    )  # fmt: skip
    assert made["size"] == 1 and made["type"] == kind
    shown = _until(clouds, ["volume"], name, "available")
    assert shown["status"] == "available", shown
    assert made["id"] in {v["ID"] for v in clouds.json("member", "volume", "list")}

    clouds.run("member", "volume", "set", "--size", "2", name)
    assert _until(clouds, ["volume"], name, "available")["size"] == 2

    snap = clouds.json("member", "volume", "snapshot", "create", "--volume", name, unique("sn"))
    assert _until(clouds, ["volume", "snapshot"], snap["id"], "available")["status"] == "available"
    assert snap["id"] in {s["ID"] for s in clouds.json("member", "volume", "snapshot", "list")}
    clouds.run("member", "volume", "snapshot", "delete", snap["id"])

    server = clouds.json(
        "member", "server", "create", "--flavor", make_flavor(admin, 1, 128, 1).split("/")[-1],
        "--image", _upload_with_cli(clouds, unique("im")), "--availability-zone", zone,
        "--wait", unique("vm"),
    )  # fmt: skip
    clouds.run("member", "server", "add", "volume", server["id"], made["id"])
    in_use = _until(clouds, ["volume"], name, "in-use")
    assert in_use["status"] == "in-use", in_use
    assert server["id"] in str(in_use["attachments"])
    clouds.run("member", "server", "remove", "volume", server["id"], made["id"])
    assert _until(clouds, ["volume"], name, "available")["status"] == "available"
    clouds.run("member", "server", "delete", "--wait", server["id"])

    limits = {
        row["Name"]: row["Value"] for row in clouds.json("member", "limits", "show", "--absolute")
    }
    assert limits["total_volumes_used"] >= 1, limits

    url = f"{gateway.url}/volume/v3"
    theirs = {"X-Auth-Token": other_tenant.stubs["admin"].token or ""}
    hidden = requests.get(f"{url}/volumes/{made['id']}", headers=theirs)
    assert hidden.status_code == 404 and hidden.json()["itemNotFound"]["code"] == 404
    mine = {"X-Auth-Token": tenant.stubs["member"].token or ""}
    bad = requests.post(f"{url}/volumes", headers=mine, json={"volume": {"size": 0}})
    assert bad.status_code == 400 and "badRequest" in bad.json()
    assert requests.get(f"{url}/volumes").status_code == 401

    clouds.run("member", "volume", "delete", name)
    deadline = time.monotonic() + 60
    while name in {v["Name"] for v in clouds.json("member", "volume", "list")}:
        assert time.monotonic() < deadline, "the volume was not deleted"
        time.sleep(0.5)
    clouds.run("root", "volume", "type", "delete", kind)


def test_boot_from_a_volume_made_from_an_image(
    clouds: Clouds,  # noqa: F811
    gateway: GatewayThread,
    admin: Stubs,
    site: Site,  # noqa: F811
    tenant: Tenant,
    other_tenant: Tenant,
) -> None:
    """`volume create --image` makes a bootable volume holding the image; `server create
    --volume` boots from it (in its zone; no image shown; the volume in-use); deleting the
    server leaves the volume available. Mappings Kumo cannot serve answer 400 in Nova's
    shape, as does another project's volume."""
    image = _upload_with_cli(clouds, unique("im"))
    image_id = clouds.json("member", "image", "show", image)["id"]
    kind = unique("vt")
    clouds.run("root", "volume", "type", "create", kind)
    name = unique("vol")
    made = clouds.json(
        "member", "volume", "create", "--image", image, "--size", "1", "--type", kind,
        "--availability-zone", site.zone, name,
    )  # fmt: skip
    shown = _until(clouds, ["volume"], name, "available")
    assert shown["status"] == "available" and str(shown["bootable"]).lower() == "true", shown
    assert shown["volume_image_metadata"] == {"image_id": image_id}, shown

    flavor = make_flavor(admin, 1, 128, 1).split("/")[-1]
    server = clouds.json(
        "member", "server", "create", "--flavor", flavor, "--volume", made["id"], "--wait",
        unique("vm"),
    )  # fmt: skip
    assert server["status"] == "ACTIVE", server
    url = f"{gateway.url}/compute/v2.1/servers"
    mine = {"X-Auth-Token": tenant.stubs["member"].token or ""}
    booted = requests.get(f"{url}/{server['id']}", headers=mine).json()["server"]
    assert (booted["OS-EXT-AZ:availability_zone"], booted["image"]) == (site.zone, "")
    in_use = _until(clouds, ["volume"], name, "in-use")
    assert server["id"] in str(in_use["attachments"]), in_use

    boot: dict[str, Any] = {"boot_index": 0, "uuid": made["id"], "source_type": "volume"}
    for mapping in (
        {**boot, "destination_type": "volume", "delete_on_termination": True},
        {"boot_index": 0, "uuid": image_id, "source_type": "image", "destination_type": "volume"},
        {**boot, "boot_index": 1, "destination_type": "volume"},
        {**boot, "uuid": unique("nope"), "destination_type": "volume"},
        {**boot, "boot_index": "first", "destination_type": "volume"},
    ):
        body: dict[str, Any] = {
            "server": {"name": "x", "flavorRef": flavor, "block_device_mapping_v2": [mapping]}
        }
        refused = requests.post(url, headers=mine, json=body)
        assert refused.status_code == 400, (mapping, refused.text)
        assert refused.json()["badRequest"]["code"] == 400
    theirs = {"X-Auth-Token": other_tenant.stubs["admin"].token or ""}
    body = {"server": {"name": "x", "flavorRef": flavor, "block_device_mapping_v2": [boot]}}
    foreign = requests.post(url, headers=theirs, json=body)
    assert foreign.status_code == 400 and "badRequest" in foreign.json(), foreign.text
    # The volume is in use: a second server cannot boot from it (Kumo's refusal, 409).
    again = requests.post(url, headers=mine, json=body)
    assert again.status_code == 409 and "conflictingRequest" in again.json(), again.text

    clouds.run("member", "server", "delete", "--wait", server["id"])
    assert _until(clouds, ["volume"], name, "available")["status"] == "available"
    clouds.run("member", "volume", "delete", name)
    deadline = time.monotonic() + 60
    while name in {v["Name"] for v in clouds.json("member", "volume", "list")}:
        assert time.monotonic() < deadline, "the volume was not deleted"
        time.sleep(0.5)
    clouds.run("root", "volume", "type", "delete", kind)
