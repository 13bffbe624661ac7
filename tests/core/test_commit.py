"""Committing a run through the store: match rows, metrics equal to pycocotools, slices,
label versions, re-commit idempotence, and the documented odd cases."""

from __future__ import annotations

import contextlib
import io
import random
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from sqlalchemy import select

import ocula
from ocula import BoxAnnotation, BoxPrediction, DatasetItem
from ocula.core.store import schema as t
from ocula.errors import NotFoundError, ValidationError
from tests.conftest import make_images

W, H = 200, 150
LABELS = ["car", "person", "bike"]


def _random_scene(seed: int, n_images: int):
    rng = random.Random(seed)
    gts, preds = [], []
    for i in range(n_images):
        ref = f"img{i}"
        for j in range(rng.randint(0, 6)):
            w, h = rng.uniform(4, 80), rng.uniform(4, 80)
            x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
            label = rng.choice(LABELS)
            crowd = rng.random() < 0.05
            gts.append(BoxAnnotation(label, x, y, w, h, reference_id=ref,
                                     annotation_id=f"{ref}-{j}", iscrowd=crowd))
            if rng.random() < 0.8:
                jit = [rng.uniform(-4, 4) for _ in range(4)]
                pw, ph = max(1.0, w + jit[2]), max(1.0, h + jit[3])
                px = min(max(0.0, x + jit[0]), W - pw)
                py = min(max(0.0, y + jit[1]), H - ph)
                plabel = label if rng.random() < 0.9 else rng.choice(LABELS)
                preds.append(BoxPrediction(plabel, px, py, pw, ph, reference_id=ref,
                                           confidence=round(rng.random(), 2)))
        for _ in range(rng.randint(0, 3)):
            w, h = rng.uniform(4, 60), rng.uniform(4, 60)
            preds.append(BoxPrediction(rng.choice(LABELS), rng.uniform(0, W - w),
                                       rng.uniform(0, H - h), w, h, reference_id=ref,
                                       confidence=round(rng.random(), 2)))
    return gts, preds


def _pycocotools_stats(refs: list[str], gts, preds) -> np.ndarray:
    img_id = {r: k + 1 for k, r in enumerate(refs)}
    cat_id = {label: k + 1 for k, label in enumerate(LABELS)}
    gt = {"images": [{"id": img_id[r], "width": W, "height": H} for r in refs],
          "categories": [{"id": v, "name": k} for k, v in cat_id.items()],
          "annotations": [{"id": k + 1, "image_id": img_id[a.reference_id],
                           "category_id": cat_id[a.label], "bbox": [a.x, a.y, a.width, a.height],
                           "area": a.width * a.height, "iscrowd": int(a.iscrowd)}
                          for k, a in enumerate(gts) if a.reference_id in img_id]}
    dets = [{"image_id": img_id[p.reference_id], "category_id": cat_id[p.label],
             "bbox": [p.x, p.y, p.width, p.height], "score": p.confidence}
            for p in preds if p.reference_id in img_id]
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(dets), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


@pytest.fixture
def scene(client: ocula.Client, tmp_path: Path):
    n = 40
    paths = make_images(tmp_path / "imgs", n, size=(W, H))
    ds = client.create_dataset("scene")
    ds.append([DatasetItem(str(p), f"img{i}") for i, p in enumerate(paths)])
    gts, preds = _random_scene(7, n)
    ds.annotate(gts)
    ds.create_slice("test", [f"img{i}" for i in range(0, n, 2)])
    model = client.add_model("det", "det")
    run = model.create_run("det-run", ds, preds)
    return ds, run, gts, preds, [f"img{i}" for i in range(n)]


def test_tutorial_commit_and_metrics_equal_pycocotools(scene) -> None:
    ds, run, gts, preds, refs = scene
    summary = run.commit()
    assert summary["predictions"] == len(preds)
    metrics = run.metrics()
    expected = _pycocotools_stats(refs, gts, preds)
    assert np.allclose(list(metrics["stats"].values()), expected, atol=1e-9, rtol=0)
    test_refs = refs[0::2]
    on_slice = run.metrics(slice="test")
    assert np.allclose(list(on_slice["stats"].values()),
                       _pycocotools_stats(test_refs, gts, preds), atol=1e-9, rtol=0)
    assert {c["label"] for c in metrics["per_class"]} == set(LABELS)
    assert set(metrics["pr_curves"]) <= set(LABELS)
    op = metrics["operating_point"]
    assert op["tp"] + op["fn"] == sum(1 for g in gts if not g.iscrowd)
    assert op["tp"] + op["fp"] <= sum(1 for p in preds if p.confidence >= 0.5)
    cm = metrics["confusion_matrix"]
    assert len(cm["counts"]) == len(cm["labels"]) == len(LABELS) + 1
    assert "cells" not in cm  # one entry per box: only on request
    assert sum(map(sum, cm["counts"])) == len(run.metrics(cells=True)["confusion_matrix"]["cells"])
    assert metrics["best_f1"]["f1"] >= op["f1"]


def test_match_rows_and_recommit_idempotent(client: ocula.Client, scene) -> None:
    ds, run, gts, preds, refs = scene
    first = run.commit()
    db = client._backend.db

    def snapshot():
        with db.read() as conn:
            return (sorted(conn.execute(select(
                t.match_predictions.c.prediction_pk, t.match_predictions.c.status,
                t.match_predictions.c.iou)).all()),
                sorted(conn.execute(select(t.match_annotations.c.annotation_pk,
                                           t.match_annotations.c.status)).all()),
                sorted(conn.execute(select(t.match_items.c.item_pk, t.match_items.c.tp,
                                           t.match_items.c.fp, t.match_items.c.fn)).all()))

    rows = snapshot()
    assert len(rows[0]) == len(preds)
    assert sum(1 for r in rows[0] if r[1] == "tp") == first["tp"]
    assert sum(r[3] for r in rows[2]) == first["fn"]
    assert run.commit() == first
    assert snapshot() == rows


def test_commit_sees_label_corrections_and_old_versions(scene) -> None:
    ds, run, gts, preds, refs = scene
    before = run.commit()
    ds.tag_version("v1")
    # Delete every ground-truth box of one image: its matches become FPs.
    victim = next(g.reference_id for g in gts if not g.iscrowd)
    ds.delete_annotations(reference_ids=[victim])
    after = run.commit()
    assert after["fn"] <= before["fn"] and after["tp"] < before["tp"]
    old = run.metrics(annotation_version="v1")
    assert np.allclose(list(old["stats"].values()),
                       _pycocotools_stats(refs, gts, preds), atol=1e-9, rtol=0)
    again = run.commit(annotation_version="v1")
    assert (again["tp"], again["fp"], again["fn"]) == (before["tp"], before["fp"], before["fn"])


def test_class_agnostic_and_allowed_label_matches(client: ocula.Client, images) -> None:
    ds = client.create_dataset("cls")
    ds.append([DatasetItem(str(images[0]), "a")])
    ds.annotate([BoxAnnotation("car", 1, 1, 20, 20, reference_id="a")])
    run = client.add_model("m", "m").create_run(
        "r", ds, [BoxPrediction("truck", 1, 1, 20, 20, reference_id="a", confidence=0.9)])
    strict = run.commit()
    assert (strict["tp"], strict["fp"], strict["fn"]) == (0, 1, 1)
    assert strict["unknown_labels"] == ["truck"]
    allowed = run.commit({"allowed_label_matches": [
        {"ground_truth_label": "car", "model_prediction_label": "truck"}]})
    assert (allowed["tp"], allowed["fp"], allowed["fn"]) == (1, 0, 0)
    agnostic = run.commit(class_agnostic=True)
    assert agnostic["tp"] == 1


def test_compare_runs(client: ocula.Client, scene) -> None:
    ds, run, gts, preds, refs = scene
    perfect = client.add_model("oracle", "oracle").create_run(
        "oracle", ds, [BoxPrediction(g.label, g.x, g.y, g.width, g.height,
                                     reference_id=g.reference_id, confidence=1.0)
                       for g in gts])
    run.commit()
    perfect.commit()
    diff = ocula.compare(run, perfect, slice="test")
    assert diff["delta"]["AP"] > 0
    assert diff["only_a_right"] == []
    assert diff["only_b_right"] and set(diff["only_b_right"]) <= set(refs[0::2])


def test_commit_bad_cases(client: ocula.Client, images) -> None:
    ds = client.create_dataset("odd")
    ds.append([DatasetItem(str(images[0]), "a"), DatasetItem(str(images[1]), "b")])
    model = client.add_model("m", "m")
    empty = model.create_run("empty", ds, [])
    with pytest.raises(ValidationError, match="no box, mask or polygon predictions"):
        empty.commit()
    # Predictions where there is no ground truth at all: all false positives.
    run = model.create_run("r", ds, [BoxPrediction("car", 1, 1, 5, 5, reference_id="b",
                                                   confidence=0.5)])
    res = run.commit()
    assert (res["tp"], res["fp"], res["fn"]) == (0, 1, 0)
    with pytest.raises(ValidationError):
        run.commit(iou_threshold=0)
    with pytest.raises(NotFoundError):
        run.commit(annotation_version="never-named")
    with pytest.raises(NotFoundError):
        run.metrics(slice="no-such-slice")


def test_a_catalog_in_memory_commits_as_one_on_disk(tmp_path: Path) -> None:
    """SQLite in memory is one connection shared by every thread (a second connection
    would be another, empty database): a commit's kept numbers are computed on it, and
    its index rebuild works after a slice's insights left a temporary table's database
    open on that connection."""
    n = 12
    paths = make_images(tmp_path / "imgs", n, size=(W, H))
    gts, preds = _random_scene(3, n)
    answers = []
    for url in ("sqlite:///:memory:", None):
        client = ocula.Client(home=tmp_path / ("mem" if url else "disk"), database_url=url)
        ds = client.create_dataset("scene")
        ds.append([DatasetItem(str(p), f"img{i}") for i, p in enumerate(paths)])
        ds.annotate(gts)
        ds.create_slice("test", [f"img{i}" for i in range(0, n, 2)])
        run = client.add_model("det", "det").create_run("det-run", ds, preds)
        client._backend.insights(ds.id, slice="test")  # a temporary table, on SQLite
        summary = run.commit()
        answers.append((summary, run.metrics(), run.metrics(slice="test"), run.commit()))
        client.close()
    memory, disk = answers
    assert memory[0]["model_run_id"] != disk[0]["model_run_id"]
    drop = ("model_run_id",)
    assert [{k: v for k, v in a.items() if k not in drop} for a in (memory[0], memory[3])] \
        == [{k: v for k, v in a.items() if k not in drop} for a in (disk[0], disk[3])]
    assert memory[1]["stats"] == disk[1]["stats"] and memory[2]["stats"] == disk[2]["stats"]
