"""Tables of the image service: images and their members."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    ForeignKeyConstraint,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from kumo.server.db.base import Base
from kumo.server.db.models.common import ResourceColumns


class ImageRow(ResourceColumns, Base):
    """An image of a project; its data lives in the image store under `uid`.

    `disk_format`, `visibility` and `state` hold proto enum values.
    """

    __tablename__ = "images"

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    disk_format: Mapped[int] = mapped_column(SmallInteger)
    visibility: Mapped[int] = mapped_column(SmallInteger, default=1, index=True)
    min_disk_gib: Mapped[int] = mapped_column(default=0)
    min_ram_mib: Mapped[int] = mapped_column(default=0)
    state: Mapped[int] = mapped_column(SmallInteger, default=1)
    state_message: Mapped[str] = mapped_column(String(255), default="")
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    virtual_size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    checksum_sha256: Mapped[str] = mapped_column(String(64), default="")
    source_instance: Mapped[str] = mapped_column(String(255), default="")


class ImageMemberRow(Base):
    """A project an image is shared with; `state` holds the proto enum value."""

    __tablename__ = "image_members"
    __table_args__ = (
        ForeignKeyConstraint(
            ["project_id", "image_id"], ["images.project_id", "images.id"], ondelete="CASCADE"
        ),
    )

    project_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    image_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    member_project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    state: Mapped[int] = mapped_column(SmallInteger, default=1)
