"""What every service mixin shares: the database, the media folder, row look-ups."""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import Connection, select

from ocula.core.store import schema as t
from ocula.core.store.bulk import fetch_tuples
from ocula.core.store.engine import Database
from ocula.core.store.media import MediaStore, fetch_url
from ocula.core.types import BoxAnnotation, BoxPrediction
from ocula.core.validation import (
    EDGE_TOLERANCE,
    check_annotation,
    dump_metadata,
    dump_metadata_column,
)
from ocula.errors import ImageError, NotFoundError, OculaError

# Bound parameters per IN (...) chunk; well under SQLite's and PostgreSQL's limits.
CHUNK = 900
_NUMBER_TYPES = {int, float}


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector around a bulk operation.

    Ingest allocates millions of small acyclic objects; each allocation burst triggers
    full collections that rescan every object the caller holds (a list of a million
    annotations), which measured 3–5× slower ingest. Reference counting still frees
    everything; the collector resumes afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def now() -> datetime:
    return datetime.now(UTC)


def chunks(seq: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i:i + size]


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class _ItemKey(NamedTuple):
    reference_id: str
    pk: int
    id: str
    width: int
    height: int


class ServiceBase:
    """Holds the catalog database and media store; look-up helpers raise NotFoundError.

    ``local_roots``: None lets callers name any local path (embedded use); a list allows
    only paths under those folders (a server never reads arbitrary server-side paths
    on behalf of a remote client). ``allow_private_urls=False`` refuses image URLs on
    loopback and private networks (a server is not a proxy into its own network).
    """

    def __init__(self, db: Database, media: MediaStore,
                 local_roots: list[Path] | None = None, *, allow_private_urls: bool = True):
        self.db = db
        self.media = media
        self.local_roots = local_roots
        self.allow_private_urls = allow_private_urls

    def _fetch(self, url: str) -> bytes:
        return fetch_url(url, allow_private=self.allow_private_urls)

    def _check_local_path(self, path: Path, ref: str | None) -> None:
        if self.local_roots is None:
            return
        resolved = path.resolve()
        if not any(resolved.is_relative_to(root.resolve()) for root in self.local_roots):
            raise ImageError(f"server-side path {str(path)!r} is outside the configured media "
                             "roots; upload the file instead", reference_id=ref)

    # --- look-ups -------------------------------------------------------------------

    def _one(self, conn: Connection, table: Any, column: Any, value: str, what: str) -> Any:
        row = conn.execute(select(table).where(column == value)).first()
        if row is None:
            raise NotFoundError(f"no {what} {value!r}")
        return row

    def _dataset_row(self, conn: Connection, dataset: str) -> Any:
        """A dataset by id (``ds_…``) or by name."""
        col = t.datasets.c.id if dataset.startswith("ds_") else t.datasets.c.name
        return self._one(conn, t.datasets, col, dataset, "dataset")

    def _slice_row(self, conn: Connection, slice_id: str) -> Any:
        return self._one(conn, t.slices, t.slices.c.id, slice_id, "slice")

    def _model_row(self, conn: Connection, model: str) -> Any:
        """A model by id (``prj_…``) or by its reference id."""
        col = t.models.c.id if model.startswith("prj_") else t.models.c.reference_id
        return self._one(conn, t.models, col, model, "model")

    def _run_row(self, conn: Connection, run_id: str) -> Any:
        return self._one(conn, t.model_runs, t.model_runs.c.id, run_id, "model run")

    def _item_map(self, conn: Connection, dataset_pk: int,
                  reference_ids: Sequence[str]) -> dict[str, Any]:
        """reference_id -> (pk, id, width, height) for the given ids that exist."""
        cols = (t.items.c.reference_id, t.items.c.pk, t.items.c.id, t.items.c.width,
                t.items.c.height)
        unique = list(dict.fromkeys(reference_ids))
        base = select(*cols).where(t.items.c.dataset_pk == dataset_pk)
        wanted = set(unique)
        if len(unique) > CHUNK and set(map(type, unique)) == {str}:
            # Many ids: one scan of their range (an upload usually covers neighbouring
            # items), compared in code-point order as Python's min() and max() do, unless
            # the range holds far more items than asked for.
            ref = t.items.c.reference_id
            if conn.dialect.name == "postgresql":
                ref = ref.collate("C")
            spanned = base.where(ref.between(min(unique), max(unique)))
            cap = 4 * len(unique)
            rows = fetch_tuples(conn, spanned.limit(cap + 1))
            if len(rows) > cap and len(unique) > 5 * CHUNK:
                rows = fetch_tuples(conn, spanned)
            if len(rows) <= cap or len(unique) > 5 * CHUNK:
                return {r[0]: _ItemKey(*r) for r in rows if r[0] in wanted}
        elif len(unique) > 5 * CHUNK:  # one scan of the dataset beats many IN look-ups
            return {r[0]: _ItemKey(*r) for r in fetch_tuples(conn, base) if r[0] in wanted}
        found: dict[str, Any] = {}
        for part in chunks(unique):
            for r in conn.execute(base.where(t.items.c.reference_id.in_(part))):
                found[r[0]] = r
        return found

    def _require_items(self, conn: Connection, dataset_pk: int,
                       reference_ids: Sequence[str]) -> dict[str, Any]:
        found = self._item_map(conn, dataset_pk, reference_ids)
        missing = [r for r in dict.fromkeys(reference_ids) if r not in found]
        if missing:
            more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
            raise NotFoundError(
                f"unknown reference_id(s) in this dataset: {', '.join(map(repr, missing[:5]))}"
                f"{more}", reference_id=missing[0], missing=missing[:100])
        return found

    def resolve_version(self, conn: Connection, dataset_pk: int,
                        version: int | str | None) -> int | None:
        """A version number from a number, a name, or None (current)."""
        if version is None or isinstance(version, int):
            return version
        found = conn.scalar(select(t.annotation_versions.c.version).where(
            t.annotation_versions.c.dataset_pk == dataset_pk,
            t.annotation_versions.c.name == version))
        if found is None:
            raise NotFoundError(f"no annotation version named {version!r}")
        return found


# The fields of a box read by the column-wise paths (checks, keys, rows).
BOX_FIELDS = ("reference_id", "annotation_id", "label", "x", "y", "width", "height",
              "metadata", "iscrowd", "area")


def box_columns(objs: Sequence[Any], *, prediction: bool = False) -> dict[str, list[Any]] | None:
    """For a batch of plain boxes (exactly BoxAnnotation, or BoxPrediction): each field as
    a list, read from the objects in one pass over them (at a million objects every pass
    costs cache misses). None for any other batch."""
    if not objs or set(map(type, objs)) != {BoxPrediction if prediction else BoxAnnotation}:
        return None
    fields = (*BOX_FIELDS, "confidence") if prediction else BOX_FIELDS
    dicts = list(map(attrgetter("__dict__"), objs))
    try:
        return {name: list(map(itemgetter(name), dicts)) for name in fields}
    except KeyError:  # an attribute deleted from an instance
        return None


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
    are not finite numbers or lie outside the image (with the edge tolerance), or with a
    confidence outside [0, 1]. All of them when the batch is not that simple."""
    everything = range(len(columns["x"]))
    keys = list(map(items.get, columns["reference_id"]))
    coords = [columns[name] for name in ("x", "y", "width", "height")]
    if None in keys or not all(set(map(type, c)) <= _NUMBER_TYPES for c in coords):
        return everything
    try:
        labels = set(columns["label"])
        x, y, w, h = np.array(coords, dtype=float)
    except (TypeError, OverflowError):  # an unhashable label, a huge integer
        return everything
    if not all(type(label) is str and label.strip() for label in labels):
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
            conf = np.array([np.nan if c is None else c for c in confidence], dtype=float)
            ok &= np.isnan(conf) | ((conf >= 0) & (conf <= 1))
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
