"""Bulk inserts through the driver's ``executemany``, bypassing per-row ORM/Core work.

SQLAlchemy Core spends ~5 µs a row building and processing parameters; at millions of
boxes that dominates ingest. Rows here are plain tuples with JSON already serialised
(the caller serialised metadata once to validate it) and timestamps converted with the
dialect's own bind processor, so SQLite and PostgreSQL read them back exactly as rows
written through Core.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table


def insert_rows(conn: Connection, table: Table, columns: Sequence[str],
                rows: Sequence[tuple[Any, ...]]) -> None:
    """INSERT ``rows`` (tuples in ``columns`` order) into ``table`` in one executemany."""
    if not rows:
        return
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    cols = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join([mark] * len(columns))
    conn.exec_driver_sql(f'INSERT INTO "{table.name}" ({cols}) VALUES ({marks})', list(rows))


def db_timestamp(conn: Connection, table: Table, column: str, value: datetime) -> Any:
    """``value`` as the driver expects it for ``table.column`` (SQLite stores text)."""
    col_type = table.c[column].type.dialect_impl(conn.dialect)
    process = col_type.bind_processor(conn.dialect)
    return process(value) if process else value
