"""The volume, snapshot and volume-type commands of the `kumo` CLI against a real `kumo up`,
whose default volume type is local qcow2 files under its data dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_cli_against_kumo_up import Up
from tests.e2e.test_cli_compute import as_json, login


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    server = Up(tmp_path)
    try:
        yield server
    finally:
        server.stop()


def test_volumes_on_local_qcow2_through_the_cli(up: Up, tmp_path: Path) -> None:
    """Create, snapshot, clone, extend and delete volumes with `kumo`; the files appear and
    go under <data_dir>/volumes; deleting a volume with a snapshot is refused."""
    login(up, tmp_path)
    types = as_json(up, "volume-type", "list")
    assert [t["name"] for t in types] == ["volumeTypes/local"]
    assert types[0]["backend"] == "BACKEND_QCOW2"
    first = as_json(up, "volume", "create", "data", "--size-gib", "1", "--display-name", "d")
    assert first["state"] == "STATE_AVAILABLE" and first["volumeType"] == "volumeTypes/local"
    pool = tmp_path / "data" / "volumes" / "volumes"
    assert (pool / f"kumo-vol-{first['uid']}.qcow2").is_file()
    snap = as_json(up, "snapshot", "create", "data", "s1")
    assert snap["state"] == "STATE_AVAILABLE"
    clone = as_json(up, "volume", "create", "copy", "--size-gib", "2", "--snapshot", snap["name"])
    assert clone["sourceSnapshot"] == snap["name"] and clone["sizeGib"] == 2
    grown = as_json(up, "volume", "extend", "copy", "--size-gib", "3")
    assert grown["sizeGib"] == 3
    refused = up.kumo("volume", "delete", "data", check=False)
    assert refused.returncode != 0 and "snapshot" in refused.stderr
    listed = as_json(up, "volume", "list")
    assert sorted(v["name"].rsplit("/", 1)[1] for v in listed) == ["copy", "data"]
    assert [s["name"] for s in as_json(up, "snapshot", "list", "data")] == [snap["name"]]
    up.kumo("snapshot", "delete", "data", "s1")
    up.kumo("volume", "delete", "data")
    up.kumo("volume", "delete", "copy")
    assert as_json(up, "volume", "list") == []
    assert not any(pool.glob("kumo-vol-*.qcow2"))
