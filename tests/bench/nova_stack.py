"""OpenStack Nova on its fake driver, for tests/bench/bench_nova.py.

Not part of Kumo: run by bench_nova.py with the Python of a separate virtual environment
holding `nova==34.0.0`, `openstack-placement` and `gunicorn` (Kumo's .venv never imports
them), on a machine with `rabbitmq-server` (Debian package):

    build/nova-venv/bin/python tests/bench/nova_stack.py --workdir /tmp/nova

In `--workdir` it writes nova.conf, placement.conf and an api-paste.ini, then starts, each
a process of its own:

- a private RabbitMQ node (its own node name, ports, mnesia and HOME);
- stubs of Glance and Neutron (`serve-stubs` below): GET /v2/images/{id} and the image
  schema, which is all nova-api asks of Glance for an image-backed server, and empty lists
  of ports and security groups, which is what it asks of Neutron for servers made with
  `"networks": "none"` (GET /servers/detail shows their security groups);
- Placement (`placement.wsgi.api`) under gunicorn;
- nova-manage api_db sync, cell_v2 map_cell0 / create_cell, db sync (SQLite files, put
  in WAL mode; `sqlite_synchronous = False`);
- nova-conductor, nova-scheduler, nova-compute (`compute_driver = fake.FakeDriver`) and
  nova-api (`nova.wsgi.osapi_compute`) under gunicorn, with `--api-workers` workers.

Nova 34 has no `noauth2` any more: its api-paste pipeline here is the shipped one without
`authtoken`, so the identity comes from the headers keystonemiddleware would set
(X-User-Id, X-Project-Id, X-Roles). That spares Nova the token validation a deployment
pays. Once the compute host is discovered it creates a flavor (1 vCPU, 128 MiB, 1 GiB),
prints one JSON line on stdout (compute endpoint, headers, the `server` body of a create)
and runs until its standard input closes; then it stops every process it started.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

VENV_BIN = Path(sys.executable).parent
RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")
IMAGE_ID = str(uuid.UUID(int=0xBE4C))
IMAGE: dict[str, Any] = {
    "id": IMAGE_ID, "name": "bench-image", "status": "active",
    "visibility": "public", "protected": False, "os_hidden": False,
    "disk_format": "qcow2", "container_format": "bare", "size": 1 << 20,
    "virtual_size": 1 << 30, "min_disk": 0, "min_ram": 0,
    "owner": "admin", "checksum": None, "os_hash_algo": None,
    "os_hash_value": None, "tags": [],
    "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
    "file": f"/v2/images/{IMAGE_ID}/file", "schema": "/v2/schemas/image",
    "self": f"/v2/images/{IMAGE_ID}",
}  # fmt: skip
NEUTRON = {
    "ports": "ports", "networks": "networks", "security-groups": "security_groups",
    "extensions": "extensions", "floatingips": "floatingips",
}  # fmt: skip
DATABASES = ("api", "cell0", "cell1", "placement")
PROJECT, USER = "benchproject", "benchuser"
ADMIN_HEADERS = {"X-User-Id": "admin", "X-Project-Id": "admin", "X-Roles": "admin,member,reader"}
MEMBER_HEADERS = {"X-User-Id": USER, "X-Project-Id": PROJECT, "X-Roles": "member,reader"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log(message: str) -> None:
    print(f"  nova_stack: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- image service


class StubHandler(BaseHTTPRequestHandler):
    """Glance: GET /v2/schemas/image and GET /v2/images/{id}, one active public qcow2 image;
    Neutron: empty lists of ports, networks, security groups and extensions (nova-api asks
    for a server's ports and security groups in GET /servers/detail)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?")[0].rstrip("/")
        if path.endswith("/schemas/image"):  # nova keeps an image's base properties only
            body: Any = {"name": "image", "properties": {k: {} for k in IMAGE}}
        elif path.endswith(f"/images/{IMAGE_ID}"):
            body = IMAGE
        elif path in ("", "/versions"):
            body = {"versions": [{"id": "v2.16", "status": "CURRENT", "links": []}]}
        elif collection := NEUTRON.get(path.rsplit("/", 1)[-1].removesuffix(".json")):
            body = {collection: []}  # no ports: the servers are made with networks 'none'
        else:
            print(f"stub: unknown GET {self.path}", file=sys.stderr, flush=True)
            self._send(404, {"message": f"no {self.path}"})
            return
        self._send(200, body)

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return


def serve_stubs(port: int) -> None:
    ThreadingHTTPServer(("127.0.0.1", port), StubHandler).serve_forever()


# --------------------------------------------------------------------------- configuration


def write_configs(work: Path, ports: dict[str, int], urls: dict[str, str]) -> None:
    (work / "nova.conf").write_text(
        f"""[DEFAULT]
transport_url = rabbit://guest:guest@127.0.0.1:{ports["rabbit"]}/
compute_driver = fake.FakeDriver
host = bench-compute
my_ip = 127.0.0.1
state_path = {work}/state
instances_path = {work}/instances
use_rootwrap_daemon = false
[wsgi]
api_paste_config = {work}/api-paste.ini
[api_database]
connection = {urls["api"]}
sqlite_synchronous = false
[database]
connection = {urls["cell1"]}
sqlite_synchronous = false
[placement]
auth_type = admin_token
endpoint = http://127.0.0.1:{ports["placement"]}
token = admin
[glance]
api_servers = http://127.0.0.1:{ports["stubs"]}
[neutron]
endpoint_override = http://127.0.0.1:{ports["stubs"]}
[quota]
instances = 100000
cores = 100000
ram = 1000000000
[scheduler]
discover_hosts_in_cells_interval = -1
[oslo_concurrency]
lock_path = {work}/locks
[oslo_policy]
enforce_scope = true
enforce_new_defaults = true
"""
    )
    (work / "placement.conf").write_text(
        f"""[placement_database]
connection = {urls["placement"]}
sync_on_startup = true
sqlite_synchronous = false
[api]
auth_strategy = noauth2
"""
    )
    shipped = (VENV_BIN.parent / "etc" / "nova" / "api-paste.ini").read_text()
    (work / "api-paste.ini").write_text(
        shipped.replace(" authtoken keystonecontext", " keystonecontext")
    )


# --------------------------------------------------------------------------- processes


class Stack:
    """The processes started, stopped in reverse order."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.rabbit_env: dict[str, str] = {}

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        out = (self.work / "logs" / f"{name}.log").open("wb")
        process = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})}, cwd=self.work,
        )  # fmt: skip
        self.processes.append((name, process))

    def check(self) -> None:
        for name, process in self.processes:
            if process.poll() is not None:
                tail = (self.work / "logs" / f"{name}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")

    def run(self, *args: str) -> str:
        done = subprocess.run(
            [str(VENV_BIN / "nova-manage"), "--config-file", str(self.work / "nova.conf"), *args],
            capture_output=True, text=True, cwd=self.work,
        )  # fmt: skip
        if done.returncode not in (0, 1) or "Traceback" in done.stderr:
            raise RuntimeError(f"nova-manage {' '.join(args)}: {done.returncode}\n{done.stderr}")
        return done.stdout

    def stop(self) -> None:
        """SIGTERM to the services, then RabbitMQ once they are gone. Idempotent."""
        services = [p for name, p in reversed(self.processes) if name != "rabbitmq"]
        for process in services:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in services:
            _reap(process)
        for name, process in self.processes:
            if name == "rabbitmq" and process.poll() is None:
                node = self.rabbit_env["RABBITMQ_NODENAME"]
                subprocess.run(
                    [str(RABBIT_BIN / "rabbitmqctl"), "-n", node, "stop"],
                    env={**os.environ, **self.rabbit_env}, capture_output=True, timeout=60,
                )  # fmt: skip
                process.send_signal(signal.SIGTERM)
                _reap(process)


def _reap(process: subprocess.Popen[bytes]) -> None:
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def start_rabbit(stack: Stack, port: int) -> None:
    home = stack.work / "rabbit"
    home.mkdir()
    (home / "plugins").write_text("[].\n")
    env = {
        "HOME": str(home),
        "RABBITMQ_NODENAME": f"novabench{port}@localhost",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(free_port()),
        "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
        "RABBITMQ_LOG_BASE": str(home / "log"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "plugins"),
        "RABBITMQ_CONFIG_FILE": str(home / "rabbitmq"),
        "RABBITMQ_PID_FILE": str(home / "pid"),
    }
    stack.rabbit_env = env
    stack.start("rabbitmq", [str(RABBIT_BIN / "rabbitmq-server")], env)
    deadline = time.monotonic() + 180
    while True:  # await_startup fails at once until the node has registered with epmd
        stack.check()
        done = subprocess.run(
            [str(RABBIT_BIN / "rabbitmqctl"), "-n", env["RABBITMQ_NODENAME"], "await_startup",
             "--timeout", "120"],
            env={**os.environ, **env}, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        if done.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"rabbitmq did not start: {done.stdout} {done.stderr}")
        time.sleep(1)


def gunicorn(
    stack: Stack, name: str, module: str, port: int, workers: int, env: dict[str, str]
) -> None:
    stack.start(
        name,
        [
            str(VENV_BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
            "--timeout", "300", "--log-level", "warning", module,
        ],
        env,
    )  # fmt: skip


def http(method: str, url: str, headers: dict[str, str], body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    request.add_header("Content-Type", "application/json")
    request.add_header("OpenStack-API-Version", "compute 2.37")
    with urllib.request.urlopen(request, timeout=60) as answer:
        raw = answer.read()
    return json.loads(raw) if raw else None


def wait_http(url: str, stack: Stack, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        stack.check()
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer")


def versions(work: Path) -> None:
    import importlib.metadata as md

    names = ["nova", "openstack-placement", "oslo.messaging", "oslo.db", "sqlalchemy", "gunicorn"]
    found = [f"{n} {md.version(n)}" for n in names]
    rabbit = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "rabbitmq-server"],
                            capture_output=True, text=True).stdout  # fmt: skip
    (work / "versions.txt").write_text(", ".join(found) + f", rabbitmq-server {rabbit}\n")


def up(args: argparse.Namespace, stack: Stack) -> dict[str, Any]:
    work = stack.work
    ports = {name: free_port() for name in ("rabbit", "placement", "stubs", "api")}
    urls = {
        name: (getattr(args, f"{name}_db") or f"sqlite:///{work}/{name}.db").replace(
            "postgresql+psycopg:", "postgresql+psycopg2:"
        )
        for name in DATABASES
    }
    write_configs(work, ports, urls)
    versions(work)
    log("rabbitmq ...")
    start_rabbit(stack, ports["rabbit"])
    stack.start("stubs", [sys.executable, __file__, "serve-stubs", str(ports["stubs"])])
    placement_env = {"OS_PLACEMENT_CONFIG_DIR": str(work)}
    gunicorn(stack, "placement", "placement.wsgi.api:application", ports["placement"], 1,
             placement_env)  # fmt: skip
    log("databases ...")
    stack.run("api_db", "sync")
    stack.run("cell_v2", "map_cell0", "--database_connection", urls["cell0"])
    stack.run("cell_v2", "create_cell", "--name", "cell1")
    stack.run("db", "sync")
    wait_http(f"http://127.0.0.1:{ports['placement']}/", stack)
    for name in DATABASES:  # WAL, as Kumo's SQLite engine (the mode stays with the file)
        if urls[name].startswith("sqlite:"):
            with sqlite3.connect(work / f"{name}.db") as connection:
                connection.execute("PRAGMA journal_mode=WAL")
    log("services ...")
    conf = ["--config-file", str(work / "nova.conf")]
    for service in ("conductor", "scheduler", "compute"):
        stack.start(f"nova-{service}", [str(VENV_BIN / f"nova-{service}"), *conf])
    # nova's WSGI entry point parses sys.argv as its own command line: not gunicorn's.
    (work / "nova_api_wsgi.py").write_text(
        "import sys\nsys.argv = sys.argv[:1]\n"
        "from nova.wsgi.osapi_compute import application  # noqa: E402,F401\n"
    )
    nova_env = {
        "OS_NOVA_CONFIG_DIR": str(work), "OS_NOVA_CONFIG_FILES": "api-paste.ini;nova.conf",
        "PYTHONPATH": str(work),
    }  # fmt: skip
    gunicorn(stack, "nova-api", "nova_api_wsgi:application", ports["api"], args.api_workers,
             nova_env)  # fmt: skip
    base = f"http://127.0.0.1:{ports['api']}/v2.1"
    wait_http(f"{base}/", stack)
    log("discovering the compute host ...")
    deadline = time.monotonic() + 180
    while True:
        stack.check()
        stack.run("cell_v2", "discover_hosts")
        hypervisors = http("GET", f"{base}/os-hypervisors", ADMIN_HEADERS)["hypervisors"]
        if hypervisors:
            break
        if time.monotonic() > deadline:
            raise RuntimeError("nova-compute did not register")
        time.sleep(1)
    flavor = http(
        "POST", f"{base}/flavors", ADMIN_HEADERS,
        {"flavor": {"name": "bench-small", "vcpus": 1, "ram": 128, "disk": 1}},
    )["flavor"]  # fmt: skip
    return {
        "compute_url": base,
        "headers": {**MEMBER_HEADERS, "X-Auth-Token": "unchecked"},
        "server": {"imageRef": IMAGE_ID, "flavorRef": flavor["id"], "networks": "none"},
    }


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "serve-stubs":
        serve_stubs(int(sys.argv[2]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--api-workers", type=int, default=2)
    for name in DATABASES:
        parser.add_argument(f"--{name}-db", help=f"SQLAlchemy URL (default: {name}.db, SQLite)")
    args = parser.parse_args()
    work = args.workdir.resolve()
    for folder in ("logs", "state", "instances", "locks"):
        (work / folder).mkdir(parents=True, exist_ok=True)
    stack = Stack(work)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the stack on SIGTERM too
    try:
        ready = up(args, stack)
        print(json.dumps(ready), flush=True)
        sys.stdin.read()
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
