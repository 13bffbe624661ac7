"""Columnar inputs of the evaluation engine, and loaders for COCO JSON.

The engine never sees annotation objects: ground truth and detections are each a set of
aligned 1-D numpy columns (one row per box), which is what a SQL query returns cheaply.

* ``image`` — any sortable key (int or str) naming the image. Rows with the same key are on
  the same image. Keys also fix the order in which images are visited: pycocotools breaks
  ties in detection score by ascending image id, and so does Ocula, by ascending key.
* ``label`` — the category, int or str (do not mix the two kinds).
* ``bbox`` — ``(N, 4)`` float boxes ``x, y, width, height`` in pixels.
* ``area`` — defaults to ``width * height``. COCO ground truth carries its own area (the
  segment's), and that is what the area ranges (small/medium/large) test.
* ``iscrowd`` (ground truth only) — crowd regions absorb detections without counting.
* ``ignore`` (ground truth only) — rows that count neither way, like a crowd region, but
  absorb at most one detection each, like any other ground truth (pycocotools' ``ignore``
  for keypoints: a person without labelled keypoints). Defaults to all false.
* ``score`` (detections only) — confidence; higher is better.
* ``id`` — an integer id per row, echoed back in results (defaults to ``0..N-1``).

Row order matters in one place only: among detections of one image and category with
equal scores, the earlier row is ranked first (pycocotools' stable sort), and among ground
truth with equal IoU to a detection, the later row wins (pycocotools' scan order).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ocula.errors import ValidationError

__all__ = [
    "Detections",
    "GroundTruth",
    "LabelSpace",
    "detections_from_coco",
    "ground_truth_from_coco",
    "stable_argsort",
]


def _column(
    values: npt.ArrayLike | None, n: int, name: str, dtype: Any, default: Any
) -> np.ndarray:
    if values is None:
        return np.full(n, default, dtype=dtype)
    arr = np.asarray(values, dtype=dtype).reshape(-1)
    if len(arr) != n:
        raise ValidationError(f"column {name!r} has {len(arr)} rows, expected {n}")
    return arr


def _labels(values: npt.ArrayLike, n: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1 and arr.size == n:
        arr = arr.reshape(-1)
    if len(arr) != n:
        raise ValidationError(f"column 'label' has {len(arr)} rows, expected {n}")
    if n == 0:
        return arr.astype(np.int64) if arr.dtype.kind in "fiub" else arr
    if arr.dtype.kind == "O":
        # Python objects: keep ints as ints, everything else as text.
        arr = np.array([str(v) if not isinstance(v, int | np.integer) else v for v in arr])
    if arr.dtype.kind == "f":
        if not np.all(arr == np.round(arr)):
            raise ValidationError("numeric labels must be integers")
        arr = arr.astype(np.int64)
    return arr


def _boxes(values: npt.ArrayLike, n: int | None = None) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        arr = arr.reshape(0, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValidationError(f"bbox must have shape (N, 4) in xywh, got {arr.shape}")
    if n is not None and len(arr) != n:
        raise ValidationError(f"column 'bbox' has {len(arr)} rows, expected {n}")
    return arr


class GroundTruth:
    """Ground-truth boxes as aligned columns (see the module docstring for semantics)."""

    __slots__ = ("image", "label", "bbox", "area", "iscrowd", "ignore", "id", "stored_area")

    image: np.ndarray
    label: np.ndarray
    bbox: np.ndarray
    area: np.ndarray
    iscrowd: np.ndarray
    ignore: np.ndarray
    id: np.ndarray
    #: The area as the store holds it (NaN where it holds none, which ``area`` fills in),
    #: where the side was read from a store's rows; else None. A commit writes it beside
    #: each match so that "missed boxes, largest first" reads one index.
    stored_area: np.ndarray | None

    def __init__(
        self,
        image: npt.ArrayLike,
        label: npt.ArrayLike,
        bbox: npt.ArrayLike,
        *,
        area: npt.ArrayLike | None = None,
        iscrowd: npt.ArrayLike | None = None,
        id: npt.ArrayLike | None = None,  # noqa: A002 - mirrors the COCO field name
        ignore: npt.ArrayLike | None = None,
        stored_area: npt.ArrayLike | None = None,
    ) -> None:
        self.bbox = _boxes(bbox)
        n = len(self.bbox)
        self.image = np.asarray(image).reshape(-1)
        if len(self.image) != n:
            raise ValidationError(f"column 'image' has {len(self.image)} rows, expected {n}")
        self.label = _labels(label, n)
        self.area = (
            self.bbox[:, 2] * self.bbox[:, 3]
            if area is None
            else _column(area, n, "area", np.float64, 0.0)
        )
        self.iscrowd = _column(iscrowd, n, "iscrowd", bool, False)
        self.ignore = _column(ignore, n, "ignore", bool, False)
        self.id = np.arange(n, dtype=np.int64) if id is None else _column(id, n, "id", np.int64, 0)
        self.stored_area = None
        if stored_area is not None:
            self.stored_area = np.asarray(stored_area, dtype=np.float64).reshape(-1)
            if len(self.stored_area) != n:
                raise ValidationError(f"column 'stored_area' has {len(self.stored_area)} "
                                      f"rows, expected {n}")

    def __len__(self) -> int:
        return len(self.bbox)

    def subset(self, rows: npt.ArrayLike) -> GroundTruth:
        """A new :class:`GroundTruth` holding only ``rows`` (an index or boolean mask)."""
        idx = np.asarray(rows)
        return GroundTruth(
            self.image[idx], self.label[idx], self.bbox[idx],
            area=self.area[idx], iscrowd=self.iscrowd[idx], id=self.id[idx],
            ignore=self.ignore[idx],
            stored_area=None if self.stored_area is None else self.stored_area[idx],
        )


class Detections:
    """Detected boxes with confidences as aligned columns (see the module docstring)."""

    __slots__ = ("image", "label", "bbox", "score", "area", "id")

    image: np.ndarray
    label: np.ndarray
    bbox: np.ndarray
    score: np.ndarray
    area: np.ndarray
    id: np.ndarray

    def __init__(
        self,
        image: npt.ArrayLike,
        label: npt.ArrayLike,
        bbox: npt.ArrayLike,
        score: npt.ArrayLike,
        *,
        area: npt.ArrayLike | None = None,
        id: npt.ArrayLike | None = None,  # noqa: A002 - mirrors the COCO field name
    ) -> None:
        self.bbox = _boxes(bbox)
        n = len(self.bbox)
        self.image = np.asarray(image).reshape(-1)
        if len(self.image) != n:
            raise ValidationError(f"column 'image' has {len(self.image)} rows, expected {n}")
        self.label = _labels(label, n)
        self.score = _column(score, n, "score", np.float64, 0.0)
        if np.isnan(self.score).any():
            raise ValidationError("detection scores must not be NaN")
        self.area = (
            self.bbox[:, 2] * self.bbox[:, 3]
            if area is None
            else _column(area, n, "area", np.float64, 0.0)
        )
        self.id = np.arange(n, dtype=np.int64) if id is None else _column(id, n, "id", np.int64, 0)

    def __len__(self) -> int:
        return len(self.bbox)

    def subset(self, rows: npt.ArrayLike) -> Detections:
        """A new :class:`Detections` holding only ``rows`` (an index or boolean mask)."""
        idx = np.asarray(rows)
        return Detections(
            self.image[idx], self.label[idx], self.bbox[idx], self.score[idx],
            area=self.area[idx], id=self.id[idx],
        )


class FrozenMemo:
    """Values computed once per read-only array: the sides kept between requests
    (read-only arrays) are asked for the same derived columns by every step of a commit
    — its matching, COCO's, the confusion matrix, TIDE, the digests. Keyed by the
    array's identity, and only for arrays nobody can write (a writable one could change
    under its entry); a dead array drops its entry. Values should be read-only too."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[weakref.ref[np.ndarray], Any]] = {}
        self._lock = threading.Lock()

    def get(self, column: np.ndarray, compute: Any) -> Any:
        """``compute(column)``, kept while ``column`` lives if it is read-only."""
        if not _frozen(column):
            return compute(column)
        key = id(column)
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and hit[0]() is column:
                return hit[1]
        value = compute(column)
        with self._lock:
            ref = weakref.ref(column, lambda r, key=key: self._forget(key, r))
            self._entries[key] = (ref, value)
        return value

    def _forget(self, key: int, ref: weakref.ref[np.ndarray]) -> None:
        with self._lock:
            if key in self._entries and self._entries[key][0] is ref:
                del self._entries[key]


def _text_codes(column: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    items = column.tolist()
    values = sorted(set(items))
    at = {v: i for i, v in enumerate(values)}
    return np.array(values), np.fromiter(map(at.__getitem__, items), np.intp, len(items))


def _frozen(column: np.ndarray) -> bool:
    """Whether nothing can change ``column``'s values: it and what it views are
    read-only."""
    base = column.base
    return not column.flags.writeable and (base is None or isinstance(base, bytes) or (
        isinstance(base, np.ndarray) and not base.flags.writeable))


def _frozen_codes(column: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values, codes = _text_codes(column)
    values.flags.writeable = codes.flags.writeable = False
    return values, codes


# Label columns numbered once (hashing 2.7M strings costs ~0.25 s a time).
_CODED = FrozenMemo()


def _coded(column: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(sorted distinct values, codes)`` of a text column, numbered once per
    read-only array (a writable one's codes are its caller's to change)."""
    if not _frozen(column):
        return _text_codes(column)
    return _CODED.get(column, _frozen_codes)


def distinct(*columns: np.ndarray) -> np.ndarray:
    """The distinct values of ``columns``, sorted as ``np.unique`` sorts them. Text goes
    through a set: sorting millions of strings to find 80 labels costs 0.6 s, hashing
    them 0.2 s (once per read-only column: see ``_coded``)."""
    nonempty = [c for c in columns if len(c)]
    if not nonempty:
        return np.concatenate(columns) if columns else np.zeros(0, dtype=np.int64)
    if not all(c.dtype.kind == "U" for c in nonempty):
        return np.unique(np.concatenate(nonempty))
    seen: set[Any] = set()
    for c in nonempty:
        seen.update(_coded(c)[0].tolist() if _frozen(c) else c.tolist())
    return np.array(sorted(seen))


def factorize(column: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(column, return_inverse=True)`` (the inverse flat). Text goes through a
    dict: sorting 2.7M labels to number them costs 0.7 s, looking them up 0.25 s (once
    per read-only column: see ``_coded``; its codes are then read-only too)."""
    if column.dtype.kind in "iu" and len(column):
        dense = _dense_factorize(column)
        if dense is not None:
            return dense
    if column.dtype.kind != "U" or not len(column):
        values, inverse = np.unique(column, return_inverse=True)
        return values, inverse.reshape(-1)
    return _coded(column)


def stable_argsort(keys: np.ndarray) -> np.ndarray:
    """``np.argsort(keys, kind="stable")``. Integer keys in ``[0, 2**32)`` (image keys,
    group numbers) sort as one or two passes of numpy's radix sort over 16-bit halves,
    low half first: ~3x faster than its merge sort on 2M keys, the same order."""
    if keys.dtype.kind not in "iu" or len(keys) < 4096:
        return np.argsort(keys, kind="stable")
    lo, hi = int(keys.min()), int(keys.max())
    if lo < 0 or hi >= 2**32:
        return np.argsort(keys, kind="stable")
    if hi < 2**16:
        return np.argsort(keys.astype(np.uint16), kind="stable")
    by_low = np.argsort((keys & 0xFFFF).astype(np.uint16), kind="stable")
    return by_low[np.argsort((keys[by_low] >> 16).astype(np.uint16), kind="stable")]


def _dense_factorize(column: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`factorize` of integers spanning a range not much wider than their count
    (image keys, row numbers) by a table of the range instead of a sort: the image keys
    of 2.7M boxes took ~0.3 s through ``np.unique``, each time a matching numbered its
    images. None when the range is too wide for a table."""
    lo, hi = int(column.min()), int(column.max())
    if hi - lo > 4 * len(column) + 1024:
        return None
    shifted = column.astype(np.int64) - lo
    present = np.zeros(hi - lo + 1, dtype=bool)
    present[shifted] = True
    code = np.cumsum(present, dtype=np.int64) - 1
    return (np.flatnonzero(present) + lo).astype(column.dtype), code[shifted]


class LabelSpace:
    """The ordered list of categories an evaluation reports on, and label → index lookup.

    Args:
        labels: the categories in report order. Rows whose label is not listed are left
            out of the evaluation (as pycocotools drops detections of unknown categories).
    """

    def __init__(self, labels: Sequence[Any] | np.ndarray) -> None:
        arr = np.asarray(labels)
        if arr.size == 0 or arr.dtype.kind == "f":
            arr = arr.astype(np.int64)
        if len(np.unique(arr)) != len(arr):
            raise ValidationError("category labels must be unique")
        self.labels = arr
        self._order = np.argsort(arr, kind="stable")
        self._sorted = arr[self._order]

    @classmethod
    def union(cls, *columns: np.ndarray) -> LabelSpace:
        """Every label seen in ``columns``, sorted (numbers numerically, text lexically)."""
        nonempty = [c for c in columns if len(c)]
        if not nonempty:
            return cls(np.zeros(0, dtype=np.int64))
        kinds = {"num" if c.dtype.kind in "iub" else "text" for c in nonempty}
        if len(kinds) > 1:
            raise ValidationError("labels mix numbers and text; use one kind for all rows")
        return cls(distinct(*nonempty))

    def __len__(self) -> int:
        return len(self.labels)

    def index(self, values: np.ndarray) -> np.ndarray:
        """Index of each value in :attr:`labels`, or -1 where the label is not listed."""
        if len(values) == 0 or len(self.labels) == 0:
            return np.full(len(values), -1, dtype=np.int64)
        if (values.dtype.kind in "iub") != (self._sorted.dtype.kind in "iub"):
            raise ValidationError("labels mix numbers and text; use one kind for all rows")
        if values.dtype.kind == "U" and len(values) > 4 * len(self.labels):
            # Each distinct label looked up once, then gathered by code.
            distinct_values, codes = factorize(values)
            return self._search(distinct_values)[codes]
        return self._search(values)

    def _search(self, values: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self._sorted, values)
        pos = np.minimum(pos, len(self._sorted) - 1)
        found = self._sorted[pos] == values
        return np.where(found, self._order[pos], -1).astype(np.int64)

    def tolist(self) -> list[Any]:
        """The labels as plain Python values."""
        return self.labels.tolist()


# --- COCO JSON ------------------------------------------------------------------------


def ground_truth_from_coco(dataset: dict[str, Any]) -> tuple[GroundTruth, list[int]]:
    """Columns from a COCO *instances* dict (``images``, ``annotations``, ``categories``).

    Returns the ground truth (image = COCO image id, label = category id, id = annotation
    id) and the list of category ids, which is the label space pycocotools evaluates.
    """
    anns: Iterable[dict[str, Any]] = dataset.get("annotations") or []
    anns = list(anns)
    n = len(anns)
    bbox = np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(n, 4)
    gt = GroundTruth(
        np.array([a["image_id"] for a in anns], dtype=np.int64),
        np.array([a["category_id"] for a in anns], dtype=np.int64),
        bbox,
        # pycocotools reads ann["area"]; fall back to the box area when it is absent.
        area=np.array(
            [a["area"] if a.get("area") is not None else a["bbox"][2] * a["bbox"][3]
             for a in anns],
            dtype=np.float64,
        ),
        iscrowd=np.array([bool(a.get("iscrowd", 0)) for a in anns], dtype=bool),
        id=np.array([a.get("id", i + 1) for i, a in enumerate(anns)], dtype=np.int64),
    )
    categories = sorted(int(c["id"]) for c in dataset.get("categories") or [])
    return gt, categories


def detections_from_coco(results: Sequence[dict[str, Any]]) -> Detections:
    """Columns from a COCO *results* list (``image_id``, ``category_id``, ``bbox``, ``score``).

    As pycocotools' ``loadRes`` does, ids are assigned ``1..N`` in file order and the area
    is the box area.
    """
    n = len(results)
    bbox = np.array([r["bbox"] for r in results], dtype=np.float64).reshape(n, 4)
    return Detections(
        np.array([r["image_id"] for r in results], dtype=np.int64),
        np.array([r["category_id"] for r in results], dtype=np.int64),
        bbox,
        np.array([r["score"] for r in results], dtype=np.float64),
        id=np.arange(1, n + 1, dtype=np.int64),
    )
