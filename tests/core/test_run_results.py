"""Results kept at commit (``run_results``): the run page's numbers for the whole dataset
and each item slice are computed once by the commit, read back while the data is as it
was, and never served once anything they depend on has changed. On both databases."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select, update

from ocula import BoxAnnotation, BoxPrediction, DatasetItem
from ocula.core.priority import BACKGROUND_NICENESS
from ocula.core.services import Service, evaluation, evaluation_keep, match_rows, run_results
from ocula.core.services.analyses import RUN_PAGE_MAX_IDS
from ocula.core.store import bulk
from ocula.core.store import schema as t
from tests.conftest import make_images

N = 60


def _scene(service: Service, folder: Path) -> tuple[str, str]:
    rng = np.random.default_rng(7)
    paths = make_images(folder, N, size=(200, 150))
    ds = service.create_dataset("kept")["id"]
    service.append(ds, [DatasetItem(str(p), f"r{i}") for i, p in enumerate(paths)])
    anns, preds = [], []
    for i in range(N):
        ref = f"r{i}"
        for j in range(3):
            label = ["car", "person", "dog"][(i + j) % 3]
            x, y = float(rng.uniform(0, 140)), float(rng.uniform(0, 90))
            w, h = float(rng.uniform(8, 60)), float(rng.uniform(8, 60))
            anns.append(BoxAnnotation(label, x, y, w, h, reference_id=ref))
            if rng.random() < 0.8:
                jitter = rng.normal(0, 4, 4)
                px = float(np.clip(x + jitter[0], 0, 139))
                py = float(np.clip(y + jitter[1], 0, 89))
                preds.append(BoxPrediction(
                    label if rng.random() < 0.8 else "car", px, py,
                    float(np.clip(w + jitter[2], 1, 60)), float(np.clip(h + jitter[3], 1, 60)),
                    reference_id=ref, confidence=float(rng.uniform(0.05, 1))))
        preds.append(BoxPrediction("person", 5, 5, 20, 20, reference_id=ref,
                                   confidence=float(rng.uniform(0.05, 1))))
    service.annotate(ds, anns)
    service.create_slice(ds, "even", reference_ids=[f"r{i}" for i in range(0, N, 2)])
    service.create_slice(ds, "few", reference_ids=["r1", "r2", "r3"])
    model = service.add_model("m", "m")["id"]
    run = service.create_run(model, ds, "run-1", preds)["id"]
    service.commit_run(run)
    return ds, run


def _fresh(service: Service, run: str, **kw: Any) -> dict[str, Any]:
    """The same numbers scored from the rows (a label version given by number is never
    served from what the commit kept)."""
    ds = service.run_info(run)["dataset_id"]
    latest = max(v["version"] for v in service.list_versions(ds))
    return {**service.run_metrics(run, annotation_version=latest, **kw),
            "annotation_version": None}


def _no_scoring(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("scored from the rows, not read from what the commit kept")
    monkeypatch.setattr(evaluation, "read_sides", refuse)


@pytest.mark.parametrize("scope", [None, "even", "few"])
def test_kept_metrics_equal_fresh_ones_and_are_read_not_scored(
        service: Service, tmp_path: Path, scope: str | None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _, run = _scene(service, tmp_path / "img")
    fresh = _fresh(service, run, slice=scope)
    with monkeypatch.context() as m:
        _no_scoring(m)
        kept = service.run_metrics(run, slice=scope)
        failures = service.failure_summary(run, slice=scope)
    assert kept == fresh
    assert list(kept["stats"]) == list(fresh["stats"])  # pycocotools' order, kept
    with service.db.write() as conn:
        run_results.forget(conn, _run_pk(conn, run))
    assert failures == service.failure_summary(run, slice=scope)
    ds = service.run_info(run)["dataset_id"]
    for kind in ("false_positives", "false_negatives"):
        for key, query in failures["queries"][kind].items():
            assert query is not None
            total = service.query_objects(ds, query, slice=scope, with_total=True)["total"]
            assert total == failures[kind][key]


def _run_pk(conn: Any, run: str) -> int:
    return conn.scalar(select(t.model_runs.c.pk).where(t.model_runs.c.id == run))


def test_kept_rows_per_scope(service: Service, tmp_path: Path) -> None:
    _, run = _scene(service, tmp_path / "img")
    with service.db.read() as conn:
        rows = conn.execute(select(t.run_results.c.kind, t.run_results.c.scope)).all()
    # The whole dataset and both item slices: metrics, failure summary and the run
    # page's TIDE each.
    assert len(rows) == 9
    assert {r.kind for r in rows} - {"metrics", "failure_summary"} == {
        next(r.kind for r in rows if r.kind.startswith("tide:"))}


def test_a_failing_analysis_never_fails_the_commit(service: Service, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """What the commit keeps is a cache: an analysis that raises there leaves its answer
    to the first request, and the commit and its other numbers stand."""
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("analysis bug")
    monkeypatch.setattr(type(service), "_kept_analyses", broken)
    _, run = _scene(service, tmp_path / "img")  # commits
    with service.db.read() as conn:
        kinds = set(conn.execute(select(t.run_results.c.kind)).scalars())
    assert kinds == {"metrics", "failure_summary"}
    monkeypatch.undo()
    assert service.run_error_breakdown(run, max_ids=RUN_PAGE_MAX_IDS)["errors"]


@pytest.mark.parametrize("scope", [None, "even", "few"])
def test_the_run_pages_tide_is_kept_at_commit(service: Service, tmp_path: Path,
                                              scope: str | None,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The breakdown the run page asks for (defaults, ids capped to a link's) is served
    from the commit, equal to one scored from the rows."""
    ds, run = _scene(service, tmp_path / "img")
    with monkeypatch.context() as m:
        _no_scoring(m)
        kept = service.run_error_breakdown(run, slice=scope, max_ids=RUN_PAGE_MAX_IDS)
    latest = max(v["version"] for v in service.list_versions(ds))
    fresh = service.run_error_breakdown(run, slice=scope, max_ids=RUN_PAGE_MAX_IDS,
                                        annotation_version=latest)
    assert kept == {**fresh, "annotation_version": None}
    assert kept["errors"]["bkg"]["count"] > 0 and kept["errors"]["bkg"]["prediction_ids"]
    # Fewer ids listed name only those: the same answer cut, not other boxes.
    few = service.run_error_breakdown(run, slice=scope, max_ids=2)
    for kind, e in few["errors"].items():
        assert e["prediction_ids"] == kept["errors"][kind]["prediction_ids"][:2]
        assert e["annotation_ids"] == kept["errors"][kind]["annotation_ids"][:2]
        assert e["items"] == kept["errors"][kind]["items"][:2]


def test_a_label_change_is_never_served_from_the_kept_numbers(
        service: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds, run = _scene(service, tmp_path / "img")
    before = service.run_metrics(run)
    service.annotate(ds, [BoxAnnotation("car", 5, 5, 20, 20, reference_id="r0")])
    after = service.run_metrics(run)
    assert after["stats"] != before["stats"]
    assert after == _fresh(service, run)


def test_slice_membership_change_is_never_served(service: Service, tmp_path: Path) -> None:
    ds, run = _scene(service, tmp_path / "img")
    before = service.run_metrics(run, slice="few")
    few = next(s["id"] for s in service.list_slices(ds) if s["name"] == "few")
    service.slice_append(few, [f"r{i}" for i in range(10, 40)])
    after = service.run_metrics(run, slice="few")
    assert after["operating_point"] != before["operating_point"]
    assert after == _fresh(service, run, slice="few")


def test_new_predictions_drop_the_kept_numbers(service: Service, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _, run = _scene(service, tmp_path / "img")
    service.predict(run, [BoxPrediction("dog", 1, 1, 30, 30, reference_id=f"r{i}",
                                        confidence=0.99) for i in range(N)])
    with service.db.read() as conn:
        assert conn.execute(select(t.run_results)).first() is None
    after = service.run_metrics(run)
    assert after == _fresh(service, run)
    # A new commit keeps them again.
    service.commit_run(run)
    fresh = _fresh(service, run)
    with monkeypatch.context() as m:
        _no_scoring(m)
        assert service.run_metrics(run) == fresh


def test_other_options_are_scored_from_the_rows(service: Service, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _, run = _scene(service, tmp_path / "img")
    calls = []
    real = evaluation.read_sides

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)
    monkeypatch.setattr(evaluation, "read_sides", counting)
    service.run_metrics(run, confidence_threshold=0.3)
    service.run_metrics(run, iou_threshold=0.7)
    service.run_metrics(run, query='has(label = "dog")')
    service.run_metrics(run, cells=True)
    assert len(calls) == 4
    service.run_metrics(run)
    assert len(calls) == 4


def test_tide_is_kept_after_its_first_answer(service: Service, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    ds, run = _scene(service, tmp_path / "img")
    first = service.run_error_breakdown(run, slice="even", max_ids=50)
    with monkeypatch.context() as m:
        m.setattr(evaluation, "read_sides", lambda *a, **k: (_ for _ in ()).throw(
            AssertionError("scored again")))
        assert service.run_error_breakdown(run, slice="even", max_ids=50) == first
    # Other options are their own answers; a label change is never served from it.
    assert service.run_error_breakdown(run, slice="even", max_ids=3) != first
    service.annotate(ds, [BoxAnnotation("dog", 5, 5, 20, 20, reference_id="r0")])
    after = service.run_error_breakdown(run, slice="even", max_ids=50)
    latest = max(v["version"] for v in service.list_versions(ds))
    fresh = service.run_error_breakdown(run, slice="even", max_ids=50,
                                        annotation_version=latest)
    assert after == {**fresh, "annotation_version": None}
    assert after != first


def test_a_recommit_leaves_every_match_index(service: Service, tmp_path: Path) -> None:
    """A run holding most match rows is re-written with the match indexes dropped and
    made again (``indexes_rebuilt``): they are all there afterwards."""
    _, run = _scene(service, tmp_path / "img")

    def schema() -> tuple[set[str], set[tuple[str, str]]]:
        with service.db.read() as conn:
            if conn.dialect.name == "sqlite":
                return {r[0] for r in conn.exec_driver_sql(
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name IN "
                    "('match_predictions', 'match_annotations') AND sql IS NOT NULL")}, set()
            indexes = {r[0] for r in conn.exec_driver_sql(
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND "
                "tablename IN ('match_predictions', 'match_annotations') AND indexname "
                "LIKE 'ix_%%'")}
            keys = {(r[0], r[1]) for r in conn.exec_driver_sql(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE "
                "contype IN ('f', 'p', 'u') AND conrelid IN ('match_predictions'::regclass, "
                "'match_annotations'::regclass)")}
            return indexes, keys

    before = schema()
    with service.db.write() as conn:  # no digest: every row is written again
        conn.execute(update(t.match_items).values(digest=None))
    written: list[Any] = []
    real = bulk.indexes_rebuilt

    def spy(conn: Any, tables: Any, enabled: bool = True) -> Any:
        written.append(enabled)
        return real(conn, tables, enabled)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(match_rows, "indexes_rebuilt", spy)
        service.commit_run(run)
    assert written == [True]  # the run holds every prediction: rebuilt
    expected = {ix.name for table in (t.match_predictions, t.match_annotations)
                for ix in table.indexes}
    after = schema()
    assert after == before and after[0] == expected
    if service.db.dialect == "postgresql":
        # Derived rows: no references checked per row (0018); the primary key and the
        # UNIQUE constraint, dropped for the rewrite, are back.
        assert after[1] == {
            ("pk_match_predictions", "PRIMARY KEY (prediction_pk)"),
            ("uq_match_annotations_run_pk_annotation_pk", "UNIQUE (run_pk, annotation_pk)")}
    else:
        # The sorter settings of the rebuild (small cache, temporary files) are undone:
        # the commit's connection reads with the catalog's own again.
        with service.db.write(check_references=False) as conn:
            assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -200000
            assert conn.exec_driver_sql("PRAGMA temp_store").scalar() == 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread niceness is Linux's")
def test_kept_numbers_are_computed_below_the_writers_priority(
        service: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer is the commit's critical path: the workers computing the kept numbers
    run niced below it, and the caller's own priority is left as it was."""
    if not service.db.reads_beside_writes:
        pytest.skip("no workers without read connections beside the writer")
    seen: list[tuple[str, int]] = []
    real = evaluation_keep.coco_matches_of

    def recording(*args: Any, **kw: Any) -> Any:
        seen.append((threading.current_thread().name,
                     os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
        return real(*args, **kw)

    monkeypatch.setattr(evaluation_keep, "coco_matches_of", recording)
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    _scene(service, tmp_path)
    assert seen and all(name.startswith("ocula-keep") for name, _ in seen)
    assert all(nice == min(mine + BACKGROUND_NICENESS, 19) for _, nice in seen)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine
