"""Opening a catalog database: engine setup, SQLite tuning, migrations, write lock."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.pool import QueuePool, StaticPool

log = logging.getLogger(__name__)


# Kept SQLite connections: each may hold up to ``cache_size`` of pages (below), so a few;
# threads beyond them get a connection of their own, closed after use.
POOL_SIZE = 4
POOL_OVERFLOW = 32


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def make_engine(url: str) -> Engine:
    """Create an engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout."""
    if url.startswith("sqlite"):
        if ":memory:" in url:
            # One connection for every thread: each new connection to ":memory:" is a
            # new, empty database (SQLAlchemy's default pool gives one per thread).
            engine = create_engine(url, connect_args={"check_same_thread": False},
                                   poolclass=StaticPool)
        else:
            # Connections are kept (a pool, not one per read): opening one and setting
            # its pragmas cost ~0.7 ms, more than a warm thumbnail's whole read, and a
            # kept connection keeps its page cache and prepared statements too.
            engine = create_engine(url, connect_args={"check_same_thread": False,
                                                      "timeout": 60},
                                   poolclass=QueuePool, pool_size=POOL_SIZE,
                                   max_overflow=POOL_OVERFLOW, pool_timeout=120)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


# Statements kept prepared by the bulk writer's connection: a multi-row INSERT of
# thousands of rows is megabytes of compiled program, so only a few are kept.
BULK_CACHED_STATEMENTS = 16


def make_bulk_engine(url: str) -> Engine:
    """An engine of one SQLite connection, kept open, for writes whose caller checks
    references itself: foreign keys off for good, since switching that pragma expires
    every prepared statement, and re-preparing a multi-row INSERT of thousands of rows
    cost 20-40 ms a batch; kept open, the connection also keeps its statements and page
    cache from one batch to the next."""
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 60,
                                              "cached_statements": BULK_CACHED_STATEMENTS},
                           poolclass=StaticPool)
    event.listen(engine, "connect", _sqlite_pragmas_unchecked)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    # pysqlite's own transaction handling would emit BEGIN itself; turn it off so the
    # "begin" hook above decides.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA cache_size=-200000")
    cur.execute("PRAGMA temp_store=MEMORY")
    # Checkpoints run on Database's own thread (see _Checkpointer), not inside COMMIT.
    cur.execute("PRAGMA wal_autocheckpoint=0")
    cur.close()


def _sqlite_pragmas_unchecked(dbapi_conn, record) -> None:  # type: ignore[no-untyped-def]
    _sqlite_pragmas(dbapi_conn, record)
    dbapi_conn.execute("PRAGMA foreign_keys=OFF")


def _sqlite_begin(conn: Connection) -> None:
    # Writers take SQLite's write lock at BEGIN: a deferred transaction that later
    # upgrades to a writer can deadlock against another one and fail with "locked".
    writer = conn.get_execution_options().get("ocula_write")
    conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")


def migrate(engine: Engine, revision: str = "head", *, down: bool = False) -> None:
    """Bring the schema to Alembic ``revision`` (the newest by default; idempotent), or
    with ``down`` back down to it."""
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("ocula.core.store") / "migrations"))
    with engine.connect() as conn:
        sqlite = engine.dialect.name == "sqlite"
        if sqlite:
            # A batch migration rebuilds a SQLite table: copy, DROP, rename. With foreign
            # keys on, that DROP deletes every row that refers to the table (cascades),
            # so rebuilding `datasets` emptied the catalog. The pragma only takes
            # effect outside a transaction, hence here and not in the migration, on the
            # driver's connection (SQLAlchemy's would BEGIN first).
            conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                cfg.attributes["connection"] = conn
                (command.downgrade if down else command.upgrade)(cfg, revision)
                if sqlite and (bad := conn.exec_driver_sql(
                        "PRAGMA foreign_key_check").fetchall()):
                    raise RuntimeError(f"migration left broken references: {bad[:5]}")
        finally:
            if sqlite:  # the connection goes back to the pool as every other one is
                conn.connection.driver_connection.execute("PRAGMA foreign_keys=ON")


class _Checkpointer:
    """Copies committed WAL pages into the SQLite database file on its own thread.

    SQLite would run this checkpoint inside the COMMIT of any transaction that grew the
    WAL past 1,000 pages, so a big write's caller waited for a second copy of everything
    it wrote. Here COMMIT only appends to the WAL and the writer's connections have
    ``wal_autocheckpoint=0``. Durability is what ``synchronous=NORMAL`` promises either
    way: a commit survives a crash of the process at once, and a power loss once a
    checkpoint has synced it. Once it has run, the connection held open here also keeps
    every other connection's close from being the last one, which would checkpoint and
    delete the WAL each time.
    """

    def __init__(self, path: str):
        self._conn = sqlite3.connect(path, timeout=60, isolation_level=None,
                                     check_same_thread=False)
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="ocula-checkpoint", daemon=True)
        self._thread.start()

    def request(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stopping:
                return
            try:
                # PASSIVE: never waits for readers or writers, copies what it can now.
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error:
                log.exception("WAL checkpoint failed; the next write retries")

    def close(self) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join()
        self._conn.close()  # the last connection out checkpoints what is left


class Database:
    """An engine plus the one-writer discipline SQLite needs under threads.

    Reads use ``connect()``; every write goes through ``write()``, one transaction that
    commits on success and rolls back on any error, so a failed batch leaves nothing.
    """

    def __init__(self, url: str, *, run_migrations: bool = True):
        self.url = url
        self.engine = make_engine(url)
        self.dialect = self.engine.dialect.name
        self._write_lock = threading.RLock()
        self._checkpointer: _Checkpointer | None = None
        self._bulk_engine: Engine | None = None
        path = self.engine.url.database
        if self.dialect == "sqlite" and path and path != ":memory:":
            self._checkpointer = _Checkpointer(path)
            self._bulk_engine = make_bulk_engine(url)
        if run_migrations:
            migrate(self.engine)

    @contextmanager
    def write(self, *, check_references: bool = True) -> Iterator[Connection]:
        """One write transaction. ``check_references=False`` does without SQLite's
        per-row foreign-key look-ups (the writes go through a connection of their own,
        :func:`make_bulk_engine`): for bulk inserts whose caller checks that the rows
        they refer to exist, inside this transaction (two look-ups a row were a tenth of
        SQLite's insert time). Cascading deletes are then off too: such a transaction
        must not delete rows that others refer to."""
        # Elsewhere (PostgreSQL, SQLite in memory) references are checked as always.
        engine = self.engine if check_references else self._bulk_engine or self.engine
        with self._write_lock, engine.connect() as conn:
            conn.execution_options(ocula_write=True)
            with conn.begin():
                yield conn
        if self._checkpointer is not None:
            self._checkpointer.request()

    @property
    def reads_beside_writes(self) -> bool:
        """Whether a read connection is another connection than the writer's (not so
        for SQLite in memory, one connection shared), so a thread may read while a
        write transaction is open; it sees the state before that transaction."""
        return not isinstance(self.engine.pool, StaticPool)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()
        if self._bulk_engine is not None:
            self._bulk_engine.dispose()
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
