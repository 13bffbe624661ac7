"""``Dataset.split``: items into disjoint slices by fractions, reproducibly.

The items are sorted by reference id and shuffled by a seeded generator, so the same
items, fractions and seed give the same slices on any machine and backend, whatever
order the items were added in. Sizes are the fractions of the item count rounded by
largest remainder (they add up to the count when the fractions add up to 1). With
``stratify`` the split is made within each group of items that share a key (by default
their most frequent label, items without labels forming a group of their own), so each
slice gets about its fraction of each group.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np


def split_sizes(n: int, fractions: Sequence[float]) -> list[int]:
    """``n`` split by ``fractions`` (each in [0, 1], sum at most 1), by largest remainder."""
    exact = [n * f for f in fractions]
    sizes = [int(np.floor(x)) for x in exact]
    target = round(n * sum(fractions)) if sum(fractions) < 1 - 1e-9 else n
    order = sorted(range(len(exact)), key=lambda i: (sizes[i] - exact[i], i))
    for i in order[:max(0, target - sum(sizes))]:
        sizes[i] += 1
    return sizes


def check_fractions(fractions: Mapping[str, float]) -> None:
    if not fractions:
        raise ValueError("give at least one slice name and fraction")
    bad = [name for name, f in fractions.items()
           if not isinstance(f, (int, float)) or isinstance(f, bool) or not 0 <= f <= 1]
    if bad:
        raise ValueError(f"fractions must be numbers in [0, 1]: {bad}")
    if sum(fractions.values()) > 1 + 1e-9:
        raise ValueError(f"fractions add up to {sum(fractions.values())}, more than 1")


def assign(reference_ids: Sequence[str], fractions: Mapping[str, float], *, seed: int,
           keys: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """Slice name → reference ids (sorted): a seeded, disjoint split; by group of
    ``keys[reference_id]`` when given (stratified)."""
    check_fractions(fractions)
    names = list(fractions)
    groups: dict[str, list[str]] = {}
    for ref in sorted(set(reference_ids)):
        groups.setdefault(keys.get(ref, "") if keys is not None else "", []).append(ref)
    rng = np.random.default_rng(seed)
    out: dict[str, list[str]] = {name: [] for name in names}
    for group in sorted(groups):
        refs = groups[group]
        order = rng.permutation(len(refs))
        start = 0
        for name, size in zip(names, split_sizes(len(refs), list(fractions.values())),
                              strict=True):
            out[name].extend(refs[i] for i in order[start:start + size])
            start += size
    return {name: sorted(refs) for name, refs in out.items()}


def majority_labels(labels_by_ref: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Each item's most frequent label (ties: the first in sort order), ``""`` if none."""
    out = {}
    for ref, labels in labels_by_ref.items():
        counts = Counter(labels)
        out[ref] = min(counts, key=lambda lb: (-counts[lb], lb)) if counts else ""
    return out
