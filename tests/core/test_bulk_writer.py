"""The SQLite connection that bulk writes without per-row reference checks use."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table, exc, select

from ocula.core.store import bulk
from ocula.core.store.engine import Database, sqlite_url


def _tables(db: Database) -> tuple[Table, Table]:
    meta = MetaData()
    parent = Table("parent", meta, Column("pk", Integer, primary_key=True))
    child = Table("child", meta, Column("pk", Integer, primary_key=True),
                  Column("parent_pk", Integer, ForeignKey("parent.pk"), nullable=False),
                  Column("a", String), Column("b", Integer), Column("c", String))
    meta.create_all(db.engine)
    return parent, child


def test_unchecked_writes_keep_one_connection(tmp_path: Path) -> None:
    """Unchecked writes go through one connection kept open with foreign keys off (so
    its prepared statements survive from batch to batch); every other write still has
    its references checked."""
    db = Database(sqlite_url(tmp_path / "c.db"), run_migrations=False)
    parent, child = _tables(db)
    seen = []
    for _ in range(2):
        with db.write(check_references=False) as conn:
            seen.append(conn.connection.driver_connection)
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 0
    assert seen[0] is seen[1]
    with db.write() as conn:
        conn.execute(parent.insert().values(pk=1))
    with pytest.raises(exc.IntegrityError), db.write() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        bulk.insert_rows(conn, child, ("parent_pk", "a"), [(1, "kept"), (2, "orphan")])
    with db.engine.connect() as conn:
        assert conn.execute(select(child.c.a)).all() == []  # the failed write left nothing
    db.dispose()


def test_constants_change_between_statements_of_one_connection(tmp_path: Path) -> None:
    """Constants are bound per statement, not written into its text: the same prepared
    statement, reused by the next batch, inserts that batch's values."""
    db = Database(sqlite_url(tmp_path / "c.db"), run_migrations=False)
    parent, child = _tables(db)
    with db.write() as conn:
        conn.execute(parent.insert().values(pk=1))
    n = 2 * bulk.MULTIROW + 5
    for batch in range(3):
        with db.write(check_references=False) as conn:
            bulk.insert_columns(conn, child, ("parent_pk", "a"),
                                [[1] * n, [f"{batch}-{i}" for i in range(n)]],
                                {"b": batch, "c": f"it's {batch}% ?"})
            bulk.insert_rows(conn, child, ("parent_pk", "a"), [(1, f"row-{batch}")],
                             {"b": 10 + batch, "c": None})
    with db.engine.connect() as conn:
        rows = conn.execute(select(child.c.a, child.c.b, child.c.c)
                            .order_by(child.c.pk)).all()
    assert len(rows) == 3 * (n + 1)
    for batch in range(3):
        part = rows[batch * (n + 1):(batch + 1) * (n + 1)]
        assert part[:-1] == [(f"{batch}-{i}", batch, f"it's {batch}% ?") for i in range(n)]
        assert part[-1] == (f"row-{batch}", 10 + batch, None)
    db.dispose()
