"""Network namespaces and the private libvirtd work in a chroot, where / is a directory and
not a mount point (as in a fresh Debian root entered with `chroot`): there `ip netns exec`
fails, `in_netns` (nsenter) works, and libvirtd's bind mounts stay in its own namespace
even when the mount they land on is shared (made private there first).

The chroot is built in a mount namespace of the test's own, isolated the same way
(nothing reaches the machine's): bind mounts of the machine's /usr, /etc, /var, /run, /tmp,
/proc, /sys, /dev, the checkout and the Python installation, under a temp dir; /run is made
shared there, as systemd would have it. A probe runs inside and reports what it saw as JSON.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kumo.drivers.compute.libvirtd import unavailable_reason
from kumo.drivers.compute.mount_isolation import isolation as mount_isolation

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, os, subprocess
from kumo.drivers.compute.libvirtd import MOUNTS, LibvirtDaemon
from kumo.drivers.compute.mount_isolation import isolation
from kumo.drivers.network.netns import in_netns, netns_path
from tests.support.netns import add_netns, del_netns

def mount_points():
    with open("/proc/self/mountinfo") as table:
        return [line.split()[4] for line in table]

seen = {"root_is_mount_point": "/" in mount_points()}
ns = add_netns("kcr")
try:
    run = lambda *a: subprocess.run(list(a), capture_output=True, text=True)
    ip_exec = run("ip", "netns", "exec", ns, "true")
    seen["ip_netns_exec"] = [ip_exec.returncode, ip_exec.stderr]
    seen["links"] = run(*in_netns(ns), "ip", "-o", "link", "show").stdout.splitlines()
    plan = isolation(MOUNTS.values())
    seen["isolation"] = [plan.propagation, plan.make_private]
    daemon = LibvirtDaemon(netns=ns)
    daemon.start()
    try:
        conn = daemon.open()
        seen["capabilities"] = "<capabilities>" in conn.getCapabilities()
        conn.close()
        seen["daemon_netns"] = os.readlink(f"/proc/{daemon.pid}/ns/net")
        seen["netns_inode"] = os.stat(netns_path(ns)).st_ino
        seen["leaked_mounts"] = [p for p in mount_points() if p in MOUNTS.values()]
    finally:
        daemon.stop()
finally:
    del_netns(ns)
print("PROBE " + json.dumps(seen))
"""


def _chroot_script(new_root: Path) -> str:
    """Shell that builds the chroot under `new_root` (already in a private mount namespace)
    and runs the probe in it."""
    binds = ["usr", "etc", "var", "run", "tmp", "proc", "sys", "dev"]
    extra = [ROOT, Path(sys.base_prefix)]
    steps = []
    for name in ("bin", "sbin", "lib", "lib64"):  # merged /usr: symbolic links
        path = Path("/") / name
        if path.is_symlink():
            steps.append(f"ln -s {shlex.quote(os.readlink(path))} {new_root / name}")
        elif path.is_dir():
            binds.append(name)
    for source in [Path("/") / name for name in binds] + [
        p for p in extra if not p.is_relative_to("/usr")
    ]:
        target = shlex.quote(str(new_root / source.relative_to("/")))
        steps.append(f"mkdir -p {target} && mount --bind {shlex.quote(str(source))} {target}")
    steps.append(f"mount --make-shared {new_root / 'run'}")
    inner = (
        f"cd {shlex.quote(str(ROOT))} && exec {shlex.quote(sys.executable)} -c {shlex.quote(PROBE)}"
    )
    steps.append(f"exec chroot {new_root} /bin/sh -c {shlex.quote(inner)}")
    return " && ".join(steps)


def test_netns_and_libvirtd_work_in_a_chroot(tmp_path: Path) -> None:
    if (reason := unavailable_reason()) is not None:
        pytest.skip(reason)
    for tool in ("ip", "nsenter", "chroot"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    new_root = tmp_path / "root"
    new_root.mkdir()
    # Private where / is a mount point; when the suite itself runs in a chroot, the rule
    # under test keeps these bind mounts to the test's namespace.
    own = mount_isolation([str(new_root)])
    script = " && ".join(
        [*(f"mount --make-private {p}" for p in own.make_private), _chroot_script(new_root)]
    )
    result = subprocess.run(
        ["unshare", "-m", "--propagation", own.propagation, "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=180,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("PROBE ")]
    assert result.returncode == 0 and lines, result.stdout + result.stderr
    seen = json.loads(lines[-1].removeprefix("PROBE "))
    # A faithful chroot: / is not a mount point, so iproute2's own entry fails.
    assert not seen["root_is_mount_point"]
    code, error = seen["ip_netns_exec"]
    assert code != 0 and "mount --make-rslave /" in error, error
    # nsenter enters the namespace: loopback only.
    assert len(seen["links"]) == 1 and ": lo:" in seen["links"][0], seen["links"]
    # /run (shared) holds /run/libvirt: made private in the daemon's namespace first.
    assert seen["isolation"] == ["unchanged", ["/run"]]
    assert seen["capabilities"]
    assert seen["daemon_netns"] == f"net:[{seen['netns_inode']}]"
    assert seen["leaked_mounts"] == []
