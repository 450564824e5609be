"""Tables of the network service: networks, subnets, ports, address allocations,
routers, floating IPs and security groups.

Every row is desired state; `synced_version` is the `version` the network
reconciler last wrote to the backend (0: never), and `state` its outcome.
Enum columns hold proto enum values; lists of structures are JSON.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from kumo.server.db.base import Base
from kumo.server.db.models.common import ResourceColumns


class SyncColumns:
    """The reconciler's bookkeeping on every networking row."""

    description: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[int] = mapped_column(SmallInteger, default=1)
    state_message: Mapped[str] = mapped_column(String(255), default="")
    synced_version: Mapped[int] = mapped_column(default=0)


class NetworkRow(ResourceColumns, SyncColumns, Base):
    """A network of a project; `type` holds Network.Type."""

    __tablename__ = "networks"

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    type: Mapped[int] = mapped_column(SmallInteger, default=1)
    physical_network: Mapped[str] = mapped_column(String(63), default="")
    vlan_id: Mapped[int] = mapped_column(default=0)
    external: Mapped[bool] = mapped_column(default=False, index=True)
    mtu: Mapped[int] = mapped_column(default=0)
    # Network.shared: every project may use it
    shared: Mapped[bool] = mapped_column(default=False, index=True)


class SubnetRow(ResourceColumns, SyncColumns, Base):
    """An address range of a network."""

    __tablename__ = "subnets"
    __table_args__ = (
        ForeignKeyConstraint(
            ["project_id", "network_id"], ["networks.project_id", "networks.id"], ondelete="CASCADE"
        ),
    )

    project_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    network_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    cidr: Mapped[str] = mapped_column(String(49))
    ip_version: Mapped[int] = mapped_column(SmallInteger)
    gateway_ip: Mapped[str] = mapped_column(String(45))
    allocation_pools: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    dns_servers: Mapped[list[str]] = mapped_column(JSON, default=list)
    dhcp_enabled: Mapped[bool] = mapped_column(default=True)
    host_routes: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)


class PortRow(ResourceColumns, SyncColumns, Base):
    """A port on a network (of its own project, or an external one); `status` holds
    Port.Status. `security_groups` are ids of groups of the port's project."""

    __tablename__ = "ports"
    __table_args__ = (
        ForeignKeyConstraint(
            ["network_project_id", "network_id"], ["networks.project_id", "networks.id"]
        ),
        UniqueConstraint("network_project_id", "network_id", "mac_address", name="uq_ports_mac"),
        Index("ix_ports_device", "device_id"),
    )

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    network_project_id: Mapped[str] = mapped_column(String(63))
    network_id: Mapped[str] = mapped_column(String(63))
    mac_address: Mapped[str] = mapped_column(String(17))
    security_groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    port_security_enabled: Mapped[bool] = mapped_column(default=True)
    allowed_address_pairs: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    device_owner: Mapped[str] = mapped_column(String(63), default="")
    device_id: Mapped[str] = mapped_column(String(255), default="")
    host_id: Mapped[str] = mapped_column(String(63), default="")
    status: Mapped[int] = mapped_column(SmallInteger, default=1)
    # An instance interface's (set by the compute service only): the instance's uid, the
    # interface's place among the instance's, and whether the port goes with the instance
    # (Kumo made it for the interface) or stays when it is detached (an adopted port).
    instance_uid: Mapped[str | None] = mapped_column(String(36), default=None)
    interface_index: Mapped[int | None] = mapped_column(SmallInteger, default=None)
    delete_with_instance: Mapped[bool] = mapped_column(default=False)


class IpAllocationRow(Base):
    """One address of a subnet held by one owner (a port, a floating IP or a router
    gateway, by uid). The primary key makes a double allocation impossible."""

    __tablename__ = "ip_allocations"

    subnet_uid: Mapped[str] = mapped_column(String(36), primary_key=True)
    ip_address: Mapped[str] = mapped_column(String(45), primary_key=True)
    owner_uid: Mapped[str] = mapped_column(String(36), index=True)


class RouterRow(ResourceColumns, SyncColumns, Base):
    """A router; its interfaces are ports with device_owner `network:router_interface`."""

    __tablename__ = "routers"
    __table_args__ = (
        ForeignKeyConstraint(
            ["gateway_network_project_id", "gateway_network_id"],
            ["networks.project_id", "networks.id"],
        ),
    )

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    gateway_network_project_id: Mapped[str | None] = mapped_column(String(63), default=None)
    gateway_network_id: Mapped[str | None] = mapped_column(String(63), default=None)
    gateway_ip: Mapped[str] = mapped_column(String(45), default="")
    snat_enabled: Mapped[bool] = mapped_column(default=True)
    routes: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)


class FloatingIpRow(ResourceColumns, SyncColumns, Base):
    """An address of an external network, optionally mapped to a port's address."""

    __tablename__ = "floating_ips"
    __table_args__ = (
        ForeignKeyConstraint(
            ["network_project_id", "network_id"], ["networks.project_id", "networks.id"]
        ),
        # every read of instances joins their ports' floating IPs by port
        Index("ix_floating_ips_port", "project_id", "port_id"),
    )

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    network_project_id: Mapped[str] = mapped_column(String(63))
    network_id: Mapped[str] = mapped_column(String(63))
    ip_address: Mapped[str] = mapped_column(String(45))
    port_id: Mapped[str | None] = mapped_column(String(63), default=None)
    fixed_ip: Mapped[str] = mapped_column(String(45), default="")
    router_id: Mapped[str | None] = mapped_column(String(63), default=None)


class SecurityGroupRow(ResourceColumns, SyncColumns, Base):
    """A security group; `rules` are SecurityGroupRule dicts with their ids."""

    __tablename__ = "security_groups"

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    rules: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class LeaderLeaseRow(Base):
    """Which process runs a singleton controller (e.g. the network reconciler) until
    `expire_time`; another replica takes over once it has passed."""

    __tablename__ = "leader_leases"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    owner: Mapped[str] = mapped_column(String(63))
    expire_time: Mapped[datetime] = mapped_column()
