"""Nova's status, vm_state and task_state of a Kumo instance (DetailView.render)."""

from __future__ import annotations

from typing import Any

import pytest

from kumo.compute.v1 import resources_pb2 as cpb
from kumo.gateway.openstack.microversions import Version
from kumo.gateway.openstack.nova.views import DetailView

S = cpb.Instance
RUN, STOP = S.POWER_INTENT_RUNNING, S.POWER_INTENT_STOPPED


def _render(groups: list[dict[str, str]] | None = None, **fields: Any) -> dict[str, Any]:
    instance = cpb.Instance(name="projects/p/zones/z/instances/i", uid="u", host="hosts/h1")
    for key, value in fields.items():
        setattr(instance, key, value)
    view = DetailView("http://x", Version(2, 37), admin=True)
    return view.render(instance, "", {}, groups or [])


def test_security_groups_are_left_out_when_the_server_has_none() -> None:
    assert "security_groups" not in _render()
    assert _render([{"name": "web"}])["security_groups"] == [{"name": "web"}]


@pytest.mark.parametrize(
    ("fields", "status", "task_state"),
    [
        ({"state": S.STATE_RUNNING, "power_intent": RUN}, "ACTIVE", None),
        ({"state": S.STATE_STOPPED, "power_intent": STOP}, "SHUTOFF", None),
        ({"state": S.STATE_RESIZED, "power_intent": RUN}, "VERIFY_RESIZE", None),
        # Moving (live or cold, or a resize or revert changing hosts): clients that wait
        # for ACTIVE / VERIFY_RESIZE after the call keep waiting until it has arrived.
        (
            {"state": S.STATE_RUNNING, "power_intent": RUN, "migration_host": "hosts/h2"},
            "MIGRATING",
            "migrating",
        ),
        (
            {"state": S.STATE_STOPPED, "power_intent": STOP, "migration_host": "hosts/h2"},
            "MIGRATING",
            "migrating",
        ),
        ({"state": S.STATE_DELETING, "power_intent": RUN}, "ACTIVE", "deleting"),
    ],
)
def test_status_and_task_state(fields: dict[str, Any], status: str, task_state: str) -> None:
    server = _render(**fields)
    assert (server["status"], server["OS-EXT-STS:task_state"]) == (status, task_state)
