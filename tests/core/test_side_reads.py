"""PostgreSQL reads the evaluation sides as binary arrays
(:func:`ocula.core.store.bulk.fetch_arrays`): the columns equal those of the rows read
one by one, to the dtype, with NULLs in every nullable column, labels beyond ASCII, a
NULL label beside one named "None", a scope of items and an earlier label version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ocula import BoxAnnotation, BoxPrediction, DatasetItem
from ocula.core.services import Service, evaluation_sides
from ocula.core.services.side_columns import row_columns
from ocula.core.store import schema as t
from ocula.core.store.bulk import fetch_tuples
from tests.conftest import make_images

LABELS = ["car", "person", "vélo", "None", "交通标志"]


def _rows_one_by_one(conn: Any, q: Any, owner: Any, owner_pk: int, *,
                     scores: bool) -> dict[str, np.ndarray]:
    return row_columns(fetch_tuples(conn, q), scores=scores)


def _both(service: Service, monkeypatch: pytest.MonkeyPatch, read: Any) -> tuple[Any, Any]:
    with service.db.read() as conn:
        got = read(conn)
    with monkeypatch.context() as m:
        m.setattr(evaluation_sides, "_box_columns", _rows_one_by_one)
        with service.db.read() as conn:
            want = read(conn)
    return got, want


def _assert_same(a: Any, b: Any) -> None:
    assert len(a) == len(b)
    for name in type(a).__slots__:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        np.testing.assert_array_equal(x, y, err_msg=name)


@pytest.fixture
def stored(service: Service, tmp_path: Path) -> tuple[Any, Any, int]:
    """A dataset and a run whose rows hold a NULL in each nullable column somewhere, the
    ground truth at two label versions; returns (dataset row, run row, first version)."""
    if service.db.dialect != "postgresql":
        pytest.skip("SQLite reads the rows one by one")
    paths = make_images(tmp_path / "img", 8, size=(200, 150))
    ds = service.create_dataset("reads")["id"]
    service.append(ds, [DatasetItem(str(p), f"r{i}") for i, p in enumerate(paths)])
    rng = np.random.default_rng(3)
    service.annotate(ds, [BoxAnnotation(LABELS[k % 5], *map(float, rng.uniform(1, 60, 4)),
                                        reference_id=f"r{k % 8}", iscrowd=k % 9 == 0)
                          for k in range(40)])
    first = max(v["version"] for v in service.list_versions(ds))
    service.annotate(ds, [BoxAnnotation("bus", 5, 5, 20, 20, reference_id="r1")])
    run = service.create_run(service.add_model("m", "m")["id"], ds, "run", [
        BoxPrediction(LABELS[k % 5], *map(float, rng.uniform(1, 60, 4)),
                      reference_id=f"r{k % 8}", confidence=float(rng.uniform()))
        for k in range(60)])["id"]
    with service.db.write() as conn:
        for table in (t.annotations, t.predictions):
            pks = [r[0] for r in conn.execute(table.select().with_only_columns(
                table.c.pk).order_by(table.c.pk).limit(6))]
            for pk, column in zip(pks, ("label", "x", "width", "area", "height", "y"),
                                  strict=True):
                conn.execute(table.update().where(table.c.pk == pk).values({column: None}))
        conn.execute(t.predictions.update().where(t.predictions.c.pk.in_(
            conn.execute(t.predictions.select().with_only_columns(t.predictions.c.pk)
                         .order_by(t.predictions.c.pk.desc()).limit(3)).scalars().all()))
            .values(confidence=None))
        ds_row = conn.execute(t.datasets.select().where(t.datasets.c.id == ds)).one()
        run_row = conn.execute(t.model_runs.select().where(t.model_runs.c.id == run)).one()
    return ds_row, run_row, first


def test_arrays_read_what_the_rows_read(service: Service, stored: tuple[Any, Any, int],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    ds, run, first = stored
    dt, want = _both(service, monkeypatch, lambda c: evaluation_sides._dt_columns(c, run.pk))
    _assert_same(dt, want)
    assert "None" in dt.label.tolist() and np.isin(["vélo", "交通标志"], dt.label).all()
    assert (dt.score == 1.0).sum() >= 3  # NULL confidences
    for version in (None, first):
        gt, want = _both(service, monkeypatch,
                         lambda c, v=version: evaluation_sides._gt_columns(c, ds.pk, v))
        _assert_same(gt, want)
        assert ("bus" in gt.label.tolist()) == (version is None)
    scope = [2, 3, 5]
    with service.db.read() as conn:
        items = conn.execute(t.items.select().with_only_columns(t.items.c.pk)
                             .order_by(t.items.c.pk)).scalars().all()
    some = [items[i] for i in scope]
    dt, want = _both(service, monkeypatch,
                     lambda c: evaluation_sides._dt_columns(c, run.pk, some))
    _assert_same(dt, want)
    assert 0 < len(dt) < 60 and set(dt.image.tolist()) <= set(some)


def test_a_label_the_index_walk_missed_reads_the_rows(
        service: Service, stored: tuple[Any, Any, int],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A label not among those listed (no code) is never read as another: the rows are
    read one by one instead."""
    _, run, _ = stored
    real = evaluation_sides._labels_of
    monkeypatch.setattr(evaluation_sides, "_labels_of",
                        lambda *a: [v for v in real(*a) if v != "vélo"])
    dt, want = _both(service, monkeypatch, lambda c: evaluation_sides._dt_columns(c, run.pk))
    _assert_same(dt, want)
    assert "vélo" in dt.label.tolist()
