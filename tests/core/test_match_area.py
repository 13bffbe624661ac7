"""A ground truth's match row keeps its annotation's own ``area`` (NULL where that is
NULL), whichever way the commit read the ground truth (the uploads kept in memory, rows,
PostgreSQL's arrays, masks, keypoints' box parts), so that a query of a run's misses
ordered or filtered by area reads the match rows alone. On both databases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import and_, select, update

from ocula import (
    BoxAnnotation,
    DatasetItem,
    KeypointsAnnotation,
    KeypointsPrediction,
    PolygonAnnotation,
    PolygonPrediction,
)
from ocula.core.services import Service, sides_cache
from ocula.core.store import schema as t
from tests.conftest import make_images
from tests.core.test_commit import H, W, _random_scene

N = 30


def _mismatches(service: Service) -> list[Any]:
    """Match rows whose area is not their annotation's, with how many rows there are."""
    ma, a = t.match_annotations, t.annotations
    with service.db.read() as conn:
        rows = conn.execute(select(ma.c.annotation_pk, ma.c.area, a.c.area)
                            .join(a, a.c.pk == ma.c.annotation_pk)).all()
    assert rows
    return [r for r in rows if r[1] != r[2] and not (r[1] is None and r[2] is None)]


def make_scene(service: Service, folder: Path, seed: int = 3) -> tuple[str, str]:
    """A dataset "scene" of ``N`` images with random boxes and an uncommitted run "run"
    of predictions near them: its id and the run's."""
    paths = make_images(folder / "imgs", N, size=(W, H))
    ds = service.create_dataset("scene")["id"]
    service.append(ds, [DatasetItem(str(p), f"img{i}") for i, p in enumerate(paths)])
    gts, preds = _random_scene(seed, N)
    service.annotate(ds, gts)
    model = service.add_model("det", "det")["id"]
    return ds, service.create_run(model, ds, "run", preds)["id"]


@pytest.fixture
def scene(service: Service, tmp_path: Path) -> tuple[str, str]:
    return make_scene(service, tmp_path)


@pytest.mark.parametrize("fresh", [False, True])
def test_a_box_commit_keeps_each_annotations_area(service: Service, scene: Any,
                                                  fresh: bool) -> None:
    """Right after the uploads (the sides kept in memory) or read from the rows, with
    an annotation whose area column is NULL (as rows written before areas were computed
    are): every match row's area is its annotation's."""
    ds, run = scene
    if fresh:
        with service.db.write() as conn:
            conn.execute(update(t.annotations).where(t.annotations.c.pk == select(
                t.annotations.c.pk).limit(1).scalar_subquery()).values(area=None))
        sides_cache.forget_all()
    service.commit_run(run)
    assert _mismatches(service) == []
    ma = t.match_annotations
    with service.db.read() as conn:
        nulls = conn.execute(select(ma.c.annotation_pk).where(ma.c.area.is_(None))).all()
    assert len(nulls) == (1 if fresh else 0)


def test_a_segm_and_a_keypoints_commit_keep_each_annotations_area(
        service: Service, tmp_path: Path) -> None:
    """Polygons (their stored shoelace area; the evaluation takes pixels) and keypoints
    (the evaluation takes their box part's area; their own is NULL)."""
    (path,) = make_images(tmp_path / "one", 1, size=(80, 60))
    ds = service.create_dataset("shapes")["id"]
    service.append(ds, [DatasetItem(str(path), "s0")])
    tri = [(5, 5), (40, 5), (5, 40)]
    hand = [(10.0, 10.0), (20.0, 12.0), (30.0, 30.0)]
    service.annotate(ds, [
        PolygonAnnotation("tri", tri, reference_id="s0"),
        PolygonAnnotation("tri", [(50, 40), (70, 40), (70, 55)], reference_id="s0"),
        BoxAnnotation("hand", 5, 5, 30, 30, reference_id="s0", annotation_id="1"),
        KeypointsAnnotation("hand", hand, reference_id="s0", annotation_id="1/keypoints")])
    model = service.add_model("m", "m")["id"]
    segm = service.create_run(model, ds, "segm", [
        PolygonPrediction("tri", tri, reference_id="s0", confidence=0.9)])["id"]
    kp = service.create_run(model, ds, "kp", [
        KeypointsPrediction("hand", [(x + 1, y) for x, y in hand], reference_id="s0",
                            confidence=0.9)])["id"]
    service.commit_run(segm, iou_type="segm")
    service.commit_run(kp, iou_type="keypoints", kpt_sigmas=[0.05, 0.05, 0.05])
    assert _mismatches(service) == []
    ma, a = t.match_annotations, t.annotations
    with service.db.read() as conn:
        kinds = dict(conn.execute(select(a.c.type, ma.c.area).join(
            ma, and_(ma.c.annotation_pk == a.c.pk))).all())
    assert kinds["keypoints"] is None and kinds["polygon"] > 0


def test_misses_by_area_come_in_order_from_the_match_rows(service: Service,
                                                          scene: Any) -> None:
    """``status = fn order by area`` pages (either way, any page size) are the run's
    misses sorted by their annotation's area, the same objects as without the order."""
    from tests.query.test_paging import _pages

    ds, run = scene
    service.commit_run(run)
    base = 'type = annotation and run = "run" and status = fn'
    misses = {o["id"]: o for o in service.query_objects(ds, base, page_size=1000)["objects"]}
    assert len(misses) > 5
    for desc in (False, True):
        query = f"{base} order by area{' desc' if desc else ''}"
        whole = _pages(lambda q=query, **kw: service.query_objects(ds, q, **kw), 1000)
        assert sorted(whole) == sorted(misses)
        areas = [misses[i]["area"] for i in whole]
        assert areas == sorted(areas, reverse=desc)
        for size in (1, 7):
            assert _pages(lambda q=query, **kw: service.query_objects(ds, q, **kw),
                          size) == whole
        small = service.query_objects(ds, f"{base} and area < 400", page_size=1000)
        assert {o["id"] for o in small["objects"]} == {
            i for i, o in misses.items() if o["area"] < 400}


def test_misses_by_area_walk_the_match_rows_index(service: Service, scene: Any) -> None:
    """SQLite walks ``(run_pk, status, area)``: no sort of the run's misses (only of
    rows of equal area by their annotation's key, as the walk meets them)."""
    from ocula.core.query.plan import plan_objects

    if service.db.dialect != "sqlite":
        pytest.skip("SQLite's plan is read; PostgreSQL chooses by its statistics")
    ds, run = scene
    service.commit_run(run)
    with service.db.read() as conn:
        pk = service._dataset_row(conn, ds).pk
        plan = plan_objects(conn, pk, "sqlite", 'type = annotation and run = "run" and '
                            "status = fn order by area desc")
        first, sel = plan._branch_selects(0, None, 100)[0]
        sql = str(sel.compile(conn, compile_kwargs={"literal_binds": True}))
        steps = [r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
    assert any("ix_match_annotations_run_status_area" in s for s in steps), steps
    assert not any("TEMP B-TREE FOR ORDER BY" in s for s in steps), steps


def test_the_migration_gives_rows_already_written_their_areas(service: Service,
                                                              scene: Any) -> None:
    """Down to 0021 (no area) and up again: every existing match row gets its
    annotation's area."""
    from ocula.core.store.engine import migrate

    ds, run = scene
    service.commit_run(run)
    migrate(service.db.engine, "0021", down=True)
    migrate(service.db.engine)
    assert _mismatches(service) == []
