"""Bad queries: syntax errors with positions, unknown names, type mismatches, and
injection attempts, which must be plain errors or plain (empty) results."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from ocula.core.query.parser import condition_text, parse
from ocula.core.store import schema as t
from ocula.errors import QueryError
from tests.query.conftest import Scene


@pytest.mark.parametrize(("query", "message"), [
    ("area >", "line 1, col 7: expected a value after '>'"),
    ('metadata.weather in ["rain", "snow"] and count(label = "pedestrian") >',
     "line 1, col 71: expected a value after '>'"),
    ("area > and", "line 1, col 8: expected a value after '>', found 'and'"),
    ("metadata.x", "line 1, col 11: expected a comparison (=, !=, <, <=, >, >=), 'in' or "
     "'not' after 'x'"),
    ('label = "x" and', "line 1, col 16: expected a field name, 'not' or '(' after 'and'"),
    ("(area > 3", "line 1, col 10: expected ')' after '3'"),
    ("area = = 2", "line 1, col 8: expected a value after '=', found '='"),
    ("area in [1,", "line 1, col 12: expected a value after ','"),
    ('label = "pedestrian', 'line 1, col 9: unterminated string'),
    ("area > 3 limit -1", "line 1, col 16: limit must be a whole number >= 0"),
    ("area > 3 limit 2.5", "line 1, col 16: limit must be a whole number >= 0"),
    ("area > 3\n  and label = ", "line 2, col 14: expected a value after '='"),
    ("area > 3 label = 2", "line 1, col 10: expected"),
    ("order area", "line 1, col 7: expected 'by' after 'order'"),
    ("area ~ 3", "line 1, col 6: unexpected character '~' after 'area'"),
])
def test_syntax_errors_name_the_position(query: str, message: str) -> None:
    with pytest.raises(QueryError) as exc:
        parse(query)
    assert str(exc.value).startswith(message)
    assert exc.value.line is not None and exc.value.column is not None


@pytest.mark.parametrize(("query", "condition"), [
    ('label = "order by"', 'label = "order by"'),
    ('a = 1 order by b desc', "a = 1"),
    ('a = 1\n  ORDER  by iou', "a = 1"),
    ("order by iou", ""),
    ("a = 1 limit 5", "a = 1"),
    ("a = 1 order by b limit 5", "a = 1"),
])
def test_condition_text_drops_the_sort(query: str, condition: str) -> None:
    assert condition_text(parse(query)) == condition


def test_overlong_query_is_refused() -> None:
    with pytest.raises(QueryError, match="limit is 10,000"):
        parse("area > 1 and " * 1000 + "area > 1")


@pytest.mark.parametrize(("query", "message"), [
    ("lable = \"car\"", "line 1, col 1: unknown field 'lable' in an item query"),
    ("label = \"car\"", "label is a field of objects; in an item query use count(label"),
    ("metadata = 3", "metadata needs a key"),
    ("width.x = 3", "width has no sub-fields"),
    ('width > "big"', 'line 1, col 9: width is a number; "big" is a quoted string'),
    ("reference_id = img0", 'reference_id is text: put the value in quotes'),
    ("reference_id > 3", "reference_id is text; 3 is a number"),
    ("metadata.weather = rain", 'metadata values are compared with quoted text or numbers'),
    ("metadata.night > true", "true/false can only be compared with = or !="),
    ("width < null", "null can only be compared with = or !="),
    ('run("nope").fn > 0', 'line 1, col 5: unknown run "nope" (runs of this dataset: '
     '"frcnn", "yolo")'),
    ('run("yolo").fn > 0', 'run "yolo" is not committed yet'),
    ('run("frcnn").recall > 0', 'run("name") is followed by .tp, .fp or .fn'),
    ('run("frcnn") > 0', 'run("name") is followed by .tp, .fp or .fn'),
    ('in_slice("tran")', "line 1, col 10: unknown slice \"tran\"; did you mean 'train'?"),
    ("in_slice(train)", "expected"),
    ('in_slice("train") = 1', "in_slice(...) is a condition on its own"),
    ("count(label = \"car\")", "count(...) is a number: compare it"),
    ("count(lable = \"car\") > 1", "line 1, col 7: unknown field 'lable' in an object query"),
    ("count(confidence > 0.5) > 1", "confidence applies only to predictions"),
    ("has(area > \"big\")", "area is a number"),
    ("item(width > 2)", "item() is not available in an item query"),
    ("frobnicate(3)", "unknown function frobnicate()"),
    ("count(1) > 2", "count() takes an object condition"),
])
def test_item_query_errors(scene: Scene, query: str, message: str) -> None:
    with pytest.raises(QueryError) as exc:
        scene.service.query_items("scene", query)
    assert message in str(exc.value)


@pytest.mark.parametrize(("query", "message"), [
    ("area > \"big\"", 'line 1, col 8: area is a number; "big" is a quoted string'),
    ("confidence > 0.5", "confidence applies only to predictions; this query selects "
     "annotations (add type = prediction)"),
    ("type = box", "type is annotation or prediction, not box"),
    ("type > annotation", "type can only be compared with = or !="),
    ("shape = circle",
     "shape is one of box, polygon, line, keypoints, category, multicategory, mask; not circle"),
    ("status = fp", "status fp does not occur for annotations"),
    ("type = prediction and status = fn", "status fn does not occur for predictions"),
    ("status > tp", "status can only be compared with = or !="),
    ('run = "nope" and status = fn', 'unknown run "nope"'),
    ('run = "yolo" and status = fn', 'run "yolo" is not committed yet'),
    ('(run = "frcnn" or area > 3) and status = fn', "for annotations, run only names the run"),
    ('type = prediction and run > "a"', "run can only be compared with = or !="),
    ('in_slice("nope")', 'unknown slice "nope"'),
    ("label = pedestrian", 'label is text: put the value in quotes, e.g. label = "pedestrian"'),
    ("iscrowd = 1", "iscrowd is true or false, not 1"),
    ("count() > 1", "count() is not available in an object query"),
    ('run("frcnn").fn > 0', "run() is not available in an object query"),
    ("order by count()", "objects can be ordered by a field only"),
    ("order by type", "type can only be tested"),
    ("metadata.x > 1 and item(label = \"car\")", "label is a field of objects"),
    ("unknown_field = 1", "unknown field 'unknown_field' in an object query"),
])
def test_object_query_errors(scene: Scene, query: str, message: str) -> None:
    with pytest.raises(QueryError) as exc:
        scene.service.query_objects("scene", query)
    assert message in str(exc.value)


def test_status_needs_a_run_when_several_are_committed(service, tmp_path) -> None:
    from ocula import BoxPrediction
    from tests.query.conftest import build_scene

    scene = build_scene(service, tmp_path)
    yolo = service.find_run("scene", "yolo")["model_run_id"]
    service.predict(yolo, [BoxPrediction("car", 10, 10, 60, 20, reference_id="img1",
                                         confidence=0.4)])
    service.commit_run(yolo)
    with pytest.raises(QueryError) as exc:
        scene.service.query_objects("scene", "label = \"car\" and status = fn")
    assert str(exc.value) == ('line 1, col 19: status and iou of annotations depend on the run:'
                              ' add run = "<name>" (committed runs: "frcnn", "yolo")')
    with pytest.raises(QueryError, match="depend on the run"):
        scene.service.query_items("scene", "count(status = fn) > 0")
    assert scene.ids('run = "yolo" and label = "car" and status = tp') == ["c3"]
    assert scene.ids('run = "frcnn" and label = "car" and status = tp') == ["c0", "c1"]
    assert scene.items('count(run = "yolo" and status = fn) = 0') == ["img2", "img4"]
    # predictions carry their own run: no run needed
    assert len(scene.ids("type = prediction and status = tp")) == 7


@pytest.mark.parametrize("payload", [
    '"; drop table items; --',
    "' or 1=1 --",
    '" or ""="',
    "x') or ('1'='1",
    "rain\"; DELETE FROM items; --",
    "\\\"; drop table annotations",
    "$.weather') = 'rain' or json_extract(metadata, '$",
])
def test_injection_attempts_are_values(scene: Scene, payload: str) -> None:
    """A hostile string inside quotes is only ever a bound value: no match, no damage."""
    quoted = '"' + payload.replace("\\", "\\\\").replace('"', '\\"') + '"'
    for query in (f"metadata.weather = {quoted}", f"reference_id in [{quoted}]",
                  f"metadata.{quoted} = 1", f'count(label = {quoted}) > 0'):
        assert scene.items(query) == []
    assert scene.ids(f"label = {quoted}") == []
    assert scene.ids(f"label > {quoted} and label = \"truck\"") in ([], ["t0"])
    with scene.service.db.read() as conn:
        assert conn.scalar(select(func.count()).select_from(t.items)) == 6
        assert conn.scalar(select(func.count()).select_from(t.annotations)) == 13


@pytest.mark.parametrize("query", [
    'label = "car"; drop table items',
    '"; drop table items',
    "label = 'x' or 1=1; --",
    "1=1",
    "label = \"x\" union select * from items",
    "area > 3) or (1 = 1",
    "/* comment */ area > 3",
])
def test_injection_attempts_are_syntax_errors(scene: Scene, query: str) -> None:
    with pytest.raises(QueryError) as exc:
        scene.service.query_objects("scene", query)
    assert exc.value.line == 1 and exc.value.column is not None
    with scene.service.db.read() as conn:
        assert conn.scalar(select(func.count()).select_from(t.items)) == 6


def test_unknown_dataset_and_slice(scene: Scene) -> None:
    from ocula.errors import NotFoundError, ValidationError

    with pytest.raises(NotFoundError):
        scene.service.query_items("nope", "")
    with pytest.raises(NotFoundError):
        scene.service.query_items("scene", "", slice="nope")
    with pytest.raises(ValidationError, match="page_size"):
        scene.service.query_items("scene", "", page_size=0)
    with pytest.raises(ValidationError, match="page_size"):
        scene.service.query_objects("scene", "", page_size=100_000)
