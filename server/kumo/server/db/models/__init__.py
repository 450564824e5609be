"""Every table, imported here so that `Base.metadata` is complete for Alembic."""

from kumo.server.db.models.compute import (
    ClaimRow,
    FlavorRow,
    InstanceRow,
    InstanceTombstoneRow,
    KeyPairRow,
    SerialOutputRow,
    ServerGroupRow,
)
from kumo.server.db.models.identity import (
    AccessKeyRow,
    ProjectRow,
    QuotaRow,
    RevokedTokenRow,
    RoleAssignmentRow,
    UserRow,
)
from kumo.server.db.models.images import ImageMemberRow, ImageRow
from kumo.server.db.models.network import (
    FloatingIpRow,
    IpAllocationRow,
    LeaderLeaseRow,
    NetworkRow,
    PortRow,
    RouterRow,
    SecurityGroupRow,
    SubnetRow,
)
from kumo.server.db.models.operations import IdempotencyRow, OperationRow, ServerSecretRow
from kumo.server.db.models.storage import (
    AttachmentRow,
    BackupRow,
    SnapshotRow,
    VolumeRow,
    VolumeTransferRow,
    VolumeTypeRow,
)
from kumo.server.db.models.topology import HostRow, PoolRow, RackRow, RegionRow, ZoneRow

__all__ = [
    "AccessKeyRow",
    "AttachmentRow",
    "BackupRow",
    "ClaimRow",
    "FlavorRow",
    "FloatingIpRow",
    "HostRow",
    "IdempotencyRow",
    "ImageMemberRow",
    "ImageRow",
    "InstanceRow",
    "InstanceTombstoneRow",
    "IpAllocationRow",
    "KeyPairRow",
    "LeaderLeaseRow",
    "NetworkRow",
    "OperationRow",
    "PoolRow",
    "PortRow",
    "ProjectRow",
    "QuotaRow",
    "RackRow",
    "RegionRow",
    "RevokedTokenRow",
    "RoleAssignmentRow",
    "RouterRow",
    "SecurityGroupRow",
    "SerialOutputRow",
    "ServerGroupRow",
    "ServerSecretRow",
    "SnapshotRow",
    "SubnetRow",
    "UserRow",
    "VolumeRow",
    "VolumeTransferRow",
    "VolumeTypeRow",
    "ZoneRow",
]
