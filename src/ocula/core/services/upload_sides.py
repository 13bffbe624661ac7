"""Evaluation columns kept by the uploads that wrote them: a run's predictions, a
dataset's ground truth.

A commit (or the run page) first reads both sides back as the engine's columns
(:func:`~ocula.core.services.evaluation_sides.read_sides`): at 2M predictions and 700k
boxes ~6 s of SQLite's row-by-row fetch, the one step of a commit nothing else can run
beside. An upload of plain boxes holds those values, column by column, as it writes
them; so it keeps them in the process's :mod:`~ocula.core.services.sides_cache` under
the key a read would use, and the commit in the same process (a notebook, the server
that took the uploads) skips the read.

Only rows that can be named exactly are kept: the side (the run's predictions, the
dataset's current ground truth) holds these rows and no others, or the rows kept under
its key before this write and these after them; and the rows written have one unbroken
range of primary keys, so the i-th row written has the i-th key (SQLite gives each new
row the next rowid, PostgreSQL the next value of a sequence, in the order the rows are
written; a range with gaps, another writer's rows in between, keeps nothing). Keys are
read in the upload's transaction, and the columns are kept only once it committed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, and_, func, select

from ocula.core.services import sides_cache
from ocula.core.services.run_results import item_state
from ocula.core.services.side_columns import columns_of
from ocula.core.store import schema as t

__all__ = ["BOX_COLUMNS", "GT_COLUMNS", "ground_truth_keeper", "ground_truth_state",
           "predictions_keeper", "predictions_state"]

#: The columns a plain-box upload hands over, in this order (as written).
BOX_COLUMNS = ("item_pk", "label", "x", "y", "width", "height", "area", "confidence")
GT_COLUMNS = ("item_pk", "label", "x", "y", "width", "height", "area", "iscrowd")

Keeper = Callable[[], None]


def predictions_state(conn: Connection, run_pk: int) -> tuple[Any, ...]:
    """The key :func:`~ocula.core.services.evaluation_sides.read_sides` reads a run's
    predictions under, as ``conn``'s transaction sees them now."""
    run = conn.execute(select(t.model_runs.c.id, t.model_runs.c.dataset_pk,
                              t.model_runs.c.predictions_at)
                       .where(t.model_runs.c.pk == run_pk)).one()
    return ("dt", run.id, str(run.predictions_at), tuple(item_state(conn, run.dataset_pk)))


def ground_truth_state(conn: Connection, dataset_pk: int) -> tuple[Any, ...]:
    """The key ``read_sides`` reads a dataset's current ground truth under."""
    v = t.annotation_versions
    ds_id, latest = conn.execute(
        select(t.datasets.c.id, select(func.max(v.c.version)).where(
            v.c.dataset_pk == dataset_pk).scalar_subquery())
        .where(t.datasets.c.pk == dataset_pk)).one()
    return ("gt", ds_id, latest, tuple(item_state(conn, dataset_pk)))


def predictions_keeper(conn: Connection, run_pk: int, columns: dict[str, list[Any]],
                       before: tuple[Any, ...] | None = None) -> Keeper | None:
    """For plain boxes just written to a run in ``conn``'s transaction (``columns``:
    :data:`BOX_COLUMNS` as written, in write order, or more): a function that keeps
    their evaluation columns, to call once the transaction has committed; None where
    the rows cannot be named exactly. ``before``: the run's :func:`predictions_state`
    before this write, for a batch that follows the rows kept."""
    p = t.predictions
    return _keeper(conn, predictions_state(conn, run_pk), p, p.c.run_pk == run_pk,
                   [columns[c] for c in BOX_COLUMNS], before, scores=True)


def ground_truth_keeper(conn: Connection, dataset_pk: int, columns: dict[str, list[Any]],
                        before: tuple[Any, ...] | None = None) -> Keeper | None:
    """:func:`predictions_keeper` for plain boxes just written as a dataset's ground
    truth (``columns``: :data:`GT_COLUMNS`), ``before`` its :func:`ground_truth_state`."""
    a = t.annotations
    return _keeper(conn, ground_truth_state(conn, dataset_pk), a,
                   and_(a.c.dataset_pk == dataset_pk, a.c.version_to.is_(None)),
                   [columns[c] for c in GT_COLUMNS], before, scores=False)


def _keeper(conn: Connection, key: tuple[Any, ...], table: Any, mine: Any,
            columns: list[list[Any]], before: tuple[Any, ...] | None, *, scores: bool
            ) -> Keeper | None:
    n = len(columns[0])
    if n == 0:
        return None

    def rows(after: int = 0) -> tuple[int, int, int]:
        count, low, high = conn.execute(
            select(func.count(), func.min(table.c.pk), func.max(table.c.pk))
            .where(mine, table.c.pk > after)).one()
        return int(count), int(low or 0), int(high or 0)

    database = sides_cache.database(conn)
    total, low, high = rows()
    if total == n and high - low + 1 == n:
        before = None  # these rows are all of the side's
    else:
        kept = None if before is None else sides_cache.growing(database, key)
        if kept is None or kept[0] != before:
            return None
        count, low, high = rows(after=kept[2])
        if not (count == n and high - low + 1 == n and total == kept[1] + n):
            return None
    values = [range(low, high + 1), *columns]

    def keep() -> None:
        sides_cache.grow(database, before, key,
                         columns_of(values.__getitem__, n, scores=scores), high)
    return keep
