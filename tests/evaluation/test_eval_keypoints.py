"""Keypoint (OKS) evaluation must reproduce pycocotools' ``iouType="keypoints"`` exactly."""

from __future__ import annotations

import numpy as np
import pytest
from kp_synth import (
    KP_FLAVORS,
    PERSON,
    KeypointCase,
    run_pycocotools_keypoints,
    summarize_merged,
)

from ocula.core.evaluation import (
    COCO_PERSON_SIGMAS,
    KEYPOINT_AREA_RANGES,
    KEYPOINT_MAX_DETS,
    KEYPOINT_STAT_NAMES,
    Detections,
    GroundTruth,
    KeypointPairOKS,
    MatchStatus,
    evaluate_keypoints,
    match_detections,
)
from ocula.errors import ValidationError

N_CASES = 240


def test_constants_are_pycocotools() -> None:
    from pycocotools.cocoeval import Params

    p = Params(iouType="keypoints")
    assert np.array_equal(COCO_PERSON_SIGMAS, p.kpt_oks_sigmas)
    assert [list(r) for r in KEYPOINT_AREA_RANGES.values()] == p.areaRng
    assert list(KEYPOINT_AREA_RANGES) == p.areaRngLbl
    assert list(KEYPOINT_MAX_DETS) == p.maxDets


@pytest.mark.parametrize("seed", range(N_CASES))
def test_matches_pycocotools(seed: int) -> None:
    """All 10 numbers, and the arrays behind them, with ``==`` (no tolerance)."""
    case = KeypointCase(seed)
    gt, dt, gt_kp, dt_kp, num = case.columns()
    runs = []
    for cat in case.categories:
        # pycocotools has one set of sigmas per run, so each category is its own run.
        ref = run_pycocotools_keypoints(case, cat)
        runs.append(ref)
        ours = evaluate_keypoints(gt, dt, gt_kp, dt_kp, sigmas=case.sigmas, categories=[cat],
                                  num_keypoints=num)
        np.testing.assert_array_equal(ours.stats, ref.stats)
        np.testing.assert_array_equal(ours.precision, ref.eval["precision"])
        np.testing.assert_array_equal(ours.recall, ref.eval["recall"])
        np.testing.assert_array_equal(ours.scores, ref.eval["scores"])
    # All categories at once (the person on default sigmas) against pycocotools'
    # summarize over the per-category runs side by side.
    ours = evaluate_keypoints(gt, dt, gt_kp, dt_kp, sigmas=case.sigmas,
                              categories=case.categories, num_keypoints=num)
    np.testing.assert_array_equal(ours.stats, summarize_merged(runs))
    for k, ref in enumerate(runs):
        np.testing.assert_array_equal(ours.precision[:, :, k], ref.eval["precision"][:, :, 0])


@pytest.mark.parametrize("seed", range(0, N_CASES, 4))
def test_pair_oks_equals_compute_oks(seed: int) -> None:
    """Every (detection, ground truth) OKS of pycocotools' ``computeOks`` matrices."""
    case = KeypointCase(seed)
    gt, dt, gt_kp, dt_kp, _ = case.columns()
    anns = case.dataset["annotations"]
    row_of_gt = {a["id"]: i for i, a in enumerate(anns)}
    for cat in case.categories:
        ref = run_pycocotools_keypoints(case, cat, evaluate_only=True)
        oks = KeypointPairOKS(gt, dt, gt_kp, dt_kp, sigmas=case.sigmas, categories=[cat])
        for (img, c), matrix in ref.ious.items():
            if len(matrix) == 0:
                continue
            dts = sorted(ref._dts[img, c], key=lambda d: -d["score"])[: KEYPOINT_MAX_DETS[-1]]
            d_rows = np.array([d["id"] - 1 for d in dts])  # loadRes numbers results 1..N
            g_rows = np.array([row_of_gt[g["id"]] for g in ref._gts[img, c]])
            ours = oks(np.repeat(d_rows, len(g_rows)), np.tile(g_rows, len(d_rows)))
            np.testing.assert_array_equal(ours.reshape(matrix.shape), matrix)


def test_cases_cover_the_corner_cases() -> None:
    """Guard the generator: the exactness test is only as good as what it feeds in."""
    counts = dict.fromkeys(
        ("crowd", "unlabelled", "stale_num", "v0_coords", "over_20", "no_gt_image", "ties",
         "other_k", "k17_custom", "medium", "large", "huge", "tiny", "with_bbox"), 0)
    for seed in range(N_CASES):
        case = KeypointCase(seed)
        anns, res = case.dataset["annotations"], case.results
        counts["crowd"] += any(a["iscrowd"] for a in anns)
        counts["unlabelled"] += any(a["num_keypoints"] == 0 and not a["iscrowd"] for a in anns)
        counts["stale_num"] += any(
            a["num_keypoints"] != sum(v > 0 for v in a["keypoints"][2::3]) for a in anns)
        counts["v0_coords"] += any(
            v == 0 and (x or y) for a in anns
            for x, y, v in zip(*[iter(a["keypoints"])] * 3, strict=True))
        per: dict[tuple[int, int], int] = {}
        for r in res:
            per[r["image_id"], r["category_id"]] = per.get((r["image_id"], r["category_id"]), 0) + 1
        counts["over_20"] += max(per.values()) > 20
        counts["no_gt_image"] += bool({r["image_id"] for r in res} - {a["image_id"] for a in anns})
        scores = [r["score"] for r in res]
        counts["ties"] += len(set(scores)) < len(scores)
        counts["other_k"] += any(k != 17 for k in case.n_kp.values())
        counts["k17_custom"] += any(case.n_kp[c] == 17 for c in case.sigmas)
        areas = [a["area"] for a in anns]
        counts["medium"] += any(32**2 <= a <= 96**2 for a in areas)
        counts["large"] += any(96**2 < a <= 1e10 for a in areas)
        counts["huge"] += any(a > 1e10 for a in areas)
        counts["tiny"] += any(a < 32**2 for a in areas)
        counts["with_bbox"] += case.with_bbox
    for name, count in counts.items():
        assert count >= 10, f"only {count} cases with {name}"
    assert {KeypointCase(s).flavor for s in range(len(KP_FLAVORS))} == set(KP_FLAVORS)


def _one_person(v: int = 2) -> tuple[GroundTruth, list[list[float]]]:
    gt = GroundTruth([1], [PERSON], [[100.0, 100.0, 40.0, 80.0]], area=[2500.0])
    pts = np.column_stack([np.linspace(100, 140, 17), np.linspace(100, 180, 17),
                           np.full(17, v)])
    return gt, [pts.reshape(-1).tolist()]


def test_oks_is_one_for_a_perfect_detection_and_uses_the_box_without_labels() -> None:
    gt, gt_kp = _one_person()
    dt = Detections([1, 1], [PERSON, PERSON], np.zeros((2, 4)), [0.9, 0.8])
    far = (np.array(gt_kp[0]) + [1000.0, 0.0, 0.0] * 17).tolist()
    oks = KeypointPairOKS(gt, dt, gt_kp, [gt_kp[0], far])
    assert oks(np.array([0, 1]), np.array([0, 0])).tolist() == [1.0, pytest.approx(0.0)]
    # No labelled point: any point inside the box grown to [x-w, x+2w] × [y-h, y+2h] is
    # at distance 0: a detection with every point inside scores exactly 1.
    gt0, gt0_kp = _one_person(v=0)
    inside = np.array(gt0_kp[0]) + [-35.0, -70.0, 0.0] * 17
    oks0 = KeypointPairOKS(gt0, dt, gt0_kp, [inside.tolist(), far])
    assert oks0(np.array([0, 1]), np.array([0, 0]))[0] == 1.0


def test_sigmas_per_category_and_their_checks() -> None:
    gt = GroundTruth([1, 1], ["person", "hand"], [[0, 0, 10, 10]] * 2, area=[100.0, 100.0])
    dt = Detections([1, 1], ["person", "hand"], [[0, 0, 10, 10]] * 2, [0.9, 0.8])
    person = [1.0, 2.0, 2.0] * 17
    hand = [1.0, 2.0, 2.0] * 3
    with pytest.raises(ValidationError, match=r"'hand' has 3 keypoints"):
        KeypointPairOKS(gt, dt, [person, hand], [person, hand])
    with pytest.raises(ValidationError, match=r"'hand' has 2 sigmas but a ground truth with 3"):
        KeypointPairOKS(gt, dt, [person, hand], [person, hand], sigmas={"hand": [0.1, 0.1]})
    with pytest.raises(ValidationError, match=r"'person' has 3 sigmas"):
        KeypointPairOKS(gt, dt, [person, hand], [person, hand], sigmas=[0.1, 0.1, 0.1])
    with pytest.raises(ValidationError, match="positive"):
        KeypointPairOKS(gt, dt, [person, hand], [person, hand], sigmas={"hand": [.1, 0, .1]})
    with pytest.raises(ValidationError, match="triplets"):
        KeypointPairOKS(gt, dt, [person, hand[:-1]], [person, hand], sigmas={"hand": [.1] * 3})
    # A category left out of the evaluation needs no sigmas.
    ev = evaluate_keypoints(gt, dt, [person, hand], [person, hand], categories=["person"])
    assert ev.stats[0] == pytest.approx(1.0)  # precision is tp / (tp + fp + eps)
    # Mapping: listed categories use theirs, 17-point ones default to the person's.
    oks = KeypointPairOKS(gt, dt, [person, hand], [person, hand], sigmas={"hand": [.1] * 3})
    assert oks(np.array([0, 1, 1]), np.array([0, 1, 0])).tolist() == [1.0, 1.0, 0.0]


def test_keypoint_summary_names() -> None:
    case = KeypointCase(0)
    gt, dt, gt_kp, dt_kp, num = case.columns()
    ev = evaluate_keypoints(gt, dt, gt_kp, dt_kp, sigmas=case.sigmas,
                            categories=case.categories, num_keypoints=num)
    assert ev.kind == "keypoints" and ev.stat_names == KEYPOINT_STAT_NAMES
    assert list(ev.to_dict()["stats"]) == list(KEYPOINT_STAT_NAMES)
    assert ev.max_dets == KEYPOINT_MAX_DETS and ev.area_labels == tuple(KEYPOINT_AREA_RANGES)


def test_match_detections_reports_ignore_rows_as_ignored_absorbing_one() -> None:
    box = [10.0, 10.0, 50.0, 50.0]
    gt = GroundTruth([1, 1], [0, 0], [box, [200.0, 200.0, 50.0, 50.0]],
                     ignore=[True, False])
    crowd = GroundTruth([1, 1], [0, 0], [box, [200.0, 200.0, 50.0, 50.0]],
                        iscrowd=[True, False])
    dt = Detections([1, 1, 1], [0, 0, 0], [box, box, [200.0, 200.0, 50.0, 50.0]],
                    [0.9, 0.8, 0.7])
    m = match_detections(gt, dt)
    assert m.det_status.tolist() == [MatchStatus.IGNORED, MatchStatus.FP, MatchStatus.TP]
    assert m.gt_status.tolist() == [MatchStatus.IGNORED, MatchStatus.TP]
    assert (m.tp, m.fp, m.fn) == (1, 1, 0)
    # A crowd region absorbs both.
    mc = match_detections(crowd, dt)
    assert mc.det_status.tolist() == [MatchStatus.IGNORED, MatchStatus.IGNORED, MatchStatus.TP]
    # subset() keeps the flag.
    assert gt.subset([0]).ignore.tolist() == [True]
