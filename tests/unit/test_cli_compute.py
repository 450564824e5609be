"""The image and compute commands and SDK helpers, without a Kumo server.

Commands run against fake services (or, for the streaming helpers, a fake
ImageService on an in-process gRPC server).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import stat
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import grpc
import pytest
from click.testing import CliRunner
from google.longrunning import operations_pb2
from google.rpc import code_pb2, status_pb2

from kumo.cli import errors, instances
from kumo.cli.compute import POLICIES, SERVER_GROUP_COLUMNS, policy_label, server_group_rows
from kumo.cli.context import ProjectName, State
from kumo.cli.images import (
    DISK_FORMATS,
    MEMBER_COLUMNS,
    QCOW2_MAGIC,
    image_columns,
    member_name,
    relative_name,
    sniff_format,
)
from kumo.cli.instances import INSTANCE_COLUMNS, zone_of
from kumo.cli.main import cli
from kumo.cli.output import Printer, TransferProgress, flatten, format_bytes
from kumo.client import Client, KumoError, instance_name, project_resource_name
from kumo.compute.v1 import compute_service_pb2 as cpb
from kumo.compute.v1 import resources_pb2 as compute
from kumo.image.v1 import image_service_pb2 as ipb
from kumo.image.v1 import image_service_pb2_grpc
from kumo.image.v1 import resources_pb2 as image_pb
from kumo.topology.v1 import resources_pb2 as topology
from kumo.type.v1 import operation_metadata_pb2

PROJECT = "projects/p"
INSTANCE = "projects/p/zones/z1/instances/vm"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No session, endpoint, token or zone from the environment."""
    monkeypatch.setenv("KUMO_CONFIG_DIR", str(tmp_path / "kumo"))
    for variable in ("KUMO_ENDPOINT", "KUMO_TOKEN", "KUMO_ZONE"):
        monkeypatch.delenv(variable, raising=False)


class Fake:
    """Stands in for a service (`client.images`): methods are the given
    functions, and every call is recorded as (method, request)."""

    def __init__(self, calls: list[tuple[str, Any]], **methods: Any) -> None:
        for method, function in methods.items():
            setattr(self, method, self._recording(calls, method, function))

    @staticmethod
    def _recording(calls: list[tuple[str, Any]], method: str, function: Any) -> Any:
        def call(request: Any, **kwargs: Any) -> Any:
            calls.append((method, request))
            return function(request)

        return call


class FakeClient:
    images: Any
    compute: Any
    topology: Any

    def __init__(self, **services: Any) -> None:
        self.__dict__.update(services)
        self.endpoint, self.token = "fake:1", "t"
        self.uploads: list[tuple[str, Path, str | None]] = []

    def wait(self, operation: Any, timeout: Any = None, on_progress: Any = None) -> Any:
        return operation

    def upload_image(
        self, name: str, path: Path, expected_sha256: str | None = None, on_progress: Any = None
    ) -> Any:
        self.uploads.append((name, Path(path), expected_sha256))
        if on_progress is not None:
            on_progress(Path(path).stat().st_size)
        return image_pb.Image(name=name, state=image_pb.Image.STATE_ACTIVE)

    def close(self) -> None: ...


def use(monkeypatch: pytest.MonkeyPatch, client: FakeClient, project: str = PROJECT) -> None:
    monkeypatch.setattr(State, "client", lambda self, signed_in=True: client)
    monkeypatch.setattr(State, "project", lambda self: project)


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


def shown(stdout: str) -> dict[str, str]:
    """The `key:  value` lines of a show command."""
    return {
        key: value.strip()
        for key, _, value in (line.partition(":") for line in stdout.splitlines())
    }


def done_operation(response: Any = None, error: Any = None) -> Any:
    operation = operations_pb2.Operation(name="operations/op1", done=True)
    operation.metadata.Pack(
        operation_metadata_pb2.OperationMetadata(verb="BuildInstance", target=INSTANCE)
    )
    if error is not None:
        operation.error.CopyFrom(error)
    elif response is not None:
        operation.response.Pack(response)
    return operation


def an_instance(**fields: Any) -> Any:
    message = compute.Instance(
        name=INSTANCE,
        state=compute.Instance.STATE_RUNNING,
        host="hosts/h1",
        flavor="flavors/small",
        image="projects/admin/images/kumo-tiny",
        **fields,
    )
    message.create_time.FromSeconds(1_700_000_000)
    return message


# Names


def test_project_resource_names_from_ids_and_full_names() -> None:
    assert project_resource_name("images", "foo", "projects/p") == "projects/p/images/foo"
    assert project_resource_name("images", "foo", "p") == "projects/p/images/foo"
    full = "projects/admin/images/kumo-tiny"
    assert project_resource_name("images", full, "projects/p") == full
    assert project_resource_name("keyPairs", " k ", "p") == "projects/p/keyPairs/k"


@pytest.mark.parametrize(
    "value",
    ["", "images/foo", "projects/p/keyPairs/foo", "projects//images/foo", "projects/p/images/"],
)
def test_project_resource_names_reject_other_shapes(value: str) -> None:
    with pytest.raises(ValueError):
        project_resource_name("images", value, "projects/p")


def test_project_resource_name_of_an_id_needs_a_project() -> None:
    with pytest.raises(ValueError, match="give a full name"):
        project_resource_name("images", "foo", "")


def test_instance_names() -> None:
    assert instance_name("vm", "projects/p", "z1") == INSTANCE
    assert instance_name("vm", "p", "zones/z1") == INSTANCE
    assert instance_name(INSTANCE, "", "") == INSTANCE
    assert instance_name(INSTANCE, "projects/other", "z1") == INSTANCE
    with pytest.raises(ValueError, match="not in zone 'z2'"):
        instance_name(INSTANCE, "", "z2")
    with pytest.raises(ValueError, match="no zone"):
        instance_name("vm", "p", "")
    for bad in ("projects/p/instances/vm", "zones/z1/instances/vm", "projects/p/zones/z1/x/vm"):
        with pytest.raises(ValueError):
            instance_name(bad, "p", "z1")


def test_relative_names_and_member_names() -> None:
    assert relative_name("projects/p/images/foo", PROJECT) == "foo"
    assert relative_name("projects/admin/images/kumo-tiny", PROJECT) == (
        "projects/admin/images/kumo-tiny"
    )
    assert member_name("projects/o/images/foo", "projects/p") == "projects/o/images/foo/members/p"
    assert zone_of(INSTANCE) == "z1"
    assert zone_of("bad") == ""


def test_image_arguments_resolve_in_the_session_project(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, Any]] = []
    images = Fake(calls, GetImage=lambda request: image_pb.Image(name=request.name))
    use(monkeypatch, FakeClient(images=images))
    assert run("image", "show", "foo").exit_code == 0
    assert run("image", "show", "projects/admin/images/kumo-tiny").exit_code == 0
    assert [request.name for _, request in calls] == [
        "projects/p/images/foo",
        "projects/admin/images/kumo-tiny",
    ]
    result = run("image", "show", "projects/p/keyPairs/foo")
    assert result.exit_code == errors.USAGE
    assert "not a images id or a name like 'projects/PROJECT/images/ID'" in result.stderr


def test_session_project_needs_a_sign_in() -> None:
    with pytest.raises(errors.CliError) as caught:
        ProjectName("images").convert("foo", None, click.Context(cli, obj=State()))
    assert caught.value.exit_code == errors.DENIED


def test_project_comes_from_the_session_or_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    from kumo.cli.session import Session, save_session

    save_session(Session(endpoint="h:1", token="t1", project="projects/s"))
    assert State().project() == "projects/s"
    checked: list[str] = []

    def validate(request: Any) -> Any:
        checked.append(request.token)
        return type("R", (), {"token": type("T", (), {"project": "projects/from-token"})()})()

    state = State(token="other")
    client = state.client()
    client.identity = Fake([], ValidateToken=validate)  # type: ignore[assignment]
    assert state.project() == "projects/from-token"
    assert state.project() == "projects/from-token"  # asked once
    assert checked == ["other"]


# Rendering


def test_format_bytes() -> None:
    assert [format_bytes(n) for n in (0, 1023, 1536, 64 << 20, 3 << 30)] == [
        "0 B",
        "1023 B",
        "1.5 KiB",
        "64.0 MiB",
        "3.0 GiB",
    ]


def test_image_table_shows_own_images_by_id_and_others_by_name() -> None:
    own = image_pb.Image(
        name="projects/p/images/disk",
        disk_format=image_pb.DISK_FORMAT_QCOW2,
        visibility=image_pb.VISIBILITY_PRIVATE,
        state=image_pb.Image.STATE_ACTIVE,
        size_bytes=196_616,
    )
    own.create_time.FromSeconds(1_700_000_000)
    public = image_pb.Image(
        name="projects/admin/images/kumo-tiny",
        disk_format=image_pb.DISK_FORMAT_RAW,
        visibility=image_pb.VISIBILITY_PUBLIC,
        state=image_pb.Image.STATE_PENDING_UPLOAD,
    )
    out = io.StringIO()
    Printer("table", out).items([own, public], image_columns(PROJECT))
    assert out.getvalue().splitlines() == [
        "NAME                             FORMAT  VISIBILITY  STATE           SIZE       CREATED",
        "disk                             qcow2   private     active          192.0 KiB  "
        "2023-11-14T22:13:20Z",
        "projects/admin/images/kumo-tiny  raw     public      pending_upload  -          -",
    ]


def test_instance_table_columns() -> None:
    out = io.StringIO()
    Printer("table", out).items([an_instance()], INSTANCE_COLUMNS)
    assert out.getvalue().splitlines() == [
        "NAME  ZONE  STATE    HOST  FLAVOR  IMAGE      CREATED",
        "vm    z1    running  h1    small   kumo-tiny  2023-11-14T22:13:20Z",
    ]
    unplaced = compute.Instance(name=INSTANCE, state=compute.Instance.STATE_PROVISIONING)
    assert [c.text(unplaced) for c in INSTANCE_COLUMNS][2:4] == ["provisioning", "-"]


def test_user_data_shows_as_its_size() -> None:
    rows = dict(flatten(an_instance(user_data=b"#cloud-config\n")))
    assert rows["user_data"] == "(14 bytes)"


def test_server_group_policies_as_options_take_them() -> None:
    assert sorted(POLICIES) == ["affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity"]
    assert policy_label(compute.ServerGroup.POLICY_SOFT_ANTI_AFFINITY) == "soft-anti-affinity"
    group = compute.ServerGroup(
        name="projects/p/serverGroups/g",
        policy=compute.ServerGroup.POLICY_ANTI_AFFINITY,
        members=[INSTANCE, "projects/p/zones/z1/instances/vm2"],
    )
    assert [c.text(group) for c in SERVER_GROUP_COLUMNS] == ["g", "anti-affinity", "vm, vm2", "-"]
    assert dict(server_group_rows(group))["policy"] == "anti-affinity"


def test_member_table() -> None:
    member = image_pb.ImageMember(
        name="projects/o/images/i/members/p",
        project="projects/p",
        state=image_pb.ImageMember.STATE_ACCEPTED,
    )
    assert [c.text(member) for c in MEMBER_COLUMNS] == ["p", "accepted"]


def test_transfer_progress_writes_every_ten_percent_when_not_a_terminal() -> None:
    out = io.StringIO()
    progress = TransferProgress("upload disk", 100 << 20, out, live=False)
    for sent in range(1, 101):
        progress(sent << 20)
    progress.close()
    lines = out.getvalue().splitlines()
    assert [line.split("]")[1].split()[0] for line in lines] == [
        f"{percent}%" for percent in (1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)
    ]
    assert lines[-1] == "upload disk [####################] 100%  100.0 MiB of 100.0 MiB"


def test_transfer_progress_redraws_each_percent_on_a_terminal() -> None:
    out = io.StringIO()
    progress = TransferProgress("download disk", 200, out, live=True)
    for sent in range(0, 201, 1):
        progress(sent)
    progress.close()
    assert out.getvalue().count("\r") == 101
    assert out.getvalue().endswith("100%  200 B of 200 B\n")


# Format sniffing


def test_sniff_format(tmp_path: Path) -> None:
    qcow2 = tmp_path / "a.qcow2"
    qcow2.write_bytes(QCOW2_MAGIC + b"\x00\x00\x00\x03" + bytes(100))
    raw = tmp_path / "a.img"
    raw.write_bytes(b"\xeb\x63\x90" + bytes(509))
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    short = tmp_path / "short"
    short.write_bytes(b"QFI")
    assert [sniff_format(p) for p in (qcow2, raw, empty, short)] == ["qcow2", "raw", "raw", "raw"]
    assert sorted(DISK_FORMATS) == ["qcow2", "raw"]


def test_image_create_sniffs_the_format_and_uploads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[tuple[str, Any]] = []

    def create(request: Any) -> Any:
        return image_pb.Image(name=f"{request.parent}/images/{request.image_id}")

    client = FakeClient(images=Fake(calls, CreateImage=create))
    use(monkeypatch, client)
    disk = tmp_path / "disk"
    disk.write_bytes(QCOW2_MAGIC + bytes(1000))
    result = run(
        "image", "create", "disk", "--file", str(disk), "--visibility", "shared",
        "--min-disk-gib", "2", "--label", "os=tiny", "--tag", "a", "--tag", "b",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    request = calls[0][1]
    assert (request.parent, request.image_id) == ("projects/p", "disk")
    assert request.image.disk_format == image_pb.DISK_FORMAT_QCOW2
    assert request.image.visibility == image_pb.VISIBILITY_SHARED
    assert request.image.min_disk_gib == 2
    assert dict(request.image.labels) == {"os": "tiny"}
    assert list(request.image.tags) == ["a", "b"]
    assert client.uploads == [("projects/p/images/disk", disk, None)]
    assert shown(result.stdout)["state"] == "active"
    assert "upload disk [####################] 100%  1004 B of 1004 B" in result.stderr

    raw = tmp_path / "raw"
    raw.write_bytes(bytes(10))
    assert run("image", "create", "r", "--file", str(raw)).exit_code == 0
    assert calls[-1][1].image.disk_format == image_pb.DISK_FORMAT_RAW
    assert run("image", "create", "q", "--file", str(raw), "--format", "qcow2").exit_code == 0
    assert calls[-1][1].image.disk_format == image_pb.DISK_FORMAT_QCOW2


def test_image_create_argument_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    use(monkeypatch, FakeClient())
    result = run("image", "create", "disk")
    assert result.exit_code == errors.USAGE
    assert "give --file to upload, or --format" in result.stderr
    missing = run("image", "create", "disk", "--file", str(tmp_path / "nope"))
    assert missing.exit_code == errors.USAGE
    bad = run("image", "create", "disk", "--format", "vmdk")
    assert bad.exit_code == errors.USAGE
    vis = run("image", "create", "disk", "--format", "raw", "--visibility", "everyone")
    assert vis.exit_code == errors.USAGE


def test_upload_refuses_an_image_with_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    active = image_pb.Image(name="projects/p/images/d", state=image_pb.Image.STATE_ACTIVE)
    client = FakeClient(images=Fake([], GetImage=lambda request: active))
    use(monkeypatch, client)
    disk = tmp_path / "d"
    disk.write_bytes(b"x")
    result = run("image", "upload", "d", "--file", str(disk))
    assert result.exit_code == errors.REJECTED
    assert "is active: only images in pending_upload accept data" in result.stderr
    assert client.uploads == []


def test_accept_names_the_membership_of_the_signed_in_project(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, Any]] = []
    images = Fake(calls, UpdateImageMember=lambda request: request.image_member)
    use(monkeypatch, FakeClient(images=images), project="projects/member")
    assert run("image", "accept", "projects/owner/images/shared").exit_code == 0
    assert run("image", "reject", "projects/owner/images/shared").exit_code == 0
    accepted, rejected = (request for _, request in calls)
    assert accepted.image_member.name == "projects/owner/images/shared/members/member"
    assert accepted.image_member.state == image_pb.ImageMember.STATE_ACCEPTED
    assert list(accepted.update_mask.paths) == ["state"]
    assert rejected.image_member.state == image_pb.ImageMember.STATE_REJECTED


def test_share_and_unshare(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, Any]] = []
    images = Fake(
        calls,
        CreateImageMember=lambda request: image_pb.ImageMember(),
        DeleteImageMember=lambda request: None,
    )
    use(monkeypatch, FakeClient(images=images))
    assert run("image", "share", "disk", "other").exit_code == 0
    result = run("image", "unshare", "disk", "projects/other")
    assert result.stdout == "stopped sharing projects/p/images/disk with projects/other\n"
    share, unshare = (request for _, request in calls)
    assert (share.parent, share.member_project) == ("projects/p/images/disk", "projects/other")
    assert unshare.name == "projects/p/images/disk/members/other"


# Flavors, key pairs, server groups


def test_flavor_create_needs_sizes(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, Any]] = []
    use(monkeypatch, FakeClient(compute=Fake(calls, CreateFlavor=lambda request: request.flavor)))
    result = run("flavor", "create", "small", "--vcpus", "1", "--memory-mib", "512")
    assert result.exit_code == errors.USAGE and "--disk-gib" in result.stderr
    assert run("flavor", "create", "small", "--vcpus", "0", "--memory-mib", "1",
               "--disk-gib", "1").exit_code == errors.USAGE  # fmt: skip
    result = run(
        "flavor", "create", "flavors/small", "--vcpus", "2", "--memory-mib", "512",
        "--disk-gib", "5",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    request = calls[0][1]
    assert request.flavor_id == "small"
    assert (request.flavor.vcpus, request.flavor.memory_mib, request.flavor.disk_gib) == (2, 512, 5)


KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n"


def generated(request: Any) -> Any:
    return compute.KeyPair(
        name=f"{request.parent}/keyPairs/{request.key_pair_id}",
        public_key="ssh-ed25519 AAAA",
        private_key=KEY,
        fingerprint="SHA256:xyz",
    )


def test_keypair_create_prints_only_the_private_key(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, Any]] = []
    use(monkeypatch, FakeClient(compute=Fake(calls, CreateKeyPair=generated)))
    result = run("keypair", "create", "k")
    assert result.exit_code == 0, result.output
    assert result.stdout == KEY
    assert "Created projects/p/keyPairs/k (SHA256:xyz)" in result.stderr
    request = calls[0][1]
    assert (request.parent, request.key_pair_id, request.key_pair.public_key) == (
        "projects/p",
        "k",
        "",
    )
    shown = json.loads(run("-o", "json", "keypair", "create", "k").stdout)
    assert shown["privateKey"] == KEY


def test_keypair_create_writes_the_private_key_file_0600(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[tuple[str, Any]] = []
    use(monkeypatch, FakeClient(compute=Fake(calls, CreateKeyPair=generated)))
    path = tmp_path / "k.pem"
    result = run("keypair", "create", "k", "--private-key-file", str(path))
    assert result.exit_code == 0, result.output
    assert path.read_text() == KEY
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "BEGIN OPENSSH" not in result.stdout
    assert shown(result.stdout)["fingerprint"] == "SHA256:xyz"
    again = run("keypair", "create", "k2", "--private-key-file", str(path))
    assert again.exit_code == errors.USAGE and "exists" in again.stderr
    assert len(calls) == 1  # refused before creating anything


def test_keypair_import_reads_the_public_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[tuple[str, Any]] = []
    use(monkeypatch, FakeClient(compute=Fake(calls, CreateKeyPair=lambda r: r.key_pair)))
    public = tmp_path / "id.pub"
    public.write_text("ssh-ed25519 AAAAC3Nza me@host\n")
    assert run("keypair", "import", "mine", "--public-key-file", str(public)).exit_code == 0
    assert calls[0][1].key_pair.public_key == "ssh-ed25519 AAAAC3Nza me@host"
    assert run("keypair", "import", "mine").exit_code == errors.USAGE


def test_server_group_create(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, Any]] = []
    use(monkeypatch, FakeClient(compute=Fake(calls, CreateServerGroup=lambda r: r.server_group)))
    result = run("server-group", "create", "g", "--policy", "soft-anti-affinity")
    assert result.exit_code == 0, result.output
    assert shown(result.stdout)["policy"] == "soft-anti-affinity"
    request = calls[0][1]
    assert request.server_group.policy == compute.ServerGroup.POLICY_SOFT_ANTI_AFFINITY
    assert (request.parent, request.server_group_id) == ("projects/p", "g")
    bad = run("server-group", "create", "g", "--policy", "anti_affinity")
    assert bad.exit_code == errors.USAGE


# Instances and zones


def zones(*ids: str) -> Any:
    def list_zones(request: Any) -> Any:
        response = type("Page", (), {})()
        response.zones = [topology.Zone(name=f"zones/{z}") for z in ids]
        response.next_page_token = ""
        return response

    return Fake([], ListZones=list_zones)


def test_zone_defaults_to_the_environment_then_the_only_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, Any]] = []
    client = FakeClient(compute=Fake(calls, GetInstance=lambda r: an_instance()), topology=zones())
    use(monkeypatch, client)
    result = run("instance", "show", "vm")
    assert result.exit_code == errors.USAGE and "no zones" in result.stderr

    client.topology = zones("z1", "z2")
    result = run("instance", "show", "vm")
    assert result.exit_code == errors.USAGE
    assert "give --zone ZONE (or set $KUMO_ZONE)" in result.stderr
    assert run("instance", "show", "vm", "--zone", "z1").exit_code == 0
    assert run("instance", "show", "vm", "--zone", "zones/z1").exit_code == 0
    monkeypatch.setenv("KUMO_ZONE", "z1")
    assert run("instance", "show", "vm").exit_code == 0
    monkeypatch.delenv("KUMO_ZONE")

    client.topology = zones("z1")
    assert run("instance", "show", "vm").exit_code == 0
    assert run("instance", "show", INSTANCE).exit_code == 0
    assert [request.name for _, request in calls] == [INSTANCE] * 5

    wrong = run("instance", "show", INSTANCE, "--zone", "z2")
    assert wrong.exit_code == errors.USAGE and "not in zone 'z2'" in wrong.stderr
    bad = run("instance", "show", "vm", "--zone", "regions/r")
    assert bad.exit_code == errors.USAGE


def test_instance_list_covers_every_zone_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, Any]] = []

    def list_instances(request: Any) -> Any:
        return cpb.ListInstancesResponse(instances=[an_instance()])

    use(monkeypatch, FakeClient(compute=Fake(calls, ListInstances=list_instances)))
    monkeypatch.setenv("KUMO_ZONE", "z9")  # only for commands on one instance
    result = run("instance", "list")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1].split()[:3] == ["vm", "z1", "running"]
    assert run("instance", "list", "--zone", "z1", "--filter", 'state = "running"').exit_code == 0
    assert [(r.parent, r.filter) for _, r in calls] == [
        ("projects/p/zones/-", ""),
        ("projects/p/zones/z1", 'state = "running"'),
    ]


def test_instance_interfaces_attach_and_detach(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, Any]] = []
    respond = lambda request: done_operation(an_instance())  # noqa: E731
    methods = {m: respond for m in ("AttachNetworkInterface", "DetachNetworkInterface")}
    use(monkeypatch, FakeClient(compute=Fake(calls, **methods)))
    for args in (
        ["attach-interface", INSTANCE, "--network", "lan", "--ip", "10.0.0.5"],
        ["attach-interface", INSTANCE, "--port", "mine"],
        ["detach-interface", INSTANCE, "mine"],
    ):
        result = run("instance", *args)
        assert result.exit_code == 0, (args, result.output)
    (_, by_network), (_, by_port), (_, detach) = calls
    assert (by_network.name, by_network.network_interface.network) == (
        INSTANCE,
        "projects/p/networks/lan",
    )
    assert by_network.network_interface.ip_address == "10.0.0.5"
    assert by_port.network_interface.port == "projects/p/ports/mine"
    assert (detach.name, detach.port) == (INSTANCE, "projects/p/ports/mine")
    for args in (["attach-interface", INSTANCE], ["attach-interface", INSTANCE, "--network",
                 "lan", "--port", "mine"]):  # fmt: skip
        assert run("instance", *args).exit_code == 2
    assert len(calls) == 3


def test_instance_create_builds_the_request_and_prints_the_instance(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[tuple[str, Any]] = []
    compute_service = Fake(calls, CreateInstance=lambda r: done_operation(an_instance()))
    use(monkeypatch, FakeClient(compute=compute_service, topology=zones("z1")))
    user_data = tmp_path / "user-data"
    user_data.write_bytes(b"#cloud-config\n")
    result = run(
        "instance", "create", "vm", "--flavor", "small", "--image", "projects/admin/images/t",
        "--key-pair", "k1", "--key-pair", "k2", "--server-group", "g", "--hostname", "web",
        "--user-data-file", str(user_data), "--pool", "p1", "--label", "env=dev",
        "--network", "lan", "--network", "projects/p/networks/san", "--boot-volume", "root",
        "--port", "mine",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    request = calls[0][1]
    assert (request.parent, request.instance_id) == ("projects/p/zones/z1", "vm")
    spec = request.instance
    assert spec.flavor == "flavors/small"
    assert spec.image == "projects/admin/images/t"
    assert list(spec.key_pairs) == ["projects/p/keyPairs/k1", "projects/p/keyPairs/k2"]
    assert spec.server_group == "projects/p/serverGroups/g"
    assert (spec.hostname, spec.user_data, spec.pool) == ("web", b"#cloud-config\n", "pools/p1")
    assert dict(spec.labels) == {"env": "dev"}
    assert [(n.network, n.port) for n in spec.network_interfaces] == [
        ("projects/p/networks/lan", ""),
        ("projects/p/networks/san", ""),
        ("", "projects/p/ports/mine"),
    ]
    assert spec.boot_volume == "projects/p/zones/z1/volumes/root"
    assert not spec.HasField("new_boot_volume") and not spec.delete_boot_volume
    assert shown(result.stdout)["name"] == INSTANCE

    result = run(
        "instance", "create", "vm", "--flavor", "small", "--image", "t", "--boot-volume-size",
        "8", "--boot-volume-type", "fast", "--delete-boot-volume",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    spec = calls[-1][1].instance
    assert (spec.new_boot_volume.size_gib, spec.new_boot_volume.volume_type) == (
        8,
        "volumeTypes/fast",
    )
    assert spec.delete_boot_volume and not spec.boot_volume

    snapshot = "projects/p/zones/z1/volumes/root/snapshots/s1"
    result = run("instance", "create", "vm", "--flavor", "small", "--image", "t",
                 "--boot-volume-snapshot", snapshot)  # fmt: skip
    assert result.exit_code == 0, result.output
    wanted = calls[-1][1].instance.new_boot_volume
    assert (wanted.source_snapshot, wanted.size_gib) == (snapshot, 0)
    assert shown(result.stdout)["state"] == "running"

    result = run("instance", "create", "vm", "--flavor", "small", "--image", "t",
                 "--volume", "data", "--volume", "projects/p/zones/z1/volumes/logs",
                 "--new-volume", "5", "--new-volume", "7", "--new-volume-type", "fast")  # fmt: skip
    assert result.exit_code == 0, result.output
    at_boot = [
        (v.volume, v.size_gib, v.volume_type, v.delete_with_instance)
        for v in calls[-1][1].instance.volumes_at_boot
    ]
    assert at_boot == [
        ("projects/p/zones/z1/volumes/data", 0, "", False),
        ("projects/p/zones/z1/volumes/logs", 0, "", False),
        ("", 5, "volumeTypes/fast", True),
        ("", 7, "volumeTypes/fast", True),
    ]
    result = run("instance", "create", "vm", "--flavor", "small", "--image", "t",
                 "--new-volume", "5", "--keep-new-volumes")  # fmt: skip
    assert [v.delete_with_instance for v in calls[-1][1].instance.volumes_at_boot] == [False]


def test_instance_create_needs_flavor_and_image(monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, FakeClient(topology=zones("z1")))
    result = run("instance", "create", "vm", "--image", "i")
    assert result.exit_code == errors.USAGE and "--flavor" in result.stderr
    result = run("instance", "create", "vm", "--flavor", "f", "--async", "--no-wait",
                 "--image", "i")  # fmt: skip
    assert result.exit_code == errors.USAGE and "cannot be used together" in result.stderr


def test_instance_create_without_a_host_exits_6(monkeypatch: pytest.MonkeyPatch) -> None:
    failure = status_pb2.Status(
        code=code_pb2.FAILED_PRECONDITION,
        message="could not build the instance: no valid host: no host has enough free vCPUs",
    )
    compute_service = Fake([], CreateInstance=lambda r: done_operation(error=failure))
    use(monkeypatch, FakeClient(compute=compute_service, topology=zones("z1")))
    result = run("instance", "create", "vm", "--flavor", "f", "--image", "i")
    assert result.exit_code == errors.OPERATION_FAILED
    assert "operations/op1 failed: could not build the instance: no valid host" in result.stderr


def test_instance_rebuild_changes_keys_and_user_data(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[tuple[str, Any]] = []
    rebuild = lambda request: done_operation(an_instance())  # noqa: E731
    use(monkeypatch, FakeClient(compute=Fake(calls, RebuildInstance=rebuild)))
    user_data = tmp_path / "user-data"
    user_data.write_bytes(b"#cloud-config\n")
    result = run("instance", "rebuild", INSTANCE, "--no-key-pairs", "--user-data-file",
                 str(user_data))  # fmt: skip
    assert result.exit_code == 0, result.output
    ((_, request),) = calls
    assert sorted(request.update_mask.paths) == ["key_pairs", "user_data"]
    assert (list(request.instance.key_pairs), request.instance.user_data) == (
        [],
        b"#cloud-config\n",
    )
    both = run("instance", "rebuild", INSTANCE, "--no-key-pairs", "--key-pair", "k1")
    assert both.exit_code == 2 and len(calls) == 1


def test_instance_actions_send_their_options(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, Any]] = []
    respond = lambda request: done_operation(an_instance())  # noqa: E731
    methods = {
        m: respond
        for m in (
            "StartInstance", "StopInstance", "RebootInstance", "SuspendInstance",
            "ResumeInstance", "RebuildInstance", "DeleteInstance", "ResizeInstance",
            "ConfirmResizeInstance", "RevertResizeInstance", "MigrateInstance",
            "EvacuateInstance",
        )
    }  # fmt: skip
    use(monkeypatch, FakeClient(compute=Fake(calls, **methods)))
    for args in (
        ["start", INSTANCE],
        ["stop", INSTANCE, "--timeout", "5"],
        ["reboot", INSTANCE, "--hard"],
        ["reboot", INSTANCE],
        ["suspend", INSTANCE],
        ["resume", INSTANCE],
        ["rebuild", INSTANCE, "--image", "other"],
        ["rebuild", INSTANCE, "--key-pair", "k1", "--display-name", "again"],
        ["resize", INSTANCE, "big"],
        ["confirm-resize", INSTANCE],
        ["revert-resize", INSTANCE],
        ["migrate", INSTANCE, "--host", "h2", "--max-downtime-ms", "50", "--auto-converge"],
        ["migrate", INSTANCE, "--cold"],
        ["evacuate", INSTANCE, "--host", "h3"],
    ):
        result = run("instance", *args)
        assert result.exit_code == 0, (args, result.output)
        assert shown(result.stdout)["state"] == "running"
    requests = [request for _, request in calls]
    assert requests[1].timeout_seconds == 5
    assert (requests[2].type, requests[3].type) == (cpb.REBOOT_TYPE_HARD, cpb.REBOOT_TYPE_SOFT)
    assert (requests[6].image, requests[7].image) == ("projects/p/images/other", "")
    assert list(requests[6].update_mask.paths) == []
    assert sorted(requests[7].update_mask.paths) == ["display_name", "key_pairs"]
    assert list(requests[7].instance.key_pairs) == ["projects/p/keyPairs/k1"]
    assert requests[7].instance.display_name == "again"
    assert requests[8].flavor == "flavors/big"
    assert [method for method, _ in calls[-5:]] == [
        "ConfirmResizeInstance",
        "RevertResizeInstance",
        "MigrateInstance",
        "MigrateInstance",
        "EvacuateInstance",
    ]
    assert (requests[11].host, requests[11].options.max_downtime_ms) == ("hosts/h2", 50)
    assert requests[11].options.auto_converge
    assert requests[11].options.mode == compute.MigrationOptions.MODE_UNSPECIFIED
    assert requests[12].options.mode == compute.MigrationOptions.MODE_COLD
    assert (calls[-1][0], requests[13].host) == ("EvacuateInstance", "hosts/h3")
    result = run("instance", "delete", INSTANCE, "--async")
    assert (result.exit_code, result.stdout) == (0, "operations/op1\n")
    result = run("instance", "stop", INSTANCE, "--async", "--wait-timeout", "3")
    assert (result.exit_code, result.stdout) == (0, "operations/op1\n")


def serial(outputs: list[Any]) -> tuple[list[int], Any]:
    starts: list[int] = []

    def read(request: Any) -> Any:
        starts.append(request.start)
        item = outputs.pop(0)
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, CtrlC):  # pressed while this call runs: it still completes
            os.kill(os.getpid(), signal.SIGINT)
            return item.response
        return item

    return starts, read


def test_console_prints_the_output(monkeypatch: pytest.MonkeyPatch) -> None:
    starts, read = serial([cpb.GetSerialPortOutputResponse(contents="boot\nok", next=7)])
    use(monkeypatch, FakeClient(compute=Fake([], GetSerialPortOutput=read)))
    result = run("instance", "console", INSTANCE)
    assert (result.exit_code, result.stdout, starts) == (0, "boot\nok\n", [0])


@dataclass
class CtrlC:
    """A serial-output answer during whose call Ctrl-C is pressed."""

    response: cpb.GetSerialPortOutputResponse


def test_console_follow_polls_from_next_until_ctrl_c(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(instances, "FOLLOW_INTERVAL", 0)
    before = signal.getsignal(signal.SIGINT)
    outputs = [
        cpb.GetSerialPortOutputResponse(contents="a\n", next=2),
        cpb.GetSerialPortOutputResponse(contents="", next=2),
        cpb.GetSerialPortOutputResponse(contents="b", start=2, next=3),
        CtrlC(cpb.GetSerialPortOutputResponse(contents="c", start=3, next=4)),
    ]
    starts, read = serial(outputs)
    use(monkeypatch, FakeClient(compute=Fake([], GetSerialPortOutput=read)))
    result = run("instance", "console", INSTANCE, "--follow")
    assert (result.exit_code, result.stdout) == (0, "a\nbc")
    assert starts == [0, 2, 2, 3]
    assert signal.getsignal(signal.SIGINT) == before  # given back
    starts, read = serial([CtrlC(cpb.GetSerialPortOutputResponse())])  # before any output
    use(monkeypatch, FakeClient(compute=Fake([], GetSerialPortOutput=read)))
    result = run("instance", "console", INSTANCE, "--follow")
    assert (result.exit_code, result.stdout, starts) == (0, "", [0])
    result = run("-o", "json", "instance", "console", INSTANCE, "-f")
    assert result.exit_code == errors.USAGE


# SDK: streaming through a real gRPC channel


class FakeImageService(image_service_pb2_grpc.ImageServiceServicer):
    """Records uploads and the authorization they came with; serves downloads."""

    def __init__(self) -> None:
        self.uploads: list[list[Any]] = []
        self.auth: list[str] = []
        self.data = b""
        self.fail_after = -1

    def _auth(self, context: Any) -> None:
        self.auth += [v for k, v in context.invocation_metadata() if k == "authorization"]

    def UploadImageData(self, request_iterator: Any, context: Any) -> Any:
        self._auth(context)
        messages = list(request_iterator)
        self.uploads.append(messages)
        return image_pb.Image(name=messages[0].name, size_bytes=sum(len(m.data) for m in messages))

    def DownloadImageData(self, request: Any, context: Any) -> Iterator[Any]:
        self._auth(context)
        if request.name.endswith("/missing"):
            context.abort(grpc.StatusCode.NOT_FOUND, "no such image")
        for index in range(0, len(self.data), 4):
            if index == self.fail_after:
                context.abort(grpc.StatusCode.INTERNAL, "disk error")
            yield ipb.DownloadImageDataResponse(data=self.data[index : index + 4])


@pytest.fixture
def image_server() -> Iterator[tuple[FakeImageService, Client]]:
    service = FakeImageService()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    image_service_pb2_grpc.add_ImageServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    client = Client(f"127.0.0.1:{port}", "tok")
    try:
        yield service, client
    finally:
        client.close()
        server.stop(None)


def test_upload_names_the_image_first_and_sends_chunks(
    image_server: tuple[FakeImageService, Client], tmp_path: Path
) -> None:
    service, client = image_server
    path = tmp_path / "disk"
    path.write_bytes(b"0123456789")
    progress: list[int] = []
    image = client.upload_image(
        "projects/p/images/d", path, chunk=4, expected_sha256="ab", on_progress=progress.append
    )
    assert image.size_bytes == 10
    first, *rest = service.uploads[0]
    assert (first.name, first.expected_sha256, first.data) == ("projects/p/images/d", "ab", b"0123")
    assert [(m.name, m.data) for m in rest] == [("", b"4567"), ("", b"89")]
    assert progress == [4, 8, 10]
    assert service.auth == ["Bearer tok"]

    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    client.upload_image("projects/p/images/e", empty)
    assert [(m.name, m.data) for m in service.uploads[1]] == [("projects/p/images/e", b"")]
    with pytest.raises(ValueError):
        client.upload_image("projects/p/images/d", path, chunk=(4 << 20) + 1)
    with pytest.raises(FileNotFoundError):
        client.upload_image("projects/p/images/d", tmp_path / "missing")


def test_download_writes_atomically_and_checks_the_checksum(
    image_server: tuple[FakeImageService, Client], tmp_path: Path
) -> None:
    service, client = image_server
    service.data = b"abcdefghij"
    target = tmp_path / "out"
    progress: list[int] = []
    size = client.download_image(
        "projects/p/images/d",
        target,
        expected_sha256=hashlib.sha256(service.data).hexdigest(),
        on_progress=progress.append,
    )
    assert (size, target.read_bytes(), progress) == (10, b"abcdefghij", [4, 8, 10])
    assert service.auth == ["Bearer tok"]

    target.write_bytes(b"old")
    with pytest.raises(KumoError) as caught:
        client.download_image("projects/p/images/d", target, expected_sha256="00" * 32)
    assert caught.value.code == grpc.StatusCode.DATA_LOSS
    service.fail_after = 8
    with pytest.raises(KumoError) as caught:
        client.download_image("projects/p/images/d", target)
    assert caught.value.code == grpc.StatusCode.INTERNAL
    with pytest.raises(KumoError) as caught:
        client.download_image("projects/p/images/missing", target)
    assert caught.value.code == grpc.StatusCode.NOT_FOUND
    assert target.read_bytes() == b"old"  # never half-written
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary left behind


def test_no_wait_and_async_together_start_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, Any]] = []
    images = Fake(calls, DeleteImage=lambda request: done_operation())
    compute_service = Fake(calls, DeleteInstance=lambda request: done_operation())
    use(monkeypatch, FakeClient(images=images, compute=compute_service))
    for args in (["image", "delete", "d"], ["instance", "delete", INSTANCE]):
        result = run(*args, "--no-wait", "--async")
        assert result.exit_code == errors.USAGE
        assert "cannot be used together" in result.stderr
    assert calls == []
