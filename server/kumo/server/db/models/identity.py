"""Tables of the identity service: projects, users, roles, keys, tokens, quotas."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, LargeBinary, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kumo.server.db.base import Base, utcnow
from kumo.server.db.models.common import ResourceColumns


class ProjectRow(ResourceColumns, Base):
    """A project; `state` holds the proto enum value."""

    __tablename__ = "projects"

    description: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[int] = mapped_column(SmallInteger, default=1)


class UserRow(ResourceColumns, Base):
    """A user; tokens issued before `tokens_valid_after` are void."""

    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(254), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(default=False)
    tokens_valid_after: Mapped[datetime] = mapped_column(default=utcnow)


class RoleAssignmentRow(Base):
    """One role of one user on one project; `role` holds the proto enum value."""

    __tablename__ = "role_assignments"

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    create_time: Mapped[datetime] = mapped_column(default=utcnow)


class AccessKeyRow(Base):
    """An access key; the secret is stored encrypted with the server key."""

    __tablename__ = "access_keys"

    id: Mapped[str] = mapped_column(String(20), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    description: Mapped[str] = mapped_column(Text, default="")
    create_time: Mapped[datetime] = mapped_column(default=utcnow)


class RevokedTokenRow(Base):
    """A revoked token id, kept until the token would have expired anyway."""

    __tablename__ = "revoked_tokens"

    token_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    expire_time: Mapped[datetime] = mapped_column(index=True)


class QuotaRow(Base):
    """One counted resource of one project: its limit (-1 unlimited) and usage."""

    __tablename__ = "quotas"

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    resource: Mapped[str] = mapped_column(String(63), primary_key=True)
    limit: Mapped[int] = mapped_column(BigInteger)
    in_use: Mapped[int] = mapped_column(BigInteger, default=0)
    version: Mapped[int] = mapped_column(default=1)
