"""Bulk inserts at the driver level, bypassing per-row ORM/Core work: multi-row INSERTs
on SQLite, COPY on PostgreSQL.

SQLAlchemy Core spends ~5 µs a row building and processing parameters; at millions of
boxes that dominates ingest. Rows here are plain tuples with JSON already serialised
(the caller serialised metadata once to validate it) and timestamps converted with the
dialect's own bind processor, so SQLite and PostgreSQL read them back exactly as rows
written through Core.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from itertools import chain, islice
from typing import Any

import numpy as np
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Connection,
    Double,
    Integer,
    Select,
    Table,
    Text,
    any_,
    bindparam,
    cast,
    func,
    select,
)
from sqlalchemy.exc import DBAPIError

from ocula.core.store.copy_binary import Column, array_values, binary_copy_data


def insert_rows(conn: Connection, table: Table, columns: Sequence[str],
                rows: Sequence[tuple[Any, ...]],
                constants: Mapping[str, Any] | None = None) -> None:
    """INSERT ``rows`` (tuples in ``columns`` order) into ``table``: one COPY, or on
    SQLite a few multi-row INSERTs. ``constants``: columns with the same value in
    every row (an int, a str or None), given once instead of in each row. (Rows a
    service holds as numpy columns: :func:`copy_columns`.)"""
    if not rows:
        return
    with driver_errors(conn, table):
        if conn.dialect.name == "sqlite":
            _insert_multirow(conn.connection.driver_connection, table, columns, rows,
                             constants)
        else:
            _copy_rows(conn, table, columns, rows, constants)


@contextmanager
def driver_errors(conn: Connection, table: Table) -> Iterator[None]:
    """Raise the driver's errors as SQLAlchemy's (``DataError``, ``IntegrityError``...),
    as a statement run through SQLAlchemy would: callers and the server's error
    handlers then see one kind of error whichever way a row was written."""
    dbapi_error = conn.dialect.loaded_dbapi.Error
    try:
        yield
    except dbapi_error as exc:
        raise DBAPIError.instance(f"bulk insert into {table.name}", None, exc, dbapi_error,
                                  hide_parameters=True, dialect=conn.dialect) from exc


def _copy_rows(conn: Connection, table: Table, columns: Sequence[str],
               rows: Sequence[tuple[Any, ...]], constants: Mapping[str, Any] | None) -> None:
    """PostgreSQL's COPY, with the constants appended to each row: 1.5x the boxes a
    second of executemany (psycopg's pipelined INSERTs), the server then being the
    bound (its indexes)."""
    fixed = _constants(constants)
    names = (*columns, *fixed)
    cols = ", ".join(f'"{c}"' for c in names)
    tail = tuple(fixed.values())
    cursor = conn.connection.driver_connection.cursor()
    try:
        with cursor.copy(f'COPY "{table.name}" ({cols}) FROM STDIN') as copy:
            write = copy.write_row
            for row in rows:
                write(row + tail if tail else row)
    finally:
        cursor.close()


def copy_columns(conn: Connection, table: Table, columns: Sequence[str],
                 data: Sequence[Column]) -> int:
    """PostgreSQL: COPY rows held as numpy columns (``data[j]`` of ``columns[j]``), their
    binary data laid out by numpy (:mod:`~ocula.core.store.copy_binary`), in their
    order. Returns the number of rows."""
    cols = ", ".join(f'"{c}"' for c in columns)
    cursor = conn.connection.driver_connection.cursor()
    try:
        with driver_errors(conn, table), \
                cursor.copy(f'COPY "{table.name}" ({cols}) FROM STDIN (FORMAT BINARY)') as copy:
            for block in binary_copy_data(data):
                copy.write(block)
    finally:
        cursor.close()
    return len(data[0].values) if data else 0


def _constants(constants: Mapping[str, Any] | None) -> Mapping[str, Any]:
    # The same types on every backend, though SQLite binds constants and could take more.
    fixed = constants or {}
    for value in fixed.values():
        if value is not None and type(value) not in (int, str):
            raise TypeError("a constant column takes an int, a str or None, not "
                            f"{type(value).__name__}")
    return fixed


class _MultiRow:
    """SQLite's ``INSERT ... VALUES (...), (...), ...`` for one table and column list.

    Constants come first in each row as numbered parameters (``?1``, ``?2``), bound once
    a statement: the text of a statement of so many rows is then the same from one call
    to the next even when a constant (the label version) changes, so the connection's
    cache keeps it prepared. Preparing one of thousands of rows takes 20-40 ms."""

    def __init__(self, dbapi: sqlite3.Connection, table: Table, columns: Sequence[str],
                 constants: Mapping[str, Any] | None, max_rows: int = 0,
                 null_marks: Mapping[str, int] | None = None) -> None:
        fixed = _constants(constants)
        self.shared = list(fixed.values())
        self.width = len(columns)
        cols = ", ".join(f'"{c}"' for c in (*fixed, *columns))
        self.head = f'INSERT INTO "{table.name}" ({cols}) VALUES '
        marks = null_marks or {}
        self.row_marks = "(" + ", ".join(
            [f"?{k}" for k in range(1, len(fixed) + 1)]
            + [f"NULLIF(?, {int(marks[c])})" if c in marks else "?" for c in columns]) + ")"
        limit = dbapi.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) - len(fixed)
        self.per = max(1, min(max_rows or MULTIROW, limit // max(self.width, 1)))

    def sql(self, rows: int) -> str:
        return self.head + ", ".join([self.row_marks] * rows)

    def params(self, rows: int) -> list[Any]:
        """A parameter list for a statement of ``rows`` rows, constants filled in."""
        return self.shared + [None] * (rows * self.width)


# Rows per multi-row INSERT on SQLite, below its bound-parameter limit.
MULTIROW = 4096


def _insert_multirow(dbapi: sqlite3.Connection, table: Table, columns: Sequence[str],
                     rows: Sequence[tuple[Any, ...]],
                     constants: Mapping[str, Any] | None) -> None:
    """Rows as multi-row INSERTs of thousands of rows a statement.

    pysqlite's executemany binds and steps one row at a time and takes the GIL back for
    each, so any Python work in another thread stalls it; here one statement binds a few
    thousand rows and SQLite inserts them all with the GIL released. It is also cheaper
    on its own: 3.9 instead of 6.9 µs a row for annotations with their indexes."""
    insert = _MultiRow(dbapi, table, columns, constants)
    full = insert.sql(insert.per)
    cursor = dbapi.cursor()
    try:
        for start in range(0, len(rows), insert.per):
            part = rows[start:start + insert.per]
            sql = full if len(part) == insert.per else insert.sql(len(part))
            cursor.execute(sql, [*insert.shared, *chain.from_iterable(part)])
    finally:
        cursor.close()


def insert_columns(conn: Connection, table: Table, columns: Sequence[str],
                   values: Sequence[Sequence[Any]],
                   constants: Mapping[str, Any] | None = None,
                   null_marks: Mapping[str, int] | None = None) -> int:
    """INSERT rows held column by column: ``values[j]`` is the list of ``columns[j]``
    (all of one length), or a numpy array of them (then made Python values a
    statement's rows at a time: 2.7M match rows as whole lists were ~400 MB of fresh
    objects and ~90k page faults, ~1.4 s of system time on a VM, against the same few
    pages again and again). No tuple is made per row: on SQLite each statement's
    parameters are laid out by slice assignment, one column at a time. ``null_marks``: integer
    columns where this value stands for NULL (one no real value takes): pysqlite binds
    ``None`` through its adapter look-up, an exception made and dropped per value, so
    1.6M NULLs of a commit's match rows cost ~0.7 s; SQLite turns the mark into NULL
    itself (``NULLIF``). Returns the number of rows."""
    n = len(values[0]) if values else 0
    if n == 0:
        return 0
    marks = dict(null_marks or {})
    if conn.dialect.name != "sqlite":
        for start in range(0, n, STREAM_CHUNK):
            part = [_part(v, start, start + STREAM_CHUNK) for v in values]
            if marks:
                part = [[None if v == marks[c] else v for v in column] if c in marks
                        else column for c, column in zip(columns, part, strict=True)]
            insert_rows(conn, table, columns, list(zip(*part, strict=True)), constants)
        return n
    # SQLite stores booleans as integers; pysqlite binds a bool through its adapter
    # look-up (an exception made and dropped per value), an int directly.
    values = [_as_ints(v) if isinstance(table.c[c].type, Boolean) else v
              for c, v in zip(columns, values, strict=True)]
    # As many rows a statement as SQLite binds: each statement is then one long step
    # with the GIL released, and the thread takes the GIL back once per few thousand rows
    # (measured at 1M boxes while another thread checks the next batch: 512-row
    # statements waited twice as long for the GIL in all).
    dbapi = conn.connection.driver_connection
    insert = _MultiRow(dbapi, table, columns, constants, max_rows=min(MULTIROW, n),
                       null_marks=marks)
    per, width, offset = insert.per, insert.width, len(insert.shared)
    sql, params = insert.sql(per), insert.params(per)
    cursor = dbapi.cursor()
    try:
        with driver_errors(conn, table):
            for start in range(0, n, per):
                if n - start < per:
                    per = n - start
                    sql, params = insert.sql(per), insert.params(per)
                for j, column in enumerate(values):
                    params[offset + j::width] = _part(column, start, start + per)
                cursor.execute(sql, params)
    finally:
        cursor.close()
    return n


def _part(column: Sequence[Any] | np.ndarray, start: int, stop: int) -> Sequence[Any]:
    """Rows ``start:stop`` of a column as Python values (numpy scalars are not what the
    drivers bind)."""
    part = column[start:stop]
    return part.tolist() if isinstance(part, np.ndarray) else part


def _as_ints(column: Sequence[Any] | np.ndarray) -> Sequence[Any] | np.ndarray:
    """A boolean column as ints where it holds no NULL (else as it is)."""
    if isinstance(column, np.ndarray):
        return column.astype(np.int64) if column.dtype == bool else column
    return column if None in column else list(map(int, column))


# Rows per insert call when streaming: a few multi-row statements, so the database
# starts on a batch soon after its rows start coming (1M boxes: ~10% faster than 20,000).
STREAM_CHUNK = 8_192


def insert_stream(conn: Connection, table: Table, columns: Sequence[str],
                  rows: Iterable[tuple[Any, ...]],
                  constants: Mapping[str, Any] | None = None) -> int:
    """Like :func:`insert_rows` for a lazy iterable: while the driver
    writes one chunk (SQLite steps with the GIL released; PostgreSQL works in a process
    of its own), this thread builds the next, so on two cores Python's per-row work and
    the database's run side by side. Returns the number of rows written."""
    it = iter(rows)
    written = 0
    pending: Future[None] | None = None
    with ThreadPoolExecutor(1, thread_name_prefix="ocula-bulk") as pool:
        try:
            while chunk := list(islice(it, STREAM_CHUNK)):
                if pending is not None:
                    pending.result()
                pending = pool.submit(insert_rows, conn, table, columns, chunk, constants)
                written += len(chunk)
        finally:
            # Never leave the connection in use by the worker when the caller resumes.
            if pending is not None:
                pending.result()
    return written


def fetch_tuples(conn: Connection, query: Select[Any]) -> list[tuple[Any, ...]]:
    """Run a Core SELECT and return plain tuples straight from the driver.

    For hundreds of thousands of numeric rows (evaluation reads) SQLAlchemy's Row objects
    cost as much as the query; columns read this way must need no result processing
    (numbers and text)."""
    whole = iter_tuples(conn, query, None)
    try:
        return next(whole)
    finally:
        whole.close()


def iter_tuples(conn: Connection, query: Select[Any],
                size: int | None = 262_144) -> Iterator[list[tuple[Any, ...]]]:
    """:func:`fetch_tuples` in lists of ``size`` rows (None: all at once), so that
    millions of rows never live as Python objects all together."""
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params: Any = compiled.params
    if compiled.positional:
        params = tuple(compiled.params[name] for name in compiled.positiontup or ())
    cursor = conn.connection.cursor()
    try:
        cursor.execute(str(compiled), params)
        if size is None:
            yield cursor.fetchall()
            return
        while rows := cursor.fetchmany(size):
            yield rows
    finally:
        cursor.close()


#: SQL types of the fixed-width kinds :func:`fetch_arrays` reads.
_ARRAY_TYPES: dict[str, Any] = {"int4": Integer, "int8": BigInteger, "float8": Double,
                                "bool": Boolean}


def fetch_arrays(conn: Connection, query: Select[Any], kinds: Sequence[str]
                 ) -> list[np.ndarray]:
    """PostgreSQL: the columns of a Core SELECT as numpy arrays, column ``j`` cast to
    ``kinds[j]`` (``int4``, ``int8``, ``float8``, ``bool``; no NULLs: coalesce them).

    Each column is aggregated by the server into one array sent as its binary value
    (``array_send(array_agg(...))``) and read by numpy at once: no Python object per
    value nor per row (2M predictions, 9 columns: ~3 s, against ~5.9 s as driver tuples
    made columns, and ~4.5 s as binary COPY, whose one message per row costs the driver
    more than the rows' bytes). Every aggregate of one SELECT takes its rows in the same
    order, so the arrays are rows' columns. Raises ValueError where a value is NULL."""
    sub = query.subquery()
    agg = select(*[func.array_send(func.array_agg(
        cast(c, _ARRAY_TYPES[k]))) for c, k in zip(sub.c, kinds, strict=True)])
    compiled = agg.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    cursor = conn.connection.driver_connection.cursor(binary=True)
    try:
        row = cursor.execute(str(compiled), compiled.params).fetchone()
    finally:
        cursor.close()
    return [array_values(v, k) for v, k in zip(row, kinds, strict=True)]


def in_values(conn: Connection, column: Any, values: np.ndarray | Sequence[int]) -> Any:
    """SQL: ``column`` is one of the integers ``values``, bound as one parameter (a JSON
    array on SQLite, an array on PostgreSQL). Hundreds of thousands of pks then cost one
    statement, not a compiled IN list per few hundred (360k prediction names: 2.2 s of
    chunked IN lists)."""
    ints = np.asarray(values, dtype=np.int64)
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, ints.tolist(), type_=ARRAY(BigInteger)))
    listed = func.json_each(bindparam(None, "[" + ",".join(map(str, ints.tolist())) + "]",
                                      type_=Text)).table_valued("value")
    return column.in_(select(listed.c.value))


def fetch_ints(conn: Connection, query: Select[Any]) -> np.ndarray:
    """The first column of a Core SELECT, integers without NULLs, as an int64 array (in
    no particular order).

    Hundreds of thousands of rows as driver tuples cost more than the query (500k item
    pks on PostgreSQL: ~150 ms of row conversion); aggregated into one comma-separated
    text by the database (``string_agg`` / ``group_concat``) they arrive as one value
    and numpy parses them in a few milliseconds."""
    column = next(iter(query.subquery().c))
    if conn.dialect.name == "postgresql":
        joined = func.string_agg(cast(column, Text), ",")
    else:
        joined = func.group_concat(column, ",")
    text = conn.execute(select(joined)).scalar()
    if not text:
        return np.zeros(0, np.int64)
    return np.fromstring(text, dtype=np.int64, sep=",")


def db_timestamp(conn: Connection, table: Table, column: str, value: datetime) -> Any:
    """``value`` as the driver expects it for ``table.column`` (SQLite stores text)."""
    col_type = table.c[column].type.dialect_impl(conn.dialect)
    process = col_type.bind_processor(conn.dialect)
    return process(value) if process else value


def analyze_grown(conn: Connection, table: Table, written: int) -> None:
    """On PostgreSQL, ANALYZE ``table`` in this transaction once the rows changed since
    its last analysis — ``written`` now plus what earlier transactions changed
    (``n_mod_since_analyze``) — reach autovacuum's own threshold (50 rows plus a tenth
    of what its statistics count; a table never analysed at once), met now instead of up
    to a minute later. Until then the planner plans with the old counts: a run of 2M
    predictions just uploaded was estimated at 769 rows, and reading a slice's
    predictions took 4 s instead of a fraction of a second. Counting this batch alone
    missed uploads sent in batches (each under a tenth of the table): a dataset deleted
    and loaded again in 50,000-row batches kept statistics that knew only the old one,
    and one id lookup scanned 700,000 rows (0.4 s each, 15 s for a run page at a label
    version). Small tables count too: never analysed (a floor of 10,000 changed rows
    skipped them), the planner took each condition to keep a row or so, and a metrics
    scope of a few thousand boxes at a label version ran as nested loops of index
    scans, 7 s a read."""
    if conn.dialect.name != "postgresql" or written <= 0:
        return
    known, changed = conn.exec_driver_sql(
        "SELECT c.reltuples, s.n_mod_since_analyze FROM pg_class c "
        "LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid "
        "WHERE c.oid = %(t)s::regclass", {"t": table.name}).one()
    changed = (changed or 0) + written
    if known is None or known < 0 or changed >= _ANALYZE_BASE + _ANALYZE_SCALE * known:
        conn.exec_driver_sql(f'ANALYZE "{table.name}"')


# PostgreSQL's autovacuum_analyze_threshold and autovacuum_analyze_scale_factor defaults.
_ANALYZE_BASE = 50
_ANALYZE_SCALE = 0.1


@contextmanager
def _sqlite_sorting(conn: Connection) -> Iterator[None]:
    """SQLite's sorter set for building large indexes in the block, as the connection
    was after it. The catalog's connections keep a 200 MB page cache and temporary
    storage in memory, for reads; but the sorter makes each sorted run as large as the
    cache, one linked-list merge sort over millions of keys, and keeps its spill files
    in memory chunks: four indexes over 2M match rows took 10.2 s so, 5.1 s with
    SQLite's defaults (a 2 MB cache, runs merged from temporary files). SQLite refuses
    to change ``temp_store`` in a transaction once the connection has opened its
    temporary database (a scoped insights scan makes a temporary table; SQLite in memory
    shares one connection between reads and writes): the spill files then stay where
    they are, and the indexes are built all the same."""
    if conn.dialect.name != "sqlite":
        yield
        return
    cache = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    temp = conn.exec_driver_sql("PRAGMA temp_store").scalar()
    conn.exec_driver_sql("PRAGMA cache_size=-2000")
    dbapi = conn.connection.driver_connection
    try:
        dbapi.execute("PRAGMA temp_store=FILE")
        moved = True
    except sqlite3.OperationalError:
        moved = False
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size={int(cache)}")
        if moved:
            conn.exec_driver_sql(f"PRAGMA temp_store={int(temp)}")


@contextmanager
def indexes_rebuilt(conn: Connection, tables: Sequence[Table], enabled: bool = True
                    ) -> Iterator[None]:
    """Drop ``tables``' secondary indexes for the block and create them again after it,
    in the same transaction: replacing most of a table's rows (a commit of a run holding
    most match rows) then costs one sorted build per index instead of a B-tree update
    per row deleted and inserted (SQLite, 2M match rows: 12 s against 27 s). The DDL
    commits with the rows, so no reader sees a table without them; on PostgreSQL,
    readers of these tables wait for the transaction instead (DROP INDEX takes their
    exclusive lock), so a caller reading them on another connection meanwhile would
    deadlock. On PostgreSQL the primary key and UNIQUE constraints are dropped and added
    back too (a COPY of 2M match rows: 2.4 s with the primary key's B-tree kept up row by
    row, 1.1 s without, and 0.45 s to build it after), and the tables are analysed
    afterwards; SQLite's cannot be dropped (a rowid key, or part of the table's
    definition) and stay (the match tables have no foreign keys: see ``schema``). With
    ``enabled`` false, nothing."""
    if not enabled or conn.dialect.name not in ("sqlite", "postgresql"):
        yield
        return
    constraints: list[tuple[str, str, str]] = []
    if conn.dialect.name == "sqlite":
        names = ", ".join(f"'{tbl.name}'" for tbl in tables)
        indexes = conn.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({names})").all()
    else:
        indexes = []
        for tbl in tables:
            indexes += conn.exec_driver_sql(
                "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE i.indrelid = %(t)s::regclass AND NOT i.indisprimary AND NOT EXISTS "
                "(SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)",
                {"t": tbl.name}).all()
            constraints += [(tbl.name, name, sql) for name, sql in conn.exec_driver_sql(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = %(t)s::regclass AND contype IN ('p', 'u')",
                {"t": tbl.name}).all()]
    for name, _ in indexes:
        conn.exec_driver_sql(f'DROP INDEX "{name}"')
    for table, name, _ in constraints:
        conn.exec_driver_sql(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
    yield
    for table, name, sql in constraints:
        conn.exec_driver_sql(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {sql}')
    with _sqlite_sorting(conn):
        for _, sql in indexes:
            conn.exec_driver_sql(sql)
    if conn.dialect.name == "postgresql":
        # Statistics of the rows just replaced, in the same transaction: until
        # autovacuum's analyze runs, the planner would see the old ones and can pick a
        # plan that runs for minutes (a committed-match query at 2M rows: >5 min, 0.4 s
        # once analysed).
        for tbl in tables:
            conn.exec_driver_sql(f'ANALYZE "{tbl.name}"')
