"""What a commit keeps for the run page: the metrics body and the failure summary of the
whole dataset and of each item slice, from the sides just matched (see
:mod:`ocula.core.services.run_results` for when they are served).

The work splits in two. :meth:`ResultKeeping._kept_bodies` is pure computation on the
sides in memory plus reads that the commit does not change (label order, public ids,
slice members), so it can run on a read connection of its own while the commit writes
its match rows. :meth:`ResultKeeping._keep_results` runs in the commit's transaction:
the fingerprints (which name the new commit time), the failure counts that read the
match rows just written, and the rows kept.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection

from ocula.core.evaluation import Detections, GroundTruth, LabelSpace, MatchStatus
from ocula.core.evaluation.coco import accumulate_coco
from ocula.core.evaluation.inputs import distinct, factorize
from ocula.core.priority import lower_priority
from ocula.core.services import run_results
from ocula.core.services.base import ServiceBase
from ocula.core.services.committed_matches import CommittedMatches
from ocula.core.services.evaluation_links import failure_queries, plain_queries
from ocula.core.services.insights_scan import quote
from ocula.core.services.metrics_body import (
    coco_matches_of,
    confusion_of,
    metrics_body,
    on_rows,
    rows_on_items,
    scope_labels,
)
from ocula.core.store import schema as t

__all__ = ["ResultKeeping"]

log = logging.getLogger(__name__)


def _mask(n: int, rows: np.ndarray) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[rows] = True
    return out


def _most_per_image_and_label(dt: Detections) -> int:
    if not len(dt):
        return 0
    _, codes = factorize(dt.label)
    groups = np.asarray(dt.image, dtype=np.int64) * (int(codes.max()) + 1) + codes
    return int(np.unique(groups, return_counts=True)[1].max())


@dataclass
class _Kept:
    """One scope's computed numbers, waiting for the commit's transaction."""
    slice_pk: int | None
    members: np.ndarray | None
    metrics: dict[str, Any]
    false_positives: dict[str, int]
    #: Other answers kept for the scope, by ``run_results`` kind (the run page's TIDE).
    more: dict[str, dict[str, Any]]


class _Keeper:
    """A commit's kept numbers in the making (see ``ResultKeeping._keeping_beside``):
    the sides, and the worker threads they are computed on, if any."""

    def __init__(self, service: ResultKeeping, conn: Connection, run: Any,
                 config: dict[str, Any], gt: GroundTruth, dt: Detections, pair_iou: Any,
                 wanted: bool) -> None:
        self.service, self.conn, self.run, self.config = service, conn, run, config
        self.gt, self.dt, self.pair_iou, self.wanted = gt, dt, pair_iou, wanted
        self.order: list[str] = (service._coco_label_order(  # type: ignore[attr-defined]
            conn, run.dataset_pk) if wanted else [])
        self.pool: ThreadPoolExecutor | None = None
        self.whole: Future[tuple[Any, Any]] | None = None

    def whole_dataset(self) -> tuple[Any, Any]:
        """COCO's matching and the confusion matrix of the whole dataset (what each
        scope's are cut from): they need no commit matching, so they start first."""
        return (coco_matches_of(self.gt, self.dt, self.pair_iou, self.order,
                                self.config["iou_type"]),
                confusion_of(self.gt, self.dt, self.pair_iou, iou=0.5,
                             confidence_threshold=0.5))

    def submit(self, fn: Any, *args: Any) -> Future[Any]:
        """``fn(conn, *args)`` on a worker with a read connection of its own, or now on
        the commit's connection without workers."""
        if self.pool is None:
            done: Future[Any] = Future()
            done.set_result(fn(self.conn, *args))
            return done

        def call() -> Any:
            with self.service.db.read() as reader:
                return fn(reader, *args)
        return self.pool.submit(call)

    def start(self, match: Any) -> Future[list[_Kept]] | None:
        """Compute the kept numbers from the commit's matching; None if none are kept."""
        if not self.wanted:
            return None
        if self.whole is None:
            self.whole = self.submit(lambda _conn: self.whole_dataset())
        return self.submit(self.service._kept_bodies, self, match)


class ResultKeeping(ServiceBase):
    """Mixin of the evaluation service: the results a commit keeps."""

    @contextmanager
    def _keeping_beside(self, wanted: bool, conn: Connection, run: Any,
                        config: dict[str, Any], gt: GroundTruth, dt: Detections,
                        pair_iou: Any) -> Iterator[_Keeper]:
        """Compute the kept numbers beside the commit's own work. Where the store has
        read connections beside the writer's, on two worker threads: the whole
        dataset's COCO matching and confusion matrix start at once, while the block
        matches the commit's rows; the rest (:meth:`_Keeper.start`) while it writes
        them (numpy's loops and SQLite's index builds release the GIL, so on two cores
        they overlap). Else all on ``conn``, when started.

        The workers run niced (:func:`~ocula.core.priority.lower_priority`): the writer's
        inserts and index builds are the commit's critical path, and the workers'
        numbers are needed only at its end. At equal priority the three threads shared
        two cores and the writer finished seconds after the workers (100k images, three
        interleaved rounds: 20.8/16.8/18.8 s; niced 17.4/15.6/16.3 s)."""
        keeper = _Keeper(self, conn, run, config, gt, dt, pair_iou, wanted)
        if not wanted or not self.db.reads_beside_writes:
            yield keeper
            return
        # Shut down waiting: a write that failed must not leave the threads reading.
        with ThreadPoolExecutor(2, thread_name_prefix="ocula-keep",
                                initializer=lower_priority) as pool:
            keeper.pool = pool
            keeper.whole = pool.submit(keeper.whole_dataset)
            yield keeper

    def _kept_bodies(self, conn: Connection, keeper: _Keeper, match: Any) -> list[_Kept]:
        """The metrics body, false positives by cause and analyses of the whole dataset
        and each item slice, from the sides just matched with the commit's ``config``.
        Reads only what the commit does not write."""
        run, config, gt, dt, pair_iou = (keeper.run, keeper.config, keeper.gt, keeper.dt,
                                         keeper.pair_iou)
        iou_type = config["iou_type"]
        order = keeper.order
        run_q = f"run = {quote(run.name)}"
        fp = match.det_status == MatchStatus.FP
        committed = CommittedMatches.of(gt, dt, match)
        fp_best_iou = np.where(match.det_gt_id >= 0, match.det_iou, match.det_best_iou)
        # The committed-match query of each label and kind (what confusion_queries may
        # ask), answered from the matches being written: after the commit the match
        # rows are these and the labels current, so no query needs to run.
        plain = plain_queries(run_q, distinct(gt.label, dt.label).tolist(), 0.5)

        # Public ids read once for every scope: a slice's id-listed cells are mostly
        # entries of the dataset's (PostgreSQL, 2M predictions: ~0.5 s a scope).
        known: dict[str, dict[int, str]] = {"annotation": {}, "prediction": {}}

        def names(kind: str, pks: np.ndarray) -> dict[int, str]:
            have = known[kind]
            missing = [p for p in np.unique(pks).tolist() if p not in have]
            if missing:
                table = t.annotations if kind == "annotation" else t.predictions
                have.update(self._public_ids(  # type: ignore[attr-defined]
                    conn, table, np.asarray(missing, dtype=np.int64)))
            return have

        # The commit's own matching is the metrics' (IoU 0.5, per class, 100 detections
        # an image and class) when its options are the defaults and no image holds more
        # than 100 detections of one class.
        same_match = (config["iou_threshold"] == 0.5 and not config["class_agnostic"]
                      and not config["allowed_label_matches"]
                      and _most_per_image_and_label(dt) <= 100)
        scopes = []
        for slice_pk in [None, *run_results.item_slices(conn, run.dataset_pk)]:
            members = None if slice_pk is None else run_results.slice_members(conn, slice_pk)
            if members is None:
                sides, d_in = (gt, dt, pair_iou), True
                scope_match = match if same_match else None
            else:
                g_rows, d_rows = rows_on_items(gt, dt, members)
                sides = on_rows(gt, dt, pair_iou, g_rows, d_rows)
                d_in = _mask(len(dt), d_rows)
                # Images are matched independently: a slice's matching is the commit's
                # (and below its COCO matching and confusion matrix are the whole
                # dataset's), cut to it.
                scope_match = (match.on_rows(g_rows, d_rows, members)
                               if same_match else None)
            scopes.append((slice_pk, members, sides, d_in, scope_match))
        # The analyses of every scope on the other worker, while the bodies are built.
        pending = keeper.submit(self._scope_analyses, keeper,
                                [(members, sides) for _, members, sides, *_ in scopes],
                                match if same_match else None)
        whole_coco, whole_cm = keeper.whole.result()
        out = []
        for slice_pk, members, sides, d_in, scope_match in scopes:
            if members is None:
                coco, cm = accumulate_coco(whole_coco), whole_cm
            else:
                coco = accumulate_coco(whole_coco, members,
                                       scope_labels(order, sides[0], sides[1]))
                cm = whole_cm.on_images(members, LabelSpace.union(
                    sides[0].label, sides[1].label).tolist())
            by_label = {kind: committed.by_label(kind, 0.5, members)
                        for kind in ("annotation", "tp", "fp")}

            def selects(_conn: Connection, q: str, pks: np.ndarray,
                        by_label: Any = by_label) -> bool:
                kind, label = plain[q]
                return np.array_equal(by_label[kind].get(label, pks[:0]), pks)

            body = metrics_body(conn, *sides, order, iou=0.5, confidence_threshold=0.5,
                                iou_type=iou_type, run_name=run.name, committed=True,
                                past_labels=False, items=None, names=names,
                                selects=selects, cells=False, match=scope_match,
                                coco=coco, confusion=cm)
            # False positives by cause from the IoU column being written (the same
            # doubles the SQL compares).
            fp_iou = fp_best_iou[d_in & fp] if members is not None else fp_best_iou[fp]
            thr = float(config["iou_threshold"])
            dup = fp_iou >= thr  # NaN compares false, as NULL falls to ELSE in SQL
            loc = ~dup & (fp_iou >= 0.1)
            fps = {"duplicate": int(np.count_nonzero(dup)),
                   "localisation": int(np.count_nonzero(loc)),
                   "background": int(np.count_nonzero(~dup & ~loc))}
            out.append(_Kept(slice_pk, members, body, fps, {}))
        for kept, more in zip(out, pending.result(), strict=True):
            kept.more = more
        return out

    def _scope_analyses(self, conn: Connection, keeper: _Keeper,
                        scopes: list[tuple[np.ndarray | None, tuple[Any, ...]]],
                        match: Any) -> list[dict[str, dict[str, Any]]]:
        """:meth:`_kept_analyses` of every scope; analyses that fail are left to the
        first request (logged), never failing the commit."""
        try:
            return self._kept_analyses(conn, keeper.run, keeper.config, keeper.gt,
                                       keeper.dt, keeper.pair_iou, keeper.order, scopes,
                                       match=match)
        except Exception:  # noqa: BLE001 - a cache must never fail the commit
            # The answer is then computed when first asked, where its error shows.
            log.exception("keeping the analyses of run %s failed; left to the first "
                          "request", keeper.run.name)
            return [{} for _ in scopes]

    def _kept_analyses(self, conn: Connection, run: Any, config: dict[str, Any],
                       gt: GroundTruth, dt: Detections, pair_iou: Any, order: list[str],
                       scopes: list[tuple[np.ndarray | None, tuple[Any, ...]]],
                       match: Any = None) -> list[dict[str, dict[str, Any]]]:
        """Analyses' answers to keep for each scope (``(item pks or None, its sides)``)
        at the commit, by ``run_results`` kind (``match``: the commit's matching of the
        whole dataset, where it is the metrics'); none here (the analysis service keeps
        the run page's TIDE)."""
        return [{} for _ in scopes]

    def _keep_results(self, conn: Connection, run: Any, kept: list[_Kept],
                      misses: dict[int | None, dict[str, int]]) -> None:
        """Keep each scope's numbers, in the commit's transaction (``run``: its row as
        the commit left it; ``misses``: each scope's misses by size, by slice pk, which
        need the stored areas: SQL over the match rows just written)."""
        for scope in kept:
            fingerprint = run_results.state(conn, run, scope.slice_pk, scope.members)
            run_results.keep(conn, run.pk, run_results.METRICS, scope.slice_pk,
                             fingerprint, scope.metrics)
            # A slice made on PostgreSQL since the caller listed them has no count yet.
            failures = self._failure_counts(  # type: ignore[attr-defined]
                conn, run, run_results.slice_items(scope.slice_pk), scope.false_positives,
                misses.get(scope.slice_pk))
            # The failure queries read the match rows just written: they count the same.
            failures["queries"] = failure_queries(run.name, failures["iou_threshold"])
            run_results.keep(conn, run.pk, run_results.FAILURES, scope.slice_pk,
                             fingerprint, failures)
            for kind, body in scope.more.items():
                run_results.keep(conn, run.pk, kind, scope.slice_pk, fingerprint, body)
