"""TIDE error breakdown: each error type on a hand-built case, checked against the
published definition (Bolya et al., ECCV 2020) and the exact AP its fix recovers; the
base AP against pycocotools' AP50 on the seeded random cases."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from eval_synth import random_case, run_pycocotools

from ocula.core.evaluation import (
    Detections,
    GroundTruth,
    detections_from_coco,
    evaluate_coco,
    ground_truth_from_coco,
    match_detections,
)
from ocula.core.evaluation.analyses import analysis_names, get_analysis, run_analysis
from ocula.core.evaluation.tide import ERROR_TYPES, TideBreakdown, TideConfig, evaluate_tide
from ocula.errors import ValidationError

R = 101  # COCO's recall points


def sides(gts: list[tuple[Any, ...]], dets: list[tuple[Any, ...]]
          ) -> tuple[GroundTruth, Detections]:
    """``gts``: (image, label, box[, crowd]) with ids 1..; ``dets``: (image, label, box,
    score) with ids 101..."""
    gt = GroundTruth([g[0] for g in gts], np.array([g[1] for g in gts], dtype=str),
                     np.array([g[2] for g in gts], dtype=float).reshape(-1, 4),
                     iscrowd=[bool(g[3]) if len(g) > 3 else False for g in gts],
                     id=np.arange(1, len(gts) + 1))
    dt = Detections([d[0] for d in dets], np.array([d[1] for d in dets], dtype=str),
                    np.array([d[2] for d in dets], dtype=float).reshape(-1, 4),
                    [d[3] for d in dets], id=np.arange(101, 101 + len(dets)))
    return gt, dt


BOX = [0, 0, 10, 10]
FAR = [100, 100, 10, 10]


def only(result: Any, *kinds: str) -> None:
    """Errors of ``kinds`` are present, of every other main type absent."""
    counts = result.counts()
    assert {k for k in ERROR_TYPES if counts[k]} == set(kinds)


def test_loc_error_fix_snaps_the_box_and_recovers_exactly_the_expected_ap() -> None:
    # IoU 0.3 with a GT of its own class: t_b <= 0.3 < t_f -> Loc.
    gt, dt = sides([(1, "a", BOX), (1, "a", FAR)],
                   [(1, "a", [0, 0, 10, 3], 0.9), (1, "a", FAR, 0.8)])
    r = evaluate_tide(gt, dt)
    only(r, "loc")
    loc = r.errors["loc"]
    assert loc.det_id.tolist() == [101] and loc.gt_id.tolist() == [1]
    assert loc.iou[0] == pytest.approx(0.3) and loc.becomes_tp.tolist() == [True]
    # FP at 0.9 then TP at 0.8: precision 1/2 up to recall 1/2.
    assert r.ap == pytest.approx(51 * 0.5 / R)
    assert r.fixed_ap["loc"] == pytest.approx(1.0)
    assert r.delta_ap["loc"] == pytest.approx(1 - 25.5 / R)
    # The GT the Loc fix would find is not a Miss, but is a false negative.
    assert r.counts()["miss"] == 0 and r.fn_gt_id.tolist() == [1]
    # FP: the TP first (score 1), the FP last: precision 1 up to recall 1/2.
    assert r.delta_ap["fp"] == pytest.approx(51 / R - 25.5 / R)


def test_cls_error_fix_relabels_to_the_ground_truths_class() -> None:
    # IoU 1 with a GT of another class -> Cls; class "a" has no GT, so is not averaged.
    gt, dt = sides([(1, "b", BOX)], [(1, "a", BOX, 0.9)])
    r = evaluate_tide(gt, dt)
    only(r, "cls")
    assert r.errors["cls"].gt_id.tolist() == [1]
    # (pycocotools' precision is tp / (tp + fp + eps): a perfect class is 1 - 1 ulp.)
    assert r.ap == 0.0 and r.fixed_ap["cls"] == pytest.approx(1.0)
    assert r.delta_ap["cls"] == pytest.approx(1.0)
    assert r.counts()["miss"] == 0
    per = {row["label"]: row for row in r.to_dict()["per_class"]}
    assert per["a"]["ap"] is None and per["b"]["delta_ap"]["cls"] == pytest.approx(1.0)


def test_cls_error_on_an_already_found_ground_truth_is_dropped_not_added() -> None:
    gt, dt = sides([(1, "b", BOX), (1, "a", FAR)],
                   [(1, "a", BOX, 0.9), (1, "b", BOX, 0.8), (1, "a", FAR, 0.7)])
    r = evaluate_tide(gt, dt)
    only(r, "cls")
    assert r.errors["cls"].becomes_tp.tolist() == [False]
    # Class a: FP then TP (AP 1/2); b: AP 1. Fixing drops the FP: both 1.
    assert r.ap == pytest.approx(0.75) and r.fixed_ap["cls"] == pytest.approx(1.0)


def test_both_error_is_wrong_class_and_poor_overlap_and_its_fix_drops_it() -> None:
    gt, dt = sides([(1, "b", BOX), (1, "a", FAR)],
                   [(1, "a", [0, 0, 10, 3], 0.9), (1, "a", FAR, 0.8)])
    r = evaluate_tide(gt, dt)
    assert r.counts()["both"] == 1 and r.errors["both"].gt_id.tolist() == [1]
    # Both does not "find" its GT: the b box stays a Miss.
    assert r.errors["miss"].gt_id.tolist() == [1]
    assert r.ap == pytest.approx((0.5 + 0.0) / 2)
    assert r.delta_ap["both"] == pytest.approx(0.25)
    # Fixing the miss drops class b (no GT, no detections) from the mean.
    assert r.delta_ap["miss"] == pytest.approx(0.25)
    assert r.delta_ap["cls"] == r.delta_ap["loc"] == 0.0


def test_dupe_error_names_the_detection_that_took_its_ground_truth() -> None:
    gt, dt = sides([(1, "a", BOX), (1, "a", FAR)],
                   [(1, "a", BOX, 0.9), (1, "a", [0, 0, 10, 9], 0.8), (1, "a", FAR, 0.7)])
    r = evaluate_tide(gt, dt)
    only(r, "dupe")
    d = r.errors["dupe"]
    assert d.det_id.tolist() == [102] and d.gt_id.tolist() == [1]
    assert d.suppressor_id.tolist() == [101] and d.iou[0] == pytest.approx(0.9)
    assert r.ap == pytest.approx((51 + 50 * 2 / 3) / R)
    assert r.delta_ap["dupe"] == pytest.approx(1 - (51 + 50 * 2 / 3) / R)


@pytest.mark.parametrize("box", [[500, 500, 10, 10], [0, 0, 10, 0.5]])
def test_bkg_error_overlaps_every_ground_truth_below_t_b(box: list[float]) -> None:
    gt, dt = sides([(1, "a", BOX)], [(1, "a", box, 0.95), (1, "a", BOX, 0.5)])
    r = evaluate_tide(gt, dt)
    only(r, "bkg")
    assert r.ap == pytest.approx(0.5) and r.delta_ap["bkg"] == pytest.approx(0.5)


def test_a_detection_on_an_image_without_ground_truth_is_bkg() -> None:
    gt, dt = sides([(1, "a", BOX)], [(2, "a", BOX, 0.95), (1, "a", BOX, 0.5)])
    r = evaluate_tide(gt, dt)
    only(r, "bkg")
    assert r.errors["bkg"].image.tolist() == [2]


def test_boundary_iou_t_b_is_loc_not_bkg() -> None:
    # IoU exactly 10/100 = t_b with its own class: Loc (t_b <= IoU).
    gt, dt = sides([(1, "a", BOX)], [(1, "a", [0, 0, 10, 1], 0.9)])
    only(evaluate_tide(gt, dt), "loc")


def test_miss_fix_removes_the_ground_truth_from_the_count() -> None:
    gt, dt = sides([(1, "a", BOX), (1, "a", FAR)], [(1, "a", BOX, 0.9)])
    r = evaluate_tide(gt, dt)
    only(r, "miss")
    assert r.errors["miss"].gt_id.tolist() == [2]
    assert r.ap == pytest.approx(51 / R)
    assert r.delta_ap["miss"] == pytest.approx(50 / R)
    assert r.delta_ap["fn"] == pytest.approx(50 / R)
    assert r.delta_ap["fp"] == 0.0


def test_loc_is_tested_before_cls_as_in_the_reference() -> None:
    # IoU 0.3 with its own class and 1.0 with another: the reference's order says Loc.
    gt, dt = sides([(1, "a", [0, 0, 10, 30]), (1, "b", BOX)], [(1, "a", BOX, 0.9)])
    r = evaluate_tide(gt, dt)
    only(r, "loc", "miss")
    # The b box is not pointed at by a Cls/Loc error, so it is a Miss.
    assert r.errors["miss"].gt_id.tolist() == [2]


def test_only_the_best_scoring_error_on_one_ground_truth_becomes_a_true_positive() -> None:
    # A Cls (0.9) and a Loc (0.8) error point at the same GT: the reference's BestGTMatch
    # lets the 0.9 one win, so fixing Loc alone only drops its detection.
    gt, dt = sides([(1, "a", BOX), (1, "a", FAR)],
                   [(1, "b", BOX, 0.9), (1, "a", [0, 0, 10, 3], 0.8), (1, "a", FAR, 0.7)])
    r = evaluate_tide(gt, dt)
    assert r.errors["cls"].becomes_tp.tolist() == [True]
    assert r.errors["loc"].becomes_tp.tolist() == [False]
    # a: FP(0.8) then TP(0.7), one of two found: 51 points at 1/2.
    assert r.ap == pytest.approx(25.5 / R)
    assert r.fixed_ap["loc"] == pytest.approx(51 / R)
    assert r.fixed_ap["cls"] == pytest.approx((51 + 50 * 2 / 3) / R)


def test_crowd_regions_absorb_detections_and_are_never_missed() -> None:
    gt, dt = sides([(1, "a", BOX), (1, "a", [200, 200, 100, 100], True)],
                   [(1, "a", BOX, 0.5), (1, "a", [210, 210, 20, 20], 0.9)])
    r = evaluate_tide(gt, dt)
    assert sum(r.counts().values()) == 0
    assert r.ap == pytest.approx(1.0)


def test_ids_keep_every_number_and_the_dict_maps_them() -> None:
    gt, dt = sides([(7, "a", BOX), (7, "a", FAR)],
                   [(7, "a", [0, 0, 10, 3], 0.9), (7, "a", [300, 300, 5, 5], 0.6)])
    r = evaluate_tide(gt, dt)
    body = r.to_dict(prediction_ids={101: "pred_x", 102: "pred_y"},
                     annotation_ids={1: "ann_1", 2: "ann_2"}, image_ids={7: "img7"})
    assert body["errors"]["loc"]["prediction_ids"] == ["pred_x"]
    assert body["errors"]["loc"]["annotation_ids"] == ["ann_1"]
    assert body["errors"]["bkg"]["prediction_ids"] == ["pred_y"]
    assert body["errors"]["miss"]["annotation_ids"] == ["ann_2"]
    assert body["errors"]["miss"]["items"] == ["img7"]
    assert body["special"]["fp"]["prediction_ids"] == ["pred_x", "pred_y"]
    assert body["special"]["fn"]["annotation_ids"] == ["ann_1", "ann_2"]
    capped = r.to_dict(max_ids=1)
    assert capped["special"]["fp"]["count"] == 2 and capped["special"]["fp"]["truncated"]


def test_registry_runs_tide_by_name_and_checks_its_config() -> None:
    assert "tide" in analysis_names()
    gt, dt = sides([(1, "a", BOX)], [(1, "a", [0, 0, 10, 3], 0.9)])
    r = run_analysis("tide", gt, dt, {"background_threshold": 0.35})
    assert r.counts()["bkg"] == 1  # IoU 0.3 < t_b = 0.35
    with pytest.raises(ValidationError, match="unknown tide parameter"):
        get_analysis("tide").config({"t_f": 0.5})
    with pytest.raises(ValidationError):
        TideConfig(pos_threshold=0.1, background_threshold=0.5)
    with pytest.raises(ValidationError, match="unknown analysis"):
        get_analysis("nope")


@pytest.mark.parametrize("seed", range(48))
def test_base_ap_equals_pycocotools_ap50_and_the_parts_add_up(seed: int) -> None:
    dataset, results = random_case(seed)
    gt, cats = ground_truth_from_coco(dataset)
    dt = detections_from_coco(results)
    r = evaluate_tide(gt, dt, categories=cats)
    assert r.ap == run_pycocotools(dataset, results).stats[1]
    ours = evaluate_coco(gt, dt, categories=cats)
    assert r.ap == ours.stats[1]
    per = ours.per_class_ap(iou=0.5)
    assert [(-1.0 if np.isnan(v) else v) for v in r.class_ap] == [per[c] for c in cats]
    counts = r.counts()
    assert sum(counts[k] for k in ERROR_TYPES[:-1]) == counts["fp"]
    assert counts["miss"] <= counts["fn"]
    assert r.num_true_positives.sum() + counts["fn"] == r.num_ground_truth.sum()
    for kind in ERROR_TYPES:
        assert r.delta_ap[kind] >= 0
        assert r.ap + r.delta_ap[kind] <= 1 + 1e-12
    for kind in ("fp", "fn"):
        assert r.delta_ap[kind] >= -1e-12


@pytest.mark.parametrize("seed", range(24))
def test_a_commits_own_matching_gives_the_same_breakdown(seed: int) -> None:
    """A commit hands TIDE its matching (IoU 0.5, per class, every detection) when no
    image holds more than 100 detections of a class: the answer is the one TIDE's own
    matching gives, to the last bit (or TIDE matches again, when it leaves rows out)."""
    dataset, results = random_case(seed)
    gt, cats = ground_truth_from_coco(dataset)
    dt = detections_from_coco(results)
    _, codes = np.unique(dt.label, return_inverse=True)
    per = np.unique(dt.image.astype(np.int64) * (codes.max() + 1) + codes,
                    return_counts=True)[1] if len(dt) else np.zeros(1)
    if per.max() > 100:
        pytest.skip("the commit hands its matching only below max_dets")
    committed = match_detections(gt, dt, iou_threshold=0.5, max_dets=None)
    assert evaluate_tide(gt, dt, categories=cats, match=committed).to_dict() == \
        evaluate_tide(gt, dt, categories=cats).to_dict()


@pytest.mark.parametrize("seed", range(30))
def test_a_breakdown_cut_to_some_images_equals_evaluating_them_alone(seed: int) -> None:
    """A commit keeps each slice's breakdown cut from the whole dataset's: it must be the
    breakdown of the slice's rows alone, to the last bit, ids and per-class rows included."""
    dataset, results = random_case(seed)
    gt, _ = ground_truth_from_coco(dataset)
    dt = detections_from_coco(results)
    whole = TideBreakdown(gt, dt)
    rng = np.random.default_rng(seed)
    images = np.union1d(gt.image, dt.image)
    for size in (1, max(len(images) // 2, 1), len(images)):
        keys = np.sort(rng.choice(images, size, replace=False))
        g, d = gt.subset(np.isin(gt.image, keys)), dt.subset(np.isin(dt.image, keys))
        alone = evaluate_tide(g, d)
        cut = whole.result(keys, categories=alone.labels)
        assert cut.to_dict() == alone.to_dict()
        np.testing.assert_array_equal(cut.fp_det_id, alone.fp_det_id)
        np.testing.assert_array_equal(cut.fn_gt_id, alone.fn_gt_id)
    with pytest.raises(ValueError):
        whole.result(categories=[10**9])


# --- a loop-by-loop oracle of the published definitions, on random scenes ------------


def _iou(a: list[float], b: list[float]) -> float:
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(w, 0.0) * max(h, 0.0)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def _oracle_ap(points: dict[int, list[tuple[float, bool]]], npig: dict[int, int],
               classes: list[int]) -> float:
    """COCO's AP at one IoU, one class at a time, averaged over ``classes``."""
    aps = []
    for k in classes:
        pts = sorted(points.get(k, []), key=lambda p: -p[0])
        if npig[k] <= 0:
            if pts:
                aps.append(0.0)
            continue
        tp = fp = 0
        rc, pr = [], []
        for _, hit in pts:
            tp, fp = tp + hit, fp + (not hit)
            rc.append(tp / npig[k])
            pr.append(tp / (tp + fp + np.spacing(1)))
        for i in range(len(pr) - 1, 0, -1):
            pr[i - 1] = max(pr[i - 1], pr[i])
        q = [pr[i] if (i := int(np.searchsorted(rc, r, side="left"))) < len(pr) else 0.0
             for r in np.linspace(0, 1, R)]
        aps.append(sum(q) / R)
    return sum(aps) / len(aps)


def _oracle(gts: list[tuple[int, int, list[float]]],
            dets: list[tuple[int, int, list[float], float]]) -> tuple[dict, dict]:
    """Error type of every detection / missed ground truth, and each type's dAP."""
    tf, tb = 0.5, 0.1
    owner: dict[int, int] = {}  # gt -> det that matched it
    for i in sorted(range(len(dets)), key=lambda i: -dets[i][3]):
        img, k, box, _ = dets[i]
        free = [(_iou(box, gts[j][2]), j) for j in range(len(gts))
                if gts[j][0] == img and gts[j][1] == k and j not in owner]
        best = max(free, default=(0.0, -1))
        if best[0] >= tf:
            owner[best[1]] = i
    matched = set(owner.values())
    kinds: dict[tuple[str, int], str] = {}
    target: dict[int, int] = {}
    for i, (img, k, box, _) in enumerate(dets):
        if i in matched:
            continue
        here = [j for j in range(len(gts)) if gts[j][0] == img]
        same = max(((_iou(box, gts[j][2]), j) for j in here if gts[j][1] == k),
                   default=(0.0, -1))
        other = max(((_iou(box, gts[j][2]), j) for j in here if gts[j][1] != k),
                    default=(0.0, -1))
        used = max(((_iou(box, gts[j][2]), j) for j in here
                    if gts[j][1] == k and j in owner), default=(0.0, -1))
        if not here:
            kind = "bkg"
        elif tb <= same[0] < tf:
            kind, target[i] = "loc", same[1]
        elif other[0] >= tf:
            kind, target[i] = "cls", other[1]
        elif used[0] >= tf:
            kind = "dupe"
        elif max(same[0], other[0]) < tb:
            kind = "bkg"
        else:
            kind = "both"
        kinds[("det", i)] = kind
    winner: dict[int, int] = {}  # unmatched gt -> the best-scoring Cls/Loc error on it
    for i, j in target.items():
        if j not in owner and (j not in winner or dets[i][3] > dets[winner[j]][3]):
            winner[j] = i
    for j in range(len(gts)):
        if j not in owner and j not in winner:
            kinds[("gt", j)] = "miss"
    classes = sorted({g[1] for g in gts})
    base_npig = {k: sum(g[1] == k for g in gts) for k in classes}

    def ap_with(fix: str) -> float:
        points: dict[int, list[tuple[float, bool]]] = {}
        npig = dict(base_npig)
        for i, (_, k, _, s) in enumerate(dets):
            kind = kinds.get(("det", i))
            hit = i in matched
            if kind == fix:
                if i not in winner.values():
                    continue
                hit, k = True, (gts[target[i]][1] if fix == "cls" else k)
            if fix == "fp":
                s = 1.0 if hit else 0.0
            points.setdefault(k, []).append((s, hit))
        for side, j in kinds:
            if side == "gt" and fix == "miss":
                npig[gts[j][1]] -= 1
        if fix == "fn":
            for j in range(len(gts)):
                if j not in owner:
                    npig[gts[j][1]] -= 1
        return _oracle_ap(points, npig, classes)

    base = ap_with("")
    delta = {t: ap_with(t) - base for t in (*ERROR_TYPES, "fp", "fn")}
    return kinds, {"ap": base, **delta}


@pytest.mark.parametrize("seed", range(40))
def test_engine_agrees_with_a_loop_by_loop_oracle_of_the_definitions(seed: int) -> None:
    rng = np.random.default_rng(seed)
    gts: list[tuple[int, int, list[float]]] = []
    dets: list[tuple[int, int, list[float], float]] = []
    for img in range(int(rng.integers(1, 5))):
        for _ in range(int(rng.integers(0 if gts else 1, 7))):
            box = [*rng.uniform(0, 150, 2), *rng.uniform(5, 60, 2)]
            k = int(rng.integers(3))
            gts.append((img, k, box))
            for _ in range(int(rng.integers(0, 3))):
                j = rng.normal(0, 0.25, 4) * [box[2], box[3], box[2], box[3]]
                dets.append((img, k if rng.random() < 0.75 else int(rng.integers(3)),
                             [box[0] + j[0], box[1] + j[1], abs(box[2] + j[2]) + 1,
                              abs(box[3] + j[3]) + 1], 0.0))
        for _ in range(int(rng.integers(0, 3))):
            dets.append((img, int(rng.integers(3)),
                         [*rng.uniform(0, 150, 2), *rng.uniform(5, 60, 2)], 0.0))
    known = {g[1] for g in gts}
    dets = [d for d in dets if d[1] in known]
    scores = (rng.permutation(len(dets)) + 1) / (len(dets) + 1)  # distinct
    dets = [(d[0], d[1], d[2], float(s)) for d, s in zip(dets, scores, strict=True)]
    kinds, want = _oracle(gts, dets)
    gt, dt = (GroundTruth([g[0] for g in gts], [g[1] for g in gts], [g[2] for g in gts]),
              Detections([d[0] for d in dets], [d[1] for d in dets], [d[2] for d in dets],
                         [d[3] for d in dets]))
    r = evaluate_tide(gt, dt)
    got = {("det", int(i)): t for t in ERROR_TYPES[:-1] for i in r.errors[t].det_id}
    got |= {("gt", int(j)): "miss" for j in r.errors["miss"].gt_id}
    assert got == kinds
    assert r.ap == pytest.approx(want["ap"], abs=1e-12)
    for t in (*ERROR_TYPES, "fp", "fn"):
        expected = max(want[t], 0.0) if t in ERROR_TYPES else want[t]
        assert r.delta_ap[t] == pytest.approx(expected, abs=1e-12), t


@pytest.mark.parametrize("seed", range(6))
def test_rankings_from_one_image_order_equal_a_full_lexsort(seed: int) -> None:
    from ocula.core.evaluation.tide_ap import rank_from

    rng = np.random.default_rng(seed)
    n = 3000
    row = np.sort(rng.choice(10 * n, n, replace=False))
    img = rng.integers(0, 40, n)
    cls = rng.integers(0, 7, n)
    # Scores with ties, and TP-style scores of two values (the stable partition path).
    for score in (rng.integers(0, 20, n) / 19, (rng.random(n) < 0.4).astype(float)):
        by_image = np.argsort(img, kind="stable")
        want = np.lexsort((row, img, -score, cls))
        assert np.array_equal(rank_from(by_image, cls, score), want)
        keep = rng.random(n) < 0.6  # a subset keeps its image order
        sub = by_image[keep[by_image]]
        got = rank_from(sub, cls, score)
        rows = np.flatnonzero(keep)
        assert np.array_equal(got, rows[np.lexsort((row[rows], img[rows], -score[rows],
                                                    cls[rows]))])
