"""Typed configuration of the API server.

Values come, later ones winning, from the defaults below, a TOML file named by
`KUMO_CONFIG` (or passed to `load_config`), and `KUMO_*` environment variables
with `__` between levels (`KUMO_DATABASE__URL`, `KUMO_AUTH__TOKEN_TTL_SECONDS`).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


def default_data_dir() -> Path:
    """`$KUMO_DATA_DIR`, else `$XDG_DATA_HOME/kumo`, else `~/.local/share/kumo`."""
    if env := os.environ.get("KUMO_DATA_DIR"):
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "kumo"


class DatabaseConfig(BaseModel):
    """Where state lives. Empty `url` means a SQLite file in the data dir."""

    url: str = ""
    # Threads (and connections) used for a client-server database; SQLite runs inline.
    pool_size: int = Field(default=8, ge=1, le=64)
    # Apply Alembic migrations at start-up.
    auto_migrate: bool = True


class ListenConfig(BaseModel):
    """The gRPC listening socket; port 0 picks a free port."""

    host: str = "127.0.0.1"
    port: int = Field(default=7900, ge=0, le=65535)


class AuthConfig(BaseModel):
    """Tokens and password hashing."""

    token_ttl_seconds: int = Field(default=8 * 3600, ge=60, le=7 * 24 * 3600)
    # HMAC key for tokens and page tokens; empty means one generated and kept in the database,
    # so that every API replica shares it.
    secret: str = ""
    # How long a validated token's principal is cached in a process.
    cache_seconds: float = Field(default=5.0, ge=0, le=300)
    # scrypt cost (2**n); 14 is the interactive-login recommendation.
    scrypt_log2_n: int = Field(default=14, ge=10, le=20)


class BootstrapConfig(BaseModel):
    """The first administrator, created on first start when no user exists."""

    project: str = "admin"
    admin_user: str = "admin"
    # Empty means generate one, print it once and write it to `<data_dir>/admin-password`.
    admin_password: str = ""


class OperationsConfig(BaseModel):
    """The controller that runs long operations."""

    # Run operations in this process (off for API-only replicas).
    enabled: bool = True
    # A claimed operation whose lease is not renewed within this time is resumed elsewhere.
    lease_seconds: float = Field(default=15.0, gt=0)
    # Operations run at once by this process. Most of a running operation's time is spent
    # waiting for a host agent (BUILD, DELETE, actions), not in this process: a low cap
    # queues creates behind the builds in flight.
    concurrency: int = Field(default=64, ge=1, le=256)
    # Attempts (first run plus resumptions) before an operation is failed.
    max_attempts: int = Field(default=5, ge=1)
    # Safety-net poll for work written by other replicas.
    poll_seconds: float = Field(default=2.0, gt=0)
    # Operations and agent reports are background work (kumo.server.priority): the API is
    # busy while a user call runs or ended less than this long ago...
    foreground_quiet_seconds: float = Field(default=0.01, ge=0)
    # ...and while it is busy, background work gets this share of the event loop.
    background_share: float = Field(default=0.05, gt=0, le=1)


class TopologyConfig(BaseModel):
    """Host liveness."""

    heartbeat_timeout_seconds: float = Field(default=60.0, gt=0)


class SchedulerConfig(BaseModel):
    """Placement: overcommit ratios, the weigher and retries."""

    cpu_allocation_ratio: float = Field(default=4.0, gt=0)
    ram_allocation_ratio: float = Field(default=1.0, gt=0)
    disk_allocation_ratio: float = Field(default=1.0, gt=0)
    # spread: most free memory first; pack: least free memory first.
    weigher: Literal["spread", "pack"] = "spread"
    # Hosts tried per build before the instance goes to ERROR.
    max_build_attempts: int = Field(default=3, ge=1, le=20)
    # How long a host may take to bring a new instance up.
    build_timeout_seconds: float = Field(default=300.0, gt=0)
    # How long a host may take to carry out an action (start, stop, reboot, ...).
    action_timeout_seconds: float = Field(default=180.0, gt=0)
    # Resize on the instance's own host when it has room (no copy); False always moves
    # the instance to another host by cold migration (Nova's allow_resize_to_same_host).
    allow_resize_to_same_host: bool = True


class ComputeConfig(BaseModel):
    """Instances."""

    # How long a deleted instance can still be read (GetInstance with show_deleted, as EC2
    # shows a terminated instance for about an hour); 0 keeps none.
    deleted_instance_retention_seconds: float = Field(default=3600.0, ge=0)


class ImagesConfig(BaseModel):
    """The image store: a directory of image files (Ceph RBD comes with the storage issue)."""

    # Empty means `<data_dir>/images`.
    dir: str = ""
    # Largest image accepted, in bytes.
    max_bytes: int = Field(default=64 * 2**30, gt=0)


class NetworkConfig(BaseModel):
    """The network backend the reconciler drives: `none` (API only, nothing carried),
    `ovn` (an OVN northbound database) or `fake` (in memory, for scale tests)."""

    driver: Literal["none", "ovn", "fake"] = "none"
    # OVSDB connection string of the northbound database, e.g. unix:/run/ovn/nb.sock.
    ovn_nb_remote: str = ""
    # Chassis (system-ids) that host router gateways, highest priority first.
    gateway_chassis: list[str] = Field(default_factory=list)
    # Full reconciliation pass period (changes also trigger a pass at once).
    reconcile_seconds: float = Field(default=10.0, gt=0)
    # `kumo up` with driver "none": start a private OVN central under the data dir.
    local_ovn: bool = True


class RbdConfig(BaseModel):
    """A Ceph cluster for RBD volume types: its ceph.conf, the cephx user and keyring."""

    conf: str
    user: str = "kumo"
    # The pool of the `ceph` volume type `kumo up` creates (made by the Ceph administrator).
    pool: str = "kumo-volumes"
    # Empty means the keyring the conf names.
    keyring: str = ""


class StorageConfig(BaseModel):
    """Block storage backends. qcow2 (local files) is always there; RBD when configured; the
    fake (in memory, for scale tests) when `fake` is set."""

    # Directory of the qcow2 backend's pools; empty means `<data_dir>/volumes`.
    qcow2_dir: str = ""
    rbd: RbdConfig | None = None
    # Offer the in-memory fake backend too (scale tests and benchmarks only).
    fake: bool = False
    # The volume type used when a volume names none (created by `kumo up`).
    default_type: str = "local"
    # Seconds between storage reconciler passes (orphaned backend objects); 0 disables it.
    reconcile_seconds: float = Field(default=300.0, ge=0)
    # Where instance root disks live: `local` (a qcow2 overlay in the host's instances dir)
    # or `rbd` (a copy-on-write clone of the image's base in `root_disk_pool`, as Nova's
    # RBD image backend; needs `rbd`). Instances keep where they were made.
    root_disks: Literal["local", "rbd"] = "local"
    # The RBD pool of root disks and their image bases; empty means `rbd.pool`.
    root_disk_pool: str = ""

    @model_validator(mode="after")
    def _root_disks_need_rbd(self) -> StorageConfig:
        if self.root_disks == "rbd" and self.rbd is None:
            raise ValueError("storage.root_disks = 'rbd' needs a storage.rbd cluster")
        return self

    @property
    def rbd_root_pool(self) -> str | None:
        """The pool new instances' root disks are cloned into; None: local root disks."""
        if self.root_disks != "rbd" or self.rbd is None:
            return None
        return self.root_disk_pool or self.rbd.pool


class TracingConfig(BaseModel):
    """OpenTelemetry export: `none` keeps spans in-process only; `console` prints them."""

    exporter: Literal["none", "console"] = "none"


class GatewayConfig(BaseModel):
    """The REST gateway (kumo-gateway): where it listens and how it bounds requests."""

    host: str = "127.0.0.1"
    # Port 0 picks a free port.
    port: int = Field(default=7980, ge=0, le=65535)
    # The gRPC API it translates to; empty means the API of this configuration
    # (`listen.host:listen.port`). Several replicas: `ipv4:10.0.0.1:7000,10.0.0.2:7000`,
    # or a DNS name with an address per replica (calls are spread round robin).
    api_endpoint: str = ""
    # Base URL written into the Keystone catalog; empty means the URL the client used.
    public_url: str = ""
    # Largest request body accepted, except image data uploads (bounded by images.max_bytes).
    max_body_bytes: int = Field(default=1 << 20, gt=0)
    # Deadline of each request, passed on to the gRPC calls it makes.
    timeout_seconds: float = Field(default=60.0, gt=0)


def default_quota() -> dict[str, int]:
    """Per-project limits a new project starts with (-1 is unlimited)."""
    return {
        "instances": 10,
        "vcpus": 20,
        "ram_mib": 51200,
        "volumes": 10,
        "gigabytes": 1000,
        "snapshots": 10,
        "networks": 10,
        "subnets": 10,
        "ports": 50,
        "routers": 10,
        "floating_ips": 10,
        "security_groups": 10,
        "access_keys": 10,
    }


class Config(BaseSettings):
    """Everything `kumo-api` needs to start."""

    model_config = SettingsConfigDict(env_prefix="KUMO_", env_nested_delimiter="__", extra="forbid")

    data_dir: Path = Field(default_factory=default_data_dir)
    listen: ListenConfig = ListenConfig()
    database: DatabaseConfig = DatabaseConfig()
    auth: AuthConfig = AuthConfig()
    bootstrap: BootstrapConfig = BootstrapConfig()
    operations: OperationsConfig = OperationsConfig()
    topology: TopologyConfig = TopologyConfig()
    tracing: TracingConfig = TracingConfig()
    images: ImagesConfig = ImagesConfig()
    network: NetworkConfig = NetworkConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    compute: ComputeConfig = ComputeConfig()
    storage: StorageConfig = StorageConfig()
    gateway: GatewayConfig = GatewayConfig()
    quota_defaults: dict[str, int] = Field(default_factory=default_quota)
    # Seconds in-flight calls get to finish on shutdown.
    shutdown_grace_seconds: float = Field(default=5.0, ge=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment wins over the file, which is passed as init values.
        return (env_settings, init_settings)

    @property
    def images_dir(self) -> Path:
        """Where image data lives."""
        return Path(self.images.dir) if self.images.dir else self.data_dir / "images"

    @property
    def volumes_dir(self) -> Path:
        """Where the qcow2 volume backend keeps its pools."""
        return Path(self.storage.qcow2_dir) if self.storage.qcow2_dir else self.data_dir / "volumes"

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL, defaulting to `<data_dir>/kumo.db`."""
        return self.database.url or f"sqlite:///{self.data_dir / 'kumo.db'}"


def load_config(path: str | Path | None = None, **overrides: Any) -> Config:
    """Loads the TOML file at `path` (or `$KUMO_CONFIG`), then the environment.

    Raises FileNotFoundError for a named file that is missing, and pydantic's
    ValidationError for unknown keys or bad values.
    """
    values: dict[str, Any] = {}
    path = path or os.environ.get("KUMO_CONFIG")
    if path:
        values = tomllib.loads(Path(path).read_text())
    values.update(overrides)
    return Config(**values)
