"""Evaluation columns kept in memory between the requests of one process.

Reading a run's box columns costs SQLite most of the time of a metrics request at scale
(2M predictions: ~6 s of 20), and a user on the run page asks for the same columns again
and again — another label version, a re-commit after a fix. So the whole dataset's box
columns of each side are kept here after a read, under a key that names exactly the rows
they were read from:

* predictions: the run's public id (never reused), when predictions were last written
  to it (``model_runs.predictions_at``, set in the same transaction as every write) and
  the dataset's items (an item deleted takes its predictions with it; see
  :func:`ocula.core.services.run_results.item_state`);
* ground truth: the dataset's public id, the label version asked for — a number, or the
  current labels under the latest version (every write to ground truth opens one) — and
  the dataset's items.

The key is read in the caller's transaction, so what it names is what that transaction
sees. Kept arrays are read-only and each caller gets its own column object, so no caller
can change what another reads. The process keeps the last few entries (LRU).

Uploads add their own columns, batch by batch, under the key of the rows they leave
(:func:`grow`; ``services.upload_sides`` decides when they can), and a read that finds
none kept takes those (:func:`grown`) before reading any row.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import Connection

__all__ = ["SidesCache", "cached", "counts", "database", "forget_all", "grow", "grown", "growing"]

T = TypeVar("T")

#: Entries kept: the two sides of the runs being looked at (2M predictions: ~150 MB).
SIZE = 6


class SidesCache:
    """A small LRU of evaluation columns by key (see the module)."""

    def __init__(self, size: int = SIZE) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, key: Hashable, read: Callable[[], T]) -> T:
        """The columns under ``key``, read by ``read()`` (and kept) when absent."""
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return copy.copy(found)
            self.misses += 1
        value = read()
        self.put(key, value)
        return copy.copy(value)

    def peek(self, key: Hashable) -> Any:
        """What is kept under ``key`` (a shallow copy), or None; reads nothing."""
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            self._entries.move_to_end(key)
            return copy.copy(found)

    def put(self, key: Hashable, value: Any) -> None:
        """Keep ``value`` under ``key`` (the newest entry); its arrays become read-only."""
        for name in getattr(type(value), "__slots__", ()):
            arr = getattr(value, name, None)
            if isinstance(arr, np.ndarray):
                arr.flags.writeable = False
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


#: One cache for the process: entries are keyed by the database's URL too (the commit
#: reads on SQLite's bulk connection, requests on the pooled ones: one database).
_cache = SidesCache()


def database(conn: Connection) -> str:
    """What names ``conn``'s database in a process-wide cache's keys."""
    return conn.engine.url.render_as_string(hide_password=False)


def cached(conn: Connection, key: tuple[Any, ...], read: Callable[[], T]) -> T:
    """:meth:`SidesCache.get` of ``key`` on ``conn``'s database."""
    return _cache.get((database(conn), *key), read)


class _Growing:
    """A side's uploads so far as column chunks (``services.upload_sides``): the key
    they are the rows of, how many rows, and the largest pk among them."""

    __slots__ = ("chunks", "key", "last_pk", "rows")

    def __init__(self, key: tuple[Any, ...], chunks: list[dict[str, np.ndarray]],
                 rows: int, last_pk: int) -> None:
        self.key, self.chunks, self.rows, self.last_pk = key, chunks, rows, last_pk


#: Sides whose uploads are being kept, by (database, side, run or dataset id): the
#: latest few.
_growing: OrderedDict[tuple[str, str, str], _Growing] = OrderedDict()
_GROWING = 3


def grow(database_name: str, before: tuple[Any, ...] | None, key: tuple[Any, ...],
         chunk: dict[str, np.ndarray], last_pk: int) -> None:
    """Record that a side's rows under ``key`` (``(side, owner id, ...)``, as
    :func:`cached` is given it) are its rows under ``before`` followed by ``chunk``
    (``before`` None: ``chunk`` is all of them). An append to rows not kept under
    ``before`` (another write came in between) forgets the side instead."""
    at = (database_name, key[0], key[1])
    with _cache._lock:
        if before is None:
            _growing[at] = _Growing(key, [chunk], len(chunk["id"]), last_pk)
        elif (g := _growing.get(at)) is not None and g.key == before:
            g.key, g.rows, g.last_pk = key, g.rows + len(chunk["id"]), last_pk
            g.chunks.append(chunk)
        else:
            _growing.pop(at, None)
            return
        _growing.move_to_end(at)
        while len(_growing) > _GROWING:
            _growing.popitem(last=False)


def growing(database_name: str, key: tuple[Any, ...]) -> tuple[tuple[Any, ...], int, int] | None:
    """``(key, rows, largest pk)`` of the uploads kept for the side and owner ``key``
    names (its first two parts), or None."""
    with _cache._lock:
        g = _growing.get((database_name, key[0], key[1]))
        return None if g is None else (g.key, g.rows, g.last_pk)


def grown(database_name: str, key: tuple[Any, ...]) -> dict[str, np.ndarray] | None:
    """The columns of the uploads kept if they are the side's rows under ``key``, joined
    into one chunk (which later appends extend), else None."""
    with _cache._lock:
        g = _growing.get((database_name, key[0], key[1]))
        if g is None or g.key != key:
            return None
        if len(g.chunks) > 1:
            g.chunks = [{k: np.concatenate([c[k] for c in g.chunks]) for k in g.chunks[0]}]
        return g.chunks[0]


def forget_all() -> None:
    """Empty the cache and the uploads kept (tests compare kept columns with fresh
    reads)."""
    _cache.clear()
    with _cache._lock:
        _growing.clear()


def counts() -> tuple[int, int]:
    """``(hits, misses)`` of the cache since the process started."""
    return _cache.hits, _cache.misses
