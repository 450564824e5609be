"""The agent hot-plugs the volumes an assignment lists into the running guest and unplugs
the ones no longer listed (fake API and FakeDriver; the libvirt side is tested with real
guests in tests/integration/test_volume_attach_*.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from kumo.agent.v1 import agent_service_pb2 as apb
from kumo.compute.v1 import resources_pb2 as cpb
from kumo.drivers.compute.fake import FakeDriver
from tests.unit.test_agent import agent_config, assignment, eventually, fake_api, running_agent

Instance = cpb.Instance


def test_assigned_volumes_are_attached_and_unlisted_ones_detached(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with fake_api() as (api, port):
            disk = apb.VolumeAttachment(
                serial="kumovolone",
                kind="file",
                path=str(tmp_path / "v.qcow2"),
                max_iops=100,
                size_bytes=1 << 30,
            )
            api.assign(assignment("vm-1", volumes=[disk]))
            driver = FakeDriver()
            async with running_agent(agent_config(port, tmp_path / "agent"), driver):
                await eventually(lambda: api.reported("vm-1", Instance.STATE_RUNNING), "vm-1")
                await eventually(
                    lambda: driver.attached_volumes("vm-1") == {"kumovolone"}, "attached"
                )
                # ExtendVolume: the assignment's size grows and the guest is told.
                grown = apb.VolumeAttachment()
                grown.CopyFrom(disk)
                grown.size_bytes = 2 << 30
                api.assign(assignment("vm-1", generation=2, volumes=[grown]))
                await eventually(
                    lambda: driver._get("vm-1").volume_sizes.get("kumovolone") == 2 << 30,
                    "grown",
                )
                api.assign(assignment("vm-1", generation=3))
                await eventually(lambda: driver.attached_volumes("vm-1") == set(), "detached")
                # A volume of a kind this host cannot open is skipped, the guest stays RUNNING.
                bad = apb.VolumeAttachment(serial="kumovolbad", kind="nfs", path="x")
                api.assign(assignment("vm-1", generation=4, volumes=[bad]))
                await eventually(
                    lambda: api.reported("vm-1", Instance.STATE_RUNNING, observed_generation=4),
                    "still running",
                )
                assert driver.attached_volumes("vm-1") == set()

    asyncio.run(scenario())
