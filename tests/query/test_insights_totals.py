"""Whole-dataset insights come from running totals kept by every write; after any
sequence of writes they must equal insights computed by scanning the rows, and the
stored totals must equal totals rebuilt from scratch."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from ocula import (
    BoxAnnotation,
    BoxPrediction,
    CategoryAnnotation,
    DatasetItem,
    Point,
    PolygonAnnotation,
)
from ocula.core.services import Service, stats
from ocula.core.store import schema as t
from tests.conftest import make_images

LABELS = ["car", "pedestrian", "truck"]


def _metadata(rng: random.Random) -> dict[str, Any] | None:
    md: dict[str, Any] = {}
    if rng.random() < 0.9:
        md["weather"] = rng.choice(["rain", "snow", "clear", None])
    if rng.random() < 0.8:
        md["speed"] = rng.choice([rng.randint(0, 60), round(rng.uniform(0, 60), 1)])
    if rng.random() < 0.5:
        md["night"] = rng.random() < 0.5
    if rng.random() < 0.2:
        md["extra"] = {"nested": rng.randint(0, 3)}
    if rng.random() < 0.3:
        md["mixed"] = rng.choice(["a", "b", 7, 2.5])
    if rng.random() < 0.7:
        md["offset"] = rng.choice([round(rng.uniform(-50, 50), 3), 0, -1.5, 1e-9])
    return md or None


def _annotation(rng: random.Random, ref: str, ann_id: str) -> Any:
    label = rng.choice(LABELS)
    kind = rng.random()
    if kind < 0.75:
        w = rng.choice([rng.uniform(0.5, 150), float(rng.randint(1, 64))])
        h = rng.choice([rng.uniform(0.5, 90), float(rng.randint(1, 64))])
        return BoxAnnotation(label, rng.uniform(0, 40), rng.uniform(0, 5), w, h,
                             reference_id=ref, annotation_id=ann_id)
    if kind < 0.9:
        x, y = rng.uniform(0, 100), rng.uniform(0, 50)
        return PolygonAnnotation(label, [Point(x, y), Point(x + rng.uniform(1, 80), y),
                                         Point(x, y + rng.uniform(1, 40))],
                                 reference_id=ref, annotation_id=ann_id)
    return CategoryAnnotation(rng.choice(["day", "night"]), reference_id=ref,
                              annotation_id=ann_id)


def _prediction(rng: random.Random, ref: str, pred_id: str) -> BoxPrediction:
    return BoxPrediction(rng.choice(LABELS), rng.uniform(0, 40), rng.uniform(0, 40),
                         rng.uniform(2, 100), rng.uniform(2, 50), reference_id=ref,
                         annotation_id=pred_id, confidence=round(rng.random(), 3))


def _stored(service: Service, dataset_pk: int) -> set[tuple]:
    s = t.dataset_stats
    with service.db.read() as conn:
        return {tuple(r) for r in conn.execute(
            select(s.c.run_pk, s.c.kind, s.c.key, s.c.count).where(
                s.c.dataset_pk == dataset_pk, s.c.count != 0))}


def _check(service: Service, name: str) -> None:
    assert service.insights(name) == service.scan_insights(name)
    _check_counts(service, name)


def _check_counts(service: Service, name: str) -> None:
    """The counts pages show (read from the totals once complete) equal the rows'."""
    a, p = t.annotations, t.predictions
    with service.db.read() as conn:
        ds = service._dataset_row(conn, name)
        current = [a.c.dataset_pk == ds.pk, a.c.version_to.is_(None)]
        labels = dict(conn.execute(select(a.c.label, func.count()).where(*current)
                                   .group_by(a.c.label)).all())
        n_items = conn.scalar(select(func.count()).where(t.items.c.dataset_pk == ds.pk))
        runs = conn.execute(select(t.model_runs.c.id, t.model_runs.c.pk).where(
            t.model_runs.c.dataset_pk == ds.pk)).all()
        predictions = {r.id: conn.scalar(select(func.count()).where(p.c.run_pk == r.pk))
                       for r in runs}
    info = service.dataset_info(name)
    assert (info["length"], info["annotation_count"], info["labels"]) == (
        n_items, sum(labels.values()), labels)
    assert list(info["labels"]) == sorted(labels, key=lambda x: (x is not None, x))
    assert {r["id"]: r["prediction_count"] for r in service.list_runs(name)} == predictions
    assert service.query_items(name, " ", page_size=1, with_total=True)["total"] == n_items


@pytest.mark.parametrize("seed", [1, 2])
def test_totals_follow_every_write(service: Service, tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    images = make_images(tmp_path / "img", 4, size=(200, 100))
    service.create_dataset("d")
    service.create_dataset("other")  # writes elsewhere must not leak into "d"
    refs = [f"r{i}" for i in range(40)]
    service.append("d", [DatasetItem(str(images[i % 4]), ref, _metadata(rng))
                         for i, ref in enumerate(refs)])
    service.append("other", [DatasetItem(str(images[0]), "x", {"weather": "rain"})])
    service.annotate("other", [BoxAnnotation("car", 1, 1, 5, 5, reference_id="x")])
    _check(service, "d")

    anns = [_annotation(rng, rng.choice(refs), f"a{i}") for i in range(150)]
    service.annotate("d", anns)
    _check(service, "d")
    # Replace some (new label or geometry), re-send others unchanged, add more.
    changed = [_annotation(rng, a.reference_id, a.annotation_id) for a in anns[:40]]
    service.annotate("d", changed + anns[40:60] + [
        _annotation(rng, rng.choice(refs), f"b{i}") for i in range(20)], update=True)
    _check(service, "d")
    service.delete_annotations("d", reference_ids=refs[:3])
    service.delete_annotations("d", annotation_ids=["a50", "a51", "b3"])
    _check(service, "d")

    service.update_metadata("d", [{"reference_id": r, "metadata": {"weather": "fog"}}
                                  for r in refs[5:10]])
    service.update_metadata("d", [{"reference_id": refs[10], "metadata": {"speed": 99}}],
                            replace=True)
    service.append("d", [DatasetItem(str(images[1]), r, _metadata(rng)) for r in refs[11:15]]
                   + [DatasetItem(str(images[2]), "new", {"weather": "rain"})], update=True)
    _check(service, "d")

    model = service.add_model("m", "m-1")
    run = service.create_run(model["id"], "d", "run1", [
        _prediction(rng, rng.choice(refs), f"p{i}") for i in range(120)])
    _check(service, "d")
    service.commit_run(run["model_run_id"])
    _check(service, "d")
    service.predict(run["model_run_id"], [_prediction(rng, rng.choice(refs), f"p{i}")
                                          for i in range(100, 140)], update=True)
    service.commit_run(run["model_run_id"], iou_threshold=0.3)
    run2 = service.create_run(model["id"], "d", "run2", [
        _prediction(rng, rng.choice(refs), f"q{i}") for i in range(30)])
    service.commit_run(run2["model_run_id"])
    _check(service, "d")

    service.delete_item("d", refs[20])
    service.delete_item("d", "new")
    _check(service, "d")
    service.delete_run(run2["model_run_id"])
    _check(service, "d")

    with service.db.read() as conn:
        pk = service._dataset_row(conn, "d").pk
    kept = _stored(service, pk)
    with service.db.write() as conn:
        stats.rebuild(conn, pk)
    assert _stored(service, pk) == kept

    service.delete_dataset("d")
    assert _stored(service, pk) == set()
    _check(service, "other")


def test_dataset_without_totals_is_counted_once(service: Service, tmp_path: Path) -> None:
    """A dataset from before the totals (no "ready" row) gets them on first use."""
    (image,) = make_images(tmp_path / "img", 1)
    service.create_dataset("old")
    service.append("old", [DatasetItem(str(image), f"r{i}", {"k": i % 3}) for i in range(5)])
    service.annotate("old", [BoxAnnotation("car", 0, 0, 4, 2, reference_id="r1")])
    with service.db.write() as conn:
        stats.drop_dataset(conn, service._dataset_row(conn, "old").pk)
    _check_counts(service, "old")  # counted from the rows while there are no totals
    assert service.insights("old") == service.scan_insights("old")
    assert service.insights("old")["scope"] == {
        "dataset_id": service.get_dataset("old")["id"], "dataset": "old", "slice": None,
        "query": None, "items": 5, "annotations": 1}


def test_buckets_are_exact_at_powers_of_two() -> None:
    assert stats.log2_bucket(256.0) == 8
    assert stats.log2_bucket(255.99999999999997) == 7
    assert stats.log2_bucket(0.5) == -1
    assert stats.log2_bucket(0) is None and stats.log2_bucket(None) is None
    counts = stats.gt_counts([("car", 256.0, 32.0, 8.0), ("car", 0.0, 0.0, 8.0),
                              ("x", None, None, None)])
    assert counts == {("car", 8, 2): 1, ("car", None, None): 1, ("x", None, None): 1}


def test_totals_stay_exact_under_concurrent_writers(database_url: str, tmp_path: Path) -> None:
    """Two services on one database (two server processes, say) writing at once."""
    from concurrent.futures import ThreadPoolExecutor

    images = make_images(tmp_path / "img", 2, size=(200, 100))
    services = [Service.open(tmp_path / f"home{i}", database_url) for i in range(2)]
    try:
        services[0].create_dataset("d")

        def work(w: int) -> None:
            svc, rng = services[w], random.Random(w)
            for batch in range(4):
                refs = [f"w{w}-{batch}-{i}" for i in range(10)]
                svc.append("d", [DatasetItem(str(images[w]), r, _metadata(rng)) for r in refs])
                svc.annotate("d", [_annotation(rng, rng.choice(refs), f"{r}-{j}")
                                   for r in refs for j in range(2)])

        with ThreadPoolExecutor(2) as pool:
            list(pool.map(work, range(2)))
        _check(services[0], "d")
        with services[0].db.read() as conn:
            pk = services[0]._dataset_row(conn, "d").pk
        kept = _stored(services[0], pk)
        with services[0].db.write() as conn:
            stats.rebuild(conn, pk)
        assert _stored(services[0], pk) == kept
    finally:
        for svc in services:
            svc.close()


def test_fields_with_many_distinct_values(service: Service, tmp_path: Path) -> None:
    """A unique id per item (COCO's ``coco_id``, a file name): a numeric one still gets
    its exact histogram, a text one its most frequent values, from index ranges."""
    (image,) = make_images(tmp_path / "img", 1)
    service.create_dataset("ids")
    n = 1_250
    service.append("ids", [DatasetItem(str(image), f"r{i}", {
        "coco_id": 1000 + i * 7, "file": f"img_{i:05d}.jpg" if i else "common.jpg",
        "site": "a" if i % 3 else "b"}) for i in range(n)])
    service.append("ids", [DatasetItem(str(image), f"s{i}", {"file": "common.jpg"})
                           for i in range(3)])
    whole = service.insights("ids")
    scanned = service.scan_insights("ids")
    for field in ("coco_id", "site"):
        assert whole["metadata"][field] == scanned["metadata"][field]
    files = whole["metadata"]["file"]
    assert len(files["values"]) == 25
    assert files["values"][0]["value"] == "common.jpg" and files["values"][0]["count"] == 4
    assert sum(v["count"] for v in files["values"]) + files["other"] == n + 3
    for bucket in files["values"] + whole["metadata"]["coco_id"]["buckets"]:
        got = service.query_items("ids", bucket["query"], with_total=True)["total"]
        assert got == bucket["count"], bucket["query"]


def test_value_groups_are_ordered_intervals() -> None:
    rng = random.Random(5)
    values = sorted({rng.choice([-1, 1]) * rng.uniform(0, 10) ** rng.uniform(-5, 8)
                     for _ in range(5000)} | {0.0, 1.0, -1.0, 2.0 ** 40, -(2.0 ** -30)})
    groups = [stats.value_group(v) for v in values]
    assert groups == sorted(groups)  # a group is an interval of the number line
    for v, g in zip(values, groups, strict=True):
        assert stats.group_start(g) <= v < stats.group_start(g + 1)
        assert stats.value_group(stats.group_start(g)) == g
