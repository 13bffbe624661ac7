"""A committed run's match rows, kept in memory by the process that wrote them.

The run page links each big confusion-matrix cell to a committed-match query
(``status = tp and label = "car"``) only where that query is checked to select exactly
the cell's objects (:mod:`ocula.core.services.evaluation_links`). Answering the check in
SQL means reading every committed match row of the run, grouped by label: 2.7M rows and
~2.5 s at 2M predictions, on every request for another label version or scope. Yet the
process that committed the run has those rows in memory (the sides it matched and the
statuses it wrote), so it keeps them here, under the fingerprint of everything the rows
and the queries' view of them depend on (:func:`ocula.core.services.run_results.state`:
the commit time, the latest label version, the dataset's items). A request whose
fingerprint differs (labels edited, items deleted, another commit) reads SQL as before.

Only a commit at the current labels is kept: the queries see current labels, so the
rows of a commit against an older version are not what they select.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from sqlalchemy import Connection

from ocula.core.evaluation import Detections, GroundTruth, MatchStatus
from ocula.core.evaluation.inputs import factorize
from ocula.core.services import run_results
from ocula.core.services.sides_cache import SidesCache, database

__all__ = ["CommittedMatches", "forget_all", "ids_by_label", "keep", "key", "recall"]

# Runs whose rows are kept: the run on the page and the one it is compared with.
_cache = SidesCache(size=2)


def ids_by_label(ids: np.ndarray, labels: np.ndarray, keep: Any) -> dict[Any, np.ndarray]:
    """``{label: ids}`` of the rows ``keep`` selects, each label's ids sorted (as
    :func:`ocula.core.services.evaluation_links.confusion_queries` compares them), in
    one sort."""
    rows = np.flatnonzero(np.broadcast_to(keep, ids.shape))
    if not len(rows):
        return {}
    # The whole column's codes: numbered once per read-only column (inputs._coded).
    values, codes = factorize(labels)
    codes = codes[rows]
    order = np.lexsort((ids[rows], codes))
    starts = np.searchsorted(codes[order], np.arange(len(values) + 1))
    found = ids[rows][order].astype(np.int64)
    return {v: found[a:b] for v, a, b in zip(values.tolist(), starts[:-1].tolist(),
                                             starts[1:].tolist(), strict=True) if b > a}


@dataclass(frozen=True)
class CommittedMatches:
    """The columns of a run's committed match rows that the committed-match queries
    compare: each side's pk, label and item, the predictions' confidence, and the
    statuses."""

    gt_id: np.ndarray
    gt_label: np.ndarray
    gt_image: np.ndarray
    gt_fn: np.ndarray
    dt_id: np.ndarray
    dt_label: np.ndarray
    dt_image: np.ndarray
    dt_score: np.ndarray
    dt_tp: np.ndarray
    dt_fp: np.ndarray

    @classmethod
    def of(cls, gt: GroundTruth, dt: Detections, match: Any) -> CommittedMatches:
        """The rows a commit writes for ``match`` of ``gt`` and ``dt``."""
        status = np.asarray(match.det_status)
        return cls(gt_id=gt.id, gt_label=gt.label, gt_image=gt.image,
                   gt_fn=np.asarray(match.gt_status) == MatchStatus.FN,
                   dt_id=dt.id, dt_label=dt.label, dt_image=dt.image,
                   dt_score=np.asarray(dt.score, dtype=np.float64),
                   dt_tp=status == MatchStatus.TP, dt_fp=status == MatchStatus.FP)

    def by_label(self, kind: str, confidence: float, items: np.ndarray | None
                 ) -> dict[Any, np.ndarray]:
        """What ``plain_query(kind, run, None, confidence)`` selects on ``items`` (all
        when None), grouped by label as ``label = ...`` compares."""
        if kind == "annotation":
            keep = self.gt_fn if items is None else self.gt_fn & np.isin(self.gt_image, items)
            return ids_by_label(self.gt_id, self.gt_label, keep)
        # ``confidence >= c`` as SQL compares it: a missing confidence (NaN) never passes.
        keep = (self.dt_tp if kind == "tp" else self.dt_fp) & (self.dt_score >= confidence)
        if items is not None:
            keep &= np.isin(self.dt_image, items)
        return ids_by_label(self.dt_id, self.dt_label, keep)


def key(conn: Connection, run: Any) -> tuple[Any, ...]:
    """The key of a run's committed rows as ``conn``'s transaction sees them (``run``:
    its row there)."""
    state = orjson.dumps(run_results.state(conn, run, None), option=orjson.OPT_SORT_KEYS)
    return (database(conn), run.pk, state)


def keep(at: tuple[Any, ...], entry: CommittedMatches) -> None:
    """Keep a commit's rows under :func:`key` read in its transaction, once that has
    committed (a commit rolled back keeps nothing)."""
    _cache.put(at, entry)


def recall(conn: Connection, run: Any) -> CommittedMatches | None:
    """The run's committed match rows if this process wrote them and nothing they or
    the queries' view of them depend on has changed since; else None."""
    if run.committed_at is None:
        return None
    return _cache.peek(key(conn, run))


def forget_all() -> None:
    """Empty the cache (tests compare with what SQL answers)."""
    _cache.clear()
