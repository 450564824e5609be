"""The real `openstack` CLI (python-openstackclient) and openstacksdk against the gateway.

Each test makes its own tenant (through the Keystone admin API where that is what it
tests) and, for servers, its own site with two hosts run by real agents on the fake compute
driver (the server lifecycle through the API, scheduler and agent; real guests are covered
by tests/e2e/test_openstack_real_guest.py).
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openstack
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import compute_service_pb2_grpc as crpc
from kumo.compute.v1 import resources_pb2 as cpb
from kumo.drivers.compute.fake import FakeDriver
from tests.integration.test_compute_resources import make_flavor
from tests.support.agent import AgentThread
from tests.support.cloud import ADMIN_PASSWORD, PASSWORD, Stubs, Tenant, unique
from tests.support.gateway import Clouds, GatewayThread
from tests.support.images import small_qcow2
from tests.support.server import ServerThread
from tests.support.topology import Site, make_site

# These runs test the clients against the gateway's dialects; both databases are
# covered beneath the gateway by the integration tests, so SQLite only here.
pytestmark = pytest.mark.parametrize("api", ["sqlite"], indirect=True)


@pytest.fixture
def clouds(gateway: GatewayThread, tenant: Tenant) -> Clouds:
    """clouds.yaml: `root` (the cloud administrator) and the tenant's reader, member, admin."""
    result = Clouds(gateway.url)
    result.add("root", "admin", ADMIN_PASSWORD, "admin")
    for role, user in tenant.users.items():
        result.add(role, user, PASSWORD, tenant.project)
    return result


@pytest.fixture
def drivers() -> list[FakeDriver]:
    """The fake hypervisors of `site`'s two hosts."""
    return [FakeDriver(vcpus=4, memory_mib=2048, disk_gib=100) for _ in range(2)]


@pytest.fixture
def site(api: ServerThread, admin: Stubs, drivers: list[FakeDriver]) -> Iterator[Site]:
    """A fresh site with two fake hosts run by real agents."""
    made = make_site(admin)
    agents = [
        AgentThread(api.address, admin.token or "", unique("h"), made.rack, driver)
        for driver in drivers
    ]
    try:
        yield made
    finally:
        for agent in agents:
            agent.stop()


def test_token_issue_and_catalog(clouds: Clouds, tenant: Tenant) -> None:
    """`openstack token issue` gets a project-scoped token; the catalog lists every service."""
    token = clouds.json("member", "token", "issue")
    assert token["project_id"] == tenant.project
    assert token["user_id"] == tenant.users["member"]
    services = {entry["Type"] for entry in clouds.json("member", "catalog", "list")}
    assert {"identity", "compute", "image", "network", "volumev3", "block-storage"} <= services

    # Validation (GET and HEAD with X-Subject-Token) and revocation (`openstack token revoke`).
    url = f"{clouds.url}/v3/auth/tokens"
    both = {"X-Auth-Token": token["id"], "X-Subject-Token": token["id"]}
    valid = requests.get(url, headers=both)
    assert valid.status_code == 200 and valid.json()["token"]["project"]["id"] == tenant.project
    assert valid.headers["X-Subject-Token"] == token["id"]
    assert requests.head(url, headers=both).status_code == 200
    clouds.run("member", "token", "revoke", token["id"])
    assert requests.get(url, headers=both).status_code == 401


def test_throwaway_tenant_through_the_admin_api(clouds: Clouds) -> None:
    """Project, user, role assignment, a token for the new user, then the deletes."""
    project, user = unique("osp"), unique("osu")
    clouds.run("root", "project", "create", "--domain", "default", "--description", "d", project)
    clouds.run("root", "project", "set", "--enable", project)  # (a PATCH without description)
    assert clouds.json("root", "project", "show", project)["description"] == "d"
    clouds.run("root", "project", "set", "--description", "e", project)
    assert clouds.json("root", "project", "show", project)["description"] == "e"
    clouds.run("root", "user", "create", "--domain", "default", "--password", PASSWORD, user)
    clouds.run("root", "role", "add", "--project", project, "--user", user, "member")
    listed = clouds.json("root", "role", "assignment", "list", "--project", project)
    assert [(a["Role"], a["User"]) for a in listed] == [("member", user)]
    clouds.add("new", user, PASSWORD, project)
    assert clouds.json("new", "token", "issue")["project_id"] == project

    # An application credential (a Kumo access key) signs in too, with the SDK.
    conn = clouds.connect("new")
    credential = conn.identity.create_application_credential(user, name="ci")
    app = openstack.connect(
        auth_type="v3applicationcredential",
        auth={
            "auth_url": f"{clouds.url}/v3",
            "application_credential_id": credential.id,
            "application_credential_secret": credential.secret,
        },
    )
    assert app.current_project_id == project
    conn.identity.delete_application_credential(user, credential.id)

    clouds.run("root", "role", "remove", "--project", project, "--user", user, "member")
    assert clouds.json("root", "role", "assignment", "list", "--project", project) == []
    clouds.run("root", "user", "delete", user)
    clouds.run("root", "project", "delete", project)
    refused = clouds.run("new", "token", "issue", check=False)
    assert refused.returncode != 0


def test_members_cannot_use_the_admin_api(clouds: Clouds) -> None:
    """Admin-only Keystone and Nova calls are refused for members (HTTP 403)."""
    result = clouds.run("member", "project", "create", unique("nope"), check=False)
    assert result.returncode != 0 and "403" in result.stderr
    result = clouds.run(
        "member", "flavor", "create", "--ram", "128", "--vcpus", "1", "--disk", "1", "x",
        check=False,
    )  # fmt: skip
    assert result.returncode != 0 and "403" in result.stderr


def test_flavors_and_key_pairs(
    clouds: Clouds, admin: Stubs, gateway: GatewayThread, tenant: Tenant
) -> None:
    """Flavors are listed and shown; key pairs are generated, imported, listed, deleted."""
    flavor = make_flavor(admin, 2, 256, 3).rsplit("/", 1)[-1]
    shown = clouds.json("member", "flavor", "show", flavor)
    assert (shown["vcpus"], shown["ram"], shown["disk"]) == (2, 256, 3)
    assert flavor in {f["ID"] for f in clouds.json("member", "flavor", "list")}
    # Descriptions (microversion 2.55): at creation, then changed by an administrator.
    described = unique("fl")
    clouds.run("root", "flavor", "create", "--vcpus", "1", "--ram", "128", "--disk", "1",
               "--description", "small one", described)  # fmt: skip
    assert clouds.json("member", "flavor", "show", described)["description"] == "small one"
    clouds.run("root", "flavor", "set", "--description", "tiny", described)
    assert clouds.json("member", "flavor", "show", described)["description"] == "tiny"
    refused = clouds.run("member", "flavor", "set", "--description", "x", described, check=False)
    assert refused.returncode != 0 and "403" in refused.stderr
    # Extra specs (none in Kumo) in the detailed flavor from 2.61.
    member = {"X-Auth-Token": tenant.stubs["member"].token or ""}
    shown_at = {
        version: requests.get(
            f"{gateway.url}/compute/v2.1/flavors/{described}",
            headers={**member, "OpenStack-API-Version": f"compute {version}"},
        ).json()["flavor"]
        for version in ("2.54", "2.60", "2.61")
    }
    assert "description" not in shown_at["2.54"] and shown_at["2.60"]["description"] == "tiny"
    assert "extra_specs" not in shown_at["2.60"] and shown_at["2.61"]["extra_specs"] == {}
    # Setting one is 501 (Kumo would never honour it), a key is 404, a member's write 403.
    refused = clouds.run(
        "root", "flavor", "set", "--property", "hw:cpu_policy=dedicated", described, check=False
    )
    assert refused.returncode != 0 and "501" in refused.stderr, refused.stderr
    specs = f"{gateway.url}/compute/v2.1/flavors/{described}/os-extra_specs"
    root = {"X-Auth-Token": admin.token or ""}
    for method, where, headers, status in (
        ("GET", f"{specs}/k", member, 404),
        ("DELETE", f"{specs}/k", member, 403),
        ("DELETE", f"{specs}/k", root, 404),
        ("PUT", f"{specs}/k", member, 403),
        ("POST", specs, member, 403),
        ("PUT", f"{specs}/k", root, 501),
        ("POST", f"{gateway.url}/compute/v2.1/flavors/nope/os-extra_specs", root, 404),
    ):
        answer = requests.request(method, where, headers=headers, json={"extra_specs": {}})
        assert answer.status_code == status, (method, where, answer.text)
    assert requests.get(specs, headers=member).json() == {"extra_specs": {}}

    generated = unique("kp")
    private = clouds.run("member", "keypair", "create", generated).stdout
    assert "PRIVATE KEY" in private
    listed = {k["Name"] for k in clouds.json("member", "keypair", "list")}
    assert generated in listed
    assert clouds.json("member", "keypair", "show", generated)["name"] == generated
    clouds.run("member", "keypair", "delete", generated)
    assert generated not in {k["Name"] for k in clouds.json("member", "keypair", "list")}

    # Nova's names need not be Kumo ids (spaces, capitals, `_`; `@` and `.` from 2.92):
    # kept as the key pair's display name, found by name, shown by servers.
    keys = f"{gateway.url}/compute/v2.1/os-keypairs"
    public = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    named = f"Alice Laptop_{unique('k')}"
    for name, version, code in (
        (named, "2.91", 201),
        (f"ci@{unique('h')}.example", "2.91", 400),
        (f"ci@{unique('h')}.example", "2.92", 201),
        ("no/slash", "2.92", 400),
    ):
        made = requests.post(
            keys,
            headers={**member, "OpenStack-API-Version": f"compute {version}"},
            json={"keypair": {"name": name, "public_key": public}},
        )
        assert made.status_code == code, (name, version, made.text)
    generating = requests.post(
        keys,
        headers={**member, "OpenStack-API-Version": "compute 2.92"},
        json={"keypair": {"name": unique("kp")}},
    )
    assert generating.status_code == 400, generating.text  # (2.92: imported only)
    assert named in {k["Name"] for k in clouds.json("member", "keypair", "list")}
    assert clouds.json("member", "keypair", "show", named)["name"] == named
    server, _ = hostless_server(clouds, gateway, admin, tenant, key_name=named)
    assert clouds.json("member", "server", "show", server)["key_name"] == named
    requests.delete(f"{gateway.url}/compute/v2.1/servers/{server}", headers=member)
    clouds.run("member", "keypair", "delete", named)
    assert named not in {k["Name"] for k in clouds.json("member", "keypair", "list")}


def test_server_lifecycle_on_fake_hosts(
    clouds: Clouds,
    site: Site,
    drivers: list[FakeDriver],
    admin: Stubs,
    tenant: Tenant,
    gateway: GatewayThread,
) -> None:
    """create --wait, list, show, stop/start, reboot, suspend/resume, pause/unpause (PAUSED
    is not SUSPENDED: each is undone by its own verb, else 409), console, lock/unlock,
    delete (twice: 204 both times, as in Nova)."""
    flavor = make_flavor(admin, 1, 256, 1).rsplit("/", 1)[-1]
    image = _upload_with_cli(clouds, unique("osimg"))
    name = unique("vm")
    created = clouds.json(
        "member", "server", "create", "--flavor", flavor, "--image", image,
        "--availability-zone", site.zone, "--wait", name,
    )  # fmt: skip
    assert created["status"] == "ACTIVE"
    server_id = created["id"]
    assert name in {s["Name"] for s in clouds.json("member", "server", "list")}
    shown = clouds.json("member", "server", "show", name)
    assert (shown["id"], shown["OS-EXT-AZ:availability_zone"]) == (server_id, site.zone)

    conn = clouds.connect("member")
    for action, status in (
        ("stop", "SHUTOFF"),
        ("start", "ACTIVE"),
        ("suspend", "SUSPENDED"),
        ("unpause", "SUSPENDED"),
        ("resume", "ACTIVE"),
        ("pause", "PAUSED"),
        ("resume", "PAUSED"),
        ("unpause", "ACTIVE"),
        ("reboot", "ACTIVE"),
    ):
        if action in ("resume", "unpause") and status != "ACTIVE":  # the other verb's undo
            refused = requests.post(
                f"{gateway.url}/compute/v2.1/servers/{server_id}/action",
                headers={"X-Auth-Token": tenant.stubs["member"].token or ""},
                json={action: None},
            )
            assert refused.status_code == 409, refused.text
            assert refused.json()["conflictingRequest"]["code"] == 409
        else:
            clouds.run(
                "member", "server", action, *(["--wait"] if action == "reboot" else []), server_id
            )
        conn = clouds.connect("member")
        server = conn.compute.wait_for_server(
            conn.compute.get_server(server_id), status=status, wait=60, interval=0.5
        )
        assert server.status == status
        listed = clouds.json("member", "server", "list", "--status", status)
        assert server_id in {s["ID"] for s in listed}, (status, listed)

    clouds.run("member", "console", "log", "show", server_id)
    # Kumo runs no console proxy: every remote console type is Nova's 400 for a type it
    # does not run (after the body's schema), 404 before 2.6 and for no such server.
    no_url = clouds.run("member", "console", "url", "show", server_id, check=False)
    assert "Unavailable console type novnc" in no_url.stderr, no_url.stderr
    compute = f"{gateway.url}/compute/v2.1/servers"
    token = {"X-Auth-Token": tenant.stubs["member"].token or ""}
    v26 = {**token, "OpenStack-API-Version": "compute 2.6"}
    spice = {"remote_console": {"protocol": "spice", "type": "spice-html5"}}
    consoles: list[tuple[str, dict[str, str], Any, int, str]] = [
        (server_id, v26, spice, 400, "Unavailable console type spice-html5."),
        (server_id, v26, {"remote_console": {"protocol": "x", "type": "novnc"}}, 400, "protocol"),
        (server_id, v26, {"remote_console": {"protocol": "vnc", "type": 3}}, 400, "Invalid"),
        (server_id, token, spice, 404, "itemNotFound"),
        (str(uuid.uuid4()), v26, spice, 404, "itemNotFound"),
    ]
    for where, headers, body, code, text in consoles:
        answer = requests.post(f"{compute}/{where}/remote-consoles", json=body, headers=headers)
        assert (answer.status_code, text in answer.text) == (code, True), answer.text
    serial = requests.post(
        f"{compute}/{server_id}/action", json={"os-getSerialConsole": {"type": "serial"}},
        headers=token,
    )  # fmt: skip
    assert serial.status_code == 400 and "Unavailable console type serial." in serial.text
    # A locked server refuses actions and deletion (409); a cloud administrator's lock only
    # a cloud administrator lifts (403 for the member).
    clouds.run("member", "server", "lock", server_id)
    assert clouds.connect("member").compute.get_server(server_id).is_locked is True
    for action in ("stop", "delete"):
        failed = clouds.run("member", "server", action, server_id, check=False)
        assert failed.returncode != 0 and "409" in failed.stderr, failed.stderr
    clouds.run("member", "server", "unlock", server_id)
    clouds.run("root", "server", "lock", server_id)
    failed = clouds.run("member", "server", "unlock", server_id, check=False)
    assert failed.returncode != 0 and "403" in failed.stderr, failed.stderr
    clouds.run("root", "server", "unlock", server_id)
    assert clouds.connect("member").compute.get_server(server_id).is_locked is False
    # Other tenants do not see it, and a reader cannot delete it.
    other = clouds.run("reader", "server", "delete", server_id, check=False)
    assert other.returncode != 0
    # Deleted twice, the second time while the first is under way (the hypervisors fail
    # every call meanwhile, so the deletion waits): 204 both times, as Nova ignores a repeat.
    url = f"{gateway.url}/compute/v2.1/servers/{server_id}"
    member = {"X-Auth-Token": tenant.stubs["member"].token or ""}
    for driver in drivers:
        driver.set_available(False)
    try:
        clouds.run("member", "server", "delete", server_id)
        shown = requests.get(url, headers=member).json()["server"]
        assert shown["OS-EXT-STS:task_state"] == "deleting", shown
        again = requests.delete(url, headers=member)
        assert again.status_code == 204, again.text
    finally:
        for driver in drivers:
            driver.set_available(True)
    deadline = time.monotonic() + 60
    while requests.get(url, headers=member).status_code != 404:
        assert time.monotonic() < deadline, "the server was not deleted"
        time.sleep(0.2)
    assert name not in {s["Name"] for s in clouds.json("member", "server", "list")}


def _upload_with_cli(clouds: Clouds, name: str) -> str:
    path = Path(tempfile.mkdtemp()) / "disk.qcow2"
    path.write_bytes(small_qcow2())
    clouds.run(
        "member", "image", "create", "--disk-format", "qcow2", "--container-format", "bare",
        "--file", str(path), name,
    )  # fmt: skip
    return name


def test_image_upload_and_download(clouds: Clouds) -> None:
    """`openstack image create --file` then `image save` returns the same bytes."""
    name = _upload_with_cli(clouds, unique("osimg"))
    shown = clouds.json("member", "image", "show", name)
    assert shown["status"] == "active" and shown["disk_format"] == "qcow2"
    saved = Path(tempfile.mkdtemp()) / "saved"
    clouds.run("member", "image", "save", "--file", str(saved), name)
    assert saved.read_bytes() == small_qcow2()
    assert name in {i["Name"] for i in clouds.json("member", "image", "list")}
    clouds.run("member", "image", "delete", name)


def test_image_properties(clouds: Clouds, gateway: GatewayThread, tenant: Tenant) -> None:
    """`openstack image set/unset --property`, and concurrent JSON patches of different
    properties: each lands (each is applied under the etag it read, again if need be)."""
    name = _upload_with_cli(clouds, unique("osimg"))
    image_id = clouds.json("member", "image", "show", name)["id"]
    clouds.run("member", "image", "set", "--property", "tier=gold", "--property", "x=1", name)
    clouds.run("member", "image", "unset", "--property", "x", name)
    assert clouds.json("member", "image", "show", name)["properties"]["tier"] == "gold"
    headers = {
        "X-Auth-Token": tenant.stubs["member"].token or "",
        "Content-Type": "application/openstack-images-v2.1-json-patch",
    }

    def add(index: int) -> int:
        patch = [{"op": "add", "path": f"/p{index}", "value": str(index)}]
        url = f"{gateway.url}/image/v2/images/{image_id}"
        return requests.patch(url, headers=headers, json=patch).status_code

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(add, range(8))) == [200] * 8
    properties = clouds.json("member", "image", "show", name)["properties"]
    assert {k: properties.get(k) for k in ["tier", "x", *(f"p{i}" for i in range(8))]} == {
        "tier": "gold",
        "x": None,
        **{f"p{i}": str(i) for i in range(8)},
    }
    clouds.run("member", "image", "delete", name)


def test_image_tags(clouds: Clouds, gateway: GatewayThread, tenant: Tenant) -> None:
    """`openstack image create/set/unset --tag`, `image list --tag`, Glance's JSON patch of
    /tags, concurrent tag adds (each lands), and the refusals, which change nothing."""
    name = unique("osimg")
    path = Path(tempfile.mkdtemp()) / "disk.qcow2"
    path.write_bytes(small_qcow2())
    clouds.run(
        "member", "image", "create", "--disk-format", "qcow2", "--container-format", "bare",
        "--file", str(path), "--tag", "gold", "--tag", "linux", name,
    )  # fmt: skip
    other = _upload_with_cli(clouds, unique("osimg"))
    clouds.run("member", "image", "set", "--tag", "linux", other)
    image_id = clouds.json("member", "image", "show", name)["id"]
    assert sorted(clouds.json("member", "image", "show", name)["tags"]) == ["gold", "linux"]

    def listed(*tags: str) -> set[str]:
        args = [a for t in tags for a in ("--tag", t)]
        return {i["Name"] for i in clouds.json("member", "image", "list", *args)} & {name, other}

    assert listed("linux") == {name, other}
    assert listed("linux", "gold") == {name}
    clouds.run("member", "image", "unset", "--tag", "gold", name)
    assert listed("gold") == set()

    token = tenant.stubs["member"].token or ""
    url = f"{gateway.url}/image/v2/images/{image_id}"
    patch = {"X-Auth-Token": token, "Content-Type": "application/openstack-images-v2.1-json-patch"}
    replaced = requests.patch(
        url, headers=patch, json=[{"op": "replace", "path": "/tags", "value": ["a", "b", "a"]}]
    )
    assert replaced.status_code == 200 and replaced.json()["tags"] == ["a", "b"]
    headers = {"X-Auth-Token": token}
    with ThreadPoolExecutor(8) as pool:
        codes = list(
            pool.map(lambda i: requests.put(f"{url}/tags/t{i}", headers=headers), range(8))
        )
    assert [c.status_code for c in codes] == [204] * 8
    tags = requests.get(url, headers=headers).json()["tags"]
    assert sorted(tags) == ["a", "b", *(f"t{i}" for i in range(8))]
    refused: list[tuple[str, str, Any, int]] = [
        ("DELETE", f"{url}/tags/absent", None, 404),
        ("PUT", f"{url}/tags/{'x' * 256}", None, 400),
        ("PATCH", url, [{"op": "replace", "path": "/tags", "value": "a"}], 400),
        ("PATCH", url, [{"op": "replace", "path": "/tags", "value": [1]}], 400),
        ("PUT", f"{gateway.url}/image/v2/images/{unique('x')}/tags/a", None, 404),
    ]
    for method, where, body, status in refused:
        answer = requests.request(
            method, where, headers=patch if method == "PATCH" else headers, json=body
        )
        assert answer.status_code == status, (method, where, answer.text)
    assert requests.get(url, headers=headers).json()["tags"] == tags
    assert requests.delete(f"{url}/tags/a", headers=headers).status_code == 204
    for each in (name, other):
        clouds.run("member", "image", "delete", each)


def test_errors_in_each_dialect(gateway: GatewayThread, tenant: Tenant) -> None:
    """Each service answers errors in its own shape, with the right status and request id."""
    token = tenant.stubs["member"].token or ""
    headers = {"X-Auth-Token": token}
    url = gateway.url

    missing = requests.get(f"{url}/compute/v2.1/servers/{unique('x')}", headers=headers)
    assert missing.status_code == 404
    assert missing.json()["itemNotFound"]["code"] == 404
    assert missing.headers["x-openstack-request-id"].startswith("req-")

    bad = requests.post(f"{url}/compute/v2.1/servers", headers=headers, data=b"{not json")
    assert bad.status_code == 400 and "badRequest" in bad.json()

    # Nova's actions Kumo does not offer are 501; one Nova does not know is 400.
    for action, code in (("shelve", 501), ("rescue", 501), ("createBackup", 501), ("fly", 400)):
        acted = requests.post(
            f"{url}/compute/v2.1/servers/{unique('x')}/action", headers=headers, json={action: {}}
        )
        assert acted.status_code == code, (action, acted.text)

    # Malformed input to the server, attachment and extra spec routes: 4xx, never 500.
    v327 = {**headers, "OpenStack-API-Version": "volume 3.27"}
    for method, path, body, status in (
        ("POST", "/compute/v2.1/servers", {"server": {"min_count": "x"}}, 400),
        ("POST", "/compute/v2.1/servers", {"server": {"block_device_mapping_v2": "x"}}, 400),
        ("POST", "/compute/v2.1/servers", {"server": {"block_device_mapping": [{}]}}, 400),
        ("POST", "/compute/v2.1/servers", {"server": {"networks": [{"uuid": 5}]}}, 400),
        ("POST", "/compute/v2.1/servers", {"server": {"networks": [7]}}, 400),
        ("GET", f"/volume/v3/types/{unique('x')}/extra_specs", None, 404),
        ("POST", "/volume/v3/attachments", [], 400),
        ("POST", "/volume/v3/attachments", {"attachment": {"volume_uuid": 5}}, 400),
        ("POST", f"/volume/v3/attachments/{unique('x')}/action", {"os-complete": 1}, 404),
        ("POST", f"/volume/v3/attachments/{unique('x')}/action", {"os-reserve": 1}, 400),
    ):
        answer = requests.request(method, f"{url}{path}", headers=v327, json=body)
        assert answer.status_code == status, (path, body, answer.text)
        ((_, fault),) = answer.json().items()
        assert fault["code"] == status

    unauthenticated = requests.get(f"{url}/compute/v2.1/servers")
    assert unauthenticated.status_code == 401 and "unauthorized" in unauthenticated.json()

    too_new = requests.get(
        f"{url}/compute/v2.1/flavors", headers={**headers, "OpenStack-API-Version": "compute 9.0"}
    )
    assert too_new.status_code == 406
    negotiated = requests.get(
        f"{url}/compute/v2.1/flavors", headers={**headers, "OpenStack-API-Version": "compute 2.2"}
    )
    assert negotiated.headers["OpenStack-API-Version"] == "compute 2.2"
    assert requests.get(f"{url}/compute/").json()["versions"][0]["min_version"] == "2.1"

    bad_token = requests.get(f"{url}/v3/projects", headers={"X-Auth-Token": "garbage"})
    assert bad_token.status_code == 401 and bad_token.json()["error"]["code"] == 401

    no_image = requests.get(f"{url}/image/v2/images/{unique('x')}", headers=headers)
    assert no_image.status_code == 404 and no_image.json()["code"] == "404 Not Found"

    network = requests.get(f"{url}/network/v2.0/networks/{unique('x')}", headers=headers)
    assert network.status_code == 404 and "NeutronError" in network.json()

    discovery = requests.get(f"{url}/")
    assert discovery.status_code == 300
    assert discovery.json()["versions"]["values"][0]["id"].startswith("v3")
    v3 = requests.get(f"{url}/v3", allow_redirects=False)
    assert v3.status_code == 200 and v3.json()["version"]["status"] == "stable"


def hostless_server(
    clouds: Clouds, gateway: GatewayThread, admin: Stubs, tenant: Tenant, **fields: Any
) -> tuple[str, str]:
    """(server id, image id): a server the member makes over HTTP, with `fields` in its
    body, in a new zone without hosts (it exists, in ERROR), from a new image of theirs."""
    zone = make_site(admin).zone
    flavor = make_flavor(admin, 1, 128, 1).rsplit("/", 1)[-1]
    image_id = clouds.json("member", "image", "show", _upload_with_cli(clouds, unique("im")))["id"]
    created = requests.post(
        f"{gateway.url}/compute/v2.1/servers",
        headers={"X-Auth-Token": tenant.stubs["member"].token or ""},
        json={"server": {"name": "s", "imageRef": image_id, "flavorRef": flavor,
                         "availability_zone": zone, **fields}},
    )  # fmt: skip
    assert created.status_code == 202, created.text
    return str(created.json()["server"]["id"]), str(image_id)


def instance_of(tenant: Tenant, server_id: str) -> cpb.Instance:
    """The Kumo instance of a Nova server id, as the member reads it over gRPC."""
    stub = crpc.ComputeServiceStub(tenant.stubs["member"].channel)
    (found,) = stub.ListInstances(
        capi.ListInstancesRequest(parent=f"{tenant.name}/zones/-", filter=f'uid = "{server_id}"')
    ).instances
    return found


def test_tenancy_refusals(
    clouds: Clouds, gateway: GatewayThread, admin: Stubs, tenant: Tenant, other_tenant: Tenant
) -> None:
    """Another project's resources do not exist for the caller; readers cannot write."""
    key = unique("kp")
    clouds.run("member", "keypair", "create", key)
    theirs = {"X-Auth-Token": other_tenant.stubs["admin"].token or ""}
    seen = requests.get(f"{gateway.url}/compute/v2.1/os-keypairs/{key}", headers=theirs)
    assert seen.status_code == 404 and "itemNotFound" in seen.json()
    refused = clouds.run("reader", "keypair", "create", unique("kp"), check=False)
    assert refused.returncode != 0 and "403" in refused.stderr

    # A server and a private image of the tenant.
    server_id, image_id = hostless_server(clouds, gateway, admin, tenant)
    mine = {"X-Auth-Token": tenant.stubs["member"].token or ""}
    server = f"{gateway.url}/compute/v2.1/servers/{server_id}"
    for method, path, body in (
        ("GET", server, None),
        ("POST", f"{server}/action", {"os-stop": None}),
        ("POST", f"{server}/action", {"pause": None}),
        ("POST", f"{server}/action", {"unpause": None}),
        ("POST", f"{server}/action", {"lock": None}),
        ("POST", f"{server}/action", {"unlock": None}),
        ("GET", f"{server}/ips", None),
        ("GET", f"{server}/ips/any", None),
        ("DELETE", server, None),
        ("GET", f"{gateway.url}/image/v2/images/{image_id}", None),
        ("GET", f"{gateway.url}/image/v2/images/{image_id}/file", None),
        ("DELETE", f"{gateway.url}/image/v2/images/{image_id}", None),
    ):
        answer = requests.request(method, path, headers=theirs, json=body)
        assert answer.status_code == 404, (method, path, answer.text)
    assert requests.get(server, headers=mine).status_code == 200
    assert requests.delete(server, headers=mine).status_code == 204


def test_compute_extras(
    clouds: Clouds, site: Site, admin: Stubs, tenant: Tenant, gateway: GatewayThread
) -> None:
    """Zones, hypervisors, limits, server groups, rename, rebuild, createImage; an action
    whose RPC refuses renders that refusal in Nova's shape."""
    zones = clouds.json("member", "availability", "zone", "list", "--compute")
    assert site.zone in {z["Zone Name"] for z in zones}
    hosts = {h["Hypervisor Hostname"] for h in clouds.json("root", "hypervisor", "list")}
    assert len(hosts) >= 2
    limits = {
        row["Name"]: row["Value"] for row in clouds.json("member", "limits", "show", "--absolute")
    }
    assert limits["max_total_instances"] >= 1 and limits["total_instances_used"] >= 0

    group = unique("grp")
    made = clouds.json("member", "server", "group", "create", "--policy", "anti-affinity", group)
    assert "anti-affinity" in str(made), made
    assert group in {g["Name"] for g in clouds.json("member", "server", "group", "list")}
    # From 2.64 a group has `policy` and `rules` (Kumo's anti-affinity: one per host).
    groups = f"{gateway.url}/compute/v2.1/os-server-groups"
    v264 = {
        "X-Auth-Token": tenant.stubs["member"].token or "",
        "OpenStack-API-Version": "compute 2.64",
    }
    shown = requests.get(f"{groups}/{group}", headers=v264).json()["server_group"]
    assert (shown["policy"], shown["rules"]) == ("anti-affinity", {}) and "policies" not in shown
    bodies: tuple[tuple[dict[str, Any], int], ...] = (
        ({"policies": ["affinity"]}, 400),
        ({"policy": "affinity", "rules": {"max_server_per_host": 1}}, 400),
        ({"policy": "anti-affinity", "rules": {"max_server_per_host": 0}}, 400),
        ({"policy": "anti-affinity", "rules": {"max_server_per_host": 2}}, 501),
        ({"policy": "anti-affinity", "rules": {"max_server_per_host": 1}}, 200),
    )
    for body, code in bodies:
        answer = requests.post(
            groups, headers=v264, json={"server_group": {"name": unique("g"), **body}}
        )
        assert answer.status_code == code, (body, answer.text)

    flavor = make_flavor(admin, 1, 256, 1).rsplit("/", 1)[-1]
    image = _upload_with_cli(clouds, unique("osimg"))
    server = clouds.json(
        "member", "server", "create", "--flavor", flavor, "--image", image,
        "--availability-zone", site.zone, "--hint", f"group={group}", "--wait", unique("vm"),
    )  # fmt: skip
    members = clouds.json("member", "server", "group", "show", group)["members"]
    assert server["id"] in members

    clouds.run("member", "server", "set", "--name", "renamed", server["id"])
    assert clouds.json("member", "server", "show", server["id"])["name"] == "renamed"

    # Microversions: the flavor whole from 2.47, the image metadata limit gone from 2.39,
    # createImage's image id in the body (not a Location) from 2.45.
    def at(version: str) -> dict[str, str]:
        return {**headers, "OpenStack-API-Version": f"compute {version}"}

    headers = {"X-Auth-Token": tenant.stubs["member"].token or ""}
    url = f"{gateway.url}/compute/v2.1"
    shown = requests.get(f"{url}/servers/{server['id']}", headers=at("2.46")).json()["server"]
    assert shown["flavor"] == {"id": flavor, "links": []}
    shown = requests.get(f"{url}/servers/{server['id']}", headers=at("2.47")).json()["server"]
    assert shown["flavor"] == {
        "vcpus": 1, "ram": 256, "disk": 1, "ephemeral": 0, "swap": 0,
        "original_name": flavor, "extra_specs": {},
    }  # fmt: skip
    listed = requests.get(f"{url}/servers/detail", headers=at("2.52")).json()["servers"]
    assert all(s["flavor"]["original_name"] for s in listed)
    image_uid = clouds.json("member", "image", "show", image)["id"]
    root = {"X-Auth-Token": admin.token or ""}
    # A host asked for at creation (2.74, administrators): `host` or
    # `hypervisor_hostname`, checked to exist.
    target = clouds.json("root", "server", "show", server["id"])["OS-EXT-SRV-ATTR:host"]
    for headers_, fields, code in (
        (at("2.74"), {"host": target}, 403),
        (at("2.73"), {"host": target}, 400),
        ({**root, "OpenStack-API-Version": "compute 2.74"}, {"host": "no-such-host"}, 400),
        ({**root, "OpenStack-API-Version": "compute 2.74"},
         {"host": target, "hypervisor_hostname": "other"}, 400),
        ({**root, "OpenStack-API-Version": "compute 2.74"},
         {"hypervisor_hostname": target}, 202),
    ):  # fmt: skip
        placed = requests.post(
            f"{url}/servers",
            headers=headers_,
            json={"server": {"name": unique("h"), "flavorRef": flavor, "imageRef": image_uid,
                             "availability_zone": site.zone, **fields}},
        )  # fmt: skip
        assert placed.status_code == code, (fields, placed.text)
    conn = clouds.connect("root")
    pinned = conn.compute.wait_for_server(
        conn.compute.get_server(placed.json()["server"]["id"]), wait=60, interval=0.5
    )
    assert pinned.compute_host == target
    conn.compute.delete_server(pinned)

    # Image signature certificates (2.63): none, and none can be asked for.
    shown_at = {v: requests.get(f"{url}/servers/{server['id']}", headers=at(v)).json()["server"]
                for v in ("2.62", "2.63")}  # fmt: skip
    assert "trusted_image_certificates" not in shown_at["2.62"]
    assert shown_at["2.63"]["trusted_image_certificates"] is None
    certified = requests.post(
        f"{url}/servers",
        headers=at("2.63"),
        json={"server": {"name": "c", "flavorRef": flavor, "imageRef": image_uid,
                         "trusted_image_certificates": ["cert-1"]}},
    )  # fmt: skip
    assert certified.status_code == 400 and "badRequest" in certified.json(), certified.text
    # No `force` in live migration and evacuation from 2.68.
    for action in ({"os-migrateLive": {"host": None, "force": False}},
                   {"evacuate": {"force": False}}):  # fmt: skip
        forced = requests.post(
            f"{url}/servers/{server['id']}/action",
            headers={**root, "OpenStack-API-Version": "compute 2.68"},
            json=action,
        )
        assert forced.status_code == 400 and "force" in forced.text, forced.text
    # Device tags (none kept) from 2.70; a server's groups in its own view from 2.71.
    shown_at = {v: requests.get(f"{url}/servers/{server['id']}", headers=at(v)).json()["server"]
                for v in ("2.70", "2.71")}  # fmt: skip
    assert "server_groups" not in shown_at["2.70"]
    assert shown_at["2.71"]["server_groups"] == [group]
    listed = requests.get(f"{url}/servers/detail", headers=at("2.71")).json()["servers"]
    assert all("server_groups" not in s for s in listed)  # (show, update and rebuild only)
    interfaces = requests.get(f"{url}/servers/{server['id']}/os-interface", headers=at("2.70"))
    assert all(i["tag"] is None for i in interfaces.json()["interfaceAttachments"])
    # A lock's reason (2.73): shown, and servers listed by `locked`.
    clouds.run("member", "server", "lock", "--reason", "maintenance", server["id"])
    shown = requests.get(f"{url}/servers/{server['id']}", headers=at("2.73")).json()["server"]
    assert (shown["locked"], shown["locked_reason"]) == (True, "maintenance")
    for value, present in (("true", True), ("False", False)):
        found = requests.get(f"{url}/servers", headers=at("2.73"), params={"locked": value})
        assert (server["id"] in {s["id"] for s in found.json()["servers"]}) == present, value
    maybe = requests.get(f"{url}/servers", headers=at("2.73"), params={"locked": "maybe"})
    assert maybe.status_code == 400 and "badRequest" in maybe.json(), maybe.text
    clouds.run("member", "server", "unlock", server["id"])
    unlocked = requests.get(f"{url}/servers/{server['id']}", headers=at("2.73")).json()["server"]
    assert (unlocked["locked"], unlocked["locked_reason"]) == (False, None)
    absolute = {v: requests.get(f"{url}/limits", headers=at(v)).json()["limits"]["absolute"]
                for v in ("2.38", "2.39")}  # fmt: skip
    assert "maxImageMeta" in absolute["2.38"] and "maxImageMeta" not in absolute["2.39"]
    for version, in_body in (("2.44", False), ("2.45", True)):
        made = requests.post(
            f"{url}/servers/{server['id']}/action",
            headers=at(version),
            json={"createImage": {"name": unique("snap")}},
        )
        assert made.status_code == 202, made.text
        assert ("Location" in made.headers) != in_body
        image_id = made.json()["image_id"] if in_body else made.headers["Location"].split("/")[-1]
        deadline = time.monotonic() + 60  # (one snapshot at a time)
        while True:
            snapped = requests.get(f"{gateway.url}/image/v2/images/{image_id}", headers=headers)
            if snapped.json()["status"] == "active":
                break
            assert time.monotonic() < deadline, snapped.text
            time.sleep(0.2)
    # A rebuild also changes the name, metadata, key pair (2.54) and user data (2.57).
    key = unique("kp")
    clouds.run("member", "keypair", "create", key)
    user_data = Path(tempfile.mkdtemp(prefix="kumo-ud-")) / "user-data"
    user_data.write_text("#cloud-config\n")
    clouds.run("member", "server", "rebuild", "--image", image, "--name", "rebuilt",
               "--property", "role=db", "--key-name", key, "--user-data", str(user_data),
               "--wait", server["id"])  # fmt: skip
    rebuilt = clouds.json("member", "server", "show", server["id"])
    assert (rebuilt["name"], rebuilt["key_name"]) == ("rebuilt", key)
    assert rebuilt["properties"] == {"role": "db"}, rebuilt["properties"]
    member_compute = crpc.ComputeServiceStub(tenant.stubs["member"].channel)
    instance = next(
        i
        for i in member_compute.ListInstances(
            capi.ListInstancesRequest(parent=f"{tenant.name}/zones/-")
        ).instances
        if i.uid == server["id"]
    )
    assert instance.user_data == b"#cloud-config\n"
    # File injection is refused from 2.57 (in a rebuild as at creation).
    injected = requests.post(
        f"{url}/servers/{server['id']}/action",
        headers=at("2.57"),
        json={"rebuild": {"imageRef": image_uid, "personality": []}},
    )
    assert injected.status_code == 400 and "badRequest" in injected.json(), injected.text
    absolute = {v: requests.get(f"{url}/limits", headers=at(v)).json()["limits"]["absolute"]
                for v in ("2.56", "2.57")}  # fmt: skip
    assert "maxPersonality" in absolute["2.56"] and "maxPersonality" not in absolute["2.57"]
    snapshot = unique("snap")
    clouds.run("member", "server", "image", "create", "--name", snapshot, "--wait", server["id"])

    # resize goes to ResizeInstance; whatever it answers over gRPC, Nova's shape and the
    # status table's code come back.
    headers = {"X-Auth-Token": tenant.stubs["member"].token or ""}
    resized = requests.post(
        f"{gateway.url}/compute/v2.1/servers/{server['id']}/action",
        headers=headers,
        json={"resize": {"flavorRef": "no-such-flavor"}},
    )
    assert resized.status_code in (400, 404, 501), resized.text
    ((key, fault),) = resized.json().items()
    assert fault["code"] == resized.status_code and key in (
        "badRequest", "itemNotFound", "notImplemented",
    )  # fmt: skip
    shelved = requests.post(
        f"{gateway.url}/compute/v2.1/servers/{server['id']}/action",
        headers=headers,
        json={"shelve": None},
    )
    assert shelved.status_code == 501 and "notImplemented" in shelved.json()

    # A real resize waits in VERIFY_RESIZE; confirming makes it ACTIVE on the new flavor.
    bigger = make_flavor(admin, 1, 384, 1).rsplit("/", 1)[-1]
    clouds.run("member", "server", "resize", "--flavor", bigger, "--wait", server["id"])
    assert clouds.json("member", "server", "show", server["id"])["status"] == "VERIFY_RESIZE"
    clouds.run("member", "server", "resize", "confirm", server["id"])
    conn = clouds.connect("member")
    confirmed = conn.compute.wait_for_server(
        conn.compute.get_server(server["id"]), status="ACTIVE", wait=60, interval=0.5
    )
    assert confirmed.flavor.original_name == bigger or confirmed.flavor.id == bigger

    # Live migration (administrators): `server migrate --live-migration` moves it to the
    # other host; members are refused; evacuating from a host that is up is a conflict.
    before = clouds.json("root", "server", "show", server["id"])["OS-EXT-SRV-ATTR:host"]
    refused = clouds.run("member", "server", "migrate", "--live-migration", server["id"],
                         check=False)  # fmt: skip
    assert refused.returncode != 0 and "403" in refused.stderr
    clouds.run("root", "server", "migrate", "--live-migration", server["id"])
    # MIGRATING while it moves (what `--wait` waits through), then ACTIVE on the other host.
    conn = clouds.connect("root")
    deadline = time.monotonic() + 60
    while (moved := conn.compute.get_server(server["id"])).status == "MIGRATING":
        assert time.monotonic() < deadline, "the server did not move"
        time.sleep(0.5)
    assert moved.status == "ACTIVE" and moved.compute_host not in ("", before)
    # Cold migration (`server migrate`): shut down, moved back, started there.
    clouds.run("root", "server", "migrate", server["id"])
    deadline = time.monotonic() + 120
    while (back := conn.compute.get_server(server["id"])).status == "MIGRATING" or (
        back.status == "SHUTOFF"  # arrived, not started yet
    ):
        assert time.monotonic() < deadline, "the server did not move back"
        time.sleep(0.5)
    assert back.status == "ACTIVE" and back.compute_host == before
    root = {"X-Auth-Token": clouds.connect("root").auth_token}
    evacuated = requests.post(
        f"{gateway.url}/compute/v2.1/servers/{server['id']}/action",
        headers=root,
        json={"evacuate": {}},
    )
    assert evacuated.status_code in (400, 409), evacuated.text
    assert next(iter(evacuated.json().values()))["code"] == evacuated.status_code
    # Hypervisors show their sizes and usage until 2.87; from 2.88 `uptime` instead (none
    # known), and the uptime route is gone (404), as in Nova.
    hypervisors = f"{gateway.url}/compute/v2.1/os-hypervisors"

    def detail(version: str) -> list[dict[str, Any]]:
        headers = {**root, "OpenStack-API-Version": f"compute {version}"}
        found: list[dict[str, Any]] = requests.get(f"{hypervisors}/detail", headers=headers).json()[
            "hypervisors"
        ]
        return found

    before = detail("2.87")
    assert sum(h["vcpus_used"] for h in before) >= 1 and sum(h["running_vms"] for h in before) >= 1
    assert all("running_vms" not in h and h["uptime"] is None for h in detail("2.88"))
    by_sdk = list(clouds.connect("root").compute.hypervisors(details=True))
    assert {h.name for h in by_sdk} == {h["hypervisor_hostname"] for h in detail("2.88")}
    one = detail("2.88")[0]["id"]
    for version, code in (("2.87", 501), ("2.88", 404)):
        uptime = requests.get(
            f"{hypervisors}/{one}/uptime",
            headers={**root, "OpenStack-API-Version": f"compute {version}"},
        )
        assert uptime.status_code == code, (version, uptime.text)
    # A server's NUMA topology (2.78; 404 before): a Kumo guest has none of its own.
    shown = clouds.json(
        "member", "--os-compute-api-version", "2.78", "server", "show", "--topology", server["id"]
    )
    assert shown["topology"] == {"nodes": [], "pagesize_kb": None}
    topology = f"{gateway.url}/compute/v2.1/servers/{server['id']}/topology"
    early = requests.get(topology, headers={**root, "OpenStack-API-Version": "compute 2.77"})
    assert early.status_code == 404 and "itemNotFound" in early.json(), early.text

    clouds.run("member", "server", "delete", "--wait", server["id"])
    clouds.run("member", "server", "group", "delete", group)
    assert group not in {g["Name"] for g in clouds.json("member", "server", "group", "list")}


def test_image_sharing_with_members(clouds: Clouds, other_tenant: Tenant) -> None:
    """A shared image, a member project that accepts it and then sees it; removal."""
    clouds.add("other", other_tenant.users["member"], PASSWORD, other_tenant.project)
    name = _upload_with_cli(clouds, unique("osimg"))
    image_id = clouds.json("member", "image", "show", name)["id"]
    assert image_id not in {i["ID"] for i in clouds.json("other", "image", "list")}
    clouds.run("member", "image", "set", "--shared", image_id)
    clouds.run("member", "image", "add", "project", image_id, other_tenant.project)
    members = clouds.json("member", "image", "member", "list", image_id)
    assert [(m["Member ID"], m["Status"]) for m in members] == [(other_tenant.project, "pending")]
    clouds.run("other", "image", "set", "--accept", image_id)
    assert image_id in {i["ID"] for i in clouds.json("other", "image", "list")}
    clouds.run("member", "image", "remove", "project", image_id, other_tenant.project)
    assert image_id not in {i["ID"] for i in clouds.json("other", "image", "list")}


def test_server_list_pages(
    clouds: Clouds, gateway: GatewayThread, admin: Stubs, tenant: Tenant
) -> None:
    """`limit` pages with `servers_links`, which openstacksdk follows; an id `marker` gives
    the servers after it, an unknown one is 400."""
    zone = make_site(admin).zone
    flavor = make_flavor(admin, 1, 128, 1).rsplit("/", 1)[-1]
    image_id = clouds.json("member", "image", "show", _upload_with_cli(clouds, unique("im")))["id"]
    headers = {"X-Auth-Token": tenant.stubs["member"].token or ""}
    servers = f"{gateway.url}/compute/v2.1/servers"
    made = set()
    for index in range(3):
        created = requests.post(
            servers,
            headers=headers,
            json={"server": {"name": f"p{index}", "imageRef": image_id, "flavorRef": flavor,
                             "availability_zone": zone}},
        )  # fmt: skip
        made.add(created.json()["server"]["id"])
    first = requests.get(servers, headers=headers, params={"limit": 2}).json()
    assert len(first["servers"]) == 2
    second = requests.get(first["servers_links"][0]["href"], headers=headers).json()
    assert {s["id"] for s in first["servers"] + second["servers"]} == made
    assert "servers_links" not in second
    paged = clouds.connect("member").compute.servers(details=False, limit=1)
    assert {s.id for s in paged} == made
    order = [s["id"] for s in first["servers"] + second["servers"]]
    after = requests.get(servers, headers=headers, params={"marker": order[0]}).json()
    assert [s["id"] for s in after["servers"]] == order[1:]
    unknown = requests.get(servers, headers=headers, params={"marker": str(uuid.uuid4())})
    assert unknown.status_code == 400 and "badRequest" in unknown.json()
    for server in made:
        requests.delete(f"{servers}/{server}", headers=headers)
