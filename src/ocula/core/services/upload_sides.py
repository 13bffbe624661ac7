"""A run's predictions kept as evaluation columns by the upload that wrote them.

A commit (or the run page) first reads the run's predictions back as the engine's
columns (:func:`~ocula.core.services.evaluation_sides.read_sides`): at 2M boxes ~4 s
of SQLite's row-by-row fetch, the one step of a commit nothing else can run beside. The
upload already holds those values, column by column, as it wrote them; so where a run's
first upload is of plain boxes, the columns it wrote go into the process's
:mod:`~ocula.core.services.sides_cache` under the key a read would use, and the commit in
the same process (a notebook, the server that took the upload) skips the read.

Only rows that can be named exactly are kept: the run holds these rows and no others,
and their primary keys are one unbroken range, so the i-th row written has the i-th key
(SQLite gives each new row the next rowid, PostgreSQL the next value of a sequence, in
the order the rows are written; a range with gaps, another writer's rows in between,
keeps nothing). The key (the run's ``predictions_at``, the dataset's item state) is read
in the upload's transaction, and the columns are kept only once it committed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, func, select

from ocula.core.services import sides_cache
from ocula.core.services.evaluation_sides import columns_of
from ocula.core.services.run_results import item_state
from ocula.core.store import schema as t

__all__ = ["BOX_COLUMNS", "keeper", "state"]

#: The columns a plain-box upload hands over, in this order (as written).
BOX_COLUMNS = ("item_pk", "label", "x", "y", "width", "height", "area", "confidence")


def state(conn: Connection, run_pk: int) -> tuple[Any, ...]:
    """The key :func:`~ocula.core.services.evaluation_sides.read_sides` reads a run's
    predictions under, as ``conn``'s transaction sees them now."""
    run = conn.execute(select(t.model_runs.c.id, t.model_runs.c.dataset_pk,
                              t.model_runs.c.predictions_at)
                       .where(t.model_runs.c.pk == run_pk)).one()
    return ("dt", run.id, str(run.predictions_at), tuple(item_state(conn, run.dataset_pk)))


def _rows(conn: Connection, run_pk: int, after: int = 0) -> tuple[int, int, int]:
    """``(count, least pk, largest pk)`` of a run's predictions with pk above ``after``."""
    p = t.predictions
    count, low, high = conn.execute(select(func.count(), func.min(p.c.pk), func.max(p.c.pk))
                                    .where(p.c.run_pk == run_pk, p.c.pk > after)).one()
    return int(count), int(low or 0), int(high or 0)


def keeper(conn: Connection, run_pk: int, columns: dict[str, list[Any]],
           before: tuple[Any, ...] | None = None) -> Callable[[], None] | None:
    """For plain boxes just written to a run in ``conn``'s transaction (``columns``:
    :data:`BOX_COLUMNS` as written, in write order): a function that keeps their
    evaluation columns, to call once the transaction has committed; None where the rows
    cannot be named exactly. They are kept where they are all of the run's rows, or
    where they follow the rows kept for the run under ``before`` (its :func:`state`
    before this write)."""
    n = len(columns["item_pk"])
    if n == 0:
        return None
    key = state(conn, run_pk)
    database = sides_cache.database(conn)
    total, low, high = _rows(conn, run_pk)
    if total == n and high - low + 1 == n:
        before = None  # the whole run
    else:
        kept = None if before is None else sides_cache.growing(database, key[1])
        if kept is None or kept[0] != before:
            return None
        count, low, high = _rows(conn, run_pk, after=kept[2])
        if not (count == n and high - low + 1 == n and total == kept[1] + n):
            return None
    values = [range(low, high + 1), *(columns[c] for c in BOX_COLUMNS)]

    def keep() -> None:
        sides_cache.grow(database, key[1], before, key,
                         columns_of(values.__getitem__, n, scores=True), high)
    return keep
