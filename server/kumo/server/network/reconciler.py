"""The network reconciler: keeps the network backend (OVN northbound) equal to Kumo's
database, in both directions.

Level-based: each pass reads the whole desired state and the backend's inventory,
then (in dependency order) makes every object that is missing or whose row changed
since it was last synced (`version` != `synced_version`), and deletes every Kumo
object in the backend that the database no longer has, logging each stray. So after
any crash of Kumo or OVN, or an edit behind Kumo's back, the next pass converges.
Objects that depend on a remade one (ports of a remade network or security group)
are remade with it. Outcomes go back to the rows: `state` ACTIVE or ERROR (with
`state_message`), ports' `status` from the backend's up flag.

A pass runs every `interval` seconds and at once when `wake()` is called (the
network service calls it after each change). With several API replicas, only the
holder of the `network-reconciler` leader lease runs passes (another replica
takes over when it expires, 3 intervals after the holder's last pass).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from sqlalchemy import update
from sqlalchemy.orm import Session

from kumo.drivers.errors import DriverError, NetworkBackendUnavailable
from kumo.drivers.network.base import Inventory, Kind, NetworkDriver, PortSpec
from kumo.network.v1 import resources_pb2 as pb
from kumo.server.controllers.leader import LeaderLease
from kumo.server.db.engine import Database
from kumo.server.db.models import FloatingIpRow, PortRow
from kumo.server.network.desired import (
    ORDER,
    Desired,
    DesiredState,
    read_desired,
    unassociated_floating_ips,
)

log = logging.getLogger(__name__)
# After a wake-up, how long to wait for further changes before a pass.
DEBOUNCE_SECONDS = 0.2


@dataclass
class PassResult:
    """What one pass did."""

    made: dict[Kind, int] = field(default_factory=lambda: {k: 0 for k in Kind})
    removed: dict[Kind, int] = field(default_factory=lambda: {k: 0 for k in Kind})
    errors: int = 0


@dataclass
class _Outcome:
    desired: Desired
    version: int
    error: str = ""


class NetworkReconciler:
    """Converges a NetworkDriver to the database."""

    def __init__(self, db: Database, driver: NetworkDriver, interval: float = 10.0) -> None:
        self.db = db
        self.driver = driver
        self.interval = interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        # Uids this process has seen in the database: their removal from the backend is
        # a deletion, not a stray (which is logged as a warning).
        self._known: set[str] = set()
        self.lease = LeaderLease(db, "network-reconciler", 3 * interval)

    def wake(self) -> None:
        """Asks for a pass as soon as possible."""
        self._wake.set()

    def start(self) -> None:
        """Starts the loop in the running event loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="network")

    async def stop(self) -> None:
        """Stops the loop (waits for a running pass) and closes the driver. Idempotent."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
            with contextlib.suppress(Exception):  # the database may be gone already
                await self.lease.release()
        await asyncio.to_thread(self.driver.close)

    async def _loop(self) -> None:
        while True:
            try:
                if await self.lease.hold():
                    await self.run_pass()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("network reconciliation pass failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
                await asyncio.sleep(DEBOUNCE_SECONDS)  # let a burst of changes gather
            self._wake.clear()

    async def run_pass(self) -> PassResult:
        """One full pass; returns what it did. Raises what the driver raises for the
        backend as a whole (e.g. NetworkBackendUnavailable)."""
        async with self._lock:
            self._wake.clear()
            desired = await self.db.run(read_desired)
            result, outcomes, up = await asyncio.to_thread(self._converge, desired)
            # (on the loop: SQLite transactions all run there, one at a time)
            await self.db.run(lambda s: self._record(s, outcomes, desired, up))
            return result

    def _converge(
        self, desired: DesiredState
    ) -> tuple[PassResult, list[_Outcome], dict[str, bool]]:
        result = PassResult()
        self.driver.start()  # (re)makes the driver's own objects, e.g. after OVN lost its data
        inventory = self.driver.inventory()
        outcomes: list[_Outcome] = []
        remade_networks: set[str] = set()
        remade_groups: set[str] = set()
        remade_subnets_networks: set[str] = set()
        for kind in ORDER:
            for uid, item in desired.objects[kind].items():
                if item.spec is None:
                    outcomes.append(_Outcome(item, item.version, item.problem))
                    continue
                if not self._needs(
                    kind,
                    uid,
                    item,
                    inventory,
                    remade_networks,
                    remade_groups,
                    remade_subnets_networks,
                ):
                    if item.synced_version != item.version:
                        outcomes.append(_Outcome(item, item.version))
                    continue
                try:
                    self._ensure(kind, item.spec)
                except NetworkBackendUnavailable:
                    raise  # the whole pass waits for the backend; rows keep their state
                except DriverError as exc:
                    log.warning("network: could not make %s %s: %s", kind.value, uid, exc)
                    result.errors += 1
                    outcomes.append(_Outcome(item, item.version, str(exc)[:255]))
                    continue
                result.made[kind] += 1
                outcomes.append(_Outcome(item, item.version))
                if kind is Kind.NETWORK:
                    remade_networks.add(uid)
                elif kind is Kind.SECURITY_GROUP:
                    remade_groups.add(uid)
                elif kind is Kind.SUBNET:
                    remade_subnets_networks.add(item.spec.network_uid)
        for kind in reversed(ORDER):
            for uid in sorted(inventory.uids[kind] - set(desired.objects[kind])):
                if uid in self._known:
                    log.info("network: deleting %s %s from the backend", kind.value, uid)
                else:
                    log.warning("network: removing stray %s %s from the backend", kind.value, uid)
                try:
                    self.driver.delete(kind, uid)
                    result.removed[kind] += 1
                except DriverError as exc:
                    log.warning("network: could not remove %s %s: %s", kind.value, uid, exc)
                    result.errors += 1
        self._known = {uid for objects in desired.objects.values() for uid in objects}
        up = {uid: self.driver.port_up(uid) for uid in desired.objects[Kind.PORT]}
        return result, outcomes, up

    @staticmethod
    def _needs(
        kind: Kind,
        uid: str,
        item: Desired,
        inventory: Inventory,
        remade_networks: set[str],
        remade_groups: set[str],
        remade_subnets_networks: set[str],
    ) -> bool:
        if item.version != item.synced_version:
            return True
        if uid not in inventory.uids[kind]:
            # (subnets without DHCP and unassociated floating IPs are absent by design;
            # remaking them is cheap and idempotent)
            return kind is not Kind.SUBNET or item.synced_version == 0 or _has_dhcp(item)
        if kind is Kind.PORT:
            spec: PortSpec = item.spec
            return (
                spec.network_uid in remade_networks
                or spec.network_uid in remade_subnets_networks
                or bool(set(spec.security_group_uids) & remade_groups)
            )
        return False

    def _ensure(self, kind: Kind, spec: object) -> None:
        driver = self.driver
        {
            Kind.NETWORK: driver.ensure_network,
            Kind.SUBNET: driver.ensure_subnet,
            Kind.PORT: driver.ensure_port,
            Kind.ROUTER: driver.ensure_router,
            Kind.FLOATING_IP: driver.ensure_floating_ip,
            Kind.SECURITY_GROUP: driver.ensure_security_group,
        }[kind](spec)  # type: ignore[operator]

    @staticmethod
    def _record(
        session: Session, outcomes: list[_Outcome], desired: DesiredState, up: dict[str, bool]
    ) -> None:
        for outcome in outcomes:
            item = outcome.desired
            table = item.row
            keys = [
                getattr(table, c) == v for c, v in zip(_key_columns(table), item.key, strict=True)
            ]
            values: dict[str, object] = {
                "state": pb.SYNC_STATE_ERROR if outcome.error else pb.SYNC_STATE_ACTIVE,
                "state_message": outcome.error,
            }
            if not outcome.error:
                values["synced_version"] = outcome.version
            session.execute(
                update(table).where(*keys, table.version == outcome.version).values(**values)
            )
        for uid in desired.objects[Kind.PORT]:
            status = pb.Port.STATUS_ACTIVE if up.get(uid) else pb.Port.STATUS_DOWN
            session.execute(
                update(PortRow)
                .where(PortRow.uid == uid, PortRow.status != status)
                .values(status=status)
            )
        for key in unassociated_floating_ips(session):
            session.execute(
                update(FloatingIpRow)
                .where(
                    FloatingIpRow.project_id == key[0],
                    FloatingIpRow.id == key[1],
                    FloatingIpRow.synced_version != FloatingIpRow.version,
                )
                .values(
                    state=pb.SYNC_STATE_ACTIVE,
                    state_message="",
                    synced_version=FloatingIpRow.version,
                )
            )


def _has_dhcp(item: Desired) -> bool:
    spec = item.spec
    return bool(spec.dhcp_enabled)


def _key_columns(table: type[object]) -> tuple[str, ...]:
    return tuple(c.name for c in table.__table__.primary_key.columns)  # type: ignore[attr-defined]
