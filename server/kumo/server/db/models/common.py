"""Columns every user-visible resource row has."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from kumo.server.db.base import utcnow


def new_uid() -> str:
    """A fresh resource uid (UUID4 text)."""
    return str(uuid.uuid4())


class ResourceColumns:
    """id (the last segment of the resource name), uid, labels, times and version.

    `version` grows by one on every change; the etag is derived from it.
    """

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    uid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uid)
    display_name: Mapped[str] = mapped_column(String(63), default="")
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    create_time: Mapped[datetime] = mapped_column(default=utcnow)
    update_time: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(default=1)
