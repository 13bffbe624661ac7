"""Two committed runs side by side: metric deltas, and the items only one gets right.

An item is *right* for a run when the run's committed matches give it no false positive
and no false negative (its ``match_items`` row has ``fp = 0 and fn = 0``), and *wrong*
when they give it either. Items without a match row (no ground truth and no
prediction) are neither, so they are in no list. ``compare_runs`` gives the numbers
(and, with ``limit``, only the first ids of each list); ``compare_items`` pages through
one list's items with a keyset cursor, for a UI that shows them as thumbnails.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import Connection, and_, func, or_, select

from ocula.core.query.paging import SortKey, decode_cursor, encode_cursor, fingerprint
from ocula.core.query.plan import MAX_PAGE_SIZE
from ocula.core.services.evaluation import EvaluationService
from ocula.core.services.payloads import item_payload
from ocula.core.store import schema as t
from ocula.errors import ValidationError

#: The per-class numbers compared, as ``run_metrics`` names them.
CLASS_METRICS = ("ap", "ap50", "ar")


def _class_deltas(rows_a: list[dict[str, Any]], rows_b: list[dict[str, Any]]
                  ) -> list[dict[str, Any]]:
    """Per class: each run's AP / AP50 / AR and their delta (b − a). A number COCO
    cannot give (``-1``: no ground truth of that class) has no delta (``None``), and a
    class one run never saw is ``None`` on that side."""
    by_a = {r["label"]: r for r in rows_a}
    by_b = {r["label"]: r for r in rows_b}
    labels = list(dict.fromkeys([*by_a, *by_b]))

    def side(row: dict[str, Any] | None) -> dict[str, Any] | None:
        if row is None:
            return None
        return {k: row[k] for k in (*CLASS_METRICS, "num_ground_truth", "num_detections")}

    out = []
    for label in labels:
        a, b = by_a.get(label), by_b.get(label)
        delta = {k: (b[k] - a[k] if a is not None and b is not None and a[k] >= 0
                     and b[k] >= 0 else None) for k in CLASS_METRICS}
        out.append({"label": label, "a": side(a), "b": side(b), "delta": delta})
    return out


class ComparisonService(EvaluationService):
    """``compare_runs`` and ``compare_items``, over the committed match rows."""

    def _compared(self, conn: Connection, run_a: str, run_b: str) -> tuple[Any, Any, str]:
        """Both runs' rows and their common ``iou_type``, or a ValidationError naming
        what keeps them from being compared."""
        ra, rb = self._run_row(conn, run_a), self._run_row(conn, run_b)
        if ra.dataset_pk != rb.dataset_pk:
            raise ValidationError("runs to compare must be on the same dataset")
        for r in (ra, rb):
            if r.committed_at is None:
                raise ValidationError(f"model run {r.name!r} is not committed yet")
        kinds = [(r.commit_config or {}).get("iou_type", "bbox") for r in (ra, rb)]
        if kinds[0] != kinds[1]:
            raise ValidationError(
                f"model run {ra.name!r} was committed with iou_type={kinds[0]!r} and "
                f"{rb.name!r} with iou_type={kinds[1]!r}; commit both with the same one")
        return ra, rb, kinds[0]

    def compare_runs(self, run_a: str, run_b: str, *, slice: str | None = None,
                     iou_threshold: float | None = None,
                     limit: int | None = None) -> dict[str, Any]:
        """Metric deltas (b − a) and the items each run gets right that the other gets
        wrong (an item is right when it has no FP and no FN in the committed matches).
        Metrics use the ``iou_type`` both runs were committed with.

        Returns ``stats_a``, ``stats_b`` and ``delta`` (the 12 COCO numbers),
        ``per_class`` (each class's AP / AP50 / AR in both runs and their delta),
        ``only_a_right`` / ``only_b_right`` (reference ids, sorted; the first ``limit``
        of each when ``limit`` is given) and their full sizes ``only_a_right_count`` /
        ``only_b_right_count``. ``compare_items`` pages through either list.
        """
        if limit is not None and limit < 0:
            raise ValidationError(f"limit must be 0 or more, got {limit}")
        with self.db.read() as conn:
            ra, rb, kind = self._compared(conn, run_a, run_b)
        ma = self.run_metrics(run_a, slice=slice, iou_threshold=iou_threshold, iou_type=kind)
        mb = self.run_metrics(run_b, slice=slice, iou_threshold=iou_threshold, iou_type=kind)
        deltas = {k: mb["stats"][k] - ma["stats"][k] for k in ma["stats"]}
        with self.db.read() as conn:
            scope = self._scope(conn, ra.dataset_pk, slice)
            only_a = sorted(conn.scalars(self._only_right(ra.pk, rb.pk, scope,
                                                          t.items.c.reference_id)))
            only_b = sorted(conn.scalars(self._only_right(rb.pk, ra.pk, scope,
                                                          t.items.c.reference_id)))
        return {
            "run_a": run_a, "run_b": run_b, "slice": slice, "iou_type": kind,
            "stats_a": ma["stats"], "stats_b": mb["stats"], "delta": deltas,
            "per_class": _class_deltas(ma["per_class"], mb["per_class"]),
            "only_a_right": only_a[:limit], "only_b_right": only_b[:limit],
            "only_a_right_count": len(only_a), "only_b_right_count": len(only_b),
        }

    def compare_items(self, run_a: str, run_b: str, *, only: Literal["a", "b"] = "b",
                      slice: str | None = None, page_size: int = 100,
                      cursor: str | None = None) -> dict[str, Any]:
        """One page of the items only one of two committed runs gets right: ``only="b"``
        the items ``run_b`` gets right and ``run_a`` wrong (what b fixes), ``"a"`` the
        reverse (what b breaks), in the order they were added.

        Returns ``{"items": [item JSON], "next_cursor": str | None, "total": int}``; the
        items are exactly ``compare_runs``' ``only_b_right`` (or ``only_a_right``).
        """
        if only not in ("a", "b"):
            raise ValidationError(f"only must be 'a' or 'b', got {only!r}")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValidationError(f"page_size must be 1 to {MAX_PAGE_SIZE}, got {page_size}")
        key = SortKey(t.items.c.pk, False, "number")
        with self.db.read() as conn:
            ra, rb, _ = self._compared(conn, run_a, run_b)
            scope = self._scope(conn, ra.dataset_pk, slice)
            # Tied to the runs and scope by id, so a name reused later cannot reuse it.
            fp = fingerprint("compare", ra.id, rb.id, only, slice)
            right, wrong = (rb, ra) if only == "b" else (ra, rb)
            q = self._only_right(right.pk, wrong.pk, scope, t.items)
            total = conn.scalar(select(func.count()).select_from(q.subquery()))
            served = 0
            if cursor is not None:
                (last,), served = decode_cursor(cursor, [key], fp)
                q = q.where(t.items.c.pk > last)
            rows = conn.execute(q.order_by(t.items.c.pk).limit(page_size + 1)).all()
        more = len(rows) > page_size
        rows = rows[:page_size]
        served += len(rows)
        return {"items": [item_payload(r) for r in rows],
                "next_cursor": encode_cursor([rows[-1].pk], fp, served) if more else None,
                "total": total}

    @staticmethod
    def _only_right(right_pk: int, wrong_pk: int, scope: Any, *columns: Any) -> Any:
        """SELECT ``columns`` of the items run ``right_pk`` gets right and run
        ``wrong_pk`` gets wrong (within ``scope``, a subquery of item pks, if any)."""
        mr = t.match_items.alias("mr")
        mw = t.match_items.alias("mw")
        q = (select(*columns)
             .join(mr, and_(mr.c.item_pk == t.items.c.pk, mr.c.run_pk == right_pk))
             .join(mw, and_(mw.c.item_pk == t.items.c.pk, mw.c.run_pk == wrong_pk))
             .where(mr.c.fp == 0, mr.c.fn == 0, or_(mw.c.fp > 0, mw.c.fn > 0)))
        if scope is not None:
            q = q.where(t.items.c.pk.in_(scope))
        return q
