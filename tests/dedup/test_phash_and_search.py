"""pHash on real pixels, and the near-duplicate search against brute force (no
database): the index finds exactly the pairs a full comparison finds, and the keep rule
is Nucleus' (in order of hash, then reference id; kept unless a kept one is near)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ocula.core.dedup import DedupConfig, deduplicate, near_pairs
from ocula.core.dedup.phash import (
    hash_bits,
    hash_from_bits,
    phash_file,
    phash_image,
    to_signed,
    to_unsigned,
)
from ocula.core.dedup.search import greedy_keep
from ocula.core.evaluation.analyses import analysis_names, get_analysis
from ocula.errors import ImageError, ValidationError
from tests.dedup.images import picture, save


def _bits(a: int, b: int) -> int:
    return bin(a ^ b).count("1")


def _jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf)


def test_edited_copies_are_near_and_other_pictures_far() -> None:
    base = picture(1)
    h = phash_image(base)
    assert phash_image(picture(1)) == h  # deterministic
    for copy in (base.resize((80, 60)), base.resize((320, 240)), _jpeg(base, 40),
                 base.convert("L"), base.point(lambda v: min(255, v + 12))):
        assert _bits(phash_image(copy), h) <= 6
    others = [_bits(phash_image(picture(s)), h) for s in range(2, 12)]
    assert min(others) > 12 and 24 <= float(np.mean(others)) <= 40


def test_files_hash_as_their_pixels(tmp_path: Path) -> None:
    png = save(picture(3), tmp_path / "a.png")
    jpg = save(picture(3), tmp_path / "a.jpg", quality=90)
    with png.open("rb") as fp:
        hp = phash_file(fp, "a.png")
    with jpg.open("rb") as fp:
        hj = phash_file(fp, "a.jpg")  # decoded at a reduced scale
    assert hp == phash_image(picture(3)) and _bits(hp, hj) <= 4
    (tmp_path / "bad.png").write_bytes(b"not an image at all")
    with (tmp_path / "bad.png").open("rb") as fp, pytest.raises(ImageError, match="bad.png"):
        phash_file(fp, "bad.png")


def test_plain_and_transparent_images() -> None:
    # Structure, not colour: plain images of any colour hash alike, without float noise.
    assert phash_image(Image.new("RGB", (50, 40), (10, 20, 30))) == \
        phash_image(Image.new("RGB", (64, 64), (200, 100, 0))) == 1 << 63
    rgba = picture(4).convert("RGBA")
    assert _bits(phash_image(rgba), phash_image(picture(4))) <= 2


def test_bit_strings_and_signed_storage() -> None:
    h = phash_image(picture(5))
    s = hash_bits(h)
    assert len(s) == 64 and set(s) <= {"0", "1"} and hash_from_bits(s) == h
    for v in (0, 1, (1 << 63) - 1, 1 << 63, (1 << 64) - 1):
        assert -(1 << 63) <= to_signed(v) < 1 << 63 and to_unsigned(to_signed(v)) == v
    with pytest.raises(ValueError):
        hash_from_bits("01" * 10)


def _clustered(rng: np.random.Generator, n: int, flips: int = 5) -> np.ndarray:
    """Hashes in clusters: a few centres, each copy with up to ``flips`` bits flipped."""
    centres = rng.integers(0, 1 << 63, size=max(1, n // 6), dtype=np.uint64) * np.uint64(2)
    h = centres[rng.integers(0, len(centres), n)]
    for _ in range(flips):
        bit = rng.integers(0, 64, n).astype(np.uint64)
        h = np.where(rng.random(n) < 0.5, h ^ (np.uint64(1) << bit), h)
    return h


def _brute_pairs(h: np.ndarray, t: int) -> set[tuple[int, int, int]]:
    vals = [int(x) for x in h]
    return {(i, j, _bits(vals[i], vals[j])) for i in range(len(vals))
            for j in range(i + 1, len(vals)) if _bits(vals[i], vals[j]) <= t}


@pytest.mark.parametrize("seed", range(6))
def test_index_finds_exactly_the_pairs_brute_force_finds(seed: int) -> None:
    rng = np.random.default_rng(seed)
    h = _clustered(rng, int(rng.integers(2, 250)))
    for t in range(16):  # every threshold the index takes
        want = _brute_pairs(h, t)
        for method in ("index", "scan"):
            a, b, d = near_pairs(h, t, method=method)
            assert set(zip(a.tolist(), b.tolist(), d.tolist(), strict=True)) == want
            assert len(a) == len(want)  # each pair once


def test_index_on_uniform_hashes_and_a_crowded_chunk() -> None:
    rng = np.random.default_rng(7)
    uniform = rng.integers(0, np.iinfo(np.uint64).max, 3000, dtype=np.uint64)
    # Many hashes sharing one 16-bit chunk: one big bucket.
    crowded = (rng.integers(0, 1 << 48, 400, dtype=np.uint64) << np.uint64(16))
    for h in (uniform, crowded, np.concatenate([uniform, crowded])):
        for t in (6, 13):
            got = near_pairs(h, t, method="index")
            want = near_pairs(h, t, method="scan")
            assert all(np.array_equal(x, y) for x, y in zip(got, want, strict=True))


def test_small_steps_give_the_same_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every stage that works in bounded steps (mask batches, slot passes, the rest of
    big buckets, the scan's row blocks) gives the same pairs when the steps are tiny."""
    from ocula.core.dedup import search

    rng = np.random.default_rng(11)
    crowded = rng.integers(0, 1 << 48, 300, dtype=np.uint64) << np.uint64(16)
    h = np.concatenate([_clustered(rng, 300), crowded])
    want = {t: near_pairs(h, t, method="scan") for t in (5, 11)}
    monkeypatch.setattr(search, "STEP", 97)
    monkeypatch.setattr(search, "SLOT_PASSES", 2)
    for t, pairs in want.items():
        for method in ("index", "scan"):
            got = near_pairs(h, t, method=method)  # type: ignore[arg-type]
            assert all(np.array_equal(x, y) for x, y in zip(got, pairs, strict=True))


def _naive_keep(h: list[int], t: int) -> tuple[list[bool], list[int], list[int]]:
    kept: list[int] = []
    rep, dist = [], []
    for i, x in enumerate(h):
        near = [(_bits(x, h[k]), k) for k in kept if _bits(x, h[k]) <= t]
        if near:
            d, k = min(near)
            rep.append(k)
            dist.append(d)
        else:
            kept.append(i)
            rep.append(i)
            dist.append(0)
    return [i in set(kept) for i in range(len(h))], rep, dist


@pytest.mark.parametrize("seed", range(5))
def test_keep_rule_equals_the_naive_one(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    h = np.sort(_clustered(rng, int(rng.integers(1, 200)), flips=8))
    for t in (0, 2, 5, 9, 13, 16, 24, 40, 64):
        kept, rep, dist = greedy_keep(h, t)
        want = _naive_keep([int(x) for x in h], t)
        assert kept.tolist() == want[0] and rep.tolist() == want[1] \
            and dist.tolist() == want[2], t


def test_deduplicate_is_nucleus_rule_whatever_the_input_order() -> None:
    rng = np.random.default_rng(3)
    h = _clustered(rng, 120)
    keys = [f"ref{i:03d}" for i in range(len(h))]
    first = deduplicate(h, keys, DedupConfig(threshold=6))
    perm = rng.permutation(len(h))
    second = deduplicate(h[perm], [keys[i] for i in perm], DedupConfig(threshold=6))
    body1 = first.to_dict(keys, keys)
    body2 = second.to_dict([keys[i] for i in perm], [keys[i] for i in perm])
    assert body1 == body2
    # Nucleus' own order: by hash value, then reference id.
    order = sorted(range(len(h)), key=lambda i: (int(h[i]), keys[i]))
    kept, _, _ = _naive_keep([int(h[i]) for i in order], 6)
    assert body1["unique_reference_ids"] == [keys[order[k]] for k in range(len(h))
                                             if kept[k]]
    stats = body1["stats"]
    assert stats["original_count"] == 120 and stats["deduplicated_count"] == \
        len(body1["unique_item_ids"]) == 120 - stats["duplicate_count"]
    assert sum(len(g["duplicates"]) for g in body1["groups"]) == stats["duplicate_count"]
    sizes = [len(g["duplicates"]) for g in body1["groups"]]
    assert sizes == sorted(sizes, reverse=True) and all(sizes)
    assert body1["groups"][0]["reference_id"] in body1["unique_reference_ids"]
    capped = first.to_dict(keys, keys, max_groups=1)
    assert len(capped["groups"]) == 1 and capped["stats"] == stats
    empty = deduplicate(np.empty(0, np.uint64), [], DedupConfig()).to_dict([], [])
    assert empty["stats"]["original_count"] == 0 and empty["groups"] == []


def test_registered_beside_tide_with_checked_config() -> None:
    assert {"dedup", "tide"} <= set(analysis_names())
    assert analysis_names("images") == ["dedup"] and "dedup" not in analysis_names("run")
    dedup = get_analysis("dedup", "images")
    assert dedup.config({"threshold": 0}).threshold == 0
    for bad in (-1, 65, 10.5, True, "10"):
        with pytest.raises(ValidationError, match="between 0 and 64"):
            dedup.config({"threshold": bad})
    with pytest.raises(ValidationError, match="unknown dedup parameter"):
        dedup.config({"radius": 3})
    with pytest.raises(ValidationError, match="unknown analysis 'dedup'"):
        get_analysis("dedup", "run")
    with pytest.raises(ValidationError, match="about images, not a run"):
        dedup.run(None, None)  # type: ignore[arg-type]
    result = dedup.apply(np.array([5, 5, 7], np.uint64), ["a", "b", "c"],
                         config={"threshold": 1})
    assert result.to_dict(["1", "2", "3"], ["a", "b", "c"])["unique_reference_ids"] == ["a"]
