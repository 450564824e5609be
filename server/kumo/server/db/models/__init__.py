"""Every table, imported here so that `Base.metadata` is complete for Alembic."""

from kumo.server.db.models.identity import (
    AccessKeyRow,
    ProjectRow,
    QuotaRow,
    RevokedTokenRow,
    RoleAssignmentRow,
    UserRow,
)
from kumo.server.db.models.operations import IdempotencyRow, OperationRow, ServerSecretRow
from kumo.server.db.models.topology import HostRow, PoolRow, RackRow, RegionRow, ZoneRow

__all__ = [
    "AccessKeyRow",
    "HostRow",
    "IdempotencyRow",
    "OperationRow",
    "PoolRow",
    "ProjectRow",
    "QuotaRow",
    "RackRow",
    "RegionRow",
    "RevokedTokenRow",
    "RoleAssignmentRow",
    "ServerSecretRow",
    "UserRow",
    "ZoneRow",
]
