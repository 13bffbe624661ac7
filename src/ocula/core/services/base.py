"""What every service mixin shares: the database, the media folder, row look-ups."""

from __future__ import annotations

import functools
import gc
import os
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Connection, Select, func, select

from ocula.core.store import schema as t
from ocula.core.store.bulk import fetch_tuples
from ocula.core.store.engine import Database
from ocula.core.store.media import Fetcher, MediaStore, real_roots
from ocula.core.validation import unstorable
from ocula.errors import AmbiguousNameError, ImageError, NotFoundError, ValidationError

# Bound parameters per IN (...) chunk; well under SQLite's and PostgreSQL's limits.
CHUNK = 900


class _Shared:
    """A process setting changed while at least one bulk operation runs, and restored
    when the last one (of any thread) ends: overlapping operations never restore it
    under each other's feet, and the application's own value always comes back."""

    def __init__(self, change: Any, restore: Any) -> None:
        self._change, self._restore = change, restore
        self._lock = threading.Lock()
        self._users = 0
        self._saved: Any = None

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._users == 0:
                self._saved = self._change()
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    self._restore(self._saved)


def _pause_gc() -> bool:
    was = gc.isenabled()
    gc.disable()
    return was


def _resume_gc(was_enabled: bool) -> None:
    if was_enabled:
        gc.enable()


def _quicken_switches() -> float:
    saved = sys.getswitchinterval()
    sys.setswitchinterval(min(_SWITCH_INTERVAL, saved))
    return saved


# Ingest allocates millions of small acyclic objects; each allocation burst triggers
# full collections that rescan every object the caller holds (a list of a million
# annotations), which measured 3–5× slower ingest. Reference counting still frees
# everything while the collector rests.
_gc_pause = _Shared(_pause_gc, _resume_gc)
# The inserting thread (SQLite steps with the GIL released) must take the GIL back from
# the checking thread after each statement, which that one gives up only every switch
# interval (5 ms by default): at 1M boxes a 0.5 ms interval cut the inserter's waits
# from about 1.4 s to 0.8 s.
_SWITCH_INTERVAL = 0.0005
_quick_switches = _Shared(_quicken_switches, sys.setswitchinterval)


def tuned_for_bulk(enabled: bool = True, *, switches: bool = False) -> Any:
    """Context manager for one bulk operation: the cyclic garbage collector paused and,
    with ``switches``, a short thread switch interval, both process-wide while any such
    operation runs and restored when the last ends. ``enabled=False`` (a service opened
    with ``tune_runtime=False``) leaves both alone."""
    if not enabled:
        return _nothing()
    if not switches:
        return _gc_pause()
    return _both()


@contextmanager
def _nothing() -> Iterator[None]:
    yield


@contextmanager
def _both() -> Iterator[None]:
    with _gc_pause(), _quick_switches():
        yield


def bulk_operation(method: Any) -> Any:
    """Decorator: run a service method under :func:`tuned_for_bulk` (per its service's
    ``tune_runtime``)."""
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        with tuned_for_bulk(self.tune_runtime):
            return method(self, *args, **kwargs)
    return wrapper


def now() -> datetime:
    return datetime.now(UTC)


def chunks(seq: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i:i + size]


def rows_where_in(conn: Connection, query: Select[Any], column: Any,
                  values: Iterable[int], *, tuples: bool = False) -> Iterator[Any]:
    """The rows of ``query`` whose integer ``column`` (one it selects) is one of
    ``values``: by one range scan when they are mostly neighbours (an upload in item
    order), else by IN lists of CHUNK values. ``tuples``: plain tuples from the driver
    (:func:`~ocula.core.store.bulk.fetch_tuples`; columns that need no result
    processing), a fraction of the cost of rows at hundreds of thousands."""
    wanted = set(values)
    if not wanted:
        return
    run = (lambda q: fetch_tuples(conn, q)) if tuples else conn.execute
    low, high = min(wanted), max(wanted)
    if len(wanted) > CHUNK and high - low < 2 * len(wanted):
        at = next(i for i, c in enumerate(query.selected_columns) if c is column)
        for r in run(query.where(column.between(low, high))):
            if r[at] in wanted:
                yield r
        return
    for part in chunks(sorted(wanted)):
        yield from run(query.where(column.in_(part)))


def count_where_in(conn: Connection, column: Any, values: set[int],
                   *conditions: ColumnElement[bool]) -> int:
    """How many rows meeting ``conditions`` have their unique integer ``column`` among
    ``values``: counted by the database, with no row brought into Python (a writer that
    checks references this way holds the GIL for microseconds, not for a row loop). One
    range count when the values are consecutive, else a count per IN list."""
    if not values:
        return 0
    counting = select(func.count()).select_from(column.table).where(*conditions)
    low, high = min(values), max(values)
    if high - low + 1 == len(values):
        return conn.scalar(counting.where(column.between(low, high))) or 0
    return sum(conn.scalar(counting.where(column.in_(part))) or 0
               for part in chunks(sorted(values)))


def _refuse_roots_over_home(roots: Sequence[str], home: Path) -> None:
    """A media root must not overlap the Ocula home: clients could read its catalog,
    its signing secret and others' staged uploads by path."""
    real_home = real_roots([home])[0]
    for root in roots:
        if _overlap(root, real_home):
            raise ValidationError(f"media root {root} overlaps the Ocula home {real_home} "
                                  "(catalog, signing secret, uploads); choose a folder "
                                  "outside it")


def _overlap(a: str, b: str) -> bool:
    a, b = a.rstrip(os.sep) + os.sep, b.rstrip(os.sep) + os.sep
    return a.startswith(b) or b.startswith(a)


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
    on behalf of a remote client). ``fetcher`` downloads image URLs (the core holds no
    HTTP client: :class:`ocula.Client` and ``ocula serve`` pass
    :func:`ocula.fetch.fetch_url`; without one, URL items are refused).
    ``allow_private_urls=False`` fetches image URLs only from public addresses (a server
    is not a proxy into its own network).
    ``tune_runtime`` (default True) lets bulk operations pause the cyclic garbage
    collector and shorten the thread switch interval while they run
    (:func:`tuned_for_bulk`); False leaves the process's settings alone.
    """

    def __init__(self, db: Database, media: MediaStore,
                 local_roots: list[Path] | None = None, *, allow_private_urls: bool = True,
                 tune_runtime: bool = True, fetcher: Fetcher | None = None):
        self.db = db
        self.fetcher = fetcher
        self.media = media
        self.local_roots = local_roots
        # Real paths of the roots, compared with each file's real path when it is read.
        self.real_roots = real_roots(local_roots) if local_roots is not None else None
        self.allow_private_urls = allow_private_urls
        self.tune_runtime = tune_runtime
        _refuse_roots_over_home(self.real_roots or [], media.root)

    def _fetch(self, url: str) -> bytes:
        if self.fetcher is None:
            raise ImageError(f"cannot fetch {url}: this catalog was opened without a URL "
                             "fetcher (ocula.Client and ocula serve give it one)")
        return self.fetcher(url, allow_private=self.allow_private_urls)

    def _local_name(self, path: str, ref: str | None) -> str:
        """How errors name a local image: its path for embedded use, the item for a
        server, whose clients must not learn its folders."""
        return path if self.real_roots is None else f"item {ref!r}"

    # --- look-ups -------------------------------------------------------------------

    def _one(self, conn: Connection, table: Any, column: Any, value: str, what: str) -> Any:
        row = conn.execute(select(table).where(column == value)).first()
        if row is None:
            raise NotFoundError(f"no {what} {value!r}")
        return row

    def _dataset_row(self, conn: Connection, dataset: str) -> Any:
        """A dataset by id (``ds_…``) or by name; a name two datasets share is an
        :class:`AmbiguousNameError` listing their ids."""
        if dataset.startswith("ds_"):
            return self._one(conn, t.datasets, t.datasets.c.id, dataset, "dataset")
        rows = conn.execute(select(t.datasets).where(t.datasets.c.name == dataset)
                            .order_by(t.datasets.c.pk)).all()
        if not rows:
            raise NotFoundError(f"no dataset {dataset!r}")
        if len(rows) > 1:
            raise AmbiguousNameError("dataset", dataset, [r.id for r in rows])
        return rows[0]

    def _slice_row(self, conn: Connection, slice_id: str) -> Any:
        return self._one(conn, t.slices, t.slices.c.id, slice_id, "slice")

    def _model_row(self, conn: Connection, model: str) -> Any:
        """A model by id (``prj_…``) or by its reference id."""
        col = t.models.c.id if model.startswith("prj_") else t.models.c.reference_id
        return self._one(conn, t.models, col, model, "model")

    def _run_row(self, conn: Connection, run_id: str) -> Any:
        return self._one(conn, t.model_runs, t.model_runs.c.id, run_id, "model run")

    def _slice_in(self, conn: Connection, dataset: Any, name_or_id: str) -> Any:
        """A slice of a dataset (its row) by id (``slc_…``) or by name."""
        return self._in_dataset(conn, t.slices, "slc_", dataset, name_or_id, "slice")

    def _run_in(self, conn: Connection, dataset: Any, name_or_id: str) -> Any:
        """A model run of a dataset (its row) by id (``run_…``) or by name."""
        return self._in_dataset(conn, t.model_runs, "run_", dataset, name_or_id, "model run")

    def _in_dataset(self, conn: Connection, table: Any, prefix: str, dataset: Any,
                    name_or_id: str, what: str) -> Any:
        col = table.c.id if name_or_id.startswith(prefix) else table.c.name
        row = conn.execute(select(table).where(table.c.dataset_pk == dataset.pk,
                                               col == name_or_id)).first()
        if row is None:
            raise NotFoundError(f"no {what} {name_or_id!r} in dataset {dataset.name!r}")
        return row

    def _item_map(self, conn: Connection, dataset_pk: int,
                  reference_ids: Sequence[str]) -> dict[str, Any]:
        """reference_id -> (pk, id, width, height) for the given ids that exist."""
        cols = (t.items.c.reference_id, t.items.c.pk, t.items.c.id, t.items.c.width,
                t.items.c.height)
        unique = list(dict.fromkeys(reference_ids))
        kinds = set(map(type, unique))
        if unstorable("\x01".join(r for r in unique if type(r) is str)):
            # No item has one (they are refused), and PostgreSQL cannot compare them.
            unique = [r for r in unique if not (type(r) is str and unstorable(r))]
        base = select(*cols).where(t.items.c.dataset_pk == dataset_pk)
        wanted = set(unique)
        if len(unique) > CHUNK and kinds == {str}:
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
                found[r[0]] = _ItemKey(*r)
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

    def _resolve_version(self, conn: Connection, dataset_pk: int,
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
