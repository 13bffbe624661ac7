"""Mask metrics (``iou_type="segm"``) through the store: equal to pycocotools'
``COCOeval(iouType="segm")`` on masks, crowd masks and polygons, on both databases."""

from __future__ import annotations

import contextlib
import copy
import io
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

import ocula
from ocula import (
    BoxAnnotation,
    BoxPrediction,
    DatasetItem,
    MaskAnnotation,
    MaskPrediction,
    Point,
    PolygonAnnotation,
    PolygonPrediction,
)
from ocula.core.evaluation.segm import MaskPairIoU, MaskSet
from ocula.core.masks import rle_encode
from ocula.core.services.analyses import RUN_PAGE_MAX_IDS
from ocula.errors import ValidationError
from tests.conftest import make_images

W, H = 160, 120
LABELS = ["person", "bike"]
N_IMAGES = 8


# --- random scenes ----------------------------------------------------------------------


def _blob(rng: np.random.Generator) -> np.ndarray:
    """A non-empty mask: a union of 1-3 rectangles and ellipses of varied size."""
    yy, xx = np.mgrid[0:H, 0:W]
    m = np.zeros((H, W), dtype=bool)
    while not m.any():
        for _ in range(int(rng.integers(1, 4))):
            cy, cx = rng.uniform(0, H), rng.uniform(0, W)
            ry, rx = np.exp(rng.uniform(np.log(2), np.log(60), 2))
            if rng.random() < 0.5:
                m |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
            else:
                m |= (abs(yy - cy) <= ry) & (abs(xx - cx) <= rx)
    return m


def _polygon(rng: np.random.Generator) -> list[tuple[float, float]]:
    """A star-shaped polygon with float vertices, clipped to the image."""
    k = int(rng.integers(3, 9))
    cx, cy = rng.uniform(10, W - 10), rng.uniform(10, H - 10)
    scale = np.exp(rng.uniform(np.log(4), np.log(70)))
    angles = np.sort(rng.uniform(0, 2 * np.pi, k))
    radii = scale * rng.uniform(0.4, 1.0, k)
    return [(float(np.clip(cx + r * np.cos(a), 0, W)), float(np.clip(cy + r * np.sin(a), 0, H)))
            for a, r in zip(angles, radii, strict=True)]


def _jitter(rng: np.random.Generator, verts: list[tuple[float, float]]
            ) -> list[tuple[float, float]]:
    return [(float(np.clip(x + rng.normal(0, 2), 0, W)),
             float(np.clip(y + rng.normal(0, 2), 0, H))) for x, y in verts]


def _shifted(rng: np.random.Generator, m: np.ndarray) -> np.ndarray:
    d = np.roll(m, tuple(int(v) for v in rng.integers(-4, 5, 2)), axis=(0, 1))
    return d | (rng.random(m.shape) < 0.005)


def _poly_mask(verts: list[tuple[float, float]]) -> np.ndarray:
    """pycocotools' rasterisation of one polygon."""
    rle = mask_utils.frPyObjects([[c for v in verts for c in v]], H, W)
    return mask_utils.decode(mask_utils.merge(rle)).astype(bool)


def _scene(seed: int, refs: list[str]):
    """Ground truth (masks, crowd masks, polygons) and predictions (masks, polygons)."""
    rng = np.random.default_rng(seed)
    gts, preds = [], []
    for ref in refs:
        for _ in range(int(rng.integers(1, 6))):
            label = LABELS[int(rng.integers(0, 2))]
            n = len(gts)
            if rng.random() < 0.5:
                verts = _polygon(rng)
                gts.append(PolygonAnnotation(label, [Point(*v) for v in verts], reference_id=ref,
                                             annotation_id=f"g{n}"))
                shape = _poly_mask(verts)
            else:
                shape = _blob(rng)
                crowd = rng.random() < 0.15
                gts.append(MaskAnnotation(label, shape, reference_id=ref, annotation_id=f"g{n}",
                                          iscrowd=crowd))
            for _ in range(int(rng.integers(0, 3))):
                plabel = label if rng.random() < 0.85 else LABELS[int(rng.integers(0, 2))]
                score = round(float(rng.random()), 2)
                if isinstance(gts[-1], PolygonAnnotation) and rng.random() < 0.6:
                    preds.append(PolygonPrediction(
                        plabel, [Point(*v) for v in _jitter(rng, verts)], reference_id=ref,
                        confidence=score))
                else:
                    preds.append(MaskPrediction(plabel, _shifted(rng, shape), reference_id=ref,
                                                confidence=score))
        for _ in range(int(rng.integers(0, 3))):  # background false positives
            preds.append(MaskPrediction(LABELS[int(rng.integers(0, 2))], _blob(rng),
                                        reference_id=ref, confidence=round(float(rng.random()), 2)))
    return gts, preds


def _segm(obj) -> dict:
    """COCO segmentation of a domain object: polygon list or compressed RLE."""
    if isinstance(obj, PolygonAnnotation) and not obj.is_prediction:
        return [[c for v in obj.vertices for c in (v.x, v.y)]]
    if isinstance(obj, PolygonPrediction):
        return mask_utils.frPyObjects([[c for v in obj.vertices for c in (v.x, v.y)]], H, W)[0]
    m = np.asfortranarray(_obj_mask(obj).astype(np.uint8))
    return mask_utils.encode(m)


def _obj_mask(obj) -> np.ndarray:
    counts = np.asarray(obj.mask["counts"])
    values = np.arange(len(counts)) % 2 == 1
    return np.repeat(values, counts).reshape((H, W), order="F")


def _reference(refs: list[str], gts, preds) -> COCOeval:
    """pycocotools' segm evaluation of the same data (images numbered in ref order)."""
    img_id = {r: k + 1 for k, r in enumerate(refs)}
    cat_id = {label: k + 1 for k, label in enumerate(LABELS)}
    anns = []
    for k, g in enumerate(gts):
        if g.reference_id not in img_id:
            continue
        seg = _segm(g)
        rle = mask_utils.frPyObjects(seg, H, W) if isinstance(seg, list) else seg
        anns.append({"id": k + 1, "image_id": img_id[g.reference_id],
                     "category_id": cat_id[g.label], "segmentation": seg,
                     "area": g.computed_area() if g.area is None else g.area,
                     "bbox": list(mask_utils.toBbox(mask_utils.merge(rle) if isinstance(rle, list)
                                                    else rle)),
                     "iscrowd": int(getattr(g, "iscrowd", False))})
    dets = [{"image_id": img_id[p.reference_id], "category_id": cat_id[p.label],
             "segmentation": _segm(p), "score": p.confidence}
            for p in preds if p.reference_id in img_id]
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = {"images": [{"id": i, "width": W, "height": H} for i in img_id.values()],
                        "categories": [{"id": v, "name": k} for k, v in cat_id.items()],
                        "annotations": anns}
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(copy.deepcopy(dets)), "segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def _counts_at_50(ev: COCOeval) -> tuple[int, int, int]:
    """TP, FP, FN of pycocotools' own matching at IoU .5, area "all", every image."""
    tp = fp = fn = 0
    for e in ev.evalImgs:
        if e is None or e["aRng"] != [0, 1e10]:
            continue
        dm, di = np.asarray(e["dtMatches"])[0], np.asarray(e["dtIgnore"])[0].astype(bool)
        gm, gi = np.asarray(e["gtMatches"])[0], np.asarray(e["gtIgnore"]).astype(bool)
        tp += int(((dm > 0) & ~di).sum())
        fp += int(((dm == 0) & ~di).sum())
        fn += int(((gm == 0) & ~gi).sum())
    return tp, fp, fn


def _stats(metrics: dict) -> np.ndarray:
    return np.array(list(metrics["stats"].values()))


@pytest.fixture
def scene(client: ocula.Client, tmp_path: Path):
    refs = [f"img{i}" for i in range(N_IMAGES)]
    paths = make_images(tmp_path / "imgs", N_IMAGES, size=(W, H))
    ds = client.create_dataset("segm")
    ds.append([DatasetItem(str(p), r) for p, r in zip(paths, refs, strict=True)])
    gts, preds = _scene(11, refs)
    ds.annotate(gts)
    ds.create_slice("half", refs[::2])
    run = client.add_model("seg", "seg").create_run("seg-run", ds, preds)
    return ds, run, gts, preds, refs


# --- through the store --------------------------------------------------------------------


def test_segm_commit_and_metrics_equal_pycocotools(scene) -> None:
    ds, run, gts, preds, refs = scene
    assert any(getattr(g, "iscrowd", False) for g in gts)
    assert {type(p) for p in preds} == {MaskPrediction, PolygonPrediction}
    ref = _reference(refs, gts, preds)
    summary = run.commit(iou_type="segm")
    assert summary["iou_type"] == "segm"
    assert summary["predictions"] == len(preds) and summary["ground_truth"] == len(gts)
    # The stored matches are pycocotools' own matching at IoU .5.
    assert (summary["tp"], summary["fp"], summary["fn"]) == _counts_at_50(ref)
    assert run.info()["commit_config"]["iou_type"] == "segm"

    metrics = run.metrics(iou_type="segm")
    assert metrics["iou_type"] == "segm"
    np.testing.assert_allclose(_stats(metrics), ref.stats, rtol=0, atol=1e-9)
    # The default stays the box protocol: a mask-only run is scored by its masks' boxes,
    # as pycocotools' loadRes derives them.
    boxes = run.metrics()
    assert boxes["iou_type"] == "bbox" and boxes["stats"]["AP"] > 0

    on_slice = run.metrics(slice="half", iou_type="segm")
    np.testing.assert_allclose(_stats(on_slice), _reference(refs[::2], gts, preds).stats,
                               rtol=0, atol=1e-9)
    cm = run.metrics(iou_type="segm", cells=True)["confusion_matrix"]
    assert sum(map(sum, cm["counts"])) == len(cm["cells"])
    op = metrics["operating_point"]
    assert op["tp"] + op["fn"] == sum(1 for g in gts if not getattr(g, "iscrowd", False))

    # Failure views read the mask matches.
    fps = run.failures("fp", limit=1000)
    assert len(fps) == summary["fp"] and all(f["type"] in ("mask", "polygon") for f in fps)
    low = run.failures("low_iou", limit=1000)
    assert len(low) == summary["tp"] and all(0.5 <= f["iou"] <= 1 for f in low)
    fs = run.failure_summary()
    assert fs["iou_type"] == "segm"
    assert sum(fs["false_positives"].values()) == summary["fp"]
    assert sum(fs["false_negatives"].values()) == summary["fn"]


def test_segm_against_an_old_label_version_and_compare(client: ocula.Client, scene) -> None:
    ds, run, gts, preds, refs = scene
    before = run.commit(iou_type="segm")
    ds.tag_version("v1")
    ds.delete_annotations(reference_ids=[refs[0]])
    after = run.commit(iou_type="segm")
    assert after["ground_truth"] < before["ground_truth"] and after["tp"] <= before["tp"]
    old = run.metrics(annotation_version="v1", iou_type="segm")
    np.testing.assert_allclose(_stats(old), _reference(refs, gts, preds).stats, rtol=0,
                               atol=1e-9)
    again = run.commit(annotation_version="v1", iou_type="segm")
    assert (again["tp"], again["fp"], again["fn"]) == (before["tp"], before["fp"], before["fn"])

    # An oracle that predicts every current mask exactly.
    live = [g for g in gts if g.reference_id != refs[0]]
    oracle = client.add_model("oracle", "oracle").create_run("oracle", ds, [
        PolygonPrediction(g.label, g.vertices, reference_id=g.reference_id, confidence=1.0)
        if isinstance(g, PolygonAnnotation) else
        MaskPrediction(g.label, g.mask, reference_id=g.reference_id, confidence=1.0)
        for g in live])
    perfect = oracle.commit(iou_type="segm", annotation_version=None)
    assert perfect["fp"] == 0 and perfect["fn"] == 0
    run.commit(iou_type="segm")
    diff = ocula.compare(run, oracle)
    assert diff["iou_type"] == "segm" and diff["stats_b"]["AP"] == pytest.approx(1.0)
    assert diff["delta"]["AP"] > 0 and diff["only_a_right"] == []
    boxes = client.add_model("boxes", "boxes").create_run("boxes", ds, [
        BoxPrediction("person", 10, 10, 20, 20, reference_id=refs[1], confidence=0.5)])
    boxes.commit()  # box protocol: compare refuses to mix the two
    with pytest.raises(ValidationError, match="iou_type"):
        ocula.compare(run, boxes)


def test_segm_errors_name_the_fix(client: ocula.Client, images) -> None:
    ds = client.create_dataset("odd")
    ds.append([DatasetItem(str(images[0]), "a")])
    ds.annotate([BoxAnnotation("car", 1, 1, 20, 20, reference_id="a"),
                 MaskAnnotation("car", np.pad(np.ones((5, 5), bool), ((2, 41), (3, 56))),
                                reference_id="a")])
    model = client.add_model("m", "m")
    boxes = model.create_run("boxes", ds, [BoxPrediction("car", 1, 1, 20, 20, reference_id="a",
                                                         confidence=0.9)])
    with pytest.raises(ValidationError, match="no mask or polygon predictions.*iou_type='bbox'"):
        boxes.commit(iou_type="segm")
    with pytest.raises(ValidationError, match="no mask or polygon predictions"):
        boxes.metrics(iou_type="segm")
    with pytest.raises(ValidationError):
        boxes.commit(iou_type="mask")
    masks = model.create_run("masks", ds, [MaskPrediction(
        "car", np.pad(np.ones((5, 6), bool), ((2, 41), (3, 55))), reference_id="a",
        confidence=0.8)])
    # A mask-only run commits for boxes too: its masks' boxes, as loadRes derives them.
    assert masks.commit()["predictions"] == 1
    res = masks.commit(iou_type="segm")
    assert (res["tp"], res["fp"], res["fn"], res["ground_truth"]) == (1, 0, 0, 1)
    [row] = masks.failures("low_iou")
    assert row["iou"] == pytest.approx(25 / 30)


# --- the engine piece, against pycocotools directly ---------------------------------------


def test_mask_pair_iou_is_pycocotools_iou() -> None:
    rng = np.random.default_rng(5)
    for _ in range(20):
        dts = [_blob(rng) for _ in range(int(rng.integers(1, 7)))]
        gts = [_blob(rng) for _ in range(int(rng.integers(1, 7)))]
        dts.append(np.zeros((H, W), dtype=bool))  # an empty prediction scores 0
        crowd = rng.random(len(gts)) < 0.3
        f = MaskPairIoU(MaskSet([rle_encode(m)["counts"] for m in dts], [H] * len(dts),
                                [W] * len(dts)),
                        MaskSet([rle_encode(m)["counts"] for m in gts], [H] * len(gts),
                                [W] * len(gts)), crowd)
        d, g = np.meshgrid(np.arange(len(dts)), np.arange(len(gts)), indexing="ij")
        ours = f(d.ravel(), g.ravel()).reshape(len(dts), len(gts))
        enc = [mask_utils.encode(np.asfortranarray(m.astype(np.uint8))) for m in dts]
        ref = mask_utils.iou(enc, [mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
                                   for m in gts], crowd.astype(np.uint8).tolist())
        np.testing.assert_array_equal(ours, np.asarray(ref))
        # Cached answers are the same numbers.
        np.testing.assert_array_equal(f(d.ravel()[::-1], g.ravel()[::-1]), ours.ravel()[::-1])


def test_polygons_rasterise_like_pycocotools() -> None:
    rng = np.random.default_rng(9)
    polys = [_polygon(rng) for _ in range(30)]
    polys.append([(-3.2, -1.0), (20.7, 5.5), (8.1, 140.0)])  # partly outside the image
    ms = MaskSet.from_geometry(["polygon"] * len(polys),
                               [{"vertices": [{"x": x, "y": y} for x, y in p]} for p in polys],
                               [H] * len(polys), [W] * len(polys))
    for k, p in enumerate(polys):
        expected = _poly_mask(p)
        assert ms.area[k] == expected.sum()
        got = MaskPairIoU(ms, MaskSet([rle_encode(expected)["counts"]], [H], [W]))
        assert expected.sum() == 0 or got([k], [0])[0] == 1.0


def test_segm_numbers_kept_for_a_slice_equal_fresh_ones(scene) -> None:
    """The commit cuts a slice's numbers (COCO, confusion matrix, TIDE) from the whole
    dataset's mask matching, computed on two threads sharing one mask IoU cache: they
    equal the slice scored from the rows at the same labels."""
    ds, run, *_ = scene
    run.commit(iou_type="segm")
    latest = max(v["version"] for v in ds.versions())
    kept = run.metrics(slice="half", iou_type="segm")
    fresh = run.metrics(slice="half", iou_type="segm", annotation_version=latest)
    for key in ("stats", "per_class", "pr_curves", "operating_point", "best_f1",
                "threshold_curve"):
        assert kept[key] == fresh[key], key
    assert kept["confusion_matrix"]["counts"] == fresh["confusion_matrix"]["counts"]
    # The run page's breakdown (ids capped as it asks) is the one the commit keeps.
    tide = run.error_breakdown(slice="half", iou_type="segm", max_ids=RUN_PAGE_MAX_IDS)
    again = run.error_breakdown(slice="half", iou_type="segm", annotation_version=latest,
                                max_ids=RUN_PAGE_MAX_IDS)
    assert tide["errors"] == again["errors"] and tide["special"] == again["special"]
