"""The transaction runner every service uses.

`await db.run(fn)` calls `fn(session)` inside one transaction and commits it,
or rolls it back if `fn` raises. `await db.read(fn)` calls `fn(connection)`
for a read with SQLAlchemy Core and no ORM session (a quarter of the cost of
an ORM `Session.get` on the hot Get paths); on PostgreSQL outside any transaction
(autocommit: BEGIN and ROLLBACK would be two more round trips, and at READ COMMITTED
each statement sees its own snapshot either way). On SQLite (one writer, microsecond queries)
`fn` runs inline on the event loop, which serialises every transaction of the
process without lock waits; on a client-server database it runs on a bounded
thread pool so that the loop never blocks on the network. In background work (see
kumo.server.priority) both run in their turn.

Transactions take row locks in the order their code meets the rows (a volume's row, then its
project's quota rows; an instance's quota rows, then the volumes it boots with), so two of
them can wait for each other on PostgreSQL. PostgreSQL then aborts one (after its
`deadlock_timeout`, 1 s); `transaction` runs that one again from the start, as OpenStack's
oslo.db does: `fn` must keep no effect outside its session that a second run would repeat.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from kumo.server.priority import background_turn

T = TypeVar("T")
log = logging.getLogger(__name__)

#: PostgreSQL's SQLSTATEs for a transaction aborted only because of another one running beside
#: it (deadlock_detected, serialization_failure): the same transaction run again can succeed.
CONFLICTS = frozenset({"40P01", "40001"})
#: How many times `Database.transaction` runs again a transaction aborted for a conflict.
CONFLICT_RETRIES = 3


def is_conflict(error: BaseException) -> bool:
    """Whether `error` is the database aborting a transaction for a conflict (CONFLICTS), or
    the ORM finding a versioned row changed by another transaction since it was read
    (StaleDataError; see db.base.Base)."""
    if isinstance(error, StaleDataError):
        return True
    return isinstance(error, DBAPIError) and getattr(error.orig, "sqlstate", None) in CONFLICTS


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling opens no transaction before a SAVEPOINT, so a
    # savepoint first in a transaction became the outermost one and its RELEASE committed:
    # let SQLAlchemy emit BEGIN itself (its documented recipe) so savepoints nest.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN")


def make_engine(url: str, pool_size: int = 8) -> Engine:
    """Creates an engine; for SQLite, creates the file's folder and sets its pragmas.
    JSON columns are read with orjson (the same values as json.loads for what json.dumps
    wrote, several times faster: labels and lists on every row of every listing)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False}, json_deserializer=orjson.loads
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    # No pre-ping (a round trip per checkout): a connection found dead fails its call as
    # UNAVAILABLE (see the error interceptor) and the pool discards it.
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_recycle=600,
        json_deserializer=orjson.loads,
    )


def core(session: Session) -> Connection:
    """The session's connection, to run a Core statement in the session's transaction
    without the ORM's work per statement (about 0.1 ms of CPU less); the session's pending
    changes are written first, so statements still reach the database in program order.
    Use it for statements that change no row the session holds as an object, or that
    is never read again from that object."""
    session.flush()
    return session.connection()


class Database:
    """An engine plus the policy of where transactions run."""

    def __init__(self, url: str, pool_size: int = 8) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._pool = None if self.is_sqlite else ThreadPoolExecutor(pool_size, "kumo-db")

    def transaction(self, fn: Callable[[Session], T]) -> T:
        """Runs `fn(session)` in one transaction, synchronously; commits unless it raises.
        A transaction aborted for a conflict (`is_conflict`: a deadlock, or a row another
        transaction changed since this one read it) runs again, up to CONFLICT_RETRIES
        times; then, or on any other error, the error is raised (nothing of the aborted
        runs is kept)."""
        attempt = 0
        while True:
            try:
                with self._sessions() as session, session.begin():
                    return fn(session)
            except (DBAPIError, StaleDataError) as error:
                if attempt == CONFLICT_RETRIES or not is_conflict(error):
                    raise
                attempt += 1
                log.info("transaction aborted for a conflict, running it again: %s", error)

    def _read(self, fn: Callable[[Connection], T]) -> T:
        with self.engine.connect() as connection:
            if not self.is_sqlite:  # (SQLite's BEGIN is set up by _sqlite_begin: kept)
                connection.execution_options(isolation_level="AUTOCOMMIT")
            return fn(connection)

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """Runs `fn(connection)` (reads only; nothing is committed)."""
        async with background_turn():
            if self._pool is None:
                return self._read(fn)
            return await asyncio.get_running_loop().run_in_executor(
                self._pool, contextvars.copy_context().run, self._read, fn
            )

    async def run(self, fn: Callable[[Session], T]) -> T:
        """Runs `fn(session)` in one transaction without blocking the loop on the network.
        In a worker thread, `fn` sees the caller's context variables (the call's principal
        and request id), as it does on the loop."""
        async with background_turn():
            if self._pool is None:
                return self.transaction(fn)
            return await asyncio.get_running_loop().run_in_executor(
                self._pool, contextvars.copy_context().run, self.transaction, fn
            )

    def close(self) -> None:
        """Waits for running transactions, then closes every connection. Idempotent."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self.engine.dispose()
