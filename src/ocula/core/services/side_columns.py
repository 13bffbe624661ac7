"""Box evaluation columns from a store's rows: what
:mod:`~ocula.core.services.evaluation_sides` reads and
:mod:`~ocula.core.services.upload_sides` keeps from the values it writes, made by the
same code so the two are equal to the last bit and dtype."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter
from typing import Any

import numpy as np

from ocula.core.evaluation import Detections, GroundTruth

__all__ = ["array_columns", "columns_of", "detections_of", "ground_truth_of", "row_columns"]


def row_columns(rows: list[Any], *, scores: bool) -> dict[str, np.ndarray]:
    """Columns of ``(pk, item_pk, label, x, y, w, h, area, confidence | crowd)`` rows, a
    column at a time (2M rows: 2.2 s row by row, 0.85 s so); labels are numbered once
    and the text array gathered from the distinct ones. NULLs: an empty mask has no
    extent, so its box is [0, 0, 0, 0] (pycocotools' toBbox); a missing area is the
    box's, a missing confidence 1, a missing crowd flag false, a missing label "None"."""
    return columns_of(lambda j: map(itemgetter(j), rows), len(rows), scores=scores)


def columns_of(column_values: Callable[[int], Iterable[Any]], n: int, *,
               scores: bool) -> dict[str, np.ndarray]:
    """`row_columns` of ``n`` rows given column by column: ``column_values(j)`` iterates
    over column ``j``'s values (:mod:`~ocula.core.services.upload_sides` gives the lists
    just written)."""
    def column(j: int, dtype: Any) -> np.ndarray:
        # fromiter reads NULL as NaN for floats, as False for booleans.
        return np.fromiter(column_values(j), dtype, n)

    labels = list(column_values(2))
    seen = set(labels)
    if None in seen:
        labels = ["None" if v is None else v for v in labels]
        seen = set(labels)
    values = sorted(seen)
    at = {v: i for i, v in enumerate(values)}
    codes = np.fromiter(map(at.__getitem__, labels), np.intp, n)
    bbox = np.empty((n, 4), dtype=np.float64)
    for j in range(4):
        bbox[:, j] = column(3 + j, np.float64)
    return _assembled(column(0, np.int64), column(1, np.int64), values, codes, bbox,
                      column(7, np.float64), column(8, np.float64 if scores else bool),
                      scores=scores)


def array_columns(arrays: Sequence[np.ndarray], names: Sequence[str | None], *,
                  scores: bool) -> dict[str, np.ndarray]:
    """`row_columns` of rows read as arrays: pk, item pk, label as a code into ``names``
    (None: a NULL label), x, y, w, h, area, confidence | crowd (NaN for NULL, a crowd
    flag's NULL false)."""
    pk, item, label, x, y, w, h, area, extra = arrays
    n = len(pk)
    named = np.array(["None" if v is None else v for v in names] or [""], dtype=object)
    used = np.unique(label)
    values = sorted(set(named[used].tolist()))
    at = {v: i for i, v in enumerate(values)}
    recode = np.zeros(len(named), dtype=np.intp)
    recode[used] = [at[v] for v in named[used].tolist()]
    bbox = np.empty((n, 4), dtype=np.float64)
    for j, side in enumerate((x, y, w, h)):
        bbox[:, j] = side
    # Copies only of what the NULL rules change in place (the caller's arrays stay).
    return _assembled(np.asarray(pk, dtype=np.int64), np.asarray(item, dtype=np.int64),
                      values, recode[label], bbox, area.astype(np.float64),
                      extra.astype(np.float64 if scores else bool), scores=scores)


def _assembled(ids: np.ndarray, images: np.ndarray, values: list[str], codes: np.ndarray,
               bbox: np.ndarray, area: np.ndarray, extra: np.ndarray, *,
               scores: bool) -> dict[str, np.ndarray]:
    """The columns, ``values[codes]`` the labels, with the NULL rules of
    :func:`row_columns` applied."""
    bbox = np.nan_to_num(bbox)
    missing = np.isnan(area)
    # Ground truth keeps the area as stored too (match rows hold it: see GroundTruth).
    stored = None if scores else area.copy()
    area[missing] = bbox[missing, 2] * bbox[missing, 3]
    if scores:
        extra[np.isnan(extra)] = 1.0
    out = {
        "id": ids, "image": images,
        "label": (np.array(values, dtype=str)[codes] if len(ids)
                  else np.array([], dtype=str)),
        "bbox": bbox, "area": area, "extra": extra,
    }
    if stored is not None:
        out["stored_area"] = stored
    return out


def detections_of(c: dict[str, np.ndarray]) -> Detections:
    """The predictions side of box evaluation from :func:`columns_of`'s columns."""
    return Detections(c["image"], c["label"], c["bbox"], c["extra"], area=c["area"],
                      id=c["id"])


def ground_truth_of(c: dict[str, np.ndarray]) -> GroundTruth:
    """The ground truth side of box evaluation from :func:`columns_of`'s columns."""
    return GroundTruth(c["image"], c["label"], c["bbox"], area=c["area"],
                       iscrowd=c["extra"], id=c["id"], stored_area=c.get("stored_area"))
