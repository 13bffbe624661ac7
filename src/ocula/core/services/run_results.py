"""Results of a committed run kept at commit, for the run page.

Scoring a run from its rows costs time in proportion to its boxes (at 100k images and
2M predictions, most of a minute), and a run page needs the whole-dataset numbers and
each slice's. So ``commit_run`` computes them once, from the columns it already holds,
and keeps them here per *scope*: the whole dataset (``""``) and each item slice (its pk).

A kept row is served only while the data it was computed from is unchanged. Its
``state`` fingerprints what the numbers depend on, each part an index look-up or a read
of one slice's members: the commit itself, the dataset's label version (every write to
ground truth opens a version), its items, and the slice's members. A prediction written
to the run after its commit drops the run's rows outright (``forget``). Any other scope,
option or label version is scored from the rows, as before.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import orjson
from sqlalchemy import Connection, delete, func, select

from ocula.core.services.base import now
from ocula.core.store import schema as t
from ocula.core.store.bulk import fetch_tuples

__all__ = ["METRICS", "FAILURES", "forget", "item_slices", "item_state", "keep", "kept",
           "scope_key", "slice_items", "slice_members", "state"]

METRICS = "metrics"
FAILURES = "failure_summary"


def scope_key(slice_pk: int | None) -> str:
    return "" if slice_pk is None else str(slice_pk)


def item_slices(conn: Connection, dataset_pk: int) -> list[int]:
    """The pks of a dataset's item slices, in the order a commit keeps their numbers."""
    return list(conn.execute(select(t.slices.c.pk).where(
        t.slices.c.dataset_pk == dataset_pk, t.slices.c.kind == "item")
        .order_by(t.slices.c.pk)).scalars())


def slice_items(slice_pk: int | None) -> Any:
    """SQL: the item pks of an item slice (None: of the whole dataset, no condition)."""
    if slice_pk is None:
        return None
    return select(t.slice_items.c.item_pk).where(t.slice_items.c.slice_pk == slice_pk)


def slice_members(conn: Connection, slice_pk: int) -> np.ndarray:
    """The item pks of an item slice, sorted."""
    si = t.slice_items
    rows = fetch_tuples(conn, select(si.c.item_pk).where(si.c.slice_pk == slice_pk))
    return np.sort(np.fromiter((r[0] for r in rows), np.int64, len(rows)))


def state(conn: Connection, run: Any, slice_pk: int | None,
          members: np.ndarray | None = None) -> dict[str, Any]:
    """The fingerprint of what a run's numbers on a scope depend on (see the module)."""
    labels = conn.scalar(select(func.max(t.annotation_versions.c.version)).where(
        t.annotation_versions.c.dataset_pk == run.dataset_pk))
    out: dict[str, Any] = {"committed_at": str(run.committed_at), "labels": labels,
                           "items": item_state(conn, run.dataset_pk)}
    if slice_pk is not None:
        if members is None:
            members = slice_members(conn, slice_pk)
        out["slice"] = [int(len(members)), hashlib.blake2b(
            np.ascontiguousarray(members, dtype=np.int64).tobytes(), digest_size=16).hexdigest()]
    return out


def item_state(conn: Connection, dataset_pk: int) -> list[Any]:
    """A dataset's items as three index look-ups: count, largest pk, latest change (an
    item deleted or added, and with it the rows that cascade, changes one of them)."""
    items = t.items
    mine = items.c.dataset_pk == dataset_pk
    return [conn.scalar(select(func.count()).select_from(items).where(mine)),
            conn.scalar(select(func.max(items.c.pk)).where(mine)),
            str(conn.scalar(select(func.max(items.c.updated_at)).where(mine)))]


def keep(conn: Connection, run_pk: int, kind: str, slice_pk: int | None,
         fingerprint: dict[str, Any], body: dict[str, Any]) -> None:
    """Keep ``body`` for a run, kind and scope, replacing what was kept before."""
    r = t.run_results
    scope = scope_key(slice_pk)
    conn.execute(delete(r).where(r.c.run_pk == run_pk, r.c.kind == kind, r.c.scope == scope))
    text = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    conn.execute(r.insert().values(run_pk=run_pk, kind=kind, scope=scope, state=fingerprint,
                                   body=text, created_at=now()))


def kept(conn: Connection, run: Any, kind: str, slice_pk: int | None) -> dict[str, Any] | None:
    """The kept body of a run, kind and scope if the data is as it was, else None."""
    r = t.run_results
    row = conn.execute(select(r.c.state, r.c.body).where(
        r.c.run_pk == run.pk, r.c.kind == kind, r.c.scope == scope_key(slice_pk))).first()
    if row is None or row.state != state(conn, run, slice_pk):
        return None
    return orjson.loads(row.body)


def holds(conn: Connection, run: Any, kind: str, slice_pk: int | None) -> bool:
    """Whether a body is kept for a run, kind and scope and the data is as it was (what
    :func:`kept` checks, without reading the body)."""
    r = t.run_results
    kept_state = conn.scalar(select(r.c.state).where(
        r.c.run_pk == run.pk, r.c.kind == kind, r.c.scope == scope_key(slice_pk)))
    return kept_state is not None and kept_state == state(conn, run, slice_pk)


def forget(conn: Connection, run_pk: int) -> None:
    """Drop everything kept for a run (its predictions changed, or it is re-committed)."""
    conn.execute(delete(t.run_results).where(t.run_results.c.run_pk == run_pk))
