"""Each way a scope's items are read for insights (a slice's members alone, a query's
items alone, a query within a slice, the whole dataset) gives exactly what the plain
path gives: the scan, which evaluates the scope into a temporary table first. On both
databases, with a second dataset beside the first so that nothing of another dataset's
leaks in."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import literal, select, union_all

from ocula import DatasetItem
from ocula.core.services import Service
from ocula.core.services.insights_columns import _top
from ocula.core.services.insights_scan import ScanInsights
from ocula.core.store import schema as t
from ocula.core.store.bulk import fetch_ints
from tests.conftest import make_images
from tests.query.test_insights_totals import _annotation, _metadata, _prediction

SAMPLE = 7  # fewer items than any non-empty scope: the sample is its first items

SCOPES: list[tuple[dict[str, Any], bool]] = [
    # (scope, whether it holds items)
    ({"slice": "half"}, True),
    ({"query": 'metadata.weather = "rain"'}, True),
    ({"slice": "half", "query": "metadata.speed > 20"}, True),
    ({"slice": "half", "query": 'not in_slice("third")'}, True),
    ({"query": 'in_slice("third") or metadata.night = true'}, True),
    ({"query": "order by metadata.speed desc"}, True),
    ({"slice": "third", "query": "order by id"}, True),
    ({"slice": "half", "query": 'metadata.weather = "none"'}, False),
    ({"slice": "empty"}, False),
    ({"slice": "empty", "query": "metadata.speed > 0"}, False),
]


def _scanned(service: Service, dataset: str, scope: dict[str, Any]) -> dict[str, Any]:
    with service.db.read() as conn:
        ds = service._dataset_row(conn, dataset)
        row = service._slice_in(conn, ds, scope["slice"]) if "slice" in scope else None
        return ScanInsights(service, conn, ds, row, scope.get("query"), SAMPLE).build()


def _fill(service: Service, name: str, images: list[Path], rng: random.Random) -> list[str]:
    service.create_dataset(name)
    refs = [f"{name}{i}" for i in range(80)]
    cities = ["Zürich", "東京", "a\"quoted\\", None, 3, 3.0, True, "Zürich", "b"]
    service.append(name, [DatasetItem(str(images[i % 2]), ref, {
        **(_metadata(rng) or {}), **({"city": cities[i % 9]} if i % 4 else {})})
        for i, ref in enumerate(refs)])
    service.annotate(name, [_annotation(rng, rng.choice(refs[:70]), f"{name}a{i}")
                            for i in range(240)])
    model = service.add_model(f"m-{name}", f"m-{name}")
    run = service.create_run(model["id"], name, "run1", [
        _prediction(rng, rng.choice(refs), f"{name}p{i}") for i in range(160)])
    service.commit_run(run["model_run_id"])
    return refs


def test_every_scope_path_equals_the_scan(service: Service, tmp_path: Path) -> None:
    rng = random.Random(11)
    images = make_images(tmp_path / "img", 2, size=(200, 100))
    # The other dataset first: its item pks come before and among d's would-be ones.
    other = _fill(service, "other", images, rng)
    refs = _fill(service, "d", images, rng)
    service.create_slice("other", "half", reference_ids=other[1::2])
    service.create_slice("other", "third", reference_ids=other[::3])
    service.create_slice("d", "half", reference_ids=refs[::2])
    service.create_slice("d", "third", reference_ids=refs[::3])
    service.create_slice("d", "empty", reference_ids=[])

    assert service.insights("d") == service.scan_insights("d")
    for scope, holds_items in SCOPES:
        expected = _scanned(service, "d", scope)
        assert (expected["scope"]["items"] > SAMPLE) == holds_items, scope
        got = service.insights("d", metadata_sample=SAMPLE, fresh=True, **scope)
        assert got == expected, scope

    # Cached results follow membership, even a change that keeps every count: two
    # members swapped for two others in each slice, then an item deleted.
    for s in service.list_slices("d"):
        if s["name"] != "empty":
            service.slice_remove(s["id"], refs[:12:6])
            service.slice_append(s["id"], refs[1:13:6])
    _check_cached(service)
    service.delete_item("d", refs[7])
    _check_cached(service)


def _check_cached(service: Service) -> None:
    for scope, _ in SCOPES:
        assert service.insights("d", metadata_sample=SAMPLE, **scope) == \
            _scanned(service, "d", scope), scope


def test_fetch_ints(service: Service) -> None:
    """Integer columns in bulk: any size of integer, none at all, as the rows say."""
    with service.db.read() as conn:
        assert fetch_ints(conn, select(t.items.c.pk)).tolist() == []
        values = [0, 7, -3, 2 ** 31 + 5, -(2 ** 40), 2 ** 62]
        query = union_all(*[select(literal(v).label("v")) for v in values])
        got = fetch_ints(conn, select(query.subquery().c.v))
        assert got.dtype == np.int64
        assert sorted(got.tolist()) == sorted(values)


@pytest.mark.parametrize("n", [1, 3000])
def test_fetch_ints_reads_every_row(service: Service, tmp_path: Path, n: int) -> None:
    (image,) = make_images(tmp_path / "img", 1)
    service.create_dataset("d")
    service.append("d", [DatasetItem(str(image), f"r{i}") for i in range(n)])
    with service.db.read() as conn:
        expected = conn.scalars(select(t.items.c.pk)).all()
        got = fetch_ints(conn, select(t.items.c.pk).where(t.items.c.reference_id != "x"))
    assert sorted(got.tolist()) == sorted(expected) and len(expected) == n


def test_top_counts_are_a_stable_sort_cut() -> None:
    """A free-text field's top values: as a stable sort by descending count, cut."""
    rng = np.random.default_rng(1)
    for _ in range(300):
        counts = rng.integers(0, int(rng.integers(1, 6)), int(rng.integers(0, 200)))
        k = int(rng.integers(1, 30))
        assert _top(counts, k).tolist() == \
            np.argsort(-counts, kind="stable")[:k].tolist(), (counts, k)
