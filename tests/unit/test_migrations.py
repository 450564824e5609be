"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, MetaData, Table, create_engine, insert

from kumo.server.db.base import Base
from kumo.server.db.engine import Database
from kumo.server.db.migrate import upgrade


def test_migrations_match_the_models(tmp_path: Path) -> None:
    """No difference between `upgrade head` and the models (a missing migration fails here)."""
    db = Database(f"sqlite:///{tmp_path}/m.db")
    upgrade(db.engine)
    upgrade(db.engine)  # idempotent
    with db.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def _insert(connection: Connection, table: str, **given: object) -> None:
    """Inserts a row of `table` as reflected: `given`, and a placeholder of the right type
    for every other NOT NULL column without a default."""
    columns = Table(table, MetaData(), autoload_with=connection).columns
    values = dict(given)
    for column in columns:
        if column.name in values or column.nullable or column.server_default is not None:
            continue
        python = column.type.python_type
        values[column.name] = {str: "x", int: 0, bool: False, bytes: b""}.get(
            python, datetime.now(UTC) if python is datetime else "{}"
        )
    connection.execute(insert(columns[0].table).values(values))


def test_0018_moves_delete_boot_volume_onto_the_boot_volumes_attachment(tmp_path: Path) -> None:
    """An instance made with `delete_boot_volume` before 0018: its boot volume's attachment
    is flagged `delete_with_instance`, its other attachments and other instances' are not."""
    db = Database(f"sqlite:///{tmp_path}/m.db")
    upgrade(db.engine, "0017")
    with create_engine(db.url).begin() as connection:  # (a plain engine: no foreign keys)
        for instance, doomed in (("a", True), ("b", False)):
            _insert(connection, "instances", project_id="p", zone_id="z", id=instance,
                    uid=instance, boot_volume_id=f"{instance}-root",
                    delete_boot_volume=doomed)  # fmt: skip
            for volume in (f"{instance}-root", f"{instance}-data"):
                _insert(connection, "volumes", project_id="p", zone_id="z", id=volume, uid=volume)
                _insert(connection, "volume_attachments", project_id="p", zone_id="z",
                        volume_id=volume, instance_id=instance, mode=1, serial=volume)  # fmt: skip
    upgrade(db.engine)
    with db.engine.connect() as connection:
        flags: dict[str, bool] = dict(
            connection.exec_driver_sql(
                "SELECT volume_id, delete_with_instance FROM volume_attachments"
            ).all()
        )
    assert flags == {"a-root": True, "a-data": False, "b-root": False, "b-data": False}
