"""`kumo-agent`: the host agent, one per hypervisor host.

It registers its host (RegisterHost, with the capacity the compute driver
reports), heartbeats, keeps one WatchAssignments stream open (reconnecting
with backoff; every connection starts with a full resync), converges the
driver's guests to the assignments (kumo.agent.reconciler) and pumps their
serial consoles (kumo.agent.console). SIGTERM and SIGINT stop it cleanly.
Guests are never stopped because the agent stops: they keep running and a
restarted agent adopts them.

`run_agent(config)` runs the same thing inside another asyncio program
(`kumo up`): it returns a started `Agent`; `await agent.stop()` ends it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import timestamp_pb2

from kumo.agent.client import ApiClient
from kumo.agent.config import AgentConfig, load_agent_config
from kumo.agent.console import ConsolePump
from kumo.agent.images import ImageCache
from kumo.agent.nics import HostNics
from kumo.agent.reconciler import DriverRunner, Reconciler
from kumo.agent.v1 import agent_service_pb2
from kumo.agent.volumes import VolumeSources
from kumo.drivers.compute.base import ComputeDriver, GuestState
from kumo.drivers.errors import DriverError
from kumo.topology.v1 import resources_pb2 as topology_pb2

log = logging.getLogger("kumo.agent")


def load_driver(config: AgentConfig) -> ComputeDriver:
    """The compute driver named in the configuration, with its options."""
    from kumo.drivers.compute.loader import load_compute_driver

    return load_compute_driver(config.driver.name, **config.driver.options)


class Agent:
    """One host agent: registration, heartbeats, the watch stream, the reconciler and the
    console pump, as asyncio tasks of the running loop.

    `driver` overrides the configured driver (tests share one fake between agents); a
    driver passed in is not closed by `stop()`.
    """

    def __init__(
        self,
        config: AgentConfig,
        *,
        driver: ComputeDriver | None = None,
        channel_options: list[tuple[str, Any]] | None = None,
    ) -> None:
        self.config = config
        self._owns_driver = driver is None
        self.driver = driver if driver is not None else load_driver(config)
        self.client = ApiClient(config, options=channel_options or [])
        self.runner = DriverRunner(self.driver, workers=config.concurrency + 4)
        self.images = ImageCache(
            config.image_dir, self.client, stall_timeout=2 * config.call_timeout_seconds
        )
        # Without an OVS database, NICs go to the driver unplugged (the fake driver's case).
        self.nics = HostNics(config.network) if config.network.ovs_db_remote else None
        self.reconciler = Reconciler(
            host=config.host_name,
            driver=self.driver,
            runner=self.runner,
            images=self.images,
            state_file=config.state_file,
            report=self._report,
            report_migration=self._report_migration,
            concurrency=config.concurrency,
            resync_interval=config.resync_interval_seconds,
            report_interval=config.status_report_interval_seconds,
            stop_timeout=config.stop_timeout_seconds,
            retry_initial=config.retry_initial_seconds,
            volumes=VolumeSources(config.volumes),
            nics=self.nics,
        )
        self.console = ConsolePump(
            client=self.client,
            runner=self.runner,
            observed=lambda: self.reconciler.observed,
            base=self.reconciler.console_base,
            set_base=self.reconciler.set_console_base,
            interval=config.console_poll_interval_seconds,
        )
        self.host: Any = None
        """The Host the API returned at the last registration."""
        self.registered = asyncio.Event()
        self.watch_connections = 0
        """How many times the watch stream was opened (each brings a full resync)."""
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = False

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Starts the agent's tasks and returns at once; registration (retried until the
        API and the hypervisor answer) happens in the background: `registered` is set
        when it is done."""
        if self._tasks:
            raise RuntimeError("the agent is already started")
        self._tasks = [asyncio.create_task(self._supervise(), name="kumo-agent")]

    async def stop(self) -> None:
        """Stops every task, lets driver calls in flight finish (up to the configured
        grace), and closes the channel. Guests are left as they are. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.reconciler.stop(self.config.shutdown_grace_seconds)
        await self.images.close()
        await self.client.close()
        self.runner.close()
        if self.nics is not None:
            self.nics.close()
        if self._owns_driver:
            with contextlib.suppress(Exception):
                self.driver.close()

    async def _supervise(self) -> None:
        await self.register()
        loops = {
            "heartbeat": self._heartbeat_loop,
            "watch": self._watch_loop,
            "reconciler": self.reconciler.run,
            "console": self.console.run,
        }
        tasks = [
            asyncio.create_task(self._keep_running(name, loop), name=f"kumo-agent-{name}")
            for name, loop in loops.items()
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _keep_running(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        """Runs `loop` again (after backoff) if it ever fails: a bug in one part must not
        take the agent down."""
        backoff = self.client.backoff()
        while True:
            try:
                await loop()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the agent's %s loop failed; restarting it", name)
            await asyncio.sleep(backoff.next_delay())

    # -- registration and heartbeats ---------------------------------------------------

    async def register(self) -> None:
        """Registers the host, retrying with backoff until the hypervisor and the API
        both answer."""
        backoff = self.client.backoff()
        config = self.config
        while True:
            try:
                await self.runner(self.driver.validate)
                info = await self.runner(self.driver.host_info)
                request = agent_service_pb2.RegisterHostRequest(
                    host=topology_pb2.Host(
                        name=config.host_name,
                        rack=config.rack_name,
                        address=config.host_address,
                        capacity=topology_pb2.HostCapacity(
                            vcpus=info.vcpus, memory_mib=info.memory_mib, disk_gib=info.disk_gib
                        ),
                    ),
                    hypervisor_description=info.description,
                )
                self.host = await self.client.call(
                    self.client.agent.RegisterHost, request, attempts=1
                )
            except DriverError as error:
                log.warning("the hypervisor is not ready: %s", error)
            except grpc.aio.AioRpcError as error:
                log.warning(
                    "cannot register %s: %s: %s",
                    config.host_name,
                    error.code().name,
                    error.details(),
                )
            except Exception:
                log.exception("cannot register %s", config.host_name)
            else:
                log.info("registered %s (%s)", config.host_name, info.description)
                self.registered.set()
                return
            await asyncio.sleep(backoff.next_delay())

    async def _heartbeat_loop(self) -> None:
        interval = self.config.heartbeat_interval_seconds
        warned = False
        while True:
            send_time = timestamp_pb2.Timestamp()
            send_time.GetCurrentTime()
            running = sum(
                1 for state in self.reconciler.observed.values() if state is GuestState.RUNNING
            )
            request = agent_service_pb2.HeartbeatRequest(
                host=self.config.host_name, send_time=send_time, running_instances=running
            )
            try:
                reply = await self.client.call(
                    self.client.agent.Heartbeat, request, attempts=1, timeout=interval
                )
            except grpc.aio.AioRpcError as error:
                log.warning("heartbeat failed: %s: %s", error.code().name, error.details())
                if error.code() == grpc.StatusCode.NOT_FOUND:
                    await self.register()  # the API lost the host: register it again
            else:
                if reply.timeout_seconds and interval * 2 > reply.timeout_seconds and not warned:
                    warned = True
                    log.warning(
                        "heartbeat interval %.0f s is too long for the API's %d s timeout",
                        interval,
                        reply.timeout_seconds,
                    )
            await asyncio.sleep(interval)

    # -- the watch stream --------------------------------------------------------------

    async def _watch_loop(self) -> None:
        backoff = self.client.backoff()
        idle = self.config.watch_idle_timeout_seconds or None
        request = agent_service_pb2.WatchAssignmentsRequest(host=self.config.host_name)
        while True:
            call = None
            try:
                metadata = await self.client.metadata()
                call = self.client.agent.WatchAssignments(request, metadata=metadata)
                self.watch_connections += 1
                self.reconciler.connected()
                first = True
                while True:
                    message = await asyncio.wait_for(call.read(), idle)
                    if message is grpc.aio.EOF:
                        log.info("the watch stream ended; reconnecting")
                        break
                    if first and not message.full_resync:
                        log.warning("the watch stream did not start with a full resync")
                    first = False
                    backoff.reset()
                    self.reconciler.apply(message)
            except TimeoutError:
                log.warning("no assignments message for %.0f s; reconnecting", idle or 0)
            except grpc.aio.AioRpcError as error:
                if error.code() == grpc.StatusCode.UNAUTHENTICATED:
                    self.client.invalidate_token()
                log.warning("watch stream: %s: %s", error.code().name, error.details())
            finally:
                if call is not None:
                    call.cancel()
            await asyncio.sleep(backoff.next_delay())

    async def _report(self, request: Any) -> None:
        await self.client.call(self.client.agent.ReportInstanceStatus, request, attempts=3)

    async def _report_migration(self, request: Any) -> None:
        await self.client.call(self.client.agent.ReportMigrationStatus, request, attempts=3)


async def run_agent(config: AgentConfig, *, driver: ComputeDriver | None = None) -> Agent:
    """Creates and starts an agent in the running event loop (as `kumo up` does); stop it
    with `await agent.stop()`."""
    agent = Agent(config, driver=driver)
    await agent.start()
    return agent


async def serve(config: AgentConfig) -> int:
    """Runs one agent until SIGINT or SIGTERM; returns the exit status."""
    try:
        agent = Agent(config)
    except (LookupError, TypeError, ValueError, ImportError) as error:
        log.error("cannot load compute driver %r: %s", config.driver.name, error)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await agent.start()
    log.info(
        "kumo-agent for %s started (API %s, driver %s, state in %s)",
        config.host_name,
        config.api_endpoint,
        config.driver.name,
        config.state_dir,
    )
    await stop.wait()
    log.info("stopping (guests keep running)")
    await agent.stop()
    log.info("stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `kumo-agent` console script."""
    parser = argparse.ArgumentParser(prog="kumo-agent", description="Kumo host agent")
    parser.add_argument("--config", help="TOML configuration file (default: $KUMO_AGENT_CONFIG)")
    parser.add_argument("--api", help="the API's gRPC endpoint, host:port")
    parser.add_argument("--host", help="this host's id (default: the machine's host name)")
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    overrides: dict[str, Any] = {}
    if args.api:
        overrides["api_endpoint"] = args.api
    if args.host:
        overrides["host"] = args.host
    try:
        config = load_agent_config(args.config, **overrides)
    except (OSError, ValueError) as error:
        print(f"kumo-agent: bad configuration: {error}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(serve(config))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
