"""The image and compute commands of the `kumo` CLI against a real `kumo up`."""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_cli_against_kumo_up import BIN, Up


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    server = Up(tmp_path)
    try:
        yield server
    finally:
        server.stop()


def login(up: Up, tmp_path: Path) -> None:
    up.kumo(
        "login",
        "--endpoint",
        f"127.0.0.1:{up.port}",
        "--user",
        "admin",
        "--password-file",
        str(tmp_path / "data" / "admin-password"),
    )


def as_json(up: Up, *args: str) -> Any:
    return json.loads(up.kumo("-o", "json", *args).stdout)


def kumo_slow(up: Up, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Runs `kumo ARGS` that may wait long (building an instance); does not check."""
    return subprocess.run(
        [str(BIN / "kumo"), *args], env=up.env, capture_output=True, text=True, timeout=timeout
    )


def as_bob(env: dict[str, str], *args: str) -> str:
    """Runs `kumo ARGS` in another user's session; returns stdout."""
    result = subprocess.run(
        [str(BIN / "kumo"), *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def started(pid: int, timeout: float = 60) -> None:
    """Waits until a `kumo` process is past its imports and talking gRPC (its
    gRPC threads run), so that Ctrl-C reaches the command, not the start-up."""
    deadline = time.monotonic() + timeout
    status = Path(f"/proc/{pid}/status")
    while time.monotonic() < deadline:
        threads = [line for line in status.read_text().splitlines() if line.startswith("Threads:")]
        if threads and int(threads[0].split()[1]) > 1:
            return
        time.sleep(0.1)
    raise AssertionError(f"kumo (pid {pid}) did not start within {timeout} s")


def qcow2(path: Path) -> Path:
    if shutil.which("qemu-img") is None:
        pytest.skip("qemu-img is not installed")
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(path), "64M"], check=True)
    return path


def test_images_key_pairs_and_server_groups(up: Up, tmp_path: Path) -> None:
    """Flavor, image upload/list/show/download, sharing, key pairs, server groups."""
    login(up, tmp_path)

    up.kumo("flavor", "create", "e2e-small", "--vcpus", "1", "--memory-mib", "128",
            "--disk-gib", "1")  # fmt: skip
    flavor = as_json(up, "flavor", "show", "e2e-small")
    assert (flavor["vcpus"], flavor["memoryMib"], flavor["diskGib"]) == (1, "128", "1")
    assert "e2e-small" in up.kumo("flavor", "list").stdout
    assert up.kumo("flavor", "create", "e2e-bad", "--vcpus", "1", check=False).returncode == 2

    disk = qcow2(tmp_path / "disk.qcow2")
    created = up.kumo("-o", "json", "image", "create", "e2e-disk", "--file", str(disk))
    image = json.loads(created.stdout)
    assert image["name"] == "projects/admin/images/e2e-disk"
    assert (image["state"], image["diskFormat"]) == ("STATE_ACTIVE", "DISK_FORMAT_QCOW2")
    assert "upload e2e-disk [####################] 100%" in created.stderr
    assert image["checksumSha256"] == hashlib.sha256(disk.read_bytes()).hexdigest()

    rows = {line.split()[0]: line.split() for line in up.kumo("image", "list").stdout.splitlines()}
    assert rows["e2e-disk"][:4] == ["e2e-disk", "qcow2", "private", "active"]
    shown = as_json(up, "image", "show", "projects/admin/images/e2e-disk")
    assert shown["virtualSizeBytes"] == str(64 << 20)

    copy = tmp_path / "copy.qcow2"
    downloaded = up.kumo("image", "download", "e2e-disk", "--file", str(copy))
    assert "downloaded projects/admin/images/e2e-disk" in downloaded.stdout
    assert copy.read_bytes() == disk.read_bytes()

    missing = up.kumo("image", "show", "nope", check=False)
    assert missing.returncode == 3 and "not found" in missing.stderr
    again = up.kumo("image", "upload", "e2e-disk", "--file", str(disk), check=False)
    assert again.returncode == 5

    # Sharing with another project, whose member accepts the image.
    up.kumo("project", "create", "e2e-other")
    up.kumo("user", "create", "bob", "--password", "bob-password-1")
    up.kumo("role", "grant", "e2e-other", "bob", "member")
    up.kumo("image", "update", "e2e-disk", "--visibility", "shared", "--tag", "gold")
    assert as_json(up, "image", "show", "e2e-disk")["tags"] == ["gold"]
    up.kumo("image", "share", "e2e-disk", "e2e-other")
    assert "e2e-other  pending" in up.kumo("image", "members", "e2e-disk").stdout
    bob = {**up.env, "KUMO_CONFIG_DIR": str(tmp_path / "bob")}  # a second session
    as_bob(bob, "login", "--endpoint", f"127.0.0.1:{up.port}", "--user", "bob",
           "--password", "bob-password-1", "--project", "e2e-other")  # fmt: skip
    assert "projects/admin/images/e2e-disk" not in as_bob(bob, "image", "list")
    as_bob(bob, "image", "accept", "projects/admin/images/e2e-disk")
    assert "projects/admin/images/e2e-disk" in as_bob(bob, "image", "list")
    assert "e2e-other  accepted" in up.kumo("image", "members", "e2e-disk").stdout

    # Key pairs: generated (to a file, or printed once) and imported.
    key_file = tmp_path / "e2e.pem"
    up.kumo("keypair", "create", "e2e-gen", "--private-key-file", str(key_file))
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    printed = up.kumo("keypair", "create", "e2e-printed")
    assert printed.stdout.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert "cannot be shown again" in printed.stderr
    generated = as_json(up, "keypair", "show", "e2e-gen")
    assert "privateKey" not in generated
    public_file = tmp_path / "e2e.pub"
    public_file.write_text(generated["publicKey"] + " e2e@test\n")
    imported = as_json(up, "keypair", "import", "e2e-imported", "--public-key-file",
                       str(public_file))  # fmt: skip
    assert imported["fingerprint"] == generated["fingerprint"]
    listed = up.kumo("keypair", "list").stdout
    assert all(k in listed for k in ("e2e-gen", "e2e-printed", "e2e-imported"))

    up.kumo("server-group", "create", "e2e-group", "--policy", "anti-affinity")
    group = up.kumo("server-group", "show", "e2e-group").stdout
    assert "anti-affinity" in group
    assert "e2e-group" in up.kumo("server-group", "list").stdout
    up.kumo("server-group", "delete", "e2e-group")
    up.kumo("keypair", "delete", "e2e-printed")

    deleted = up.kumo("image", "delete", "e2e-disk")
    assert "deleted projects/admin/images/e2e-disk" in deleted.stdout
    assert "DeleteImage" in deleted.stderr  # the progress display
    assert up.kumo("image", "show", "e2e-disk", check=False).returncode == 3


def test_an_instance_runs_or_finds_no_host(up: Up, tmp_path: Path) -> None:
    """Create an instance: with a host agent it runs (and has a console), else exit 6."""
    login(up, tmp_path)
    zones = [z["name"].split("/")[-1] for z in as_json(up, "zone", "list")]
    if not zones:
        up.kumo("region", "create", "e2e-r")
        up.kumo("zone", "create", "e2e-z", "--region", "e2e-r")
        zones = ["e2e-z"]
    zone_args = [] if len(zones) == 1 else ["--zone", zones[0]]  # else: the only zone
    up.kumo("flavor", "create", "e2e-small", "--vcpus", "1", "--memory-mib", "128",
            "--disk-gib", "1")  # fmt: skip
    up.kumo("image", "create", "e2e-disk", "--file", str(qcow2(tmp_path / "disk.qcow2")))
    key_file = tmp_path / "e2e.pem"
    up.kumo("keypair", "create", "e2e-key", "--private-key-file", str(key_file))
    up.kumo("server-group", "create", "e2e-group", "--policy", "soft-anti-affinity")

    created = kumo_slow(
        up, "instance", "create", "e2e-vm", "--flavor", "e2e-small", "--image", "e2e-disk",
        "--key-pair", "e2e-key", "--server-group", "e2e-group", "--label", "test=e2e",
        "--tag", "web", *zone_args,
    )  # fmt: skip
    name = f"projects/admin/zones/{zones[0]}/instances/e2e-vm"
    assert "CreateInstance" in created.stderr  # the progress display
    listed = up.kumo("instance", "list").stdout.splitlines()
    assert listed[0].split() == ["NAME", "ZONE", "STATE", "HOST", "FLAVOR", "IMAGE", "CREATED"]
    row = next(line.split() for line in listed[1:] if line.startswith("e2e-vm "))
    assert row[1] == zones[0]

    if created.returncode != 0:  # no host agent: nowhere to place it
        assert created.returncode == 6, created.stderr
        assert "no valid host" in created.stderr
        assert row[2] == "error"
    else:
        assert f"{name}\n" in created.stdout
        instance = as_json(up, "instance", "show", name)
        assert instance["state"] == "STATE_RUNNING"
        assert instance["keyPairs"] == ["projects/admin/keyPairs/e2e-key"]
        assert instance["labels"] == {"test": "e2e"}
        assert row[2:6] == ["running", instance["host"].split("/")[-1], "e2e-small", "e2e-disk"]
        host_id = instance["host"].split("/")[-1]
        (host,) = (h for h in as_json(up, "host", "list") if h["name"] == instance["host"])
        assert host["instanceCount"] == 1  # (the only instance of this cloud)
        host_rows = up.kumo("host", "list").stdout.splitlines()
        assert host_rows[0].split()[-1] == "INSTANCES"
        assert next(r.split() for r in host_rows[1:] if r.startswith(f"{host_id} "))[-1] == "1"
        up.kumo("instance", "console", "e2e-vm", *zone_args)
        assert isinstance(as_json(up, "instance", "console", name), dict)
        follow = subprocess.Popen(
            [str(BIN / "kumo"), "instance", "console", name, "--follow"],
            env=up.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started(follow.pid)
        time.sleep(2)  # a poll or two
        follow.send_signal(signal.SIGINT)
        _, stderr = follow.communicate(timeout=20)
        assert follow.returncode == 0, stderr
        rebooted = kumo_slow(up, "instance", "reboot", name, "--hard")
        assert rebooted.returncode == 0, rebooted.stderr
        assert "state:" in rebooted.stdout and "running" in rebooted.stdout
        # A volume attached to go with the instance (a local qcow2 file, plugged into the
        # running guest); it is deleted with the instance below.
        up.kumo("volume", "create", "e2e-data", "--size-gib", "1", *zone_args)
        attached = kumo_slow(
            up, "volume", "attach", "e2e-data", "e2e-vm", "--delete-with-instance", *zone_args
        )
        assert attached.returncode == 0, attached.stderr
        volume = as_json(up, "volume", "show", "e2e-data", *zone_args)
        assert volume["state"] == "STATE_IN_USE", volume
        assert [(a["instance"], a["deleteWithInstance"]) for a in volume["attachments"]] == [
            (name, True)
        ]
        volume_file = tmp_path / "data" / "volumes" / "volumes" / f"kumo-vol-{volume['uid']}.qcow2"
        assert volume_file.is_file()

    # Tags: added and removed by update, matched by a list filter.
    assert as_json(up, "instance", "show", name)["tags"] == ["web"]
    up.kumo("instance", "update", name, "--tag", "blue", "--remove-tag", "web")
    assert as_json(up, "instance", "show", name)["tags"] == ["blue"]
    tagged = up.kumo("instance", "list", "--filter", 'tags:"blue" AND NOT tags:"web"').stdout
    assert any(line.startswith("e2e-vm ") for line in tagged.splitlines())
    assert "e2e-vm" not in up.kumo("instance", "list", "--filter", "tags:web").stdout

    deleted = kumo_slow(up, "instance", "delete", name)
    assert deleted.returncode == 0, deleted.stderr
    assert up.kumo("instance", "show", name, check=False).returncode == 3
    if created.returncode == 0:  # the volume goes after it (its own DELETE_VOLUME)
        deadline = time.monotonic() + 60
        while up.kumo("volume", "show", "e2e-data", *zone_args, check=False).returncode != 3:
            assert time.monotonic() < deadline, "the volume outlived its instance"
            time.sleep(0.5)
        assert not volume_file.exists()
