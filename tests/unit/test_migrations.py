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


def test_0022_gives_the_ports_made_for_interfaces_their_instance_and_index(
    tmp_path: Path,
) -> None:
    """Ports Kumo made for interfaces before 0022 (id `nic<i>-<uid>`, owner
    compute:instance) get their instance uid, index and `delete_with_instance`; other ports
    (a router's, a user's, one that only looks like an interface's) nothing."""
    db = Database(f"sqlite:///{tmp_path}/m.db")
    upgrade(db.engine, "0021")
    uid = "0b6f1a4e-93c4-4f4e-9a55-3e0b4f0c8a11"
    ports = {
        f"nic0-{uid}": "compute:instance",
        f"nic3-{uid}": "compute:instance",
        f"nic1-{uid}-router": "network:router_interface",
        "users-port": "",
        "nicX-looks-like-one": "compute:instance",
    }
    with create_engine(db.url).begin() as connection:
        # (the upgrade copies the table with foreign keys on: the rows they name exist)
        _insert(connection, "projects", id="p", uid="p")
        _insert(connection, "networks", project_id="p", id="n", uid="n")
        for index, (port_id, owner) in enumerate(ports.items()):
            _insert(connection, "ports", project_id="p", id=port_id, uid=f"u{index}",
                    network_project_id="p", network_id="n", device_owner=owner,
                    mac_address=f"02:00:00:00:00:0{index}")  # fmt: skip
    upgrade(db.engine)
    with db.engine.connect() as connection:
        found = {
            row[0]: tuple(row[1:])
            for row in connection.exec_driver_sql(
                "SELECT id, instance_uid, interface_index, delete_with_instance FROM ports"
            ).all()
        }
    assert found == {
        f"nic0-{uid}": (uid, 0, True),
        f"nic3-{uid}": (uid, 3, True),
        f"nic1-{uid}-router": (None, None, False),
        "users-port": (None, None, False),
        "nicX-looks-like-one": (None, None, False),
    }
