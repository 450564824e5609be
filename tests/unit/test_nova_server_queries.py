"""Nova's server list query as ListInstances arguments (server_queries.server_query): the
state filters against what the server view shows, and the order of sort keys."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from google.protobuf import timestamp_pb2
from starlette.datastructures import QueryParams

from kumo.gateway.errors import RpcFailure
from kumo.gateway.openstack.common import Scope
from kumo.gateway.openstack.lookup import ImageIndex
from kumo.gateway.openstack.microversions import Version
from kumo.gateway.openstack.nova.server_queries import ServerQuery, server_query


def _scope(admin: bool = False) -> Scope:
    stamp = timestamp_pb2.Timestamp()
    return Scope("t", "u", "p", ("member",), admin, stamp, stamp)


def _read(query: str, version: str = "2.1", admin: bool = False) -> ServerQuery:
    major, minor = version.split(".")
    images = ImageIndex(cast(Any, None))  # (no image filter here: never asked)
    return asyncio.run(
        server_query(QueryParams(query), Version(int(major), int(minor)), _scope(admin), images)
    )


@pytest.mark.parametrize(
    ("query", "terms"),
    [
        ("status=active", "(state = STATE_RUNNING)"),
        # Suspended and paused are one Kumo state, told apart by `paused`: asked for with
        # another status, the pause condition holds for the suspended ones only.
        ("status=SUSPENDED", "(state = STATE_SUSPENDED) AND (paused = false)"),
        (
            "status=PAUSED&status=SHUTOFF",
            "(state = STATE_STOPPED OR state = STATE_SUSPENDED)"
            " AND (paused = true OR state = STATE_STOPPED)",
        ),
        ("status=PAUSED&status=SUSPENDED", "(state = STATE_SUSPENDED)"),
        ("status=BUILD", "(state = STATE_UNSPECIFIED OR state = STATE_PROVISIONING)"),
    ],
)
def test_statuses_become_the_states_shown_with_them(query: str, terms: str) -> None:
    assert _read(query).filter == terms


def test_administrators_state_filters_and_what_members_lose() -> None:
    admin = _read("vm_state=active&power_state=4&task_state=deleting", admin=True)
    assert admin.filter == (
        "(state = STATE_RUNNING OR state = STATE_REBOOTING) AND (state = STATE_STOPPED)"
        " AND (state = STATE_DELETING)"
    )
    assert not admin.show_deleted
    assert _read("vm_state=active&host=h&uuid=x").filter == ""  # (dropped for members)
    # From 2.83 members filter by state, zone and key pair too (not by host).
    assert _read("vm_state=active&host=h", "2.83").filter.startswith("(state = STATE_RUNNING")
    assert _read("availability_zone=z", "2.82").parent == "projects/p/zones/-"
    assert _read("availability_zone=z", "2.83").parent == "projects/p/zones/z"
    assert _read("vm_state=deleted", admin=True).show_deleted
    assert _read("vm_state=shelved", admin=True).nothing


@pytest.mark.parametrize(
    ("query", "version", "order"),
    [
        ("", "2.1", "create_time desc"),
        ("sort_key=display_name&sort_dir=asc", "2.1", "display_name"),
        ("sort_key=uuid&sort_key=created_at&sort_dir=asc&sort_dir=desc", "2.1", "uid"),
        ("sort_key=vcpus&sort_key=updated_at&sort_dir=asc", "2.74", "update_time"),
        ("sort_key=host", "2.75", "create_time desc"),
        ("sort_key=locked", "2.73", "create_time desc"),
        ("sort_key=locked", "2.72", "create_time desc"),  # (ignored before 2.73)
    ],
)
def test_sort_keys(query: str, version: str, order: str) -> None:
    assert _read(query, version).order_by == order


@pytest.mark.parametrize(
    ("query", "version", "admin"),
    [
        ("sort_key=vcpus", "2.75", False),
        ("sort_dir=up", "2.1", False),
        ("status=lost", "2.38", False),
        ("locked=perhaps", "2.73", False),
        ("changes-since=soon", "2.1", False),
        ("whatever=1", "2.75", False),
        ("metadata=x", "2.1", True),
    ],
)
def test_refusals(query: str, version: str, admin: bool) -> None:
    with pytest.raises(RpcFailure) as raised:
        _read(query, version, admin)
    assert raised.value.code == 3  # INVALID_ARGUMENT, 400 in Nova's shape
