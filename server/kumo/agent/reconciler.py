"""Level-based convergence of the host's guests to the assignments from the API.

The reconciler holds the latest desired set (instance uid → InstanceAssignment)
that the watch stream delivered. On every change, and every
`resync_interval_seconds`, it compares that set with what the driver runs
(`list_guests()`) and with its own record of what it carried out, and acts,
one action at a time per instance and at most `concurrency` instances at once:

- an assigned guest that is missing is spawned (its image fetched first);
- a guest whose assignment is `deleted`, or that is absent from the desired set
  after a full resync, is destroyed (the driver lists only Kumo's guests) and
  reported `removed`; before the first full resync, unknown guests are left alone;
- `rebuild_serial` / `reboot_serial` above the serial last carried out rebuild /
  reboot the guest once (a reboot requested while the guest is not running is
  satisfied by the power convergence that follows);
- `resize_serial` above the one carried out shuts the guest off (cleanly, within
  the stop timeout) and gives it the assignment's sizes; power convergence then
  starts it again if it should run;
- start, stop, suspend or resume move the guest toward `power_intent`.

Status goes to the API with ReportInstanceStatus after every action and whenever
what the agent would report changed since its last successful report; every
instance is reported, changed or not, after each (re)connect's first full resync
and every `status_report_interval_seconds`. A failure is reported as STATE_ERROR
with the error's text and retried with backoff (bounded by the resync interval):
nothing is lost if the process dies at any point, since the next pass starts
again from the world as it is.

The serials carried out are persisted in `<state_dir>/state.json` after each
reboot, rebuild, resize and snapshot, so a restarted agent does not repeat them; a guest found
without a record (state lost) adopts the assignment's current serials.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import astuple
from pathlib import Path
from typing import Any, TypeVar

from kumo.agent.images import ImageCache, ImageError, format_name
from kumo.agent.migration import Migrations, Role, is_cold, role_of
from kumo.agent.nics import HostNics
from kumo.agent.state import Done, StateFile
from kumo.agent.v1 import agent_service_pb2
from kumo.agent.volumes import VolumeSources
from kumo.compute.v1 import resources_pb2
from kumo.drivers.compute.base import ComputeDriver, GuestNic, GuestSpec, GuestState
from kumo.drivers.errors import DriverError, StorageUnavailable
from kumo.drivers.storage.base import VolumeDisk

log = logging.getLogger(__name__)

T = TypeVar("T")

Instance = resources_pb2.Instance
Assignment = Any  # kumo.agent.v1.InstanceAssignment (generated, untyped)
Report = Any  # kumo.agent.v1.ReportInstanceStatusRequest
Reporter = Callable[[Report], Awaitable[None]]

STATE_OF: dict[GuestState, Instance.State] = {
    GuestState.RUNNING: Instance.STATE_RUNNING,
    GuestState.PAUSED: Instance.STATE_SUSPENDED,
    GuestState.SHUTOFF: Instance.STATE_STOPPED,
    GuestState.CRASHED: Instance.STATE_ERROR,
    GuestState.ABSENT: Instance.STATE_ERROR,
}
"""The Instance.State reported for each observed GuestState."""

STATE_MESSAGE: dict[GuestState, str] = {
    GuestState.CRASHED: "the guest crashed",
    GuestState.ABSENT: "the guest is missing from the host",
}

ACTIVE = frozenset({GuestState.RUNNING, GuestState.PAUSED})
"""States in which a guest is running (paused guests count: they hold memory)."""

_NICS_CHANGE_IN = frozenset({GuestState.RUNNING, GuestState.SHUTOFF})
"""States in which a guest's NICs can change (ComputeDriver.attach_nic, detach_nic)."""


class DriverRunner:
    """Runs blocking driver calls in a thread pool of its own, so that long ones (a
    graceful stop waits up to a minute) never starve the event loop's default executor."""

    def __init__(self, driver: ComputeDriver, workers: int) -> None:
        self.driver = driver
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kumo-driver")

    async def __call__(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: function(*args, **kwargs))

    def close(self) -> None:
        """Lets running calls finish in their threads; accepts no new ones."""
        self._executor.shutdown(wait=False, cancel_futures=True)


class Reconciler:
    """Converges the driver's guests to the desired set; see the module docstring."""

    def __init__(
        self,
        *,
        host: str,
        driver: ComputeDriver,
        runner: DriverRunner,
        images: ImageCache,
        state_file: Path,
        report: Reporter,
        report_migration: Callable[[Any], Awaitable[None]],
        concurrency: int = 4,
        resync_interval: float = 60.0,
        report_interval: float = 300.0,
        stop_timeout: float = 60.0,
        retry_initial: float = 0.5,
        volumes: VolumeSources | None = None,
        nics: HostNics | None = None,
    ) -> None:
        self.host = host
        self._volumes = volumes
        self._nics = nics
        self.driver = driver
        self._run = runner
        self._images = images
        self._state = StateFile(state_file)
        self._report_call = report
        self._slots = asyncio.Semaphore(concurrency)
        self._resync_interval = resync_interval
        self._report_interval = report_interval
        self._stop_timeout = stop_timeout
        self._retry_initial = retry_initial

        self.desired: dict[str, Assignment] = {}
        self.synced = False
        """Whether a full resync arrived: only then are unlisted guests destroyed."""
        self.observed: dict[str, GuestState] = {}
        """The last state seen of each guest that exists (for heartbeats and the console)."""
        self.full_passes = 0
        """How many passes over every guest were made (for logs and tests)."""

        self._changed: dict[str, bool] = {}  # uid → report even if unchanged
        self._full_pass = False  # list the guests and converge every instance
        self._report_all = False  # ... and report every instance
        self._report_all_on_resync = True  # after a (re)connect
        self._wake = asyncio.Event()
        self._pending: dict[str, bool] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._failures: dict[str, int] = {}
        self._retry_handles: dict[str, asyncio.TimerHandle] = {}
        self._last_report: dict[str, tuple[Any, ...]] = {}
        # The generation each instance's last pass finished with (reported as
        # observed_generation by the transitional PROVISIONING and REBOOTING reports).
        self._converged: dict[str, int] = {}
        self._stopped = False
        self.migrations = Migrations(
            host=host,
            driver=driver,
            runner=runner,
            state=self._state,
            spec=self._spec,
            report=report_migration,
        )

    # -- input -------------------------------------------------------------------------

    def apply(self, message: Any) -> None:
        """Takes one WatchAssignmentsResponse: a full resync replaces the desired set,
        anything else updates the assignments it lists. Acting happens in `run`."""
        assignments = {a.instance_uid: a for a in message.assignments if a.instance_uid}
        if message.full_resync:
            self.desired = assignments
            self.synced = True
            self._full_pass = True
            if self._report_all_on_resync:
                self._report_all_on_resync = False
                self._report_all = True
        else:
            # The stream is ordered: the latest message about an instance wins.
            for uid, assignment in assignments.items():
                self.desired[uid] = assignment
                self._changed.setdefault(uid, False)
        for uid, assignment in assignments.items():
            if role_of(assignment) == Role.ROLE_SOURCE:
                self.migrations.abort(uid, assignment)
        self._wake.set()

    def connected(self) -> None:
        """Says the watch stream was (re)opened: the full resync it starts with is
        answered with a report about every instance, changed or not (the API may have
        restarted or missed reports while the stream was down)."""
        self._report_all_on_resync = True

    @property
    def busy(self) -> bool:
        """Whether any instance is being acted on or waits to be."""
        return bool(self._workers or self._pending or self._changed or self._full_pass)

    # -- the loop ----------------------------------------------------------------------

    async def run(self) -> None:
        """Converges on every change and every resync interval, until cancelled."""
        next_pass = time.monotonic() + self._resync_interval
        next_report = time.monotonic() + self._report_interval
        while True:
            timeout = min(next_pass, next_report) - time.monotonic()
            if timeout > 0 and not self._wake.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            now = time.monotonic()
            if now >= next_pass:
                next_pass = now + self._resync_interval
                self._full_pass = True
            if now >= next_report:
                next_report = now + self._report_interval
                self._full_pass = self._report_all = True
            changed, self._changed = self._changed, {}
            if self._full_pass:
                report_all = self._report_all
                self._full_pass = self._report_all = False
                for uid in await self._every_uid():
                    changed[uid] = changed.get(uid, False) or report_all
                self.full_passes += 1
            for uid, force in changed.items():
                self._kick(uid, force)

    async def _every_uid(self) -> set[str]:
        uids = set(self.desired) | set(self._state.done)
        try:
            guests = await self._run(self.driver.list_guests)
        except DriverError as error:
            log.warning("cannot list guests: %s", error)
            return uids | set(self.observed)
        self.observed = dict(guests)
        return uids | set(guests)

    async def stop(self, grace: float) -> None:
        """Waits up to `grace` seconds for actions in flight, then cancels them (a driver
        call already running finishes in its thread; the next start converges)."""
        self._stopped = True
        for handle in self._retry_handles.values():
            handle.cancel()
        self._retry_handles.clear()
        self._pending.clear()
        workers = list(self._workers.values())
        if workers:
            _, late = await asyncio.wait(workers, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    def _kick(self, uid: str, force: bool) -> None:
        if self._stopped:
            return
        self._pending[uid] = self._pending.get(uid, False) or force
        if uid not in self._workers:
            self._workers[uid] = asyncio.create_task(self._work(uid), name=f"converge-{uid}")

    async def _work(self, uid: str) -> None:
        try:
            while uid in self._pending:
                force = self._pending.pop(uid)
                async with self._slots:
                    await self._converge_logged(uid, force)
        finally:
            self._workers.pop(uid, None)

    def _schedule_retry(self, uid: str) -> None:
        if self._stopped:
            return
        failures = self._failures.get(uid, 0) + 1
        self._failures[uid] = failures
        delay = min(self._resync_interval, self._retry_initial * 2 ** min(failures, 16))
        if (old := self._retry_handles.pop(uid, None)) is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self._retry_handles[uid] = loop.call_later(delay, self._retry, uid)

    def _retry(self, uid: str) -> None:
        self._retry_handles.pop(uid, None)
        self._kick(uid, False)

    def _succeeded(self, uid: str) -> None:
        self._failures.pop(uid, None)
        if (handle := self._retry_handles.pop(uid, None)) is not None:
            handle.cancel()

    # -- one instance ------------------------------------------------------------------

    async def _converge_logged(self, uid: str, force: bool) -> None:
        assignment = self.desired.get(uid)
        try:
            if assignment is None or assignment.deleted:
                ok = await self._remove(uid, assignment)
            elif role_of(assignment) == Role.ROLE_DESTINATION:
                if assignment.nics and self._nics is not None:  # QEMU opens the taps
                    await self._run(self._nics.plug, uid, list(assignment.nics))
                ok = await self.migrations.prepare(uid, assignment)
            else:
                ok = await self._converge(uid, assignment, force)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a bug: report it rather than die
            log.exception("converging %s failed", uid)
            if assignment is not None and not assignment.deleted:
                await self._report(uid, assignment, Instance.STATE_ERROR, f"agent error: {error}")
            ok = False
        if ok:
            self._succeeded(uid)
        else:
            self._schedule_retry(uid)

    async def _converge(self, uid: str, a: Assignment, force: bool) -> bool:
        source = role_of(a) == Role.ROLE_SOURCE
        if source and await self._left(uid, a):
            return True
        try:
            state = await self._act(uid, a)
        except (DriverError, ImageError, ValueError) as error:
            log.warning("instance %s: %s", uid, error)
            with contextlib.suppress(DriverError):
                self._observe(uid, await self._run(self.driver.state, uid))
            self._converged[uid] = a.generation
            await self._report(uid, a, Instance.STATE_ERROR, str(error))
            return False
        if state is GuestState.CRASHED and _intent(a) == Instance.POWER_INTENT_STOPPED:
            state = GuestState.SHUTOFF  # a crashed guest is as good as shut off
        self._converged[uid] = a.generation
        reported = await self._report(
            uid, a, STATE_OF[state], STATE_MESSAGE.get(state, ""), force=force
        )
        movable = state in ACTIVE or is_cold(a)
        if source and movable and (done := self._state.get(uid)) is not None:
            await self.migrations.send(uid, a, done, self._stop_timeout_of(a))
            if done.left:
                self._observe(uid, GuestState.ABSENT)
                return True
        # A guest left crashed or missing is retried like a failure.
        return reported and state not in (GuestState.CRASHED, GuestState.ABSENT)

    async def _left(self, uid: str, a: Assignment) -> bool:
        """Whether the guest has left this host by the assignment's migration (reported
        again): then nothing else may happen to it here, above all no respawn. A guest the
        API sent away that is gone from here (this agent died while it went) has left."""
        done = self._state.get(uid)
        if done is None:
            return False
        gone = (
            done.migrated < a.migration.serial
            and bool(a.migration.target)
            and not a.migration.abort
            and await self._run(self.driver.state, uid) is GuestState.ABSENT
        )
        if gone:
            log.warning("%s is gone from this host during its migration: it left", uid)
            done.migrated, done.left = int(a.migration.serial), True
            self._state.put(uid, done)
        if done.left and done.migrated >= a.migration.serial:
            self._observe(uid, GuestState.ABSENT)
            await self.migrations.send(uid, a, done, self._stop_timeout_of(a))
            return True
        return False

    def console_base(self, uid: str) -> int | None:
        """Where this host's console file of the guest starts in its console stream: 0,
        -1 when the console pump must ask the API (it arrived by migration), None while it
        is only arriving (nothing to pump yet)."""
        a = self.desired.get(uid)
        if a is not None and role_of(a) == Role.ROLE_DESTINATION:
            return None
        done = self._state.get(uid)
        return done.console_base if done is not None else 0

    def set_console_base(self, uid: str, base: int) -> None:
        """Records where the guest's console file starts in its stream."""
        done = self._state.get(uid)
        if done is not None and done.console_base != base:
            done.console_base = base
            self._state.put(uid, done)

    async def _act(self, uid: str, a: Assignment) -> GuestState:
        """Brings one guest to its assignment; returns the state it ends in."""
        run = self._run
        driver = self.driver
        state = self._observe(uid, await run(driver.state, uid))
        done = self._state.get(uid)
        exists = state is not GuestState.ABSENT
        # before `plug` removes the taps of the NICs no longer assigned
        await self._sync_nics(uid, a, state, detach_only=True)
        wants_taps = _intent(a) != Instance.POWER_INTENT_STOPPED and (a.nics or exists)
        if self._nics is not None and wants_taps:
            await self._run(self._nics.plug, uid, list(a.nics))
        if state is GuestState.ABSENT:
            await self._transition(uid, a, Instance.STATE_PROVISIONING, "", Done())
            spec = await self._spec(a)
            log.info("spawning %s (%s)", uid, a.instance)
            await run(driver.spawn, spec)
            # a new guest is freshly built
            done = Done.of(a)
            self._state.put(uid, done)
            state = self._observe(uid, await run(driver.state, uid))
        elif done is None:
            # no record: adopt the guest as is
            done = Done.of(a)
            self._state.put(uid, done)
        elif done.incoming:
            done.incoming = 0  # it arrived by migration: an ordinary guest from now on
            self._state.put(uid, done)

        if a.rebuild_serial > done.rebuild_serial:
            await self._transition(uid, a, Instance.STATE_PROVISIONING, "rebuilding", done)
            spec = await self._spec(a)
            log.info("rebuilding %s (serial %d)", uid, a.rebuild_serial)
            await run(driver.rebuild, uid, spec)
            done.rebuild_serial = a.rebuild_serial
            self._state.put(uid, done)
            state = self._observe(uid, await run(driver.state, uid))

        if a.resize_serial > done.resize_serial:
            await self._transition(uid, a, Instance.STATE_PROVISIONING, "resizing", done)
            if state in ACTIVE:
                log.info("stopping %s to resize it", uid)
                await run(driver.stop, uid, self._stop_timeout_of(a))
            spec = await self._spec(a)
            log.info("resizing %s (serial %d)", uid, a.resize_serial)
            await run(driver.resize, uid, spec)
            done.resize_serial = a.resize_serial
            self._state.put(uid, done)
            state = self._observe(uid, await run(driver.state, uid))

        if a.snapshot_serial > done.snapshot_serial:
            await self._snapshot(uid, a, done)

        if a.reboot_serial > done.reboot_serial:
            if state is GuestState.RUNNING and _intent(a) == Instance.POWER_INTENT_RUNNING:
                await self._transition(uid, a, Instance.STATE_REBOOTING, "", done)
                log.info("rebooting %s (serial %d, hard=%s)", uid, a.reboot_serial, a.reboot_hard)
                await run(driver.reboot, uid, a.reboot_hard, self._stop_timeout_of(a))
                state = self._observe(uid, await run(driver.state, uid))
            done.reboot_serial = a.reboot_serial
            self._state.put(uid, done)

        state = await self._power(uid, a, state)
        if state not in ACTIVE and self._nics is not None:
            await self._run(self._nics.unplug, uid)
        await self._sync_nics(uid, a, state)
        if state is GuestState.RUNNING and self._volumes is not None:
            await self._sync_volumes(uid, a, self._volumes)
        return state

    async def _sync_nics(
        self, uid: str, a: Assignment, state: GuestState, detach_only: bool = False
    ) -> None:
        """Removes the guest's NICs no longer assigned and (unless `detach_only`) adds the
        assigned ones it lacks (AttachNetworkInterface, DetachNetworkInterface): in a
        running guest and its definition, or the definition of a shut-off one (`state`:
        the guest's, as just observed). Guests in other states, or absent, are left for a
        later pass. A NIC that cannot be changed is logged and tried again at the next
        pass; it does not put the instance in ERROR."""
        if state not in _NICS_CHANGE_IN:
            return
        desired = {n.mac_address: n for n in a.nics}

        async def attach(mac: str) -> None:
            nic = GuestNic(tap=desired[mac].tap, mac_address=mac)
            await self._run(self.driver.attach_nic, uid, nic)

        await self._sync_devices(
            uid,
            "NIC",
            desired,
            self.driver.attached_nics,
            self.driver.detach_nic,
            None if detach_only else attach,
        )

    async def _sync_volumes(self, uid: str, a: Assignment, sources: VolumeSources) -> None:
        """Hot-plugs the assigned volumes the running guest lacks, unplugs the others, and
        tells the guest of grown ones. A volume that cannot be attached is logged and tried
        again at the next pass; it does not put the instance in ERROR."""
        desired = {v.serial: v for v in a.volumes}

        async def attach(serial: str) -> None:
            disk = await self._run(sources.disk, desired[serial])
            await self._run(self.driver.attach_volume, uid, disk)

        if not await self._sync_devices(
            uid, "volume", desired, self.driver.attached_volumes, self.driver.detach_volume, attach
        ):
            return
        sizes = {serial: volume.size_bytes for serial, volume in desired.items()}
        if a.HasField("root_volume"):  # a root disk in Ceph grows with a resize
            sizes.setdefault(a.root_volume.serial, a.root_volume.size_bytes)
        try:
            for serial, size_bytes in sorted(sizes.items()):
                if size_bytes:  # the guest learns of an ExtendVolume
                    await self._run(self.driver.resize_volume, uid, serial, size_bytes)
        except (DriverError, ValueError) as error:
            log.warning("instance %s: volumes: %s", uid, error)

    async def _sync_devices(
        self,
        uid: str,
        kind: str,
        desired: Collection[str],
        attached: Callable[[str], set[str]],
        detach: Callable[[str, str], None],
        attach: Callable[[str], Awaitable[None]] | None,
    ) -> bool:
        """Detaches from the guest the devices of `kind` it has (`attached`, by key) that
        are not `desired`, then attaches the desired ones it lacks (`attach`, by key; None:
        none now).
        Failures are logged (not those of listing, for a driver without such devices,
        while none are desired); returns whether all went through."""
        try:
            current = await self._run(attached, uid)
        except DriverError as error:
            if desired:
                log.warning("instance %s: %ss: %s", uid, kind, error)
            return False
        try:
            for key in sorted(current - set(desired)):
                log.info("detaching %s %s from %s", kind, key, uid)
                await self._run(detach, uid, key)
            if attach is not None:
                for key in sorted(set(desired) - current):
                    log.info("attaching %s %s to %s", kind, key, uid)
                    await attach(key)
        except (DriverError, ValueError) as error:
            log.warning("instance %s: %ss: %s", uid, kind, error)
            return False
        return True

    async def _snapshot(self, uid: str, a: Assignment, done: Done) -> None:
        """Writes the root disk to `a.snapshot_image` once per serial. A failure is logged
        and the serial still counted as done: the API then marks the image ERROR (a failed
        snapshot must not make the instance ERROR or be retried forever)."""
        log.info("snapshotting %s to %s (serial %d)", uid, a.snapshot_image, a.snapshot_serial)
        path = None
        try:
            # (the cache may have no directory yet: a guest on a root volume fetches no image)
            path = self._images.scratch(f".snapshot-{uid}-{a.snapshot_serial}.qcow2")
            await self._run(self.driver.snapshot, uid, path)
            await self._images.upload(a.snapshot_image, path)
        except Exception as error:
            log.warning("snapshot of %s failed: %s", uid, error)
        finally:
            if path is not None:
                path.unlink(missing_ok=True)
        done.snapshot_serial = a.snapshot_serial
        self._state.put(uid, done)

    def _stop_timeout_of(self, a: Assignment) -> float:
        """The assignment's clean-shutdown time (StopInstance's `timeout_seconds`), else ours."""
        return float(a.stop_timeout_seconds) if a.stop_timeout_seconds > 0 else self._stop_timeout

    async def _power(self, uid: str, a: Assignment, state: GuestState) -> GuestState:
        run = self._run
        driver = self.driver
        intent = _intent(a)
        acted = True
        if intent == Instance.POWER_INTENT_RUNNING and state in (
            GuestState.SHUTOFF,
            GuestState.CRASHED,
        ):
            log.info("starting %s", uid)
            await run(driver.start, uid)
        elif intent == Instance.POWER_INTENT_RUNNING and state is GuestState.PAUSED:
            log.info("resuming %s", uid)
            await run(driver.resume, uid)
        elif intent == Instance.POWER_INTENT_STOPPED and state in ACTIVE:
            log.info("stopping %s", uid)
            await run(driver.stop, uid, self._stop_timeout_of(a))
        elif intent == Instance.POWER_INTENT_SUSPENDED and state is not GuestState.PAUSED:
            if state is not GuestState.RUNNING:
                log.info("starting %s to suspend it", uid)
                await run(driver.start, uid)
            log.info("suspending %s", uid)
            await run(driver.suspend, uid)
        else:
            acted = False
        if acted:
            state = self._observe(uid, await run(driver.state, uid))
        return state

    async def _spec(self, a: Assignment) -> GuestSpec:
        """The guest an assignment asks for; its image is fetched into the cache unless
        it boots from a root volume (which holds what the image would)."""
        root = await self._root_volume(a)
        path = None
        if root is None:
            path = await self._images.ensure(a.image, a.image_sha256, a.image_format)
        hostname = a.hostname or a.instance.rsplit("/", 1)[-1] or a.instance_uid
        return GuestSpec(
            uid=a.instance_uid,
            name=a.instance or a.instance_uid,
            hostname=hostname,
            vcpus=int(a.vcpus),
            memory_mib=int(a.memory_mib),
            disk_gib=int(a.disk_gib),
            image_path=path,
            image_format=format_name(a.image_format),
            ssh_authorized_keys=tuple(a.ssh_authorized_keys),
            user_data=bytes(a.user_data),
            nics=tuple(GuestNic(tap=n.tap, mac_address=n.mac_address) for n in a.nics),
            root_volume=root,
        )

    async def _root_volume(self, a: Assignment) -> VolumeDisk | None:
        """The volume the guest boots from, opened as this host opens volumes (None: boot
        from the image). Raises StorageUnavailable (this host opens no volumes), VolumeNotFound,
        ValueError."""
        if not a.HasField("root_volume"):
            return None
        if self._volumes is None:
            raise StorageUnavailable(reason="this agent opens no volumes")
        return await self._run(self._volumes.disk, a.root_volume)

    async def _remove(self, uid: str, a: Assignment | None) -> bool:
        if a is None and not self.synced:
            return True  # not known to be unwanted before a full resync
        done = self._state.get(uid)
        if a is None and done is not None and done.incoming:
            if not await self.migrations.cleanup(uid):
                return False
            if self._nics is not None:
                await self._run(self._nics.unplug, uid)
            self.observed.pop(uid, None)
            self._state.drop(uid)
            return True
        try:
            state = await self._run(self.driver.state, uid)
            if state is not GuestState.ABSENT:
                why = "deleted" if a is not None else "not assigned to this host"
                log.info("destroying %s (%s)", uid, why)
                await self._run(self.driver.destroy, uid)
            if self._nics is not None:
                await self._run(self._nics.unplug, uid)
        except DriverError as error:
            log.warning("cannot destroy %s: %s", uid, error)
            if a is not None:
                await self._report(uid, a, Instance.STATE_ERROR, str(error))
            return False
        self.observed.pop(uid, None)
        self._state.drop(uid)
        if a is None and state is GuestState.ABSENT:
            self._last_report.pop(uid, None)
            return True  # a stale record only: nothing to tell
        reported = await self._report(
            uid, a, Instance.STATE_DELETING, "", removed=True, force=True, done=Done()
        )
        if reported:
            self._last_report.pop(uid, None)
            self._converged.pop(uid, None)
            if a is not None and self.desired.get(uid) is a:
                del self.desired[uid]  # gone and said so; a full resync may list it again
        return reported

    async def _transition(
        self, uid: str, a: Assignment, state: Instance.State, message: str, done: Done
    ) -> None:
        """Reports a state the guest passes through, as of the generation converged so far
        (not after an ERROR: a retry does not flap the instance through PROVISIONING)."""
        last = self._last_report.get(uid)
        if last is not None and last[1] == Instance.STATE_ERROR:
            return
        await self._report(
            uid, a, state, message, done=done, generation=self._converged.get(uid, 0)
        )

    def _observe(self, uid: str, state: GuestState) -> GuestState:
        if state is GuestState.ABSENT:
            self.observed.pop(uid, None)
        else:
            self.observed[uid] = state
        return state

    async def _report(
        self,
        uid: str,
        a: Assignment | None,
        state: Instance.State,
        message: str,
        *,
        removed: bool = False,
        force: bool = False,
        done: Done | None = None,
        generation: int | None = None,
    ) -> bool:
        """Sends a status report unless it equals the last one sent (or `force`);
        returns whether the API has it."""
        if done is None:
            done = self._state.get(uid) or Done()
        request = agent_service_pb2.ReportInstanceStatusRequest(
            instance_uid=uid,
            host=self.host,
            observed_generation=(
                generation if generation is not None else a.generation if a is not None else 0
            ),
            state=state,
            message=message,
            observed_reboot_serial=done.reboot_serial,
            observed_rebuild_serial=done.rebuild_serial,
            observed_snapshot_serial=done.snapshot_serial,
            observed_resize_serial=done.resize_serial,
            removed=removed,
        )
        key = (request.observed_generation, state, message, astuple(done), removed)
        if not force and self._last_report.get(uid) == key:
            return True
        try:
            await self._report_call(request)
        except Exception as error:
            log.warning("cannot report the status of %s: %s", uid, error)
            self._last_report.pop(uid, None)
            return False
        self._last_report[uid] = key
        return True


def _intent(a: Assignment) -> int:
    intent = int(a.power_intent)
    return intent or Instance.POWER_INTENT_RUNNING
