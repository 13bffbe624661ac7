"""Bulk inserts at the driver level, bypassing per-row ORM/Core work: multi-row INSERTs
on SQLite, ``executemany`` on PostgreSQL.

SQLAlchemy Core spends ~5 µs a row building and processing parameters; at millions of
boxes that dominates ingest. Rows here are plain tuples with JSON already serialised
(the caller serialised metadata once to validate it) and timestamps converted with the
dialect's own bind processor, so SQLite and PostgreSQL read them back exactly as rows
written through Core.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from itertools import chain, islice
from typing import Any

from sqlalchemy import Boolean, Connection, Select, Table


def insert_rows(conn: Connection, table: Table, columns: Sequence[str],
                rows: Sequence[tuple[Any, ...]],
                constants: Mapping[str, Any] | None = None) -> None:
    """INSERT ``rows`` (tuples in ``columns`` order) into ``table``: one executemany, or
    on SQLite a few multi-row INSERTs. ``constants``: columns with the same value in
    every row (an int, a str or None), written into the statement instead of bound for
    each row."""
    if not rows:
        return
    head, row_marks = _insert_head(conn, table, columns, constants)
    if conn.dialect.name == "sqlite":
        _insert_multirow(conn.connection.driver_connection, head, row_marks, len(columns),
                         rows)
    else:
        conn.exec_driver_sql(head + row_marks, list(rows))


def _insert_head(conn: Connection, table: Table, columns: Sequence[str],
                 constants: Mapping[str, Any] | None) -> tuple[str, str]:
    """``INSERT INTO table (columns) VALUES `` and one row's ``(?, ..., constants)``."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    fixed = constants or {}
    cols = ", ".join(f'"{c}"' for c in (*columns, *fixed))
    marks = ", ".join([mark] * len(columns) + [_literal(v, mark) for v in fixed.values()])
    return f'INSERT INTO "{table.name}" ({cols}) VALUES ', f"({marks})"


def _literal(value: Any, mark: str) -> str:
    if value is None:
        return "NULL"
    if type(value) is int:
        return str(value)
    if type(value) is str:
        quoted = "'" + value.replace("'", "''") + "'"
        return quoted if mark == "?" else quoted.replace("%", "%%")
    raise TypeError(f"a constant column takes an int, a str or None, not {type(value).__name__}")


# Rows per multi-row INSERT on SQLite, below its bound-parameter limit.
MULTIROW = 4096


def _insert_multirow(dbapi: sqlite3.Connection, head: str, row_marks: str, width: int,
                     rows: Sequence[tuple[Any, ...]]) -> None:
    """``INSERT ... VALUES (...), (...), ...`` with thousands of rows a statement.

    pysqlite's executemany binds and steps one row at a time and takes the GIL back for
    each, so any Python work in another thread stalls it; here one statement binds a few
    thousand rows and SQLite inserts them all with the GIL released. It is also cheaper
    on its own: 3.9 instead of 6.9 µs a row for annotations with their indexes."""
    limit = dbapi.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    per = max(1, min(MULTIROW, limit // max(width, 1)))
    full = head + ", ".join([row_marks] * per)
    cursor = dbapi.cursor()
    try:
        for start in range(0, len(rows), per):
            part = rows[start:start + per]
            sql = full if len(part) == per else head + ", ".join([row_marks] * len(part))
            cursor.execute(sql, list(chain.from_iterable(part)))
    finally:
        cursor.close()


def insert_columns(conn: Connection, table: Table, columns: Sequence[str],
                   values: Sequence[Sequence[Any]],
                   constants: Mapping[str, Any] | None = None) -> int:
    """INSERT rows held column by column: ``values[j]`` is the list of ``columns[j]``
    (all of one length). No tuple is made per row: on SQLite each statement's parameters
    are laid out by slice assignment, one column at a time. Returns the number of rows."""
    n = len(values[0]) if values else 0
    if n == 0:
        return 0
    if conn.dialect.name != "sqlite":
        for start in range(0, n, STREAM_CHUNK):
            part = [v[start:start + STREAM_CHUNK] for v in values]
            insert_rows(conn, table, columns, list(zip(*part, strict=True)), constants)
        return n
    # SQLite stores booleans as integers; pysqlite binds a bool through its adapter
    # look-up (an exception made and dropped per value), an int directly.
    values = [list(map(int, v)) if isinstance(table.c[c].type, Boolean) and None not in v
              else v for c, v in zip(columns, values, strict=True)]
    width = len(columns)
    head, row_marks = _insert_head(conn, table, columns, constants)
    # As many rows a statement as SQLite binds: each statement is then one long step
    # with the GIL released, and the thread takes the GIL back once per few thousand rows
    # (measured at 1M boxes while another thread checks the next batch: 512-row
    # statements waited twice as long for the GIL in all).
    dbapi = conn.connection.driver_connection
    per = min(MULTIROW, n, dbapi.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width)
    sql = head + ", ".join([row_marks] * per)
    params: list[Any] = [None] * (per * width)
    cursor = dbapi.cursor()
    try:
        for start in range(0, n, per):
            if n - start < per:
                per = n - start
                sql = head + ", ".join([row_marks] * per)
                params = [None] * (per * width)
            for j, column in enumerate(values):
                params[j::width] = column[start:start + per]
            cursor.execute(sql, params)
    finally:
        cursor.close()
    return n


# Rows per insert call when streaming: a few multi-row statements, so the database
# starts on a batch soon after its rows start coming (1M boxes: ~10% faster than 20,000).
STREAM_CHUNK = 8_192


def insert_stream(conn: Connection, table: Table, columns: Sequence[str],
                  rows: Iterable[tuple[Any, ...]],
                  constants: Mapping[str, Any] | None = None) -> int:
    """Like :func:`insert_rows` for a lazy iterable: while the driver writes one chunk
    (SQLite and psycopg release the GIL while stepping), this thread builds the next, so
    on two cores Python's per-row work and the database's run side by side. Returns the
    number of rows written."""
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
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params: Any = compiled.params
    if compiled.positional:
        params = tuple(compiled.params[name] for name in compiled.positiontup or ())
    cursor = conn.connection.cursor()
    try:
        cursor.execute(str(compiled), params)
        return cursor.fetchall()
    finally:
        cursor.close()


def db_timestamp(conn: Connection, table: Table, column: str, value: datetime) -> Any:
    """``value`` as the driver expects it for ``table.column`` (SQLite stores text)."""
    col_type = table.c[column].type.dialect_impl(conn.dialect)
    process = col_type.bind_processor(conn.dialect)
    return process(value) if process else value
