"""A committed run's predictions queried through their match rows (``status``/``iou``
terms) test ``label`` on the match row's copy of it: each copy equals its prediction's
label, and the pages and totals equal those of the same query answered from the
predictions themselves. On both databases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ocula import PolygonPrediction
from ocula.core.query.plan import _counted_from, plan_objects
from ocula.core.services import Service
from ocula.core.store import schema as t
from tests.core.test_commit import LABELS
from tests.core.test_match_area import N, make_scene
from tests.query.test_paging import _pages

BASE = 'type = prediction and run = "run"'


@pytest.fixture
def scene(service: Service, tmp_path: Path) -> str:
    ds, run = make_scene(service, tmp_path, seed=5)
    service.commit_run(run)
    return ds


def _every(service: Service, ds: str, query: str) -> dict[str, Any]:
    return {o["id"]: o for o in service.query_objects(ds, query, page_size=10_000)["objects"]}


def test_each_match_rows_label_is_its_predictions(service: Service, scene: str,
                                                  tmp_path: Path) -> None:
    """Boxes and polygons alike (a second run of polygons, committed as segm)."""
    model = service.add_model("seg", "seg")["id"]
    square = [(1.0, 1.0), (30.0, 1.0), (30.0, 30.0), (1.0, 30.0)]
    polys = [PolygonPrediction(LABELS[i % 3], square, reference_id=f"img{i}",
                               confidence=0.5) for i in range(N)]
    run = service.create_run(model, scene, "polys", polys)["id"]
    service.commit_run(run, iou_type="segm")
    mp, p = t.match_predictions, t.predictions
    with service.db.read() as conn:
        rows = conn.execute(select(mp.c.label, p.c.label).join(
            p, p.c.pk == mp.c.prediction_pk)).all()
    assert len(rows) > N
    assert all(a == b for a, b in rows)


@pytest.mark.parametrize("terms", [
    'label = "person"', 'label != "person"', 'label in ["car", "bike"]',
    'not label in ["car"]', 'label = "nobody"', 'label = null', 'label != null',
    'label = "person" or confidence < 0.2'])
@pytest.mark.parametrize("status", ["status = fp", "status = tp", "iou > 0.6",
                                    "status in [tp, fp]"])
def test_label_terms_on_match_rows_keep_their_meaning(service: Service, scene: str,
                                                      terms: str, status: str) -> None:
    """Each page walk and total equals the run's predictions filtered in Python."""
    every = _every(service, scene, f"{BASE} and {status}")
    assert every

    def passes(o: dict[str, Any]) -> bool:
        label = o["label"]
        return {'label = "person"': label == "person",
                'label != "person"': label != "person",
                'label in ["car", "bike"]': label in ("car", "bike"),
                'not label in ["car"]': label != "car",
                'label = "nobody"': False, 'label = null': False, 'label != null': True,
                'label = "person" or confidence < 0.2':
                    label == "person" or o["confidence"] < 0.2}[terms]

    want = {i for i, o in every.items() if passes(o)}
    query = f"{BASE} and {status} and ({terms})"
    got = service.query_objects(scene, query, page_size=10_000, with_total=True)
    assert {o["id"] for o in got["objects"]} == want
    assert got["total"] == len(want)
    for order in ("order by confidence desc", "order by label", "order by iou"):
        walked = _pages(lambda q=f"{query} {order}", **kw: service.query_objects(
            scene, q, **kw), 7)
        assert sorted(walked) == sorted(want)


def test_a_label_count_reads_the_match_rows_alone(service: Service, scene: str) -> None:
    """``label = x and status = fp and confidence >= c`` counts the match table only:
    no prediction is looked up."""
    with service.db.read() as conn:
        pk = service._dataset_row(conn, scene).pk
        plan = plan_objects(conn, pk, service.db.dialect, f'{BASE} and label = "person" '
                            "and status = fp and confidence >= 0.5 "
                            "order by confidence desc")
    (branch,) = plan.branches
    assert _counted_from(branch) is branch.scope.match
