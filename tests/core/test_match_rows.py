"""A re-commit rewrites only the items whose match rows change (per-item digests), and
leaves the rows exactly as a full rewrite would. On both databases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

import ocula
from ocula import BoxAnnotation, BoxPrediction, DatasetItem
from ocula.core.services import match_rows
from ocula.core.store import schema as t
from tests.conftest import make_images
from tests.core.test_commit import H, W, _random_scene

N = 40


@pytest.fixture
def scene(client: ocula.Client, tmp_path: Path) -> tuple[Any, Any]:
    paths = make_images(tmp_path / "imgs", N, size=(W, H))
    ds = client.create_dataset("scene")
    ds.append([DatasetItem(str(p), f"img{i}") for i, p in enumerate(paths)])
    gts, preds = _random_scene(11, N)
    ds.annotate(gts)
    run = client.add_model("det", "det").create_run("det-run", ds, preds)
    return ds, run


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The items each match-row write rewrote (None: all of them), spied on the real
    function."""
    calls: list[Any] = []
    real = match_rows._replace

    def spy(conn: Any, run_pk: int, gt: Any, dt: Any, match: Any, digests: Any,
            items: Any, **kw: Any) -> None:
        calls.append(None if items is None else sorted(items.tolist()))
        real(conn, run_pk, gt, dt, match, digests, items, **kw)
    monkeypatch.setattr(match_rows, "_replace", spy)
    return calls


def _rows(client: ocula.Client) -> tuple[list[Any], ...]:
    mp, ma, mi = t.match_predictions, t.match_annotations, t.match_items
    with client._backend.db.read() as conn:
        return tuple(sorted(map(tuple, conn.execute(select(*cols)).all())) for cols in (
            [mp.c.run_pk, mp.c.prediction_pk, mp.c.item_pk, mp.c.annotation_pk, mp.c.iou,
             mp.c.status, mp.c.label, mp.c.confidence],
            [ma.c.run_pk, ma.c.annotation_pk, ma.c.item_pk, ma.c.prediction_pk, ma.c.iou,
             ma.c.status, ma.c.label, ma.c.area],
            [mi.c.run_pk, mi.c.item_pk, mi.c.tp, mi.c.fp, mi.c.fn, mi.c.digest]))


def _full_rewrite(client: ocula.Client, run: Any) -> tuple[list[Any], ...]:
    """The rows a commit writes from scratch (digests dropped: nothing is trusted)."""
    with client._backend.db.write() as conn:
        conn.execute(update(t.match_items).values(digest=None))
    run.commit()
    return _rows(client)


def _item_pk(client: ocula.Client, ref: str) -> int:
    with client._backend.db.read() as conn:
        return conn.scalar(select(t.items.c.pk).where(t.items.c.reference_id == ref))


def test_an_unchanged_recommit_writes_no_row(client: ocula.Client, scene: Any,
                                             written: list[Any]) -> None:
    _, run = scene
    first = run.commit()
    rows = _rows(client)
    assert written == [None]  # the first commit writes everything
    assert run.commit() == first
    assert written == [None]  # nothing changed: no item rewritten
    assert _rows(client) == rows


def test_a_label_fix_rewrites_its_item_only_and_equals_a_full_write(
        client: ocula.Client, scene: Any, written: list[Any]) -> None:
    ds, run = scene
    before = run.commit()
    # A box added on one item (a missing label fixed): its rows change, no other's.
    ref = "img3"
    ds.annotate([BoxAnnotation("car", 10, 10, 30, 30, reference_id=ref,
                               annotation_id="added")])
    after = run.commit()
    assert written[-1] == [_item_pk(client, ref)]
    assert after["fn"] >= before["fn"]
    partial = _rows(client)
    assert partial == _full_rewrite(client, run)


def test_rows_missing_outside_a_commit_are_written_again(
        client: ocula.Client, scene: Any, written: list[Any]) -> None:
    _, run = scene
    run.commit()
    rows = _rows(client)
    with client._backend.db.write() as conn:
        victim = conn.scalar(select(t.match_predictions.c.prediction_pk).limit(1))
        conn.execute(t.match_predictions.delete().where(
            t.match_predictions.c.prediction_pk == victim))
    run.commit()
    # The digests said "unchanged"; the row count did not: everything was rewritten.
    assert written[-1] is None
    assert _rows(client) == rows


def test_new_predictions_on_a_few_items_rewrite_those_items(
        client: ocula.Client, scene: Any, written: list[Any]) -> None:
    ds, run = scene
    run.commit()
    run.predict([BoxPrediction("person", 1, 1, 20, 20, reference_id="img5",
                               confidence=0.9)])
    run.commit()
    assert written[-1] == [_item_pk(client, "img5")]
    assert _rows(client) == _full_rewrite(client, run)


def test_what_deletes_a_prediction_item_or_run_deletes_its_match_rows(
        client: ocula.Client, scene: Any) -> None:
    """The match tables hold no foreign keys (0018): the services that delete a
    replaced prediction, an item or a run delete its match rows, and the next commit
    writes what a full rewrite would."""
    ds, run = scene
    run.predict([BoxPrediction("car", 40, 40, 30, 30, reference_id="img7",
                               annotation_id="named", confidence=0.8)])
    run.commit()
    mp, ma, mi = t.match_predictions, t.match_annotations, t.match_items

    def orphans() -> int:
        p, i, r = t.predictions, t.items, t.model_runs
        with client._backend.db.read() as conn:
            return sum(conn.scalar(select(func.count()).select_from(table).where(
                ~getattr(table.c, col).in_(select(ref.c.pk)))) for table, col, ref in (
                (mp, "prediction_pk", p), (mp, "item_pk", i), (mp, "run_pk", r),
                (ma, "item_pk", i), (ma, "run_pk", r), (mi, "item_pk", i), (mi, "run_pk", r)))

    with client._backend.db.read() as conn:
        old_pk = conn.scalar(select(t.predictions.c.pk).where(
            t.predictions.c.annotation_id == "named"))
        assert conn.scalar(select(func.count()).select_from(mp).where(
            mp.c.prediction_pk == old_pk)) == 1
    run.predict([BoxPrediction("car", 42, 40, 30, 30, reference_id="img7",
                               annotation_id="named", confidence=0.7)], update=True)
    with client._backend.db.read() as conn:
        assert conn.scalar(select(func.count()).select_from(mp).where(
            mp.c.prediction_pk == old_pk)) == 0
    assert orphans() == 0
    run.commit()
    assert _rows(client) == _full_rewrite(client, run)
    ds.delete_item("img8")
    assert orphans() == 0
    client.delete_model(client.models[0].id)  # its runs with it
    assert orphans() == 0
    with client._backend.db.read() as conn:
        assert conn.scalar(select(func.count()).select_from(mp)) == 0


def test_a_key_equal_to_the_null_mark_is_refused() -> None:
    """SQLite writes NULL keys as a mark (bulk.insert_columns' null_marks); a real key
    equal to it would silently become NULL, so it is an error instead."""
    import numpy as np

    from ocula.core.store.copy_binary import Column

    keys = np.array([4, 0, 7])
    nulls = np.array([False, True, False])
    assert match_rows._for_insert(Column("int4", keys, nulls), True).tolist() == [4, -1, 7]
    assert match_rows._for_insert(Column("int4", keys, nulls), False).tolist() == [4, None, 7]
    with pytest.raises(ValueError, match="stands for NULL"):
        match_rows._for_insert(Column("int4", np.array([-1, 0]), np.array([False, True])), True)


def test_postgresql_writes_a_first_commits_predictions_in_index_order(
        client: ocula.Client, tmp_path: Path) -> None:
    """PostgreSQL: a full rewrite COPYs prediction rows in the order of the
    ``(run_pk, confidence, status)`` index built after it (its sort then finds them
    sorted), ties on confidence ordered by status as PostgreSQL orders the names; the
    rows are the same as written in any order."""
    if client._backend.db.dialect != "postgresql":
        pytest.skip("SQLite keeps a rowid table's rows in key order")
    paths = make_images(tmp_path / "imgs", 6, size=(W, H))
    ds = client.create_dataset("ties")
    ds.append([DatasetItem(str(p), f"img{i}") for i, p in enumerate(paths)])
    ds.annotate([BoxAnnotation("car", 10 + 5 * j, 10, 30, 30, reference_id=f"img{i}")
                 for i in range(6) for j in range(3)])
    # Few distinct confidences: every one is shared by true and false positives.
    preds = [BoxPrediction("car", 10 + 5 * j + (40 if j % 2 else 0), 10, 30, 30,
                           reference_id=f"img{i}", confidence=(0.3, 0.6, 0.9)[(i + j) % 3])
             for i in range(6) for j in range(4)]
    run = client.add_model("det", "det").create_run("ties", ds, preds)
    run.commit()
    with client._backend.db.read() as conn:
        physical = conn.exec_driver_sql("SELECT confidence, status FROM match_predictions "
                                        "ORDER BY ctid").all()
        wanted = conn.exec_driver_sql("SELECT confidence, status FROM match_predictions "
                                      "ORDER BY run_pk, confidence, status").all()
    assert len(physical) == len(preds)
    assert {s for _, s in physical} == {"tp", "fp"}
    assert len({c for c, _ in physical}) == 3
    assert physical == wanted
