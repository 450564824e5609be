"""Cinder v3 through the gateway with the real `openstack` CLI and openstacksdk: volume
types (administrators), volumes (create, list, show, extend, delete), snapshots, limits,
error bodies and tenancy."""

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
from tests.support.storage import ensure_default_type
from tests.support.topology import Site

# These runs test the clients against the gateway's dialects; both databases are
# covered beneath the gateway by the integration tests, so SQLite only here.
pytestmark = pytest.mark.parametrize("api", ["sqlite"], indirect=True)


def _until(clouds: Clouds, kind: list[str], ident: str, status: str) -> dict[str, object]:  # noqa: F811
    deadline = time.monotonic() + 60
    while True:
        shown: dict[str, object] = clouds.json("member", *kind, "show", ident)
        if shown["status"] == status or time.monotonic() > deadline:
            return shown
        time.sleep(0.5)


def _new_volume(clouds: Clouds, zone: str) -> tuple[str, str, str]:  # noqa: F811
    """(type, name, id) of a new 1 GiB volume of the member's, of a new type (made by
    root), available."""
    kind, name = unique("vt"), unique("vol")
    clouds.run("root", "volume", "type", "create", kind)
    volume = clouds.json(
        "member", "volume", "create", "--size", "1", "--type", kind,
        "--availability-zone", zone, name,
    )["id"]  # fmt: skip
    assert _until(clouds, ["volume"], name, "available")["status"] == "available"
    return kind, name, str(volume)


def _delete_volume_and_type(
    clouds: Clouds,  # noqa: F811
    name: str,
    kind: str,
    cloud: str = "member",
) -> None:
    """Deletes the volume (`name` or id) of `cloud`'s user, waits until it is gone, then
    deletes its type (root)."""
    clouds.run(cloud, "volume", "delete", name)
    deadline = time.monotonic() + 60
    while name in {
        field for v in clouds.json(cloud, "volume", "list") for field in (v["Name"], v["ID"])
    }:
        assert time.monotonic() < deadline, "the volume was not deleted"
        time.sleep(0.5)
    clouds.run("root", "volume", "type", "delete", kind)


def test_volumes_with_the_cli(
    clouds: Clouds,  # noqa: F811
    gateway: GatewayThread,
    admin: Stubs,
    site: Site,  # noqa: F811
    tenant: Tenant,
    other_tenant: Tenant,
) -> None:
    """type create (root) and list; volume create, show, list, extend; snapshot create,
    list, delete; attach to a server and detach (Nova's os-volume_attachments), backed up
    while attached only with --force; volume delete; limits; NotFound shapes and another
    project's 404."""
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
    # A locked server takes no volume and gives none back (409), as in Nova.
    clouds.run("member", "server", "lock", server["id"])
    locked = clouds.run("member", "server", "add", "volume", server["id"], made["id"], check=False)
    assert locked.returncode != 0 and "409" in locked.stderr, locked.stderr
    clouds.run("member", "server", "unlock", server["id"])
    clouds.run("member", "server", "add", "volume", server["id"], made["id"])
    in_use = _until(clouds, ["volume"], name, "in-use")
    assert in_use["status"] == "in-use", in_use
    assert server["id"] in str(in_use["attachments"])
    # An in-use volume is backed up only with --force (Cinder's rule).
    refused = clouds.run("member", "volume", "backup", "create", name, check=False)
    assert refused.returncode != 0 and "400" in refused.stderr, refused.stderr
    assert clouds.json("member", "volume", "backup", "list") == []
    forced = clouds.json("member", "volume", "backup", "create", "--force", name)["id"]
    assert _until(clouds, ["volume", "backup"], forced, "available")["status"] == "available"
    clouds.run("member", "volume", "backup", "delete", forced)
    deadline = time.monotonic() + 60
    while clouds.json("member", "volume", "backup", "list"):
        assert time.monotonic() < deadline, "the backup was not deleted"
        time.sleep(0.5)
    clouds.run("member", "server", "lock", server["id"])
    locked = clouds.run(
        "member", "server", "remove", "volume", server["id"], made["id"], check=False
    )
    assert locked.returncode != 0 and "409" in locked.stderr, locked.stderr
    clouds.run("member", "server", "unlock", server["id"])
    clouds.run("member", "server", "remove", "volume", server["id"], made["id"])
    assert _until(clouds, ["volume"], name, "available")["status"] == "available"
    # The attach and the detach are the server's actions (not the refused tries), as in Nova.
    actions = clouds.json("member", "server", "event", "list", server["id"])
    assert [a["Action"] for a in actions][:2] == ["detach_volume", "attach_volume"], actions
    assert actions[-1]["Action"] == "create"
    attach_id = actions[1]["Request ID"]
    attached = clouds.json("root", "server", "event", "show", server["id"], attach_id)
    assert [(e["event"], e["result"]) for e in attached["events"]] == [
        ("compute_attach_volume", "Success")
    ]
    # A multiattach volume is attached from compute microversion 2.60 (400 before).
    member = {"X-Auth-Token": tenant.stubs["member"].token or ""}
    made_shared = requests.post(
        f"{gateway.url}/volume/v3/volumes",
        headers=member,
        json={
            "volume": {
                "size": 1, "volume_type": kind, "availability_zone": zone, "multiattach": True,
            }
        },
    )  # fmt: skip
    assert made_shared.status_code == 202, made_shared.text
    shared = made_shared.json()["volume"]
    assert _until(clouds, ["volume"], shared["id"], "available")["multiattach"] is True
    attachments = f"{gateway.url}/compute/v2.1/servers/{server['id']}/os-volume_attachments"
    for version, code in (("2.59", 400), ("2.60", 200)):
        attached = requests.post(
            attachments,
            headers={**member, "OpenStack-API-Version": f"compute {version}"},
            json={"volumeAttachment": {"volumeId": shared["id"]}},
        )
        assert attached.status_code == code, (version, attached.text)
    assert _until(clouds, ["volume"], shared["id"], "in-use")["status"] == "in-use"
    listed = requests.get(
        attachments, headers={**member, "OpenStack-API-Version": "compute 2.70"}
    ).json()["volumeAttachments"]
    assert [(a["volumeId"], a["tag"]) for a in listed] == [(shared["id"], None)]
    clouds.run("member", "server", "remove", "volume", server["id"], shared["id"])
    assert _until(clouds, ["volume"], shared["id"], "available")["status"] == "available"
    clouds.run("member", "volume", "delete", shared["id"])
    # From 2.79 an attachment may be delete_on_termination: the volume goes with the server.
    doomed = clouds.json(
        "member", "volume", "create", "--size", "1", "--type", kind,
        "--availability-zone", zone, unique("vd"),
    )["id"]  # fmt: skip
    assert _until(clouds, ["volume"], doomed, "available")["status"] == "available"
    early = requests.post(
        attachments,
        headers={**member, "OpenStack-API-Version": "compute 2.78"},
        json={"volumeAttachment": {"volumeId": doomed, "delete_on_termination": True}},
    )
    assert early.status_code == 400 and "badRequest" in early.json(), early.text
    clouds.run("member", "server", "add", "volume", "--enable-delete-on-termination",
               server["id"], doomed)  # fmt: skip
    assert _until(clouds, ["volume"], doomed, "in-use")["status"] == "in-use"

    def goes() -> list[tuple[str, bool]]:
        listed = clouds.json("member", "server", "volume", "list", server["id"])
        return [(v["Volume ID"], v["Delete On Termination?"]) for v in listed]

    assert goes() == [(doomed, True)]
    # From 2.85 `server volume set` changes it (a PUT of the attachment).
    for flag, expected in (("--preserve-on-termination", False), ("--delete-on-termination", True)):
        clouds.run("member", "--os-compute-api-version", "2.85", "server", "volume", "set",
                   flag, server["id"], doomed)  # fmt: skip
        assert goes() == [(doomed, expected)]
    one = f"{attachments}/{doomed}"
    for version, volume_id, code in (("2.84", doomed, 400), ("2.85", shared["id"], 403)):
        put = requests.put(
            one,
            headers={**member, "OpenStack-API-Version": f"compute {version}"},
            json={"volumeAttachment": {"volumeId": volume_id, "delete_on_termination": False}},
        )
        assert put.status_code == code, (version, put.text)
    assert goes() == [(doomed, True)]
    # From 2.89 an attachment shows its Cinder attachment id and a mapping id, not `id`.
    (entry,) = requests.get(
        attachments, headers={**member, "OpenStack-API-Version": "compute 2.89"}
    ).json()["volumeAttachments"]
    in_cinder = requests.get(
        f"{gateway.url}/volume/v3/attachments",
        headers={**member, "OpenStack-API-Version": "volume 3.27"},
    ).json()["attachments"]
    assert "id" not in entry and entry["bdm_uuid"]
    assert entry["attachment_id"] in {a["id"] for a in in_cinder}
    clouds.run("member", "server", "delete", "--wait", server["id"])
    deadline = time.monotonic() + 60
    while requests.get(f"{gateway.url}/volume/v3/volumes/{doomed}", headers=member).ok:
        assert time.monotonic() < deadline, "the volume did not go with the server"
        time.sleep(0.5)

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

    _delete_volume_and_type(clouds, name, kind)


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
    server leaves the volume available. Mappings Kumo cannot serve (a snapshot source, a new
    volume without a size or of a chosen type, extra volumes) answer 400 in Nova's shape, as
    does another project's volume."""
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
    assert booted["os-extended-volumes:volumes_attached"] == [{"id": made["id"]}]
    listed = requests.get(
        f"{url}/detail", headers={**mine, "OpenStack-API-Version": "compute 2.3"}
    ).json()["servers"]
    (mine_listed,) = [s for s in listed if s["id"] == server["id"]]
    assert mine_listed["os-extended-volumes:volumes_attached"] == [
        {"id": made["id"], "delete_on_termination": False}
    ]
    in_use = _until(clouds, ["volume"], name, "in-use")
    assert server["id"] in str(in_use["attachments"]), in_use

    boot: dict[str, Any] = {"boot_index": 0, "uuid": made["id"], "source_type": "volume"}
    for mapping in (
        {**boot, "source_type": "blank", "destination_type": "volume"},
        {**boot, "source_type": "snapshot", "destination_type": "volume"},  # not a snapshot id
        {"boot_index": 0, "uuid": image_id, "source_type": "image", "destination_type": "volume"},
        {**boot, "destination_type": "volume", "volume_type": kind},
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
    _delete_volume_and_type(clouds, name, kind)


def test_boot_from_a_new_volume(
    clouds: Clouds,  # noqa: F811
    gateway: GatewayThread,
    admin: Stubs,
    site: Site,  # noqa: F811
    tenant: Tenant,
) -> None:
    """`server create --image --boot-from-volume N` (source image, destination volume):
    the server boots from a new N GiB volume holding the image, shown in-use and attached
    (no image on the server); deleting the server keeps it, unless it was made with
    `--delete-on-termination`, which deletes it with the server. `server create --snapshot`
    boots from a new volume copied from a volume snapshot (in its zone, of its size)."""
    ensure_default_type(admin)  # the type of the volumes Nova makes
    image = _upload_with_cli(clouds, unique("im"))
    flavor = make_flavor(admin, 1, 128, 1).split("/")[-1]
    before = {v["ID"] for v in clouds.json("member", "volume", "list")}
    kept = clouds.json(
        "member", "server", "create", "--flavor", flavor, "--image", image,
        "--boot-from-volume", "1", "--availability-zone", site.zone, "--wait", unique("vm"),
    )  # fmt: skip
    assert kept["status"] == "ACTIVE", kept
    (volume_id,) = {v["ID"] for v in clouds.json("member", "volume", "list")} - before
    volume = clouds.json("member", "volume", "show", volume_id)
    assert (volume["status"], volume["size"], str(volume["bootable"]).lower()) == (
        "in-use",
        1,
        "true",
    ), volume
    assert kept["id"] in str(volume["attachments"]), volume
    url = f"{gateway.url}/compute/v2.1/servers"
    mine = {
        "X-Auth-Token": tenant.stubs["member"].token or "",
        "OpenStack-API-Version": "compute 2.3",
    }
    shown = requests.get(f"{url}/{kept['id']}", headers=mine).json()["server"]
    assert shown["image"] == "", shown
    assert shown["os-extended-volumes:volumes_attached"] == [
        {"id": volume_id, "delete_on_termination": False}
    ]
    clouds.run("member", "server", "delete", "--wait", kept["id"])
    assert _until(clouds, ["volume"], volume_id, "available")["status"] == "available"
    clouds.run("member", "volume", "delete", volume_id)

    doomed = clouds.json(
        "member", "server", "create", "--flavor", flavor, "--image", image,
        "--boot-from-volume", "1", "--delete-on-termination", "--availability-zone", site.zone,
        "--wait", unique("vm"),
    )  # fmt: skip
    assert doomed["status"] == "ACTIVE", doomed
    shown = requests.get(f"{url}/{doomed['id']}", headers=mine).json()["server"]
    ((attached,),) = [shown["os-extended-volumes:volumes_attached"]]
    assert attached["delete_on_termination"] is True, shown
    clouds.run("member", "server", "delete", "--wait", doomed["id"])
    deadline = time.monotonic() + 60
    while attached["id"] in {v["ID"] for v in clouds.json("member", "volume", "list")}:
        assert time.monotonic() < deadline, "the boot volume was not deleted with its server"
        time.sleep(0.5)

    # `server create --snapshot`: a new volume copied from a volume snapshot.
    source = unique("vol")
    clouds.run("member", "volume", "create", "--image", image, "--size", "2",
               "--availability-zone", site.zone, source)  # fmt: skip
    _until(clouds, ["volume"], source, "available")
    snap = unique("snap")
    clouds.run("member", "volume", "snapshot", "create", "--volume", source, snap)
    _until(clouds, ["volume", "snapshot"], snap, "available")
    before = {v["ID"] for v in clouds.json("member", "volume", "list")}
    copied = clouds.json(
        "member", "server", "create", "--flavor", flavor, "--snapshot", snap, "--wait",
        unique("vm"),
    )  # fmt: skip
    assert copied["status"] == "ACTIVE", copied
    (copy_id,) = {v["ID"] for v in clouds.json("member", "volume", "list")} - before
    copy = clouds.json("member", "volume", "show", copy_id)
    assert (copy["status"], copy["size"], copy["snapshot_id"]) == (
        "in-use",
        2,
        clouds.json("member", "volume", "snapshot", "show", snap)["id"],
    ), copy
    clouds.run("member", "server", "delete", "--wait", copied["id"])
    _until(clouds, ["volume"], copy_id, "available")
    clouds.run("member", "volume", "delete", copy_id)


def test_server_made_with_more_volumes(
    clouds: Clouds,  # noqa: F811
    gateway: GatewayThread,
    admin: Stubs,
    site: Site,  # noqa: F811
    tenant: Tenant,
) -> None:
    """`server create --block-device` beside `--image`: an existing volume and a new empty
    one are attached as the server is made (in-use, attached to it, shown in
    volumes_attached with their delete_on_termination); deleting the server deletes the
    new one, made to go with it, and keeps the other, available."""
    ensure_default_type(admin)
    image = _upload_with_cli(clouds, unique("im"))
    flavor = make_flavor(admin, 1, 128, 1).split("/")[-1]
    existing = unique("vol")
    clouds.run("member", "volume", "create", "--size", "1", "--availability-zone", site.zone,
               existing)  # fmt: skip
    existing_id = str(_until(clouds, ["volume"], existing, "available")["id"])
    before = {v["ID"] for v in clouds.json("member", "volume", "list")}
    server = clouds.json(
        "member", "server", "create", "--flavor", flavor, "--image", image,
        "--block-device",
        f"uuid={existing_id},source_type=volume,destination_type=volume,device_name=vdc",
        "--block-device",
        "source_type=blank,destination_type=volume,volume_size=2,delete_on_termination=true",
        "--availability-zone", site.zone, "--wait", unique("vm"),
    )  # fmt: skip
    assert server["status"] == "ACTIVE", server
    (new_id,) = {v["ID"] for v in clouds.json("member", "volume", "list")} - before
    for ident, size in ((existing_id, 1), (new_id, 2)):
        volume = clouds.json("member", "volume", "show", ident)
        assert (volume["status"], volume["size"]) == ("in-use", size), volume
        assert server["id"] in str(volume["attachments"]), volume
    headers = {
        "X-Auth-Token": tenant.stubs["member"].token or "",
        "OpenStack-API-Version": "compute 2.3",
    }
    url = f"{gateway.url}/compute/v2.1/servers/{server['id']}"
    shown = requests.get(url, headers=headers).json()["server"]
    attached = {
        v["id"]: v["delete_on_termination"] for v in shown["os-extended-volumes:volumes_attached"]
    }
    assert attached == {existing_id: False, new_id: True}, shown
    listed = requests.get(f"{url}/os-volume_attachments", headers=headers).json()
    devices = {a["volumeId"]: a["device"] for a in listed["volumeAttachments"]}
    assert devices == {existing_id: "vdc", new_id: None}, listed
    clouds.run("member", "server", "delete", "--wait", server["id"])
    deadline = time.monotonic() + 60
    while new_id in {v["ID"] for v in clouds.json("member", "volume", "list")}:
        assert time.monotonic() < deadline, "the new volume was not deleted with its server"
        time.sleep(0.5)
    assert _until(clouds, ["volume"], existing_id, "available")["status"] == "available"
    clouds.run("member", "volume", "delete", existing_id)


def test_volume_type_extra_specs(
    clouds: Clouds,  # noqa: F811
    gateway: GatewayThread,
    tenant: Tenant,
) -> None:
    """`volume type create/set/unset --property`: labels, QoS limits, the fixed backend and
    pool; the extra_specs routes' codes and shapes; members cannot write them."""
    kind = unique("vt")
    made = clouds.json("root", "volume", "type", "create", "--property", "tier=gold", kind)
    clouds.run("root", "volume", "type", "set", "--property", "kumo:max_iops=500", kind)
    clouds.run("root", "volume", "type", "set", "--property", "disk=ssd", kind)
    clouds.run("root", "volume", "type", "unset", "--property", "tier", kind)
    shown = clouds.json("root", "volume", "type", "show", kind)["properties"]
    assert shown == {
        "disk": "ssd", "kumo:max_iops": "500", "kumo:backend": "qcow2", "kumo:pool": "volumes",
    }, shown  # fmt: skip
    fixed = clouds.run(
        "root", "volume", "type", "set", "--property", "kumo:backend=rbd", kind, check=False
    )
    assert fixed.returncode != 0 and "fixed" in fixed.stderr
    member = clouds.run("member", "volume", "type", "set", "--property", "a=b", kind, check=False)
    assert member.returncode != 0 and "403" in member.stderr

    url = f"{gateway.url}/volume/v3/types/{made['id']}/extra_specs"
    root = {"X-Auth-Token": clouds.connect("root").auth_token}
    mine = {"X-Auth-Token": tenant.stubs["member"].token or ""}
    assert requests.get(f"{url}/disk", headers=mine).json() == {"disk": "ssd"}
    missing = requests.get(f"{url}/nope", headers=mine)
    assert missing.status_code == 404 and missing.json()["itemNotFound"]["code"] == 404
    put = requests.put(f"{url}/disk", headers=root, json={"disk": "nvme"})
    assert put.status_code == 200 and put.json() == {"disk": "nvme"}
    for method, path, body in (
        ("PUT", f"{url}/disk", {"other": "x"}),
        ("POST", url, {"extra_specs": {}}),
        ("POST", url, {"extra_specs": {"kumo:max_iops": "many"}}),
        ("DELETE", f"{url}/kumo:pool", None),
    ):
        refused = requests.request(method, path, headers=root, json=body)
        assert refused.status_code == 400 and "badRequest" in refused.json(), (path, body)
    assert requests.delete(f"{url}/disk", headers=root).status_code == 202
    assert requests.delete(f"{url}/disk", headers=root).status_code == 404
    assert requests.get(url, headers=mine).json()["extra_specs"] == {
        "kumo:max_iops": "500", "kumo:backend": "qcow2", "kumo:pool": "volumes",
    }  # fmt: skip

    # Concurrent writes of different specs all land (each under the etag it read).
    def add(index: int) -> int:
        body = {"extra_specs": {f"s{index}": str(index)}}
        return requests.post(url, headers=root, json=body).status_code

    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(add, range(6))) == [200] * 6
    specs = requests.get(url, headers=mine).json()["extra_specs"]
    assert {k: v for k, v in specs.items() if k.startswith("s")} == {
        f"s{i}": str(i) for i in range(6)
    }
    clouds.run("root", "volume", "type", "delete", kind)


def test_attachments_api(
    clouds: Clouds,  # noqa: F811
    gateway: GatewayThread,
    admin: Stubs,
    site: Site,  # noqa: F811
    tenant: Tenant,
    other_tenant: Tenant,
) -> None:
    """`volume attachment create/list/show/delete` (3.27, --mode from 3.54) attach and
    detach through AttachVolume/DetachVolume; ids match the volume's attachments; bad
    input is 400, older microversions and other projects 404."""
    kind = unique("vt")
    clouds.run("root", "volume", "type", "create", kind)
    name = unique("vol")
    volume = clouds.json(
        "member", "volume", "create", "--size", "1", "--type", kind,
        "--availability-zone", site.zone, name,
    )  # fmt: skip
    assert _until(clouds, ["volume"], name, "available")["status"] == "available"
    server = clouds.json(
        "member", "server", "create", "--flavor", make_flavor(admin, 1, 128, 1).split("/")[-1],
        "--image", _upload_with_cli(clouds, unique("im")), "--availability-zone", site.zone,
        "--wait", unique("vm"),
    )  # fmt: skip

    v = ("--os-volume-api-version", "3.54")
    made = clouds.json(
        "member", *v, "volume", "attachment", "create", "--mode", "ro", name,
        "--server", server["id"],
    )  # fmt: skip
    assert (made["Volume ID"], made["Instance ID"], made["Attach Mode"]) == (
        volume["id"], server["id"], "ro",
    ), made  # fmt: skip
    in_use: Any = _until(clouds, ["volume"], name, "in-use")
    assert in_use["attachments"][0]["attachment_id"] == made["ID"], in_use
    listed = clouds.json("member", *v, "volume", "attachment", "list")
    assert [(a["ID"], a["Status"]) for a in listed] == [(made["ID"], "attached")], listed
    by_server = clouds.json(
        "member", *v, "volume", "attachment", "list", "--server", unique("none")
    )
    assert by_server == []
    shown = clouds.json("member", *v, "volume", "attachment", "show", made["ID"])
    assert shown["Status"] == "attached" and shown["Attach Mode"] == "ro", shown

    url = f"{gateway.url}/volume/v3/attachments"
    mine = {
        "X-Auth-Token": tenant.stubs["member"].token or "",
        "OpenStack-API-Version": "volume 3.27",
    }
    theirs = {**mine, "X-Auth-Token": other_tenant.stubs["admin"].token or ""}
    hidden = requests.get(f"{url}/{made['ID']}", headers=theirs)
    assert hidden.status_code == 404 and "itemNotFound" in hidden.json()
    assert requests.get(url, headers=theirs).json() == {"attachments": []}
    old = requests.get(url, headers={**mine, "OpenStack-API-Version": "volume 3.26"})
    assert old.status_code == 404 and "itemNotFound" in old.json()
    for body in (
        {"attachment": {"volume_uuid": volume["id"]}},
        {"attachment": {"volume_uuid": volume["id"], "instance_uuid": server["id"], "mode": "x"}},
        {"attachment": "nope"},
    ):
        refused = requests.post(url, headers=mine, json=body)
        assert refused.status_code == 400 and "badRequest" in refused.json(), body
    foreign = requests.post(
        url, headers=theirs,
        json={"attachment": {"volume_uuid": volume["id"], "instance_uuid": server["id"]}},
    )  # fmt: skip
    assert foreign.status_code == 404, foreign.text
    connector = requests.put(f"{url}/{made['ID']}", headers=mine, json={"attachment": {}})
    assert connector.status_code == 400
    complete = requests.post(
        f"{url}/{made['ID']}/action", headers=mine, json={"os-complete": made["ID"]}
    )
    assert complete.status_code == 204

    clouds.run("member", *v, "volume", "attachment", "delete", made["ID"])
    assert _until(clouds, ["volume"], name, "available")["status"] == "available"
    assert requests.get(f"{url}/{made['ID']}", headers=mine).status_code == 404
    clouds.run("member", "server", "delete", "--wait", server["id"])
    clouds.run("member", "volume", "delete", name)


def test_volume_and_snapshot_metadata(
    clouds: Clouds,  # noqa: F811
    gateway: GatewayThread,
    site: Site,  # noqa: F811
    tenant: Tenant,
    other_tenant: Tenant,
) -> None:
    """`volume set/unset --property` and `volume snapshot set/unset --property`; Cinder's
    `/metadata` routes over HTTP (each item, replace, merge, concurrent merges, 404s and
    bad input, another project's 404) change the Kumo labels and nothing else."""
    kind, name, volume_id = _new_volume(clouds, site.zone)
    clouds.run("member", "volume", "set", "--property", "tier=gold", "--property", "x=1", name)
    clouds.run("member", "volume", "unset", "--property", "x", name)
    assert clouds.json("member", "volume", "show", name)["properties"] == {"tier": "gold"}
    snap = clouds.json("member", "volume", "snapshot", "create", "--volume", name, unique("sn"))
    assert _until(clouds, ["volume", "snapshot"], snap["id"], "available")["status"] == "available"
    clouds.run("member", "volume", "snapshot", "set", "--property", "keep=yes", snap["id"])
    shown = clouds.json("member", "volume", "snapshot", "show", snap["id"])
    assert shown["properties"] == {"keep": "yes"}, shown
    clouds.run("member", "volume", "snapshot", "unset", "--property", "keep", snap["id"])
    assert clouds.json("member", "volume", "snapshot", "show", snap["id"])["properties"] == {}

    mine = {"X-Auth-Token": tenant.stubs["member"].token or ""}
    url = f"{gateway.url}/volume/v3/volumes/{volume_id}/metadata"
    assert requests.get(url, headers=mine).json() == {"metadata": {"tier": "gold"}}
    assert requests.get(f"{url}/tier", headers=mine).json() == {"meta": {"tier": "gold"}}
    put = requests.put(f"{url}/tier", headers=mine, json={"meta": {"tier": "silver"}})
    assert put.status_code == 200 and put.json() == {"meta": {"tier": "silver"}}
    replaced = requests.put(url, headers=mine, json={"metadata": {"only": "this"}})
    assert replaced.json() == {"metadata": {"only": "this"}}

    def add(index: int) -> int:
        body = {"metadata": {f"k{index}": str(index)}}
        return requests.post(url, headers=mine, json=body).status_code

    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(add, range(6))) == [200] * 6
    expected = {"only": "this", **{f"k{i}": str(i) for i in range(6)}}
    assert requests.get(url, headers=mine).json() == {"metadata": expected}
    assert requests.delete(f"{url}/k5", headers=mine).status_code == 200
    del expected["k5"]

    theirs = {"X-Auth-Token": other_tenant.stubs["admin"].token or ""}
    for method, where, who, body, status in (
        ("GET", f"{url}/absent", mine, None, 404),
        ("DELETE", f"{url}/absent", mine, None, 404),
        ("GET", url, theirs, None, 404),
        ("POST", url, theirs, {"metadata": {"a": "b"}}, 404),
        ("PUT", f"{url}/only", mine, {"meta": {"other": "x"}}, 400),
        ("POST", url, mine, {"metadata": {"n": None}}, 400),
        ("POST", url, mine, {"metadata": {"k" * 64: "v"}}, 400),
        ("GET", f"{gateway.url}/volume/v3/snapshots/{unique('no')}/metadata", mine, None, 404),
    ):
        answer = requests.request(method, where, headers=who, json=body)
        assert answer.status_code == status, (method, where, body, answer.text)
        ((_, fault),) = answer.json().items()
        assert fault["code"] == status
    assert requests.get(url, headers=mine).json() == {"metadata": expected}
    clouds.run("member", "volume", "snapshot", "delete", snap["id"])
    deadline = time.monotonic() + 60
    while clouds.json("member", "volume", "snapshot", "list"):
        assert time.monotonic() < deadline, "the snapshot was not deleted"
        time.sleep(0.5)
    _delete_volume_and_type(clouds, name, kind)
