"""Checks of annotation and prediction batches against the items they refer to.

A batch of plain boxes (the bulk of any large upload) is read and checked column by
column with numpy; anything else, and any box that may fail, goes through
:func:`check_object`, which explains.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter, itemgetter
from typing import Any

import numpy as np

from ocula.core.types import BoxAnnotation, BoxPrediction
from ocula.core.validation import (
    EDGE_TOLERANCE,
    check_annotation,
    dump_metadata,
    dump_metadata_column,
    unstorable,
)
from ocula.errors import NotFoundError, OculaError, ValidationError

_NUMBER_TYPES = {int, float}


# The fields of a box read by the column-wise paths (checks, keys, rows).
BOX_FIELDS = ("reference_id", "annotation_id", "label", "x", "y", "width", "height",
              "metadata", "iscrowd", "area", "track_reference_id")


def box_columns(objs: Sequence[Any], *, prediction: bool = False) -> dict[str, list[Any]] | None:
    """For a batch of plain boxes (exactly BoxAnnotation, or BoxPrediction): each field as
    a list, read from the objects in one pass over them (at a million objects every pass
    costs cache misses). None for any other batch."""
    if not objs or set(map(type, objs)) != {BoxPrediction if prediction else BoxAnnotation}:
        return None
    fields = (*BOX_FIELDS, "confidence", "class_pdf") if prediction else BOX_FIELDS
    dicts = list(map(attrgetter("__dict__"), objs))
    try:
        return {name: list(map(itemgetter(name), dicts)) for name in fields}
    except KeyError:  # an attribute deleted from an instance
        return None


def check_batch(objs: Sequence[Any], items: dict[str, Any], allowed: list[str] | None, *,
                prediction: bool = False, columns: dict[str, list[Any]] | None = None
                ) -> tuple[list[OculaError], list[str | None]]:
    """Every error of a batch of annotations (or predictions), in order, and each one's
    metadata as JSON: :func:`check_objects`, plus an error for each entry that is not an
    annotation (a prediction)."""
    if all(_accepted(kind, prediction) for kind in set(map(type, objs))):
        return check_objects(objs, items, allowed, prediction=prediction, columns=columns)
    errors: list[OculaError] = []
    metadata: list[str | None] = []
    for obj in objs:
        err, meta = (check_object(obj, items, allowed, prediction=prediction)
                     if _accepted(type(obj), prediction) else (_refused(obj, prediction), None))
        if err is not None:
            errors.append(err)
        metadata.append(meta)
    return errors, metadata


def _accepted(kind: type, prediction: bool) -> bool:
    if prediction:
        return bool(getattr(kind, "is_prediction", False))
    return hasattr(kind, "type") and hasattr(kind, "to_payload")


def _refused(obj: Any, prediction: bool) -> OculaError:
    if prediction:
        return ValidationError(f"expected a prediction (e.g. BoxPrediction), got "
                               f"{type(obj).__name__}",
                               reference_id=getattr(obj, "reference_id", None))
    return ValidationError(f"not an annotation: {type(obj).__name__}")


def check_objects(objs: Sequence[Any], items: dict[str, Any], allowed: list[str] | None, *,
                  prediction: bool = False, columns: dict[str, list[Any]] | None = None
                  ) -> tuple[list[OculaError], list[str | None]]:
    """:func:`check_object` over a batch: every error, and each object's metadata as JSON
    (None where it failed). ``columns``: :func:`box_columns` of ``objs`` if already read.

    A batch of plain boxes (the bulk of any large upload) is checked column by column;
    the boxes that fail, and batches of anything else, go through check_object, which
    explains."""
    metadata: list[str | None] | None = None
    bad: Any = range(len(objs))
    if columns is None:
        columns = box_columns(objs, prediction=prediction)
    if columns is not None and (allowed is None or "box" in allowed):
        bad = _bad_boxes(columns, items, prediction)
    if columns is not None and len(bad) < len(objs):
        metadata = dump_metadata_column(columns["metadata"])
    if metadata is None:
        bad = range(len(objs))  # check_object below serialises or reports each entry
        metadata = [None] * len(objs)
    errors: list[OculaError] = []
    for i in bad:
        err, metadata[i] = check_object(objs[i], items, allowed, prediction=prediction)
        if err is not None:
            errors.append(err)
    return errors, metadata


def _bad_boxes(columns: dict[str, list[Any]], items: dict[str, Any], prediction: bool) -> Any:
    """Indexes of the boxes that :func:`~ocula.core.validation.check_annotation` may
    reject: on an unknown item, without a non-blank string label, with coordinates that
    are not finite numbers or lie outside the image (with the edge tolerance), with a
    confidence outside [0, 1], or with a text that cannot be stored. All of them when the
    batch is not that simple."""
    everything = range(len(columns["x"]))
    keys = list(map(items.get, columns["reference_id"]))
    coords = [columns[name] for name in ("x", "y", "width", "height")]
    if None in keys or not all(set(map(type, c)) <= _NUMBER_TYPES for c in coords):
        return everything
    if any(track is not None for track in columns["track_reference_id"]):
        return everything  # tracks are checked one by one
    try:
        labels = set(columns["label"])
        x, y, w, h = np.array(coords, dtype=float)
    except (TypeError, OverflowError):  # an unhashable label, a huge integer
        return everything
    if not all(type(label) is str and label.strip() and not unstorable(label)
               for label in labels):
        return everything
    ids = list(filter(None, columns["annotation_id"]))
    if unstorable("\x01".join(ids if set(map(type, ids)) <= {str} else map(str, ids))):
        return everything
    width, height = np.array([list(map(attrgetter("width"), keys)),
                              list(map(attrgetter("height"), keys))], dtype=float)
    tol = EDGE_TOLERANCE
    with np.errstate(invalid="ignore", over="ignore"):
        ok = ((w >= 0) & (h >= 0) & (x >= -tol) & (y >= -tol) & (x + w <= width + tol)
              & (y + h <= height + tol) & np.isfinite(x + y + w + h))
        if prediction:
            confidence = columns["confidence"]
            if not set(map(type, confidence)) <= {int, float, type(None)}:
                return everything
            pdfs = [pdf for pdf in columns["class_pdf"] if pdf]
            if any(unstorable(str(k)) for pdf in pdfs if isinstance(pdf, dict) for k in pdf):
                return everything
            # No confidence is fine (read as 0.5 here); NaN fails both comparisons.
            conf = np.array([0.5 if c is None else c for c in confidence], dtype=float)
            ok &= (conf >= 0) & (conf <= 1)
    return np.flatnonzero(~ok).tolist()


def check_object(obj: Any, items: dict[str, Any], allowed: list[str] | None, *,
                 prediction: bool = False) -> tuple[OculaError | None, str | None]:
    """Validate one annotation or prediction against the items it may refer to.

    Returns the first error, or None and the object's metadata serialised for storage.
    """
    kind = "prediction" if prediction else "annotation"
    item = items.get(obj.reference_id)
    if obj.reference_id and item is None:
        return NotFoundError(f"{kind} refers to unknown reference_id {obj.reference_id!r}",
                             reference_id=obj.reference_id), None
    size = (item.width, item.height) if item is not None else None
    if (err := check_annotation(obj, size, allowed, prediction=prediction)) is not None:
        return err, None
    try:
        return None, dump_metadata(obj.metadata, f"{obj.type} {kind}", obj.reference_id)
    except OculaError as exc:
        return exc, None
