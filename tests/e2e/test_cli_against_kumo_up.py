"""The `kumo` CLI against a real `kumo up`, as a new user would drive them."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.postgres import free_port

BIN = Path(sys.executable).parent


class Up:
    """A running `kumo up` and the environment to run `kumo` commands against it.

    Its output after the banner goes to `tmp/kumo-up.log` (read there when a test fails):
    unread, it would fill the pipe (64 KiB of logs, a minute of a guest's life) and
    `kumo up` would hang writing its next log line."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            "KUMO_DATA_DIR": str(tmp / "data"),
            "KUMO_CONFIG_DIR": str(tmp / "config"),
            "KUMO_AUTH__SCRYPT_LOG2_N": "10",
            "KUMO_GATEWAY__PORT": "0",
        }
        self.env.pop("KUMO_TOKEN", None)
        self.process = subprocess.Popen(
            [str(BIN / "kumo"), "up", "--port", str(self.port)],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.banner: list[str] = []
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.banner.append(line)
            if "Press Ctrl-C" in line:
                break
        else:
            raise AssertionError("kumo up exited early:\n" + "".join(self.banner))
        self.log = tmp / "kumo-up.log"
        self._drain = threading.Thread(target=self._copy_output, daemon=True)
        self._drain.start()

    def _copy_output(self) -> None:
        assert self.process.stdout is not None
        with self.log.open("a") as log:
            for line in self.process.stdout:
                log.write(line)
                log.flush()

    def kumo(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Runs `kumo ARGS` against this server."""
        result = subprocess.run(
            [str(BIN / "kumo"), *args], env=self.env, capture_output=True, text=True, timeout=60
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kumo {' '.join(args)} exited {result.returncode}: {result.stderr}"
            )
        return result

    def _kill_leftovers(self) -> None:
        """Removes what a killed `kumo up` could not: the daemons it started (OVN's,
        libvirt's guests), by the pid files under its data folder, and the network
        namespace of its OVN chassis, which its banner names."""
        for pid_file in Path(self.env["KUMO_DATA_DIR"]).rglob("*.pid"):
            with contextlib.suppress(ValueError, IndexError, OSError):
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
        for netns in re.findall(r"OVN chassis in netns (\S+)", "".join(self.banner)):
            subprocess.run(["ip", "netns", "delete", netns], capture_output=True, check=False)

    def stop(self) -> int:
        """Ctrl-C, as a user would; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                self._kill_leftovers()
        self._drain.join(timeout=10)
        if self.process.returncode != 0:  # shown with the failure
            print(f"kumo up exited {self.process.returncode}; its log ends:")
            print(self.log.read_text()[-8000:] if self.log.exists() else "(none)")
        return self.process.returncode


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    server = Up(tmp_path)
    try:
        yield server
    finally:
        server.stop()


def test_first_minute(up: Up, tmp_path: Path) -> None:
    """Sign in with the printed command, build a tenant and topology, delete with progress."""
    banner = "".join(up.banner)
    assert f"127.0.0.1:{up.port}" in banner
    password_file = tmp_path / "data" / "admin-password"
    assert password_file.stat().st_mode & 0o077 == 0
    up.kumo(
        "login",
        "--endpoint",
        f"127.0.0.1:{up.port}",
        "--user",
        "admin",
        "--password-file",
        str(password_file),
    )
    assert "admin" in up.kumo("whoami").stdout

    up.kumo("project", "create", "demo", "--display-name", "Demo")
    listed = json.loads(up.kumo("-o", "json", "project", "list").stdout)
    assert "projects/demo" in json.dumps(listed)
    up.kumo("user", "create", "alice", "--password", "alice-password-1")
    up.kumo("role", "grant", "demo", "alice", "member")
    assert "alice" in up.kumo("role", "list", "demo").stdout

    up.kumo("region", "create", "r1")
    up.kumo("zone", "create", "z1", "--region", "r1")
    up.kumo("pool", "create", "p1", "--zone", "z1", "--hypervisor", "kvm")
    up.kumo("rack", "create", "k1", "--pool", "p1")
    up.kumo("host", "create", "h1", "--rack", "k1", "--vcpus", "8", "--memory-mib", "16384")
    host = json.loads(up.kumo("-o", "json", "host", "show", "h1").stdout)
    assert host["state"] == "STATE_DOWN"  # no agent yet
    drained = up.kumo("host", "maintenance", "enter", "h1")
    assert "hosts/h1 is empty" in drained.stdout + drained.stderr
    assert "STATE_DOWN" in up.kumo("-o", "json", "host", "maintenance", "exit", "h1").stdout

    missing = up.kumo("project", "show", "nope", check=False)
    assert missing.returncode == 3 and "not found" in missing.stderr
    bad = up.kumo("project", "create", "Bad_Id", check=False)
    assert bad.returncode == 5

    up.kumo("project", "delete", "demo")
    assert up.kumo("project", "show", "demo", check=False).returncode == 3
    ops = json.loads(up.kumo("-o", "json", "operation", "list").stdout)
    assert "DeleteProject" in json.dumps(ops)

    up.kumo("logout")
    assert up.kumo("project", "list", check=False).returncode == 4


def test_state_survives_a_restart(tmp_path: Path) -> None:
    """Ctrl-C stops cleanly; a second `kumo up` keeps the data and the admin password."""
    first = Up(tmp_path)
    password = (tmp_path / "data" / "admin-password").read_text().strip()
    assert password in "".join(first.banner)
    assert first.stop() == 0
    second = Up(tmp_path)
    try:
        assert password not in "".join(second.banner)  # shown once only
        second.kumo(
            "login",
            "--endpoint",
            f"127.0.0.1:{second.port}",
            "--user",
            "admin",
            "--password-file",
            str(tmp_path / "data" / "admin-password"),
        )
    finally:
        assert second.stop() == 0
