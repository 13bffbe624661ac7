"""Per-row matching for the store: COCO consistency, label options, crowd, max_dets."""

from __future__ import annotations

import numpy as np
import pytest
from eval_synth import assert_same_fields, random_case, run_pycocotools

from ocula.core.evaluation import (
    Detections,
    GroundTruth,
    MatchStatus,
    detections_from_coco,
    ground_truth_from_coco,
    match_detections,
)
from ocula.core.evaluation.iou import box_iou
from ocula.errors import ValidationError

TP, FP, FN = MatchStatus.TP, MatchStatus.FP, MatchStatus.FN
IGNORED, SKIPPED = MatchStatus.IGNORED, MatchStatus.SKIPPED


@pytest.mark.parametrize("seed", range(72))
def test_agrees_with_pycocotools_matches_at_iou_50(seed: int) -> None:
    dataset, results = random_case(seed)
    gt, _ = ground_truth_from_coco(dataset)
    dt = detections_from_coco(results)
    # COCO also ignores boxes beyond its largest area range; the store matcher has no area
    # ranges, so such cases are not comparable.
    if (gt.area > 1e10).any() or (dt.area > 1e10).any():
        pytest.skip("areas beyond COCO's range")
    listed = {c["id"] for c in dataset["categories"]}
    keep = np.isin(dt.label, list(listed))
    dt = dt.subset(np.flatnonzero(keep))
    ref = run_pycocotools(dataset, results)
    ours = match_detections(gt, dt, iou_threshold=0.5, max_dets=100)

    det_row = {int(i): r for r, i in enumerate(dt.id)}
    gt_row = {int(i): r for r, i in enumerate(gt.id)}
    seen = np.zeros(len(dt), dtype=bool)
    for e in ref.evalImgs:
        if e is None or e["aRng"] != [0, 1e10]:
            continue
        for d_id, m, ig in zip(e["dtIds"], e["dtMatches"][0], e["dtIgnore"][0], strict=True):
            r = det_row[d_id]
            seen[r] = True
            assert ours.det_gt_id[r] == (int(m) if m > 0 else -1)
            expected = IGNORED if ig else (TP if m > 0 else FP)
            assert ours.det_status[r] == expected
        for g_id, m, ig in zip(e["gtIds"], e["gtMatches"][0], e["gtIgnore"], strict=True):
            r = gt_row[g_id]
            if ig:
                assert ours.gt_status[r] == IGNORED
            else:
                assert ours.gt_det_id[r] == (int(m) if m > 0 else -1)
                assert ours.gt_status[r] == (TP if m > 0 else FN)
    # Detections pycocotools never looked at are the ones beyond maxDets.
    assert (ours.det_status[~seen] == SKIPPED).all()
    assert (ours.det_status[seen] != SKIPPED).all()


def _gt(rows: list[tuple[str, list[float]]], crowd: list[bool] | None = None) -> GroundTruth:
    return GroundTruth(
        [0] * len(rows), [r[0] for r in rows], [r[1] for r in rows],
        iscrowd=crowd, id=[100 + i for i in range(len(rows))],
    )


def _dt(rows: list[tuple[str, list[float], float]], image: list[int] | None = None) -> Detections:
    return Detections(
        image or [0] * len(rows), [r[0] for r in rows], [r[1] for r in rows],
        [r[2] for r in rows], id=[200 + i for i in range(len(rows))],
    )


def test_basic_tp_fp_fn_and_best_iou() -> None:
    gt = _gt([("car", [0, 0, 10, 10]), ("car", [50, 50, 10, 10])])
    dt = _dt([("car", [1, 0, 10, 10], 0.9), ("car", [2, 0, 10, 10], 0.8)])
    m = match_detections(gt, dt)
    assert m.det_status.tolist() == [TP, FP]
    assert m.det_gt_id.tolist() == [100, -1]
    assert m.det_iou[0] == pytest.approx(90 / 110)
    assert m.det_iou[1] == 0
    # The duplicate lost the box but still reports how well it overlaps it.
    assert m.det_best_iou[1] == pytest.approx(80 / 120)
    assert m.det_best_gt_id.tolist() == [100, 100]
    assert m.gt_status.tolist() == [TP, FN]
    assert m.gt_det_id.tolist() == [200, -1]
    assert (m.tp, m.fp, m.fn) == (1, 1, 1)
    assert m.image.tolist() == [0]
    assert (m.image_tp.tolist(), m.image_fp.tolist(), m.image_fn.tolist()) == ([1], [1], [1])
    assert m.det_status_names().tolist() == ["tp", "fp"]
    assert m.gt_status_names().tolist() == ["tp", "fn"]


def test_greedy_by_confidence_not_by_iou() -> None:
    gt = _gt([("car", [0, 0, 10, 10])])
    # The confident detection overlaps less, yet it is visited first and takes the box.
    dt = _dt([("car", [0, 0, 10, 10], 0.5), ("car", [3, 0, 10, 10], 0.9)])
    m = match_detections(gt, dt)
    assert m.det_status.tolist() == [FP, TP]
    assert m.det_best_iou[0] == 1.0


def test_iou_threshold_is_inclusive() -> None:
    gt = _gt([("car", [0, 0, 10, 10])])
    dt = _dt([("car", [0, 0, 5, 10], 0.9)])  # IoU exactly 0.5
    assert match_detections(gt, dt, iou_threshold=0.5).det_status.tolist() == [TP]
    assert match_detections(gt, dt, iou_threshold=0.51).det_status.tolist() == [FP]
    exact = _dt([("car", [0, 0, 10, 10], 0.9)])
    assert match_detections(gt, exact, iou_threshold=1.0).det_status.tolist() == [TP]


def test_class_agnostic() -> None:
    gt = _gt([("car", [0, 0, 10, 10])])
    dt = _dt([("truck", [0, 0, 10, 10], 0.9)])
    aware = match_detections(gt, dt)
    assert aware.det_status.tolist() == [FP] and aware.gt_status.tolist() == [FN]
    # best IoU looks at every label even when matching does not.
    assert aware.det_best_iou[0] == 1.0 and aware.det_best_gt_id[0] == 100
    agnostic = match_detections(gt, dt, class_agnostic=True)
    assert agnostic.det_status.tolist() == [TP] and agnostic.gt_det_id.tolist() == [200]


def test_allowed_label_matches_are_directional() -> None:
    allowed = [{"ground_truth_label": "car", "model_prediction_label": "truck"}]
    gt = _gt([("car", [0, 0, 10, 10]), ("truck", [40, 0, 10, 10])])
    dt = _dt([("truck", [0, 0, 10, 10], 0.9), ("car", [40, 0, 10, 10], 0.8)])
    m = match_detections(gt, dt, allowed_label_matches=allowed)
    assert m.det_status.tolist() == [TP, FP]
    assert m.det_gt_id.tolist() == [100, -1]
    assert m.gt_status.tolist() == [TP, FN]
    # Unknown labels in the allow-list are harmless.
    extra = [*allowed, {"ground_truth_label": "bus", "model_prediction_label": "tram"}]
    assert match_detections(gt, dt, allowed_label_matches=extra).det_status.tolist() == [TP, FP]


def test_allowed_label_matches_prefer_best_iou_across_labels() -> None:
    allowed = [{"ground_truth_label": "car", "model_prediction_label": "truck"}]
    gt = _gt([("truck", [0, 0, 10, 10]), ("car", [2, 0, 10, 10])])
    dt = _dt([("truck", [2, 0, 10, 10], 0.9), ("truck", [0, 0, 10, 10], 0.8)])
    m = match_detections(gt, dt, allowed_label_matches=allowed)
    # The first truck fits the car box perfectly and may take it; the second gets the truck.
    assert m.det_gt_id.tolist() == [101, 100]
    assert m.det_status.tolist() == [TP, TP]


def test_crowd_absorbs_and_counts_neither_way() -> None:
    gt = _gt([("person", [0, 0, 100, 100]), ("person", [200, 0, 10, 10])], crowd=[True, False])
    dt = _dt([
        ("person", [10, 10, 5, 5], 0.9),
        ("person", [50, 50, 5, 5], 0.8),
        ("person", [200, 0, 10, 10], 0.7),
    ])
    m = match_detections(gt, dt)
    assert m.det_status.tolist() == [IGNORED, IGNORED, TP]
    assert m.det_iou[:2].tolist() == [1.0, 1.0]  # intersection / detection area
    assert m.gt_status.tolist() == [IGNORED, TP]
    assert m.gt_det_id.tolist() == [200, 202]  # a crowd reports its best absorbed detection
    assert (m.tp, m.fp, m.fn) == (1, 0, 0)
    # A crowd is only a fallback: a regular box wins even with a lower IoU.
    gt2 = _gt([("person", [0, 0, 100, 100]), ("person", [10, 10, 6, 6])], crowd=[True, False])
    m2 = match_detections(gt2, _dt([("person", [10, 10, 5, 5], 0.9)]))
    assert m2.det_status.tolist() == [TP] and m2.det_gt_id.tolist() == [101]


def test_max_dets_per_image_and_label() -> None:
    gt = _gt([("car", [0, 0, 10, 10])])
    dt = _dt([
        ("car", [50, 0, 10, 10], 0.9),
        ("car", [0, 0, 10, 10], 0.1),
        ("car", [80, 0, 10, 10], 0.5),
        ("bike", [90, 0, 10, 10], 0.2),
    ])
    m = match_detections(gt, dt, max_dets=2)
    assert m.det_status.tolist() == [FP, SKIPPED, FP, FP]
    assert m.gt_status.tolist() == [FN]
    # Class-agnostic: the cap is per image over all labels.
    ma = match_detections(gt, dt, max_dets=2, class_agnostic=True)
    assert ma.det_status.tolist() == [FP, SKIPPED, FP, SKIPPED]
    unlimited = match_detections(gt, dt, max_dets=None)
    assert unlimited.det_status.tolist() == [FP, TP, FP, FP]


def test_per_image_counts_and_images_without_boxes() -> None:
    gt = GroundTruth(["a", "a", "b"], ["x", "x", "x"],
                     [[0, 0, 10, 10], [20, 0, 10, 10], [0, 0, 10, 10]])
    dt = Detections(["a", "c", "c"], ["x", "x", "x"],
                    [[0, 0, 10, 10], [0, 0, 10, 10], [5, 5, 10, 10]], [0.9, 0.8, 0.7])
    m = match_detections(gt, dt)
    assert m.image.tolist() == ["a", "b", "c"]
    assert m.image_tp.tolist() == [1, 0, 0]
    assert m.image_fp.tolist() == [0, 0, 2]
    assert m.image_fn.tolist() == [1, 1, 0]
    assert m.det_best_iou.tolist()[1:] == [0.0, 0.0]
    assert m.det_best_gt_id.tolist()[1:] == [-1, -1]


def test_best_iou_is_the_maximum_over_the_image() -> None:
    rng = np.random.default_rng(5)
    n_gt, n_dt = 30, 40
    g = np.c_[rng.uniform(0, 200, (n_gt, 2)), rng.uniform(5, 80, (n_gt, 2))]
    d = np.c_[rng.uniform(0, 200, (n_dt, 2)), rng.uniform(5, 80, (n_dt, 2))]
    gt = GroundTruth(np.zeros(n_gt, int), rng.integers(0, 3, n_gt), g,
                     iscrowd=rng.random(n_gt) < 0.2)
    dt = Detections(np.zeros(n_dt, int), rng.integers(0, 3, n_dt), d, rng.random(n_dt))
    m = match_detections(gt, dt)
    ious = box_iou(d, g)
    ious[:, gt.iscrowd] = 0  # crowd regions are not "objects" for the best-IoU view
    np.testing.assert_array_equal(m.det_best_iou, ious.max(axis=1))
    has = ious.max(axis=1) > 0
    np.testing.assert_array_equal(m.det_best_gt_id[has], ious.argmax(axis=1)[has])


def test_bad_options() -> None:
    gt = _gt([("car", [0, 0, 10, 10])])
    dt = _dt([("car", [0, 0, 10, 10], 0.9)])
    with pytest.raises(ValidationError):
        match_detections(gt, dt, max_dets=-1)
    with pytest.raises(ValidationError):
        match_detections(gt, dt, allowed_label_matches=[{"gt": "car"}])


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("class_agnostic", [False, True])
def test_a_match_cut_to_images_equals_matching_the_cut_sides(seed: int,
                                                             class_agnostic: bool) -> None:
    """A commit keeps each slice's numbers from its own matching, cut to the slice."""
    dataset, results = random_case(seed)
    gt, _ = ground_truth_from_coco(dataset)
    dt = detections_from_coco(results)
    whole = match_detections(gt, dt, iou_threshold=0.5, max_dets=None,
                             class_agnostic=class_agnostic)
    rng = np.random.default_rng(seed)
    images = np.union1d(gt.image, dt.image)
    keys = np.sort(rng.choice(images, max(len(images) // 2, 1), replace=False))
    g_rows = np.flatnonzero(np.isin(gt.image, keys))
    d_rows = np.flatnonzero(np.isin(dt.image, keys))
    cut = whole.on_rows(g_rows, d_rows, keys)
    again = match_detections(gt.subset(g_rows), dt.subset(d_rows), iou_threshold=0.5,
                             max_dets=None, class_agnostic=class_agnostic)
    assert_same_fields(cut, again)


def test_distinct_labels_sort_as_numpy_does() -> None:
    """Labels are gathered through a set for speed; the order must stay np.unique's
    (code points: capitals first, accents after), or classes would average in another
    order."""
    from ocula.core.evaluation.inputs import distinct

    text = np.array(["b", "a", "Zebra", "éclair", "a", "car", "Car", "ß", "a b"])
    more = np.array(["z", "b"])
    np.testing.assert_array_equal(distinct(text, more), np.unique(np.r_[text, more]))
    ints = np.array([3, 1, 3, 2])
    np.testing.assert_array_equal(distinct(ints), np.unique(ints))
    objects = np.array([2, 1], dtype=object)
    assert distinct(objects).dtype == np.unique(objects).dtype
    assert len(distinct(np.array([], dtype=str))) == 0


def test_factorize_equals_numpy_unique() -> None:
    """Labels are numbered through a dict for speed: values and codes must be
    np.unique's, or per-class counts would land on other classes."""
    from ocula.core.evaluation.inputs import factorize

    text = np.array(["b", "a", "Zebra", "éclair", "a", "car", "Car", "ß", "a b", "b"])
    for column in (text, np.array([3, 1, 3, 2]), np.array([], dtype=str)):
        values, codes = factorize(column)
        ref_values, ref_codes = np.unique(column, return_inverse=True)
        np.testing.assert_array_equal(values, ref_values)
        np.testing.assert_array_equal(codes, ref_codes.reshape(-1))
        assert codes.dtype == np.intp


def test_integer_factorize_by_table_equals_numpy_unique() -> None:
    """Integers in a narrow range (image keys) are numbered through a table of the
    range, wide ones by sorting: either way exactly np.unique's values (and dtype) and
    inverse, whatever the signs, dtype and gaps."""
    from ocula.core.evaluation.inputs import factorize

    rng = np.random.default_rng(11)
    columns = [np.array([7]), np.array([-5, -5, -2, 3], dtype=np.int32),
               np.array([2**40, 1, 2**40]), np.array([0, 10**9]),
               np.arange(5, dtype=np.uint16)[::-1]]
    for _ in range(200):
        n = int(rng.integers(1, 3000))
        span = int(rng.choice([3, n, 4 * n, 5 * n + 2000, 10**7]))
        low = int(rng.integers(-1000, 1000))
        dtype = rng.choice([np.int64, np.int32, np.int16 if span < 30000 else np.int64])
        columns.append((rng.integers(0, span, n) + low).astype(dtype))
    for column in columns:
        values, codes = factorize(column)
        ref_values, ref_codes = np.unique(column, return_inverse=True)
        np.testing.assert_array_equal(values, ref_values)
        assert values.dtype == ref_values.dtype
        np.testing.assert_array_equal(codes, ref_codes.reshape(-1))
        assert codes.dtype == np.intp


def test_read_only_label_columns_are_numbered_once() -> None:
    """A read-only text column (the sides kept between requests) is numbered once and
    its codes reused, read-only; a writable one, or a view of a writable one, is
    numbered each time (it may change). Lookups through the codes equal searching."""
    import gc

    from ocula.core.evaluation.inputs import LabelSpace, factorize

    rng = np.random.default_rng(3)
    words = np.array(["car", "person", "dog", "Bus", "éclair"])
    kept = words[rng.integers(0, 5, 1000)]
    kept.flags.writeable = False
    first, again = factorize(kept), factorize(kept)
    assert again[1] is first[1] and not first[1].flags.writeable
    assert not first[0].flags.writeable
    space = LabelSpace(["person", "car", "truck"])
    np.testing.assert_array_equal(space.index(kept), [
        {"person": 0, "car": 1}.get(w, -1) for w in kept.tolist()])
    # More distinct labels outside the space than four times its size (a run naming
    # classes the dataset has not): still one look-up each.
    unknown = np.array([f"class {i % 40}" for i in range(400)] + ["car"])
    np.testing.assert_array_equal(space.index(unknown), [-1] * 400 + [1])
    writable = kept.copy()
    assert factorize(writable)[1] is not factorize(writable)[1]
    base = kept.copy()
    view = base[:]
    view.flags.writeable = False
    assert factorize(view)[1] is not factorize(view)[1]
    # A new column in a dead one's place is numbered afresh.
    for _ in range(20):
        del kept
        gc.collect()
        kept = np.array(rng.choice(["x", "y"], 1000))
        kept.flags.writeable = False
        values, codes = factorize(kept)
        np.testing.assert_array_equal(values[codes], kept)


def test_rank_within_orders_as_lexsort() -> None:
    """Ranking by group then descending score (ties in row order, as pycocotools'
    mergesort keeps them) equals one lexsort of the two keys, NaN scores and ties
    included."""
    from ocula.core.evaluation.matching import rank_within

    rng = np.random.default_rng(5)
    for _ in range(300):
        n = int(rng.integers(0, 400))
        group = rng.integers(0, int(rng.integers(1, 30)), n)
        score = (rng.choice([0.1, 0.5, 0.9, np.nan], n) if rng.random() < 0.5
                 else rng.random(n))
        order, rank = rank_within(group, score)
        ref = np.lexsort((-score, group))
        np.testing.assert_array_equal(order, ref)
        g = group[ref]
        np.testing.assert_array_equal(rank, np.arange(n) - np.searchsorted(g, g, side="left"))


def test_stable_argsort_equals_numpy_stable_sort() -> None:
    """Integer keys below 2**32 sort by radix passes over 16-bit halves: the same order
    as numpy's stable sort, ties in row order, for every width, dtype and sign (keys it
    cannot take go to numpy's)."""
    from ocula.core.evaluation.inputs import stable_argsort

    rng = np.random.default_rng(9)
    for _ in range(200):
        n = int(rng.integers(0, 20_000))
        span = int(rng.choice([3, 300, 70_000, 2**20, 2**32 - 1, 2**40]))
        keys = rng.integers(0, span, n, dtype=np.int64)
        if rng.random() < 0.2:
            keys -= 5
        if span < 2**31 and rng.random() < 0.5:
            keys = keys.astype(np.int32)
        np.testing.assert_array_equal(stable_argsort(keys), np.argsort(keys, kind="stable"))
    floats = rng.random(5000)
    np.testing.assert_array_equal(stable_argsort(floats), np.argsort(floats, kind="stable"))
