"""Keyset pagination: pages of any size concatenate to the one-page answer (no duplicate,
no gap) under heavy ties and missing values; cursors are opaque and validated."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path

import pytest

from ocula import BoxAnnotation, BoxPrediction, DatasetItem
from ocula.core.services import Service
from ocula.errors import ValidationError
from tests.conftest import make_images

N = 57


@pytest.fixture
def crowd(service: Service, tmp_path: Path) -> Service:
    """57 items whose metadata repeats a lot (ties) and is often missing or mistyped."""
    (image,) = make_images(tmp_path / "img", 1, size=(100, 100))
    rng = random.Random(5)
    items, anns, preds = [], [], []
    for i in range(N):
        md = {}
        if rng.random() < 0.8:
            md["score"] = rng.choice([1, 2, 2.5, 3, "high", None])
        if rng.random() < 0.7:
            md["group"] = rng.choice(["a", "b", "c"])
        items.append(DatasetItem(str(image), f"r{i:03d}", md))
        for j in range(rng.randint(0, 3)):
            size = rng.choice([5, 10, 10, 20])
            anns.append(BoxAnnotation(rng.choice(["x", "y"]), j * 25, 0, size, size,
                                      reference_id=f"r{i:03d}", annotation_id=f"a{i}-{j}"))
            preds.append(BoxPrediction("x", j * 25, 0, size, size, reference_id=f"r{i:03d}",
                                       confidence=rng.choice([0.5, 0.7, 0.9, None]),
                                       annotation_id=f"p{i}-{j}"))
    service.create_dataset("crowd")
    service.append("crowd", items)
    service.annotate("crowd", anns)
    model = service.add_model("m", "m")
    run = service.create_run(model["id"], "crowd", "run", preds)
    service.commit_run(run["model_run_id"])
    return service


def _pages(fetch, page_size: int) -> list[str]:
    out, cursor, pages = [], None, 0
    while True:
        page = fetch(page_size=page_size, cursor=cursor)
        rows = page.get("items", page.get("objects"))
        assert len(rows) <= page_size
        out += [r["id"] for r in rows]
        cursor = page["next_cursor"]
        pages += 1
        assert pages < 1000
        if cursor is None:
            return out


ITEM_QUERIES = ["", "order by metadata.score", "order by metadata.score desc",
                "order by metadata.group desc", "metadata.score >= 2 order by metadata.score",
                "order by count() desc", 'order by count(label = "x")',
                'order by run("run").tp desc', "order by reference_id desc",
                'metadata.group != "a" order by metadata.group limit 20']
OBJECT_QUERIES = ["", "order by area", "order by area desc", "order by label desc",
                  "type = prediction order by confidence desc",
                  "type in [annotation, prediction] order by area",
                  "type in [annotation, prediction] order by confidence desc limit 31",
                  "type in [annotation, prediction] order by iou",
                  "status = tp order by iou desc", "type = prediction order by confidence",
                  "type = prediction and status = fp order by confidence desc",
                  "type = annotation order by iou",
                  "type = annotation order by iou desc"]


@pytest.mark.parametrize("query", ITEM_QUERIES)
def test_item_pages_have_no_duplicates_or_gaps(crowd: Service, query: str) -> None:
    def fetch(**kw):
        return crowd.query_items("crowd", query, **kw)

    whole = _pages(fetch, 1000)
    assert len(whole) == len(set(whole))
    for size in (1, 4, 13):
        assert _pages(fetch, size) == whole
    total = crowd.query_items("crowd", query, with_total=True)["total"]
    assert total == len(whole)


@pytest.mark.parametrize("query", OBJECT_QUERIES)
def test_object_pages_have_no_duplicates_or_gaps(crowd: Service, query: str) -> None:
    def fetch(**kw):
        return crowd.query_objects("crowd", query, **kw)

    whole = _pages(fetch, 1000)
    assert len(whole) == len(set(whole)) > 0
    for size in (1, 6, 17):
        assert _pages(fetch, size) == whole
    assert crowd.query_objects("crowd", query, with_total=True)["total"] == len(whole)


def test_order_is_the_documented_one(crowd: Service) -> None:
    rows = []
    cursor = None
    while True:
        page = crowd.query_items("crowd", "order by metadata.score desc", page_size=5,
                                 cursor=cursor)
        rows += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    scores = [r["metadata"].get("score") for r in rows]
    numbers = [s for s in scores if isinstance(s, int | float)]
    strings = [s for s in scores if isinstance(s, str)]
    assert scores[:len(numbers)] == sorted(numbers, reverse=True)
    assert scores[len(numbers):len(numbers) + len(strings)] == strings
    assert all(s is None for s in scores[len(numbers) + len(strings):])


@pytest.mark.parametrize("desc", [False, True])
def test_objects_missing_a_value_come_last_after_the_sorted_rest(crowd: Service,
                                                                 desc: bool) -> None:
    """A page reads the rows with a value and those without as two parts (each an
    index walk): across page boundaries, the values sorted, ties by pk, then every
    prediction without a confidence."""
    query = f"type = prediction order by confidence{' desc' if desc else ''}"
    rows, cursor = [], None
    while True:
        page = crowd.query_objects("crowd", query, page_size=4, cursor=cursor)
        rows += page["objects"]
        if (cursor := page["next_cursor"]) is None:
            break
    values = [r.get("confidence") for r in rows]
    present = [v for v in values if v is not None]
    assert 0 < len(present) < len(values)
    assert values[:len(present)] == sorted(present, reverse=desc)
    assert all(v is None for v in values[len(present):])


def test_limit_spans_pages(crowd: Service) -> None:
    got = _pages(lambda **kw: crowd.query_items("crowd", "limit 10", **kw), 3)
    assert len(got) == 10


def _tamper(cursor: str, **change) -> str:
    body = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    body.update(change)
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode()


def test_cursors_are_validated(crowd: Service) -> None:
    first = crowd.query_items("crowd", "order by metadata.score", page_size=5)
    cursor = first["next_cursor"]
    for bad in ("not-a-cursor!", "e30", base64.urlsafe_b64encode(b"[1,2]").decode(),
                _tamper(cursor, v=["x"]), _tamper(cursor, v=[0, "a", 1, 2]),
                _tamper(cursor, n=-1), "A" * 9000):
        with pytest.raises(ValidationError, match="cursor"):
            crowd.query_items("crowd", "order by metadata.score", page_size=5, cursor=bad)
    with pytest.raises(ValidationError, match="different query"):
        crowd.query_items("crowd", "order by metadata.group", page_size=5, cursor=cursor)
    with pytest.raises(ValidationError, match="different query"):
        crowd.query_objects("crowd", "order by metadata.score", cursor=cursor)
    # the same cursor again gives the same page (cursors are stateless)
    again = crowd.query_items("crowd", "order by metadata.score", page_size=5, cursor=cursor)
    assert again == crowd.query_items("crowd", "order by metadata.score", page_size=5,
                                      cursor=cursor)


@pytest.mark.parametrize(("query", "match_only"), [
    ('type = prediction and run = "run" and status = tp', True),
    ('type = prediction and run = "run" and status = fp and confidence >= 0.7', True),
    ('type = prediction and run = "run" and status = tp and area > 50', False),
])
def test_a_count_on_match_rows_alone_equals_the_pages(crowd: Service, query: str,
                                                     match_only: bool) -> None:
    """Predictions whose conditions are all on their match rows are counted from the
    match table alone (no look-up of each prediction); the count is the pages' length
    either way."""
    from ocula.core.query.plan import _counted_from

    with crowd.db.read() as conn:
        _, plan = crowd._objects_plan(conn, "crowd", query, None)
        (branch,) = plan.branches
        assert (_counted_from(branch) is branch.scope.match) == match_only
    whole = _pages(lambda **kw: crowd.query_objects("crowd", query, **kw), 7)
    assert len(whole) > 0
    assert crowd.query_objects("crowd", query, with_total=True)["total"] == len(whole)


def test_a_run_status_total_is_read_from_the_commit_totals_and_equals_the_rows(
        crowd: Service) -> None:
    """``type = prediction and run = "x" and status = s`` (the patches page's first
    question) is counted from the totals the commit keeps, which equal the rows — also
    after some committed predictions are replaced (their match rows dropped with them);
    ``type = prediction and run = "x"`` from the run's prediction totals; any other
    query counts rows."""
    from ocula.core.query.plan import plan_objects
    from ocula.core.services.query import _kept_total

    run = crowd.list_runs("crowd")[0]
    preds = crowd.list_predictions(run["model_run_id"])[:5]
    crowd.predict(run["model_run_id"], [
        BoxPrediction(p["label"], 1, 1, 3, 3, reference_id=p["reference_id"],
                      annotation_id=p["annotation_id"], confidence=0.6) for p in preds],
        update=True)
    # Status words in any case (the language's); no status: the run's predictions; one
    # label (as written: "Car" is not "car") or all.
    labels = sorted({p["label"] for p in crowd.list_predictions(run["model_run_id"])})
    assert labels
    asked = [(s, None) for s in ("tp", "FP", None)] + [
        (s, label) for s in ("fp", None) for label in (*labels, labels[0].upper(), "nobody")]
    for status, label in asked:
        query = 'type = prediction and run = "run"' + (f" and status = {status}"
                                                         if status else "")
        query += f' and label = "{label}"' if label else ""
        with crowd.db.read() as conn:
            ds = crowd._dataset_row(conn, "crowd")
            plan = plan_objects(conn, ds.pk, conn.dialect.name, query)
            kept, counted = _kept_total(conn, plan), plan.count(conn)
            other = plan_objects(conn, ds.pk, conn.dialect.name, query + " and area > 50")
            assert kept is not None and _kept_total(conn, other) is None
        whole = _pages(lambda q=query, **kw: crowd.query_objects("crowd", q, **kw), 9)
        assert kept == counted == len(whole)
        assert len(whole) > 0 or label in ("nobody", labels[0].upper())
    # The replaced predictions have no match row (status null): counted, none kept.
    query = 'type = prediction and run = "run" and status = null'
    whole = _pages(lambda **kw: crowd.query_objects("crowd", query, **kw), 9)
    assert crowd.query_objects("crowd", query, with_total=True)["total"] == len(whole) == 5


# A status condition and which statuses pass it (None: no match row, which only "not"
# lets through: two-valued logic).
IOU_STATUSES = {
    "": lambda v: True,
    " and status = tp": lambda v: v == "tp",
    " and status = FP": lambda v: v == "fp",
    " and status != tp": lambda v: v is not None and v != "tp",
    " and status in [fp, ignored]": lambda v: v in ("fp", "ignored"),
    " and status in [tp, fp]": lambda v: v in ("tp", "fp"),
    " and not status = fp": lambda v: v != "fp",
}


@pytest.mark.parametrize("desc", [False, True])
@pytest.mark.parametrize("status", IOU_STATUSES)
def test_predictions_by_iou_come_in_order_whatever_their_status(crowd: Service, status: str,
                                                                desc: bool) -> None:
    """A page of predictions ordered by IoU reads the true positives and the rest from
    separate index parts (and the predictions without a match, which the commit has not
    seen, only once those run out): merged, across pages of any size, the IoUs sorted,
    then every prediction without one, exactly the run's predictions the status
    condition selects."""
    run = crowd.list_runs("crowd")[0]
    crowd.predict(run["model_run_id"], [
        BoxPrediction("x", 5, 5, 10, 10, reference_id=f"r{i:03d}", confidence=0.8,
                      annotation_id=f"late{i}") for i in range(0, N, 9)])
    base = 'type = prediction and run = "run"'
    everything = crowd.query_objects("crowd", base, page_size=1000)["objects"]
    assert {o["iou"] is None for o in everything} == {True, False}
    assert {o["status"] for o in everything} >= {"tp", "fp", None}
    kept = [o for o in everything if IOU_STATUSES[status](o["status"])]
    query = f"{base}{status} order by iou{' desc' if desc else ''}"

    def fetch(**kw):
        return crowd.query_objects("crowd", query, **kw)

    rows = []
    cursor = None
    while True:
        page = fetch(page_size=1000, cursor=cursor)
        rows += page["objects"]
        if (cursor := page["next_cursor"]) is None:
            break
    assert sorted(o["id"] for o in rows) == sorted(o["id"] for o in kept)
    ious = [o["iou"] for o in rows]
    present = [v for v in ious if v is not None]
    assert ious == sorted(present, reverse=desc) + [None] * (len(ious) - len(present))
    whole = [o["id"] for o in rows]
    for size in (1, 6, 17):
        assert _pages(fetch, size) == whole


@pytest.mark.parametrize(("status", "indexes"), [
    ("status = tp", {"ix_match_predictions_run_iou_tp"}),
    ("status = fp", {"ix_match_predictions_run_iou_other"}),
    ("status in [fp, ignored]", {"ix_match_predictions_run_iou_other"}),
    ("type = prediction", {"ix_match_predictions_run_iou_tp",
                           "ix_match_predictions_run_iou_other"}),
])
def test_predictions_by_iou_walk_the_partial_index_of_their_status(
        crowd: Service, status: str, indexes: set[str]) -> None:
    """The page's selects name each partial IoU index's condition, so SQLite walks it
    (no sort of the run's matches): the true positives' for ``status = tp``, the rest's
    for the other statuses, both for predictions of any status."""
    from ocula.core.query.plan import plan_objects

    if crowd.db.dialect != "sqlite":
        pytest.skip("SQLite's plan is read; PostgreSQL chooses by its statistics")
    with crowd.db.read() as conn:
        ds = crowd._dataset_row(conn, "crowd")
        plan = plan_objects(conn, ds.pk, "sqlite",
                            f'type = prediction and run = "run" and {status} order by iou')
        used = set()
        for first, sel in plan._branch_selects(0, None, 100):
            if first == 1:
                continue  # the predictions without a match
            sql = str(sel.compile(conn, compile_kwargs={"literal_binds": True}))
            steps = [r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
            assert not any("TEMP B-TREE" in s for s in steps), steps
            used |= {i for i in indexes if any(i + " " in s + " " for s in steps)}
    assert used == indexes


def test_a_run_ground_truth_status_total_is_read_from_the_commit_totals_while_they_hold(
        crowd: Service) -> None:
    """``type = annotation and run = "x" and status = fn`` is read from the commit's
    totals while its kept numbers hold (labels and items as it saw them), and equals the
    rows; after a label edit the rows are counted (a closed annotation's match row no
    longer counts), with or without further conditions."""
    from ocula.core.query.plan import plan_objects
    from ocula.core.services.query import _kept_total

    def totals(query: str) -> tuple[int | None, int, int]:
        with crowd.db.read() as conn:
            ds = crowd._dataset_row(conn, "crowd")
            plan = plan_objects(conn, ds.pk, conn.dialect.name, query)
            kept, counted = _kept_total(conn, plan), plan.count(conn)
        whole = _pages(lambda **kw: crowd.query_objects("crowd", query, **kw), 11)
        assert crowd.query_objects("crowd", query, with_total=True)["total"] == len(whole)
        return kept, counted, len(whole)

    for status in ("fn", "TP"):
        kept, counted, paged = totals(f'type = annotation and run = "run" and status = {status}')
        assert kept == counted == paged > 0
    # Of one label (as written), from the same totals.
    labels = {o["label"] for o in crowd.query_objects("crowd", "type = annotation",
                                                      page_size=1000)["objects"]}
    found = {}
    for label in (*sorted(labels), "nobody"):
        kept, counted, found[label] = totals(
            f'type = annotation and run = "run" and status = tp and label = "{label}"')
        assert kept == counted == found[label]
    assert found.pop("nobody") == 0 and sum(found.values()) > 0
    query = 'type = annotation and run = "run" and status = fn'
    missed = crowd.query_objects("crowd", query, page_size=1)["objects"][0]
    # The missed box redrawn: its match row now refers to a closed annotation.
    crowd.annotate("crowd", [BoxAnnotation(missed["label"], 1, 1, 2, 2,
                                           reference_id=missed["reference_id"],
                                           annotation_id=missed["annotation_id"])],
                   update=True)
    kept, counted, missed_now = totals(query)
    assert kept is None and counted == missed_now
    # Counted as the match rows less those of closed annotations where every condition
    # is on the match rows (area is copied there); else joined row by row.
    found = []
    for more in (" and area < 150", " and area >= 150", ' and label = "y"'):
        kept, counted, paged = totals(query + more)
        assert kept is None and counted == paged
        found.append(paged)
    assert found[0] > 0 and found[1] > 0 and found[0] + found[1] == missed_now
    assert found[2] > 0
