"""Evaluation columns kept in memory between requests (``sides_cache``): a second read
of the same rows comes from memory, and every write that changes those rows — new or
replaced predictions, a deleted item, a label edit — is read again. Each answer is
compared with one computed after emptying the cache. On both databases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ocula import BoxAnnotation, BoxPrediction
from ocula.core.services import Service, sides_cache
from tests.core.test_run_results import _scene


def _numbers(service: Service, run: str, **kw: Any) -> dict[str, Any]:
    body = service.run_metrics(run, **kw)
    return {"stats": body["stats"], "per_class": body["per_class"]}


def _latest(service: Service, run: str) -> int:
    ds = service.run_info(run)["dataset_id"]
    return max(v["version"] for v in service.list_versions(ds))


def _uncached(service: Service, run: str, **kw: Any) -> dict[str, Any]:
    sides_cache.forget_all()
    return _numbers(service, run, **kw)


def _hits(service: Service) -> int:
    return sides_cache.counts()[0]


def test_a_second_read_of_the_same_rows_comes_from_memory(service: Service,
                                                           tmp_path: Path) -> None:
    _, run = _scene(service, tmp_path / "img")
    version = _latest(service, run)
    before = _hits(service)
    first = _numbers(service, run, annotation_version=version)
    # The commit read both sides: the metrics at the committed labels reuse them.
    assert _hits(service) >= before + 2
    assert first == _uncached(service, run, annotation_version=version)


def test_kept_arrays_cannot_be_changed_by_a_reader(service: Service, tmp_path: Path) -> None:
    from ocula.core.services.evaluation_sides import read_sides
    from ocula.core.store import schema as t

    _, run = _scene(service, tmp_path / "img")
    with service.db.read() as conn:
        row = conn.execute(t.model_runs.select().where(t.model_runs.c.id == run)).one()
        gt, dt, _ = read_sides(conn, row, None, None, "bbox")
        with pytest.raises(ValueError):
            dt.score[0] = 2.0
        gt.ignore = np.ones(len(gt), dtype=bool)  # a reader's own object
        again, _, _ = read_sides(conn, row, None, None, "bbox")
    assert not again.ignore.any()


@pytest.mark.parametrize("change", ["new", "replaced", "deleted item", "label"])
def test_rows_written_since_are_read_again(service: Service, tmp_path: Path,
                                           change: str) -> None:
    ds, run = _scene(service, tmp_path / "img")
    version = _latest(service, run)
    before = _numbers(service, run, annotation_version=version)
    if change == "new":
        service.predict(run, [BoxPrediction("car", 10, 10, 30, 30, reference_id=f"r{i}",
                                            confidence=0.99) for i in range(10)])
    elif change == "replaced":
        # The run's last prediction replaced: SQLite may give the new row the old pk.
        service.predict(run, [BoxPrediction("dog", 1, 1, 3, 3, reference_id="r59",
                                            annotation_id="last", confidence=0.98)])
        service.predict(run, [BoxPrediction("car", 2, 2, 90, 90, reference_id="r59",
                                            annotation_id="last", confidence=0.99)],
                        update=True)
    elif change == "deleted item":
        service.delete_item(ds, "r0")
    else:
        service.annotate(ds, [BoxAnnotation("car", 5, 5, 20, 20, reference_id="r4")])
        version = _latest(service, run)
    after = _numbers(service, run, annotation_version=version)
    assert after == _uncached(service, run, annotation_version=version)
    if change != "replaced":
        assert after != before


def test_postgres_statistics_follow_a_large_upload(service: Service, tmp_path: Path) -> None:
    """PostgreSQL plans with its statistics: a bulk upload analyses the table at once
    (autovacuum would within a minute), or a run just uploaded looks empty to the
    planner and a slice's read takes seconds."""
    if service.db.dialect != "postgresql":
        pytest.skip("PostgreSQL's planner statistics")
    _upload(service, tmp_path, items=4, boxes=12_000, seed=3)
    for table in ("annotations", "predictions"):
        assert _known_rows(service, table) >= 11_000, table


def test_postgres_statistics_follow_an_upload_in_batches(service: Service,
                                                         tmp_path: Path) -> None:
    """Batches each under a tenth of the table still add up: once the rows changed since
    the last analysis reach a tenth, the table is analysed. Counting each batch alone, a
    dataset deleted and loaded again in batches kept statistics of the old one only."""
    if service.db.dialect != "postgresql":
        pytest.skip("PostgreSQL's planner statistics")
    import time

    from ocula import DatasetItem
    from tests.conftest import make_images

    paths = make_images(tmp_path / "img", 4, size=(64, 48))
    rng = np.random.default_rng(5)

    def boxes(n: int, ref: str) -> list[BoxAnnotation]:
        b = np.c_[rng.uniform(0, 30, (n, 2)), rng.uniform(1, 16, (n, 2))]
        return [BoxAnnotation("car", *x, reference_id=f"{ref}{i % 4}") for i, x in enumerate(b)]

    def pks_known() -> list[int]:
        with service.db.read() as conn:
            return conn.exec_driver_sql(
                "SELECT most_common_vals::text::int[] FROM pg_stats WHERE schemaname = "
                "current_schema() AND tablename = 'annotations' AND attname = 'dataset_pk'"
            ).scalar() or []

    first = service.create_dataset("first")["id"]
    service.append(first, [DatasetItem(str(p), f"a{i}") for i, p in enumerate(paths)])
    service.annotate(first, boxes(40_000, "a"))  # one batch: analysed at once
    second = service.create_dataset("second")["id"]
    service.append(second, [DatasetItem(str(p), f"b{i}") for i, p in enumerate(paths)])
    for _ in range(5):  # 3,000 rows each: under a tenth of 40,000
        # The server counts a transaction's changes when it flushes its statistics, at
        # most once a second.
        time.sleep(1.1)
        service.annotate(second, boxes(3_000, "b"))
    with service.db.read() as conn:
        ds_pk = conn.exec_driver_sql("SELECT pk FROM datasets WHERE id = %(d)s",
                                     {"d": second}).scalar()
    assert ds_pk in pks_known()


def test_postgres_statistics_cover_small_tables(service: Service, tmp_path: Path) -> None:
    """A few hundred rows are analysed too (autovacuum's threshold: 50 rows plus a tenth):
    never analysed, the planner took every condition to keep a row or so, and a metrics
    scope over a few thousand boxes at a label version read its sides through nested
    loops of index scans, seconds each."""
    if service.db.dialect != "postgresql":
        pytest.skip("PostgreSQL's planner statistics")
    _upload(service, tmp_path, items=120, boxes=300, seed=7)
    for table, rows in (("items", 120), ("annotations", 300), ("predictions", 300)):
        assert _known_rows(service, table) == rows, table


def _upload(service: Service, tmp_path: Path, *, items: int, boxes: int, seed: int) -> None:
    """A dataset of ``items`` items, ``boxes`` boxes and one run of as many predictions."""
    from ocula import DatasetItem
    from tests.conftest import make_images

    paths = make_images(tmp_path / "img", 4, size=(64, 48))
    ds = service.create_dataset("stats")["id"]
    service.append(ds, [DatasetItem(str(paths[i % 4]), f"r{i}") for i in range(items)])
    rng = np.random.default_rng(seed)
    xy = np.c_[rng.uniform(0, 30, (boxes, 2)), rng.uniform(1, 16, (boxes, 2))]
    service.annotate(ds, [BoxAnnotation("car", *b, reference_id=f"r{i % items}")
                          for i, b in enumerate(xy)])
    model = service.add_model("m", "m")["id"]
    service.create_run(model, ds, "run", [
        BoxPrediction("car", *b, reference_id=f"r{i % items}", confidence=0.5)
        for i, b in enumerate(xy)])


def _known_rows(service: Service, table: str) -> float:
    """The rows PostgreSQL's statistics count in ``table`` (-1: never analysed)."""
    with service.db.read() as conn:
        return conn.exec_driver_sql("SELECT reltuples FROM pg_class WHERE oid = %(t)s::regclass",
                                    {"t": table}).scalar()
