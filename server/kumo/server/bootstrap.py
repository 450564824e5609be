"""First start: the bootstrap project and its administrator.

When the database holds no user yet, creates the bootstrap project (with the
default quota), the admin user and its ADMIN role there, which makes it a cloud
administrator. The password comes from configuration, or is generated, written
to `<data_dir>/admin-password` (mode 0600) and returned so that it can be
printed once. Idempotent: with any user present it does nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.identity.v1 import resources_pb2 as pb
from kumo.server.auth.generated import typeable_secret
from kumo.server.auth.passwords import hash_password
from kumo.server.config import Config
from kumo.server.db.engine import Database
from kumo.server.db.models import ProjectRow, RoleAssignmentRow, UserRow
from kumo.server.quota import create_project_quota


def password_file(config: Config) -> Path:
    """Where a generated admin password is written."""
    return config.data_dir / "admin-password"


def bootstrap(db: Database, config: Config) -> str | None:
    """Creates the first administrator if there is no user; returns a generated password."""
    settings = config.bootstrap
    if db.transaction(lambda s: s.scalar(select(UserRow.id).limit(1))) is not None:
        return None
    generated = not settings.admin_password
    password = settings.admin_password or typeable_secret(24)
    password_hash = hash_password(password, config.auth.scrypt_log2_n)

    def create(session: Session) -> None:
        if session.get(ProjectRow, settings.project) is None:
            session.add(
                ProjectRow(
                    id=settings.project,
                    display_name="Cloud administration",
                    state=pb.Project.STATE_ACTIVE,
                )
            )
            session.flush()
            create_project_quota(session, settings.project, config.quota_defaults)
        session.add(UserRow(id=settings.admin_user, password_hash=password_hash))
        session.flush()
        session.add(
            RoleAssignmentRow(
                project_id=settings.project, user_id=settings.admin_user, role=pb.ROLE_ADMIN
            )
        )

    db.transaction(create)
    if not generated:
        return None
    path = password_file(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")
    return password
