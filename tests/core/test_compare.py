"""Comparing two committed runs (``compare_runs``, ``compare_items``) on both databases:
the deltas overall and per class equal the two runs' own metrics, the fixed and broken
lists are the items built to be so, and their pages add up to exactly those lists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ocula.core.services import Service
from ocula.core.types import BoxAnnotation, BoxPrediction, DatasetItem
from ocula.errors import NotFoundError, ValidationError
from tests.conftest import make_images

CAR = (10.0, 10.0, 30.0, 20.0)
PERSON = (50.0, 5.0, 10.0, 30.0)
N = 10  # r0..r9; r8 and r9 have no ground truth and no predictions


def _pred(label: str, box: tuple[float, ...], ref: str, conf: float = 0.9) -> BoxPrediction:
    return BoxPrediction(label, *box, reference_id=ref, confidence=conf)


@pytest.fixture
def scene(service: Service, tmp_path: Path) -> dict[str, Any]:
    """Run A finds everything on r0–r3 and misses the car on r4–r7; run B finds
    everything on r2 and r4–r7, adds a background box on r0 and r1 and misses r3's
    person. So B fixes r4–r7 and breaks r0, r1 and r3; r2 is right in both."""
    paths = make_images(tmp_path / "imgs", N, size=(100, 80))
    refs = [f"r{i}" for i in range(N)]
    ds = service.create_dataset("cmp")["id"]
    service.append(ds, [DatasetItem(str(p), r) for p, r in zip(paths, refs, strict=True)])
    gts = [BoxAnnotation("car", *CAR, reference_id=r) for r in refs[:8]]
    gts += [BoxAnnotation("person", *PERSON, reference_id=r) for r in refs[:4]]
    service.annotate(ds, gts)
    a_preds = [_pred("car", CAR, r) for r in refs[:4]]
    a_preds += [_pred("person", PERSON, r) for r in refs[:4]]
    b_preds = [_pred("car", CAR, r) for r in refs[:8]]
    b_preds += [_pred("person", PERSON, r) for r in refs[:3]]
    b_preds += [_pred("car", (60.0, 50.0, 20.0, 20.0), r, 0.8) for r in ("r0", "r1")]
    model = service.add_model("m", "m")["id"]
    run_a = service.create_run(model, ds, "a", a_preds)["id"]
    run_b = service.create_run(model, ds, "b", b_preds)["id"]
    service.commit_run(run_a)
    service.commit_run(run_b)
    service.create_slice(ds, "half", reference_ids=refs[::2])
    return {"ds": ds, "a": run_a, "b": run_b, "model": model, "refs": refs}


def _all_pages(service: Service, scene: dict[str, Any], only: str, size: int,
               slice: str | None = None) -> tuple[list[str], list[int]]:  # noqa: A002
    refs, totals, cursor = [], [], None
    while True:
        page = service.compare_items(scene["a"], scene["b"], only=only, slice=slice,
                                     page_size=size, cursor=cursor)
        refs += [it["reference_id"] for it in page["items"]]
        totals.append(page["total"])
        cursor = page["next_cursor"]
        if cursor is None:
            return refs, totals


def test_deltas_overall_and_per_class_equal_each_runs_metrics(service: Service,
                                                              scene: dict[str, Any]) -> None:
    diff = service.compare_runs(scene["a"], scene["b"])
    ma, mb = service.run_metrics(scene["a"]), service.run_metrics(scene["b"])
    assert diff["stats_a"] == ma["stats"] and diff["stats_b"] == mb["stats"]
    assert diff["delta"] == {k: mb["stats"][k] - ma["stats"][k] for k in ma["stats"]}
    rows = {r["label"]: r for r in diff["per_class"]}
    assert set(rows) == {"car", "person"}
    for label in rows:
        a = next(r for r in ma["per_class"] if r["label"] == label)
        b = next(r for r in mb["per_class"] if r["label"] == label)
        for k in ("ap", "ap50", "ar"):
            assert rows[label]["a"][k] == a[k] and rows[label]["b"][k] == b[k]
            assert rows[label]["delta"][k] == pytest.approx(b[k] - a[k])
    # B finds every car (A half of them) and one person fewer.
    assert rows["car"]["delta"]["ar"] > 0 > rows["person"]["delta"]["ar"]
    assert rows["car"]["a"]["num_ground_truth"] == 8


def test_fixed_and_broken_items(service: Service, scene: dict[str, Any]) -> None:
    diff = service.compare_runs(scene["a"], scene["b"])
    assert diff["only_b_right"] == ["r4", "r5", "r6", "r7"]
    assert diff["only_a_right"] == ["r0", "r1", "r3"]
    assert (diff["only_a_right_count"], diff["only_b_right_count"]) == (3, 4)
    # The other way round, the lists swap.
    back = service.compare_runs(scene["b"], scene["a"])
    assert back["only_a_right"] == diff["only_b_right"]
    assert back["only_b_right"] == diff["only_a_right"]
    # On a slice (the even items), only its items.
    half = service.compare_runs(scene["a"], scene["b"], slice="half")
    assert half["only_b_right"] == ["r4", "r6"] and half["only_a_right"] == ["r0"]


def test_limit_keeps_the_counts(service: Service, scene: dict[str, Any]) -> None:
    diff = service.compare_runs(scene["a"], scene["b"], limit=2)
    assert diff["only_b_right"] == ["r4", "r5"] and diff["only_a_right"] == ["r0", "r1"]
    assert (diff["only_a_right_count"], diff["only_b_right_count"]) == (3, 4)
    none = service.compare_runs(scene["a"], scene["b"], limit=0)
    assert none["only_a_right"] == none["only_b_right"] == []
    assert none["only_b_right_count"] == 4
    with pytest.raises(ValidationError, match="limit"):
        service.compare_runs(scene["a"], scene["b"], limit=-1)


@pytest.mark.parametrize("size", [1, 2, 3, 100])
def test_pages_add_up_to_the_lists(service: Service, scene: dict[str, Any], size: int) -> None:
    diff = service.compare_runs(scene["a"], scene["b"])
    for only, expected in (("b", diff["only_b_right"]), ("a", diff["only_a_right"])):
        refs, totals = _all_pages(service, scene, only, size)
        # In the order the items were added (here also their reference order).
        assert refs == expected and set(totals) == {len(expected)}
    refs, _ = _all_pages(service, scene, "b", size, slice="half")
    assert refs == ["r4", "r6"]


def test_page_items_are_item_payloads(service: Service, scene: dict[str, Any]) -> None:
    page = service.compare_items(scene["a"], scene["b"], only="b", page_size=1)
    (item,) = page["items"]
    assert item["id"].startswith("di_") and item["reference_id"] == "r4"
    assert (item["width"], item["height"]) == (100, 80)


def test_bad_requests_are_validation_errors(service: Service, scene: dict[str, Any]) -> None:
    a, b = scene["a"], scene["b"]
    first = service.compare_items(a, b, only="b", page_size=1)["next_cursor"]
    with pytest.raises(ValidationError, match="different query"):
        service.compare_items(a, b, only="a", page_size=1, cursor=first)
    with pytest.raises(ValidationError, match="different query"):
        service.compare_items(b, a, only="b", page_size=1, cursor=first)
    with pytest.raises(ValidationError, match="malformed"):
        service.compare_items(a, b, cursor="!!not-a-cursor")
    with pytest.raises(ValidationError, match="only"):
        service.compare_items(a, b, only="c")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="page_size"):
        service.compare_items(a, b, page_size=0)
    with pytest.raises(NotFoundError):
        service.compare_items(a, b, slice="no-such-slice")
    open_run = service.create_run(scene["model"], scene["ds"], "open",
                                  [_pred("car", CAR, "r0")])["id"]
    for call in (service.compare_runs, service.compare_items):
        with pytest.raises(ValidationError, match="'open' is not committed"):
            call(a, open_run)
