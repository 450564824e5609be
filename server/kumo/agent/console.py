"""The console pump: serial console output of the host's guests to the API.

Every `console_poll_interval_seconds` it reads, for each running (or paused)
guest, the console bytes past its cursor from the driver and sends them with
AppendSerialPortOutput, at most 64 KiB per call. The API answers with the
offset it expects next, which becomes the cursor: if the API lacks earlier
bytes the pump resends from there, and if it already has these bytes it
skips ahead. The first call for a guest (after the agent starts, or after the
guest comes back to running) is an empty append at offset 0: a probe that
tells the pump where the API's copy ends, so a restarted agent sends nothing
twice. A guest that stops is drained once more, then left alone. A guest that
arrived by live migration has a console file that starts mid-stream: its base
(where the file starts in the stream) is where the API's copy ended when the
pump first saw it here; a guest still arriving is not pumped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import grpc

from kumo.agent.client import ApiClient
from kumo.agent.reconciler import ACTIVE, DriverRunner
from kumo.agent.v1 import agent_service_pb2
from kumo.drivers.compute.base import GuestState
from kumo.drivers.errors import DriverError, GuestNotFound

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
"""Most bytes per AppendSerialPortOutput."""

MAX_CHUNKS_PER_PASS = 16
"""Most chunks one guest sends per pass, so that one chatty guest cannot hold up the others."""

QUIET_SECONDS = 30.0
"""How long a guest whose appends the API refused is left alone."""


class ConsolePump:
    """Sends new console output of active guests to the API; see the module docstring."""

    def __init__(
        self,
        *,
        client: ApiClient,
        runner: DriverRunner,
        observed: Callable[[], dict[str, GuestState]],
        base: Callable[[str], int | None],
        set_base: Callable[[str, int], None],
        interval: float,
        concurrency: int = 8,
    ) -> None:
        self._client = client
        self._run = runner
        self._observed = observed
        self._base = base
        self._set_base = set_base
        self._interval = interval
        self._slots = asyncio.Semaphore(concurrency)
        self.cursors: dict[str, int] = {}
        """The next console offset to send, by instance uid (once probed)."""
        self._quiet_until: dict[str, float] = {}

    async def run(self) -> None:
        """Pumps every interval until cancelled."""
        while True:
            await self.pump_once()
            await asyncio.sleep(self._interval)

    async def pump_once(self) -> None:
        """One pass over the active guests (and those that just stopped)."""
        states = self._observed()
        active = {uid for uid, state in states.items() if state in ACTIVE}
        for uid in list(self.cursors):
            if uid not in states:
                del self.cursors[uid]  # destroyed: its stream ended
        now = time.monotonic()
        targets = [
            uid
            for uid in sorted(active | set(self.cursors))
            if self._quiet_until.get(uid, 0.0) <= now and self._base(uid) is not None
        ]
        await asyncio.gather(*(self._pump_guarded(uid, uid in active) for uid in targets))

    async def _pump_guarded(self, uid: str, active: bool) -> None:
        async with self._slots:
            try:
                await self._pump(uid)
            except GuestNotFound:
                self.cursors.pop(uid, None)
                return
            except DriverError as error:
                log.debug("cannot read the console of %s: %s", uid, error)
                return
            except grpc.aio.AioRpcError as error:
                if error.code() == grpc.StatusCode.UNAVAILABLE:
                    return  # the API is away; the cursor stays
                log.warning(
                    "console of %s refused: %s: %s", uid, error.code().name, error.details()
                )
                self._quiet_until[uid] = time.monotonic() + QUIET_SECONDS
                self.cursors.pop(uid, None)
                return
            self._quiet_until.pop(uid, None)
            if not active:
                self.cursors.pop(uid, None)  # drained after stopping; probe again on start

    async def _pump(self, uid: str) -> None:
        call = self._client.agent.AppendSerialPortOutput
        if uid not in self.cursors:
            reply = await self._client.call(
                call,
                agent_service_pb2.AppendSerialPortOutputRequest(instance_uid=uid, offset=0),
                attempts=1,
            )
            self.cursors[uid] = max(0, int(reply.next_offset))
        base = self._base(uid)
        if base is None:
            return
        if base < 0:  # arrived by migration: its file starts where the API's copy ends
            base = self.cursors[uid]
            self._set_base(uid, base)
        for _ in range(MAX_CHUNKS_PER_PASS):
            offset = self.cursors[uid] = max(self.cursors[uid], base)
            data: bytes = await self._run(self._run.driver.read_console, uid, offset - base, CHUNK)
            if not data:
                return
            reply = await self._client.call(
                call,
                agent_service_pb2.AppendSerialPortOutputRequest(
                    instance_uid=uid, offset=offset, data=data
                ),
                attempts=1,
            )
            expected = offset + len(data)
            following = max(0, int(reply.next_offset))
            if following != expected:
                log.info(
                    "console of %s: the API expects offset %d, not %d; continuing there",
                    uid,
                    following,
                    expected,
                )
            self.cursors[uid] = following
            if following <= offset or len(data) < CHUNK:
                return  # caught up (or the API did not move: try again next pass)
