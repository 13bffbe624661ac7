"""Deduplication as an analysis: Config -> method -> Results.

:func:`deduplicate` orders the images by (hash, tie-break key: the reference id), as
Nucleus does, and keeps an image unless one kept before it is within ``threshold``
bits (:func:`~ocula.core.dedup.search.greedy_keep`). The result lists the kept images
(Nucleus' ``unique_*`` lists, in that order) and groups each dropped image with the
nearest kept one, so an app can open every image behind a group. Registered as
``"dedup"`` in :mod:`ocula.core.evaluation.analyses`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ocula.core.dedup.search import MAX_THRESHOLD, greedy_keep
from ocula.errors import ValidationError

__all__ = ["DEFAULT_THRESHOLD", "DedupConfig", "DedupResults", "check_threshold",
           "deduplicate"]

DEFAULT_THRESHOLD = 10


def check_threshold(threshold: Any) -> int:
    """``threshold`` if it is an integer from 0 to 64 (bits of the 64-bit hash), else a
    :class:`ValidationError` saying so."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, np.integer)) or \
            not 0 <= threshold <= MAX_THRESHOLD:
        raise ValidationError(
            f"threshold must be an integer between 0 and {MAX_THRESHOLD} (inclusive): the "
            f"most bits of the 64-bit pHash two duplicates may differ in; got {threshold!r}")
    return int(threshold)


@dataclass(frozen=True)
class DedupConfig:
    """``threshold``: the Hamming distance (bits of 64) at or under which two images are
    duplicates; 0 keeps exact copies of the hash out only."""

    threshold: int = DEFAULT_THRESHOLD

    def __post_init__(self) -> None:
        check_threshold(self.threshold)


@dataclass
class DedupResults:
    """Which images are kept and where each dropped one went, by input position."""

    threshold: int
    order: np.ndarray   # positions in priority order (hash, then tie-break key)
    kept: np.ndarray    # bool per position
    rep: np.ndarray     # the kept position each joins (itself when kept)
    dist: np.ndarray    # bits from it

    @property
    def unique(self) -> np.ndarray:
        """Positions of the kept images, in priority order."""
        return self.order[self.kept[self.order]]

    def groups(self) -> list[tuple[int, list[tuple[int, int]]]]:
        """``(kept position, [(dropped position, distance), ...])`` for each kept image
        with duplicates: biggest groups first, then in priority order; duplicates
        nearest first, then in priority order."""
        rank = np.empty(len(self.order), np.int64)
        rank[self.order] = np.arange(len(self.order))
        dropped = np.flatnonzero(~self.kept)
        dropped = dropped[np.lexsort((rank[dropped], self.dist[dropped],
                                      rank[self.rep[dropped]]))]
        out: list[tuple[int, list[tuple[int, int]]]] = []
        for pos, d in zip(dropped.tolist(), self.dist[dropped].tolist(), strict=True):
            head = int(self.rep[pos])
            if not out or out[-1][0] != head:
                out.append((head, []))
            out[-1][1].append((pos, d))
        out.sort(key=lambda g: -len(g[1]))  # stable: priority order within a size
        return out

    def to_dict(self, item_ids: Sequence[str], reference_ids: Sequence[str],
                max_groups: int | None = None) -> dict[str, Any]:
        """The answer with public ids: ``unique_item_ids`` / ``unique_reference_ids``
        (kept, in priority order), ``groups`` (each kept image with its duplicates and
        their distances; ``max_groups`` caps how many are listed, biggest first) and
        ``stats`` (``threshold``, ``original_count``, ``deduplicated_count``,
        ``duplicate_count``, ``group_count``)."""
        unique = self.unique.tolist()
        groups = self.groups()
        listed = groups if max_groups is None else groups[:max_groups]
        return {
            "threshold": self.threshold,
            "unique_item_ids": [item_ids[i] for i in unique],
            "unique_reference_ids": [reference_ids[i] for i in unique],
            "groups": [{
                "item_id": item_ids[head], "reference_id": reference_ids[head],
                "duplicates": [{"item_id": item_ids[p], "reference_id": reference_ids[p],
                                "distance": d} for p, d in dups]}
                for head, dups in listed],
            "stats": {"threshold": self.threshold, "original_count": len(self.order),
                      "deduplicated_count": len(unique),
                      "duplicate_count": len(self.order) - len(unique),
                      "group_count": len(groups)},
        }


def deduplicate(hashes: np.ndarray | Sequence[int], keys: Sequence[str],
                config: DedupConfig | None = None) -> DedupResults:
    """Deduplicate images by their 64-bit hashes (unsigned); ``keys`` (one per hash,
    distinct: reference ids) break ties between equal hashes, so the answer does not
    depend on the order the images were given in."""
    cfg = config or DedupConfig()
    h = np.asarray(hashes, dtype=np.uint64)
    if len(h) != len(keys):
        raise ValueError("one key per hash")
    if len(h):
        key_rank = np.empty(len(keys), np.int64)
        key_rank[np.argsort(np.asarray(keys, dtype=str), kind="stable")] = \
            np.arange(len(keys))
        order = np.lexsort((key_rank, h))
    else:
        order = np.empty(0, np.int64)
    kept_o, rep_o, dist_o = greedy_keep(h[order], cfg.threshold)
    n = len(h)
    kept = np.zeros(n, bool)
    rep = np.arange(n, dtype=np.int64)
    dist = np.zeros(n, np.int64)
    kept[order] = kept_o
    rep[order] = order[rep_o]
    dist[order] = dist_o
    return DedupResults(cfg.threshold, order, kept, rep, dist)

