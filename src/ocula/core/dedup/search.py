"""Near-duplicate search over 64-bit hashes by Hamming distance, exact.

:func:`near_pairs` finds every pair of hashes at most ``threshold`` bits apart.
Up to :data:`INDEX_MAX_THRESHOLD` it uses multi-index hashing (Norouzi et al., CVPR
2012): the 64 bits are cut into four 16-bit chunks, and two hashes within ``t`` bits
differ in at most ``t // 4`` bits of at least one chunk (were every chunk further
apart, the four would add up to more than ``t``). Tighter, with ``t = 4r + s``: some
chunk differs in fewer than ``r`` bits, or one of chunks ``0..s`` in exactly ``r`` (if
every chunk differs in ``r`` or more, at most ``s`` of them in more than ``r``). So each
hash is compared in full only with the hashes in the buckets (a table of 65,536 per
chunk) of the chunk values that near its own, and nothing within ``t`` is missed.
Above it, and on request (``method="scan"``), every pair is compared in blocks
(vectorised XOR and popcount): the reference the index is tested against.

:func:`greedy_keep` is the deduplication rule (Nucleus'): walk the hashes in priority
order and keep one unless a hash already kept is within ``threshold``; each dropped
hash joins the nearest kept one.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = ["INDEX_MAX_THRESHOLD", "MAX_THRESHOLD", "brute_force_pairs", "greedy_keep",
           "near_pairs"]

MAX_THRESHOLD = 64
CHUNKS = 4
CHUNK_BITS = 16
# From t = 16 a chunk has thousands of neighbouring values: the index then compares a
# large share of all pairs, and a scan of the kept hashes is as fast.
INDEX_MAX_THRESHOLD = 15
# Elements per vectorised step (candidate pairs, or rows × columns of a scan): bounds
# the memory a step takes to some tens of MB whatever the data.
STEP = 1 << 22
# Bucket slots expanded one vectorised pass each (see _expand).
SLOT_PASSES = 32

Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]


def _as_hashes(hashes: np.ndarray | list[int]) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(hashes, dtype=np.uint64))


def _check_threshold(threshold: int) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, np.integer)) or \
            not 0 <= threshold <= MAX_THRESHOLD:
        raise ValueError(f"threshold must be an integer from 0 to {MAX_THRESHOLD}, "
                         f"got {threshold!r}")


def near_pairs(hashes: np.ndarray | list[int], threshold: int, *,
               method: Literal["auto", "index", "scan"] = "auto") -> Pairs:
    """Every pair ``(a, b)``, ``a < b`` (positions in ``hashes``), whose hashes are at
    most ``threshold`` bits apart, with the distance: three arrays ``(a, b, d)`` sorted
    by ``b`` then ``a``, each pair once. ``method="auto"`` takes the index below
    :data:`INDEX_MAX_THRESHOLD` + 1 and the scan above; both give the same pairs."""
    _check_threshold(threshold)
    h = _as_hashes(hashes)
    if method == "auto":
        method = "index" if threshold <= INDEX_MAX_THRESHOLD else "scan"
    if method == "index":
        a, b, d = _index_pairs(h, int(threshold))
    elif method == "scan":
        a, b, d = _scan_pairs(h, int(threshold))
    else:
        raise ValueError(f"method must be 'auto', 'index' or 'scan', got {method!r}")
    order = np.lexsort((a, b))
    return a[order], b[order], d[order]


def brute_force_pairs(hashes: np.ndarray | list[int], threshold: int) -> Pairs:
    """:func:`near_pairs` by comparing every pair (the numpy baseline)."""
    return near_pairs(hashes, threshold, method="scan")


def _chunk_masks(t: int, chunk: int) -> np.ndarray:
    """The XOR masks of the chunk values to look in for chunk ``chunk`` at threshold
    ``t`` (see the module docstring): fewer than ``r`` bits, or exactly ``r`` in chunks
    ``0..s``, where ``t = 4r + s``."""
    r, s = divmod(t, CHUNKS)
    values = np.arange(1 << CHUNK_BITS, dtype=np.int64)
    bits = np.bitwise_count(values)
    return values[(bits < r) | ((bits == r) & (chunk <= s))]


def _index_pairs(h: np.ndarray, t: int) -> Pairs:
    n = len(h)
    if n < 2:
        return _unique([], n)
    idx = np.int32 if n < (1 << 31) else np.int64  # half the memory traffic
    everyone = np.arange(n, dtype=idx)
    found: list[Pairs] = []
    for c in range(CHUNKS):
        masks = _chunk_masks(t, c).astype(idx)
        if len(masks) == 0:
            continue
        keys = ((h >> np.uint64(CHUNK_BITS * c)) & np.uint64(0xFFFF)).astype(idx)
        members = np.argsort(keys, kind="stable").astype(idx)  # positions, by bucket
        counts = np.bincount(keys, minlength=1 << CHUNK_BITS).astype(idx)
        starts = (np.cumsum(counts) - counts).astype(idx)
        if masks[0] == 0:  # within a bucket: each member with the members after it
            slot = np.empty(n, idx)
            slot[members] = np.arange(n, dtype=idx) - starts[keys[members]]
            after = counts[keys] - 1 - slot
            found.append(_expand(h, t, everyone, starts[keys] + slot + 1, after, members))
            masks = masks[1:]
        # Between buckets k and k ^ mask, from the smaller key only: each pair once.
        per = max(1, STEP // n)
        for m0 in range(0, len(masks), per):
            mb = masks[m0:m0 + per]
            q = (keys[None, :] ^ mb[:, None]).ravel()
            src = np.tile(everyone, len(mb))
            cnt = counts[q]
            use = (cnt > 0) & (q > np.tile(keys, len(mb)))
            src, q, cnt = src[use], q[use], cnt[use]
            found.append(_expand(h, t, src, starts[q], cnt, members))
    return _unique(found, n)


def _expand(h: np.ndarray, t: int, src: np.ndarray, first: np.ndarray, cnt: np.ndarray,
            members: np.ndarray) -> Pairs:
    """Pairs (src, members[first + k]) for k < cnt whose hashes are within ``t``.

    Slot by slot: the k-th member of every candidate bucket at once, then the
    candidates with more than k members go on. Buckets hold a handful of hashes, so
    this is a few vectorised passes with no index arithmetic per pair; the few big
    buckets left after :data:`SLOT_PASSES` slots are expanded in one go."""
    keep = cnt > 0
    src, first, cnt = src[keep], first[keep], cnt[keep]
    hs = h[src]
    a_out, b_out, d_out = [], [], []
    k = 0
    while len(src) and (k < SLOT_PASSES or len(src) * 64 > STEP):
        j = members[first + k]
        d = np.bitwise_count(hs ^ h[j])
        ok = np.flatnonzero(d <= t)
        a_out.append(src[ok])
        b_out.append(j[ok])
        d_out.append(d[ok])
        k += 1
        more = np.flatnonzero(cnt > k)
        src, first, cnt, hs = src[more], first[more], cnt[more], hs[more]
    # The rest of a few big buckets, at most about STEP candidates at a time.
    rest = (cnt - k).astype(np.int64)
    ends = np.cumsum(rest)
    lo = 0
    while lo < len(src):
        base = ends[lo - 1] if lo else 0
        hi = max(lo + 1, int(np.searchsorted(ends, base + STEP, side="right")))
        c = rest[lo:hi]
        offsets = np.arange(int(c.sum()), dtype=np.int64) - np.repeat(np.cumsum(c) - c, c)
        j = members[np.repeat(first[lo:hi].astype(np.int64) + k, c) + offsets]
        rs = np.repeat(src[lo:hi], c)
        d = np.bitwise_count(h[rs] ^ h[j])
        ok = np.flatnonzero(d <= t)
        a_out.append(rs[ok])
        b_out.append(j[ok])
        d_out.append(d[ok])
        lo = hi
    if not a_out:
        return _unique([], 0)
    a, b = np.concatenate(a_out), np.concatenate(b_out)
    return np.minimum(a, b), np.maximum(a, b), np.concatenate(d_out)


def _scan_pairs(h: np.ndarray, t: int) -> Pairs:
    n = len(h)
    found: list[Pairs] = []
    rows = max(1, STEP // max(1, n))
    for r0 in range(0, n, rows):
        block = h[r0:r0 + rows]
        # Each row against the hashes after it only: every pair once.
        d = np.bitwise_count(block[:, None] ^ h[None, r0:])
        ii, jj = np.nonzero(d <= t)
        later = jj > ii
        ii, jj = ii[later], jj[later]
        found.append((ii + r0, jj + r0, d[ii, jj]))
    return _unique(found, n)


def _unique(found: list[Pairs], n: int) -> Pairs:
    if not found:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.uint8)
    a = np.concatenate([f[0] for f in found]).astype(np.int64)
    b = np.concatenate([f[1] for f in found]).astype(np.int64)
    d = np.concatenate([f[2] for f in found]).astype(np.uint8)
    # A pair close in several chunks is found once per chunk.
    _, first = np.unique(a * n + b, return_index=True)
    return a[first], b[first], d[first]


def greedy_keep(hashes: np.ndarray | list[int], threshold: int) -> tuple[
        np.ndarray, np.ndarray, np.ndarray]:
    """Deduplicate hashes given in priority order: a hash is kept unless one kept
    before it is within ``threshold`` bits. Returns ``(kept, rep, dist)``: a boolean
    array, and for each hash the position of the kept hash it joins (the nearest,
    the earliest of equally near ones; itself when kept) and the distance to it.
    Equal hashes are expected next to each other (sorting by hash puts them there):
    a copy joins the group of its first copy."""
    _check_threshold(threshold)
    h = _as_hashes(hashes)
    n = len(h)
    kept = np.zeros(n, bool)
    rep = np.arange(n, dtype=np.int64)
    dist = np.zeros(n, np.int64)
    if n == 0:
        return kept, rep, dist
    # Equal hashes share their first copy's fate: later copies are 0 bits from it.
    _, first, inverse = np.unique(h, return_index=True, return_inverse=True)
    leaders = np.sort(first)
    u = h[leaders]
    u_kept, u_rep, u_dist = _greedy_distinct(u, int(threshold))
    kept[leaders] = u_kept
    rep[leaders] = leaders[u_rep]
    dist[leaders] = u_dist
    copies = np.setdiff1d(np.arange(n), leaders, assume_unique=True)
    if len(copies):
        lead = first[inverse[copies]]
        # A copy of a kept hash joins it at distance 0; of a dropped one, its group.
        rep[copies] = np.where(kept[lead], lead, rep[lead])
        dist[copies] = np.where(kept[lead], 0, dist[lead])
    return kept, rep, dist


def _greedy_distinct(u: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m = len(u)
    rep = np.arange(m, dtype=np.int64)
    dist = np.zeros(m, np.int64)
    if t == 0 or m == 1:
        return np.ones(m, bool), rep, dist
    if t >= MAX_THRESHOLD:  # every hash is within 64 bits of the first
        kept = np.zeros(m, bool)
        kept[0] = True
        rep[:] = 0
        dist[:] = np.bitwise_count(u ^ u[0])
        return kept, rep, dist
    if t <= INDEX_MAX_THRESHOLD:
        return _greedy_from_pairs(m, *near_pairs(u, t, method="index"))
    return _greedy_scan(u, t)


def _greedy_from_pairs(m: int, a: np.ndarray, b: np.ndarray,
                       d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    kept = bytearray(b"\x01") * m
    rep = list(range(m))
    dist = [0] * m
    # Pairs come sorted by b: the neighbours before each b are one run.
    later, starts = np.unique(b, return_index=True)
    ends = np.append(starts[1:], len(b)).astype(np.int64)[:len(later)]
    a_list, d_list = a.tolist(), d.tolist()
    for j, lo, hi in zip(later.tolist(), starts.tolist(), ends.tolist(), strict=True):
        best, best_d = -1, 65
        for k in range(lo, hi):  # a ascending: the first of equally near ones wins
            i = a_list[k]
            if kept[i] and d_list[k] < best_d:
                best, best_d = i, d_list[k]
        if best >= 0:
            kept[j] = 0
            rep[j], dist[j] = best, best_d
    return (np.frombuffer(bytes(kept), np.uint8).astype(bool), np.array(rep, np.int64),
            np.array(dist, np.int64))


def _greedy_scan(u: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The greedy rule by comparing each hash with the hashes kept so far (fast when
    a high threshold keeps few)."""
    m = len(u)
    kept = np.zeros(m, bool)
    rep = np.arange(m, dtype=np.int64)
    dist = np.zeros(m, np.int64)
    kept_pos = np.empty(0, np.int64)
    r0 = 0
    while r0 < m:
        rows = max(1, min(1024, STEP // max(1, len(kept_pos))))
        block = u[r0:r0 + rows]
        if len(kept_pos):
            d = np.bitwise_count(block[:, None] ^ u[kept_pos][None, :])
            near = d.argmin(axis=1)
            near_d = d[np.arange(len(block)), near].astype(np.int64)
        else:
            near = np.zeros(len(block), np.int64)
            near_d = np.full(len(block), 65, np.int64)
        new: list[int] = []
        for i in range(len(block)):
            pos = r0 + i
            best, best_d = (int(kept_pos[near[i]]), int(near_d[i])) if near_d[i] <= t \
                else (-1, 65)
            if new:
                dd = np.bitwise_count(u[new] ^ u[pos])
                k = int(dd.argmin())
                if dd[k] <= t and dd[k] < best_d:  # earlier kept win ties
                    best, best_d = new[k], int(dd[k])
            if best >= 0:
                rep[pos], dist[pos] = best, best_d
            else:
                kept[pos] = True
                new.append(pos)
        kept_pos = np.concatenate([kept_pos, np.array(new, np.int64)])
        r0 += rows
    return kept, rep, dist
