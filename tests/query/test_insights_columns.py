"""Insights of slices and query results from in-memory columns equal those from scanning
the rows with GROUP BYs, on both databases, and follow every write."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from ocula import DatasetItem
from ocula.core.services import Service
from ocula.core.services.insights_scan import ScanInsights
from tests.conftest import make_images
from tests.query.test_insights_totals import _annotation, _metadata, _prediction

SCOPES: list[dict[str, Any]] = [
    {"slice": "half"}, {"query": 'metadata.weather = "rain"'},
    {"query": "metadata.speed > 20", "slice": "half"}, {"query": 'metadata.weather = "none"'},
    {"query": 'count(label = "car") >= 1'}, {"slice": "empty"},
]


def _scanned(service: Service, dataset: str, scope: dict[str, Any]) -> dict[str, Any]:
    with service.db.read() as conn:
        ds = service._dataset_row(conn, dataset)
        row = service._slice_in(conn, ds, scope["slice"]) if "slice" in scope else None
        return ScanInsights(service, conn, ds, row, scope.get("query"), 1000).build()


def _check(service: Service) -> None:
    for scope in SCOPES:
        got = service.insights("d", **scope)
        assert got == _scanned(service, "d", scope), scope
        assert service.insights("d", fresh=True, **scope) == got


def test_columns_equal_a_scan_and_follow_writes(service: Service, tmp_path: Path) -> None:
    rng = random.Random(3)
    images = make_images(tmp_path / "img", 2, size=(200, 100))
    service.create_dataset("d")
    refs = [f"r{i}" for i in range(60)]
    service.append("d", [DatasetItem(str(images[i % 2]), ref, _metadata(rng))
                         for i, ref in enumerate(refs)])
    service.annotate("d", [_annotation(rng, rng.choice(refs[:50]), f"a{i}")
                           for i in range(200)])
    model = service.add_model("m", "m-1")
    run = service.create_run(model["id"], "d", "run1", [
        _prediction(rng, rng.choice(refs), f"p{i}") for i in range(150)])
    service.commit_run(run["model_run_id"])
    service.create_run(model["id"], "d", "open", [
        _prediction(rng, rng.choice(refs), f"q{i}") for i in range(20)])
    service.create_slice("d", "half", reference_ids=refs[::2])
    service.create_slice("d", "empty", reference_ids=[])
    _check(service)

    # Each kind of write changes what the columns hold: they are read again.
    service.annotate("d", [_annotation(rng, r, f"a{i}") for i, r in enumerate(refs[:30])],
                     update=True)
    _check(service)
    service.update_metadata("d", [{"reference_id": r, "metadata": {"weather": "rain",
                                                                    "speed": 99.5}}
                                  for r in refs[:10]])
    _check(service)
    service.delete_item("d", refs[2])
    service.predict(run["model_run_id"], [_prediction(rng, r, f"z{i}")
                                          for i, r in enumerate(refs[3:11])])
    service.commit_run(run["model_run_id"], iou_threshold=0.3)
    _check(service)


def test_free_text_and_wide_numbers(service: Service, tmp_path: Path) -> None:
    """A field with many distinct values lists its most frequent ones, as a scan does."""
    (image,) = make_images(tmp_path / "img", 1)
    service.create_dataset("d")
    n = 400
    service.append("d", [DatasetItem(str(image), f"r{i}", {
        "file": "common.jpg" if i % 50 == 0 else f"img_{i:05d}.jpg", "id": 10 ** (i % 9) + i,
        "weather": ["rain", "snow"][i % 2], "speed": i / 7}) for i in range(n)])
    service.create_slice("d", "half", reference_ids=[f"r{i}" for i in range(0, n, 2)])
    service.create_slice("d", "empty", reference_ids=[])
    for scope in ({"slice": "half"}, {"query": "metadata.speed > 3"}):
        got = service.insights("d", **scope)
        scanned = _scanned(service, "d", scope)
        files, expected = got["metadata"].pop("file"), scanned["metadata"].pop("file")
        assert got == scanned
        # Ties among the other values may be broken either way: compare what is certain.
        assert files["values"][0] == expected["values"][0]
        assert [v["count"] for v in files["values"]] == [v["count"] for v in expected["values"]]
        assert files["other"] == expected["other"]


def test_a_write_rereads_only_the_columns_it_changed(service: Service, tmp_path: Path) -> None:
    """A metadata edit re-reads no box; a label edit no prediction; results stay exact."""
    rng = random.Random(5)
    images = make_images(tmp_path / "img", 2, size=(200, 100))
    service.create_dataset("d")
    refs = [f"r{i}" for i in range(40)]
    service.append("d", [DatasetItem(str(images[i % 2]), ref, _metadata(rng))
                         for i, ref in enumerate(refs)])
    service.annotate("d", [_annotation(rng, rng.choice(refs), f"a{i}") for i in range(120)])
    model = service.add_model("m", "m-1")
    run = service.create_run(model["id"], "d", "run1", [
        _prediction(rng, rng.choice(refs), f"p{i}") for i in range(90)])
    service.commit_run(run["model_run_id"])
    service.create_slice("d", "half", reference_ids=refs[::2])
    service.create_slice("d", "empty", reference_ids=[])

    def columns() -> Any:
        _check(service)
        (held,) = service._insights_columns.values()  # one dataset's
        return held

    before = columns()
    service.update_metadata("d", [{"reference_id": r, "metadata": {"weather": "snow"}}
                                  for r in refs[:5]])
    after = columns()
    assert after is not before and after.gt_item is before.gt_item
    assert after.pred_item is before.pred_item and after.match_item is before.match_item
    assert after.meta is not before.meta
    service.annotate("d", [_annotation(rng, r, f"b{i}") for i, r in enumerate(refs[:6])])
    edited = columns()
    assert edited.gt_item is not after.gt_item and edited.pred_item is after.pred_item
    assert edited.match_item is not after.match_item


def test_runs_holding_most_rows_are_read_in_one_pass(service: Service, tmp_path: Path) -> None:
    """Where a dataset's runs hold most of SQLite's predictions, their prediction and
    match rows are read by one pass over each table (no run index term, whose row
    look-ups cost more); a small dataset beside them keeps the index. Both equal a scan."""
    from sqlalchemy import select, text

    from ocula.core.services.evaluation_sides import mostly_this_run
    from ocula.core.services.insights_columns import _of_runs
    from ocula.core.store import schema as t

    rng = random.Random(5)
    images = make_images(tmp_path / "img", 1, size=(200, 100))
    for name, n_pred in (("d", 300), ("small", 10)):
        service.create_dataset(name)
        refs = [f"{name}{i}" for i in range(20)]
        service.append(name, [DatasetItem(str(images[0]), r, _metadata(rng)) for r in refs])
        service.annotate(name, [_annotation(rng, rng.choice(refs), f"a{i}") for i in range(40)])
        model = service.add_model(f"m-{name}", f"m-{name}")
        run = service.create_run(model["id"], name, "run", [
            _prediction(rng, rng.choice(refs), f"p{i}") for i in range(n_pred)])
        service.commit_run(run["model_run_id"])
        service.create_slice(name, "half", reference_ids=refs[::2])
        service.create_slice(name, "empty", reference_ids=[])
    _check(service)
    with service.db.read() as conn:
        if conn.dialect.name != "sqlite":
            return
        pks = dict(conn.execute(select(t.datasets.c.name, t.model_runs.c.pk).join(
            t.model_runs, t.model_runs.c.dataset_pk == t.datasets.c.pk)).all())
        for name, scans in (("d", True), ("small", False)):
            one_pass = mostly_this_run(conn, [pks[name]])
            for table in (t.predictions, t.match_predictions, t.match_annotations):
                sql = select(table.c.item_pk).where(_of_runs(table, [pks[name]], one_pass)) \
                    .compile(conn, compile_kwargs={"literal_binds": True})
                steps = " ".join(r[3] for r in conn.execute(text(f"EXPLAIN QUERY PLAN {sql}")))
                assert steps.startswith("SCAN") == scans, (name, table.name, steps)
