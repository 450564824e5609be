"""Typed configuration of the host agent (`kumo-agent`).

Values come, later ones winning, from the defaults below, a TOML file named by
`KUMO_AGENT_CONFIG` (or passed to `load_agent_config`), and `KUMO_AGENT_*`
environment variables with `__` between levels (`KUMO_AGENT_API_ENDPOINT`,
`KUMO_AGENT_CREDENTIALS__TOKEN`, `KUMO_AGENT_DRIVER__NAME`).

A minimal file:

    api_endpoint = "10.0.0.1:7900"
    rack = "r1"

    [credentials]
    access_key_id = "AK..."
    secret_access_key = "..."

    [driver]
    name = "libvirt"
    options = { uri = "qemu:///system" }
"""

from __future__ import annotations

import os
import socket
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


def default_host_id() -> str:
    """The machine's host name, lower-cased, without its domain."""
    return socket.gethostname().split(".", 1)[0].lower() or "localhost"


def default_state_dir() -> Path:
    """`$KUMO_DATA_DIR/agent`, else `$XDG_DATA_HOME/kumo/agent`, else
    `~/.local/share/kumo/agent`."""
    if env := os.environ.get("KUMO_DATA_DIR"):
        return Path(env) / "agent"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "kumo" / "agent"


class CredentialsConfig(BaseModel):
    """How the agent signs in: a bearer token as is, or an access key pair that
    is exchanged for a token with IssueToken (and again before it expires).
    The key's user must be a cloud administrator."""

    token: str = ""
    access_key_id: str = ""
    secret_access_key: str = ""
    # An issued token is renewed when less than this much of its life is left
    # (or less than a fifth of it, whichever is shorter).
    renew_before_seconds: float = Field(default=300.0, ge=0)

    @model_validator(mode="after")
    def _one_kind(self) -> CredentialsConfig:
        if self.token and (self.access_key_id or self.secret_access_key):
            raise ValueError("give either a token or an access key pair, not both")
        if bool(self.access_key_id) != bool(self.secret_access_key):
            raise ValueError("an access key needs both access_key_id and secret_access_key")
        return self

    @property
    def uses_access_key(self) -> bool:
        """Whether tokens are issued (and renewed) from the access key pair."""
        return bool(self.access_key_id)


class DriverConfig(BaseModel):
    """The compute driver: its entry-point name and its options (passed as
    keyword arguments to `load_compute_driver`)."""

    name: str = "libvirt"
    options: dict[str, Any] = Field(default_factory=dict)


class VolumesConfig(BaseModel):
    """The Ceph cluster this host opens RBD volumes from (empty `rbd_conf`: none)."""

    rbd_conf: str = ""
    rbd_user: str = "kumo"
    # Empty means the keyring the conf names.
    rbd_keyring: str = ""


class NetworkConfig(BaseModel):
    """The host's Open vSwitch, where guests' ports are bound (empty `ovs_db_remote`: none;
    the driver then gets guests' NICs unplugged, as the fake driver wants). `netns` names
    the network namespace the OVS stack (and libvirtd) run in, where taps are made;
    empty: the agent's own."""

    ovs_db_remote: str = ""
    netns: str = ""
    # ovs-vswitchd's datapath for the integration bridge: netdev (userspace) works without
    # the kernel module; `system` uses it.
    datapath_type: str = "netdev"
    # How long a bound port may take to come up in OVN before the guest starts anyway.
    up_timeout_seconds: float = Field(default=10.0, ge=0)


class AgentConfig(BaseSettings):
    """Everything `kumo-agent` needs to start."""

    model_config = SettingsConfigDict(
        env_prefix="KUMO_AGENT_", env_nested_delimiter="__", extra="forbid"
    )

    # The API's gRPC endpoint, `host:port`.
    api_endpoint: str = "127.0.0.1:7900"
    # The host's id: the agent registers `hosts/{host}`.
    host: str = Field(default_factory=default_host_id, pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
    # The rack id (`racks/{rack}`), used when the host registers for the first time.
    rack: str = ""
    # The host's management address; empty means the machine's host name.
    address: str = ""
    credentials: CredentialsConfig = CredentialsConfig()
    driver: DriverConfig = DriverConfig()
    volumes: VolumesConfig = VolumesConfig()
    network: NetworkConfig = NetworkConfig()
    # The agent's own files: `state.json` (serials carried out) and `images/<sha256>.<format>`.
    state_dir: Path = Field(default_factory=default_state_dir)
    heartbeat_interval_seconds: float = Field(default=10.0, gt=0)
    # Every this often the agent compares the whole desired set with the
    # hypervisor (and acts and reports where they differ), even without news.
    resync_interval_seconds: float = Field(default=60.0, gt=0)
    # Every this often every instance's status is reported even if unchanged
    # (otherwise only changes are, and everything after each reconnect).
    status_report_interval_seconds: float = Field(default=300.0, gt=0)
    console_poll_interval_seconds: float = Field(default=1.0, gt=0)
    # Instances acted on at once (one action at a time per instance).
    concurrency: int = Field(default=4, ge=1, le=256)
    # Deadline of each unary call to the API.
    call_timeout_seconds: float = Field(default=30.0, gt=0)
    # Backoff between retries and reconnects: doubles from `initial` to `max`, with jitter.
    retry_initial_seconds: float = Field(default=0.5, gt=0)
    retry_max_seconds: float = Field(default=30.0, gt=0)
    # Reconnect the watch stream when no message came for this long (the API
    # repeats the full set periodically, so silence means a dead connection);
    # 0 disables the check.
    watch_idle_timeout_seconds: float = Field(default=300.0, ge=0)
    # Seconds a graceful StopInstance waits before the driver forces the guest off.
    stop_timeout_seconds: float = Field(default=60.0, gt=0)
    # Seconds in-flight driver actions get to finish when the agent stops.
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)

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
    def host_name(self) -> str:
        """`hosts/{host}`."""
        return f"hosts/{self.host}"

    @property
    def rack_name(self) -> str:
        """`racks/{rack}`, or empty when no rack is configured."""
        if not self.rack:
            return ""
        return self.rack if self.rack.startswith("racks/") else f"racks/{self.rack}"

    @property
    def host_address(self) -> str:
        """The configured address, else the machine's host name."""
        return self.address or socket.gethostname()

    @property
    def image_dir(self) -> Path:
        """Where verified images are cached."""
        return self.state_dir / "images"

    @property
    def state_file(self) -> Path:
        """Where the serials carried out are persisted."""
        return self.state_dir / "state.json"


def load_agent_config(path: str | Path | None = None, **overrides: Any) -> AgentConfig:
    """Loads the TOML file at `path` (or `$KUMO_AGENT_CONFIG`), then the environment.

    Raises FileNotFoundError for a named file that is missing, and pydantic's
    ValidationError for unknown keys or bad values.
    """
    values: dict[str, Any] = {}
    path = path or os.environ.get("KUMO_AGENT_CONFIG")
    if path:
        values = tomllib.loads(Path(path).read_text())
    values.update(overrides)
    return AgentConfig(**values)
