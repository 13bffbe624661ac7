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
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import Connection

__all__ = ["SidesCache", "cached", "counts", "database", "forget_all"]

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
        for name in getattr(type(value), "__slots__", ()):
            arr = getattr(value, name, None)
            if isinstance(arr, np.ndarray):
                arr.flags.writeable = False
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
        """Keep ``value`` under ``key`` (the newest entry)."""
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


def forget_all() -> None:
    """Empty the cache (tests compare kept columns with fresh reads)."""
    _cache.clear()


def counts() -> tuple[int, int]:
    """``(hits, misses)`` of the cache since the process started."""
    return _cache.hits, _cache.misses
