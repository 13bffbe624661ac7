"""Uploads of plain boxes keep their evaluation columns in memory (``upload_sides``):
the commit that follows reads no prediction or ground-truth row, and what it gets is
exactly what reading the rows gives (every column, dtypes included). Uploads that cannot
be named exactly keep nothing. On both databases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ocula import (
    BoxAnnotation,
    BoxPrediction,
    DatasetItem,
    PolygonAnnotation,
    PolygonPrediction,
)
from ocula.core.services import Service, sides_cache, upload_sides
from ocula.core.services.evaluation_sides import _dt_columns, _gt_columns, read_sides
from ocula.core.store import schema as t
from tests.conftest import make_images

N = 12


def _dataset(service: Service, folder: Path) -> str:
    paths = make_images(folder, N, size=(200, 150))
    ds = service.create_dataset("uploads")["id"]
    service.append(ds, [DatasetItem(str(p), f"r{i}") for i, p in enumerate(paths)])
    service.annotate(ds, [BoxAnnotation(["car", "person"][i % 2], 10, 10, 50, 40,
                                        reference_id=f"r{i}") for i in range(N)])
    return ds


def _boxes(seed: int, n: int = 60) -> list[BoxPrediction]:
    """Boxes as users send them: floats and ints, confidences missing, areas given."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        x, y = float(rng.uniform(0, 150)), float(rng.uniform(0, 100))
        w, h = float(rng.uniform(1, 50)), float(rng.uniform(1, 50))
        if k % 7 == 0:
            x, y, w, h = int(x), int(y), int(w) + 1, int(h) + 1
        out.append(BoxPrediction(
            ["car", "person", "dog", "vélo"][k % 4], x, y, w, h,
            reference_id=f"r{int(rng.integers(N))}",
            confidence=None if k % 5 == 0 else float(rng.uniform(0, 1)),
            area=float(w * h * 0.9) if k % 3 == 0 else None))
    return out


def _run_row(service: Service, run: str) -> Any:
    with service.db.read() as conn:
        return conn.execute(t.model_runs.select().where(t.model_runs.c.id == run)).one()


def _sides_as_commit(service: Service, run: str, monkeypatch: pytest.MonkeyPatch
                     ) -> tuple[Any, Any, bool, bool]:
    """Both sides as the commit reads them, and whether each came from memory (no row
    of it read)."""
    from ocula.core.services import evaluation_sides

    reads: list[str] = []

    def spy(name: str) -> Any:
        real = getattr(evaluation_sides, name)

        def counted(*a: Any) -> Any:
            reads.append(name)
            return real(*a)
        return counted
    with monkeypatch.context() as m:
        for name in ("_gt_columns", "_dt_columns"):
            m.setattr(evaluation_sides, name, spy(name))
        with service.db.read() as conn:
            gt, dt, _ = read_sides(conn, _run_row(service, run), None, None, "bbox")
    return gt, dt, "_gt_columns" not in reads, "_dt_columns" not in reads


def _read_as_commit(service: Service, run: str, monkeypatch: pytest.MonkeyPatch
                    ) -> tuple[Any, bool]:
    """The predictions side as the commit reads it, and whether it came from memory."""
    _, dt, _, kept = _sides_as_commit(service, run, monkeypatch)
    return dt, kept


def _from_rows(service: Service, run: str) -> Any:
    with service.db.read() as conn:
        return _dt_columns(conn, _run_row(service, run).pk)


def _gt_from_rows(service: Service, run: str) -> Any:
    with service.db.read() as conn:
        return _gt_columns(conn, _run_row(service, run).dataset_pk, None)


def _assert_same(a: Any, b: Any) -> None:
    for name in type(a).__slots__:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        assert np.array_equal(x, y), name


@pytest.fixture
def fresh_cache() -> None:
    sides_cache.forget_all()


def test_a_new_run_of_boxes_is_read_from_memory_as_its_rows_read(
        service: Service, tmp_path: Path, fresh_cache: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    ds = _dataset(service, tmp_path / "img")
    model = service.add_model("m", "m")["id"]
    run = service.create_run(model, ds, "boxes", _boxes(1))["id"]
    dt, kept = _read_as_commit(service, run, monkeypatch)
    assert kept
    _assert_same(dt, _from_rows(service, run))
    assert len(dt) == 60 and set(dt.label.tolist()) == {"car", "person", "dog", "vélo"}
    # The commit's numbers are those of a commit that reads every row.
    kept = service.commit_run(run)
    sides_cache.forget_all()
    assert service.commit_run(run) == kept


def test_uploads_in_batches_are_kept_as_one_run(
        service: Service, tmp_path: Path, fresh_cache: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    ds = _dataset(service, tmp_path / "img")
    model = service.add_model("m", "m")["id"]
    run = service.create_run(model, ds, "later")["id"]
    service.predict(run, _boxes(2))
    dt, kept = _read_as_commit(service, run, monkeypatch)
    assert kept
    _assert_same(dt, _from_rows(service, run))
    # More batches (the client sends 50,000 a call), one with a longer label: each
    # follows the rows kept, and the whole is what the rows read.
    service.predict(run, _boxes(3, 30))
    service.predict(run, [*_boxes(4, 5), BoxPrediction(
        "a much longer label", 3, 3, 9, 9, reference_id="r2", confidence=0.5)])
    dt, kept = _read_as_commit(service, run, monkeypatch)
    assert kept and len(dt) == 96
    _assert_same(dt, _from_rows(service, run))
    service.predict(run, _boxes(5, 7))  # after a read too
    dt, kept = _read_as_commit(service, run, monkeypatch)
    assert kept and len(dt) == 103
    _assert_same(dt, _from_rows(service, run))
    assert service.commit_run(run) == (sides_cache.forget_all() or service.commit_run(run))


@pytest.mark.parametrize("between", ["item deleted", "replaced", "segmentation"])
def test_a_batch_after_another_change_is_read_from_rows(
        service: Service, tmp_path: Path, fresh_cache: None,
        monkeypatch: pytest.MonkeyPatch, between: str) -> None:
    ds = _dataset(service, tmp_path / "img")
    model = service.add_model("m", "m")["id"]
    first = [*_boxes(6, 20), BoxPrediction("car", 1, 1, 9, 9, reference_id="r3",
                                           annotation_id="a", confidence=0.4)]
    run = service.create_run(model, ds, "changed", first)["id"]
    if between == "item deleted":
        service.delete_item(ds, "r3")
    elif between == "replaced":
        service.predict(run, [BoxPrediction("dog", 2, 2, 8, 8, reference_id="r3",
                                            annotation_id="a", confidence=0.9)], update=True)
    else:
        service.predict(run, [PolygonPrediction("car", [(10, 10), (60, 10), (60, 50)],
                                                reference_id="r1", confidence=0.7)])
    service.predict(run, [BoxPrediction("car", 5, 5, 10 + k, 10, reference_id="r0",
                                        confidence=k / 10) for k in range(10)])
    dt, kept = _read_as_commit(service, run, monkeypatch)
    assert not kept
    _assert_same(dt, _from_rows(service, run))


def test_a_replacement_is_kept_only_where_it_is_the_whole_run(
        service: Service, tmp_path: Path, fresh_cache: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    ds = _dataset(service, tmp_path / "img")
    model = service.add_model("m", "m")["id"]
    first = [BoxPrediction("car", 1, 1, 9, 9, reference_id="r0", annotation_id=a,
                           confidence=0.4) for a in ("a", "b")]
    run = service.create_run(model, ds, "replaced", first)["id"]
    # "a" replaced, "b" stays: the run holds a row this upload did not write.
    service.predict(run, [BoxPrediction("dog", 2, 2, 8, 8, reference_id="r0",
                                        annotation_id="a", confidence=0.9)], update=True)
    dt, kept = _read_as_commit(service, run, monkeypatch)
    assert not kept
    assert sorted(zip(dt.label.tolist(), dt.score.tolist(), strict=True)) == [
        ("car", 0.4), ("dog", 0.9)]
    # Both replaced: the upload's rows are the whole run again.
    service.predict(run, [BoxPrediction("cat", 3, 3, 7, 7, reference_id="r0",
                                        annotation_id=a, confidence=0.2) for a in ("a", "b")],
                    update=True)
    dt, kept = _read_as_commit(service, run, monkeypatch)
    assert kept
    _assert_same(dt, _from_rows(service, run))


def test_an_upload_with_other_shapes_keeps_nothing(service: Service, tmp_path: Path,
                                                   fresh_cache: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    ds = _dataset(service, tmp_path / "img")
    model = service.add_model("m", "m")["id"]
    shapes = [*_boxes(4, 10), PolygonPrediction(
        "car", [(10, 10), (60, 10), (60, 50)], reference_id="r1", confidence=0.7)]
    run = service.create_run(model, ds, "mixed", shapes)["id"]
    dt, kept = _read_as_commit(service, run, monkeypatch)
    assert not kept and len(dt) == 11


def test_rows_that_cannot_be_named_keep_nothing(service: Service, tmp_path: Path) -> None:
    ds = _dataset(service, tmp_path / "img")
    model = service.add_model("m", "m")["id"]
    run = service.create_run(model, ds, "named", _boxes(5, 20))["id"]
    pk = _run_row(service, run).pk
    columns = {c: [None] * 19 for c in upload_sides.BOX_COLUMNS}
    with service.db.write() as conn:
        # 19 columns' rows for a run holding 20: not these rows.
        assert upload_sides.predictions_keeper(conn, pk, columns) is None
        # A gap in the run's keys: its rows are not one written range.
        conn.execute(t.predictions.delete().where(t.predictions.c.pk == conn.scalar(
            t.predictions.select().with_only_columns(t.predictions.c.pk)
            .where(t.predictions.c.run_pk == pk).order_by(t.predictions.c.pk).offset(5)
            .limit(1))))
        assert upload_sides.predictions_keeper(conn, pk, columns) is None


def _gt_boxes(seed: int, n: int, refs: range = range(N)) -> list[BoxAnnotation]:
    rng = np.random.default_rng(seed)
    return [BoxAnnotation(["car", "person", "dog"][k % 3], float(rng.uniform(0, 150)),
                          float(rng.uniform(0, 100)), float(rng.uniform(1, 50)),
                          k % 4 + 1, reference_id=f"r{refs[k % len(refs)]}",
                          iscrowd=k % 9 == 0, area=300.5 if k % 5 == 0 else None)
            for k in range(n)]


def _labelled(service: Service, folder: Path) -> tuple[str, str]:
    """A dataset with items, ground truth still to come, and a run of boxes."""
    paths = make_images(folder, N, size=(200, 150))
    ds = service.create_dataset("labelled")["id"]
    service.append(ds, [DatasetItem(str(p), f"r{i}") for i, p in enumerate(paths)])
    return ds, service.add_model("m", "m")["id"]


def test_ground_truth_uploaded_in_batches_is_read_from_memory(
        service: Service, tmp_path: Path, fresh_cache: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    ds, model = _labelled(service, tmp_path / "img")
    service.annotate(ds, _gt_boxes(1, 40, range(0, 6)))
    # A second batch starting on the item the first ended on (r5), as batches of a
    # file sorted by image do.
    service.annotate(ds, _gt_boxes(2, 25, range(5, N)))
    run = service.create_run(model, ds, "boxes", _boxes(3))["id"]
    gt, dt, gt_kept, dt_kept = _sides_as_commit(service, run, monkeypatch)
    assert gt_kept and dt_kept and len(gt) == 65
    _assert_same(gt, _gt_from_rows(service, run))
    kept = service.commit_run(run)
    sides_cache.forget_all()
    assert service.commit_run(run) == kept


@pytest.mark.parametrize("between", ["replaced", "deleted", "polygon"])
def test_ground_truth_after_another_change_is_read_from_rows(
        service: Service, tmp_path: Path, fresh_cache: None,
        monkeypatch: pytest.MonkeyPatch, between: str) -> None:
    ds, model = _labelled(service, tmp_path / "img")
    service.annotate(ds, [*_gt_boxes(4, 30, range(0, 6)), BoxAnnotation(
        "car", 1, 1, 9, 9, reference_id="r0", annotation_id="a")])
    if between == "replaced":
        service.annotate(ds, [BoxAnnotation("dog", 2, 2, 8, 8, reference_id="r0",
                                            annotation_id="a")], update=True)
    elif between == "deleted":
        service.delete_annotations(ds, annotation_ids=["a"])
    else:
        service.annotate(ds, [PolygonAnnotation("car", [(10, 10), (60, 10), (60, 50)],
                                                reference_id="r1")])
    service.annotate(ds, _gt_boxes(5, 10, range(6, N)))
    run = service.create_run(model, ds, "boxes", _boxes(6))["id"]
    gt, _, gt_kept, dt_kept = _sides_as_commit(service, run, monkeypatch)
    assert not gt_kept and dt_kept
    _assert_same(gt, _gt_from_rows(service, run))


def test_a_commit_at_an_earlier_label_version_reads_its_rows(
        service: Service, tmp_path: Path, fresh_cache: None) -> None:
    ds, model = _labelled(service, tmp_path / "img")
    first = service.annotate(ds, _gt_boxes(7, 30))["version"]
    service.annotate(ds, _gt_boxes(8, 12, range(3, 5)))
    run = service.create_run(model, ds, "boxes", _boxes(9))["id"]
    at_first = service.commit_run(run, annotation_version=first)
    sides_cache.forget_all()
    assert service.commit_run(run, annotation_version=first) == at_first
    assert at_first["ground_truth"] == 30
