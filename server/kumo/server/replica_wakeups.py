"""Wake-ups between API replicas on one PostgreSQL database, through LISTEN/NOTIFY.

The notifier wakes waiters in its own process; this relay carries each notification to the
other replicas (an agent's stream on one replica woken by a build placed on another, a build
woken by a report that reached another). It keeps two connections of its own, outside the
pool:

- the listener LISTENs on `CHANNEL` in a daemon thread and hands what arrives to the
  notifier's `deliver`, on the event loop;
- the sender sends this replica's notifications from a single worker thread, in batches:
  those made while a send is in flight go together in the next, as one statement.

Best effort, as the in-process wake-up is: every waiter also polls the database, so a
notification lost while a connection is down (each is opened again after a pause) costs
latency, never correctness. A replica's own notifications come back to it too and are
dropped (they are known by the sending connection's backend pid): they were delivered at
once, locally.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import psycopg
from sqlalchemy import Engine

log = logging.getLogger(__name__)

CHANNEL = "kumo_wakeups"
_SEP = "\n"  # between a key and what it is about (neither contains a newline)
_SEND = "SELECT pg_notify(%s, payload) FROM unnest(%s::text[]) AS payload"
_RECONNECT_SECONDS = 1.0
_LISTEN_SLICE_SECONDS = 0.5  # how soon the listener notices `stop`


class Deliverer(Protocol):
    """What the relay hands notifications to (the Notifier)."""

    def deliver(self, key: str, about: str | None = None) -> None: ...


def encode(key: str, about: str | None) -> str:
    """The payload of a notification."""
    return key if about is None else f"{key}{_SEP}{about}"


def decode(payload: str) -> tuple[str, str | None]:
    """The key and detail of a payload (`encode`'s inverse)."""
    key, sep, about = payload.partition(_SEP)
    return key, (about if sep else None)


class PostgresWakeups:
    """The relay of one replica: `start` it on the event loop, `publish` from the loop,
    `stop` it once (off the loop: it joins its threads) before the loop closes."""

    def __init__(self, engine: Engine, notifier: Deliverer) -> None:
        self._engine = engine
        self._notifier = notifier
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = threading.Event()
        self._listener: threading.Thread | None = None
        # Outgoing payloads; the sender thread empties it. `_flush_queued`: a flush is
        # queued that has not started taking from it yet.
        self._outbox: collections.deque[str] = collections.deque()
        self._flush_queued = False
        self._sender = ThreadPoolExecutor(1, "kumo-wakeups-send")
        self._send_connection: psycopg.Connection[Any] | None = None
        self._own_pids: set[int] = set()  # backend pids our sends came from
        # Incoming payloads; the loop empties it. `_drain_queued` as `_flush_queued`.
        self._inbox: collections.deque[str] = collections.deque()
        self._drain_queued = False

    def _connect(self) -> psycopg.Connection[Any]:
        """A new autocommit connection with the engine's connection arguments."""
        args, kwargs = self._engine.dialect.create_connect_args(self._engine.url)
        return psycopg.connect(*args, **kwargs, autocommit=True)

    def start(self) -> None:
        """Starts listening (in the running event loop). Idempotent."""
        if self._listener is None and not self._stopped.is_set():
            self._loop = asyncio.get_running_loop()
            self._listener = threading.Thread(
                target=self._listen, name="kumo-wakeups-listen", daemon=True
            )
            self._listener.start()

    def stop(self) -> None:
        """Stops listening and sending for good (what is not sent yet is dropped) and
        closes both connections. Idempotent."""
        self._stopped.set()
        if self._listener is not None:
            self._listener.join(timeout=2 * _LISTEN_SLICE_SECONDS + 1)
            self._listener = None
        with contextlib.suppress(RuntimeError):  # (already shut down)
            self._sender.submit(self._close_sender)
        self._sender.shutdown(wait=True)

    # ------------------------------------------------------------------ sending

    def publish(self, key: str, about: str | None = None) -> None:
        """Queues a notification for the other replicas (from the event loop)."""
        if self._stopped.is_set():
            return
        self._outbox.append(encode(key, about))
        if not self._flush_queued:
            self._flush_queued = True
            with contextlib.suppress(RuntimeError):  # stopped meanwhile: dropped
                self._sender.submit(self._flush)

    def _flush(self) -> None:
        """Sends everything queued, in one statement (on the sender thread)."""
        self._flush_queued = False  # before taking: a later publish queues another flush
        payloads: dict[str, None] = {}  # in order, once each
        while self._outbox:
            payloads[self._outbox.popleft()] = None
        if not payloads or self._stopped.is_set():
            return
        try:
            if self._send_connection is None or self._send_connection.closed:
                self._send_connection = self._connect()
                self._own_pids.add(self._send_connection.info.backend_pid)
            self._send_connection.execute(_SEND, (CHANNEL, list(payloads)))
        except psycopg.Error as error:
            log.warning("could not send %d wake-up(s) to other replicas: %s", len(payloads), error)
            self._close_sender()

    def _close_sender(self) -> None:
        if self._send_connection is not None:
            self._send_connection.close()
            self._send_connection = None

    # ---------------------------------------------------------------- receiving

    def _listen(self) -> None:
        """The listener thread: LISTEN, hand over, and connect again after a failure."""
        while not self._stopped.is_set():
            try:
                with self._connect() as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    while not self._stopped.is_set():
                        for notice in connection.notifies(timeout=_LISTEN_SLICE_SECONDS):
                            if notice.pid not in self._own_pids:
                                self._receive(notice.payload)
            except Exception as error:  # (the thread must live on: polling is slower)
                if self._stopped.is_set():
                    return
                log.warning("wake-up listener lost its connection (%s); reconnecting", error)
                self._stopped.wait(_RECONNECT_SECONDS)

    def _receive(self, payload: str) -> None:
        """Queues an incoming payload for the loop (on the listener thread)."""
        self._inbox.append(payload)
        if not self._drain_queued and self._loop is not None:
            self._drain_queued = True
            try:
                self._loop.call_soon_threadsafe(self._drain)
            except RuntimeError:  # the loop is closed: the process is stopping
                self._stopped.set()

    def _drain(self) -> None:
        """Delivers what has arrived to the local waiters (on the event loop)."""
        self._drain_queued = False
        while self._inbox:
            self._notifier.deliver(*decode(self._inbox.popleft()))
