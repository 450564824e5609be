"""The declarative base, column types shared by every model, and `utcnow`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, DateTime, MetaData
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, declared_attr
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite drops the zone; PostgreSQL keeps it. Both come back as aware UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base of every Kumo table.

    A table with a `version` column is versioned: the code sets the new version itself, and
    the ORM writes and deletes its rows only where `version` is still the one read
    (`UPDATE ... WHERE id = ... AND version = ...`), raising StaleDataError when another
    transaction changed the row since. Database.transaction then runs the whole transaction
    again on the row as it is now, so a concurrent change is never overwritten unseen (an
    etag checked in the first run is checked again against the new version).
    """

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime, dict[str, str]: JSON}

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        if not hasattr(cls, "version"):
            return {}
        return {"version_id_col": cls.version, "version_id_generator": False}
