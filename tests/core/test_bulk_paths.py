"""The column-wise fast paths of bulk writes give what the one-at-a-time paths give."""

from __future__ import annotations

import gc
import math
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    select,
)
from sqlalchemy.exc import DataError, IntegrityError

import ocula
from ocula import (
    BoxAnnotation,
    BoxPrediction,
    CategoryAnnotation,
    CategoryPrediction,
    DatasetItem,
)
from ocula.core.services.base import _ItemKey, count_where_in, tuned_for_bulk
from ocula.core.services.checks import box_columns, check_object, check_objects
from ocula.core.services.payloads import OBJECT_COLUMNS, box_values, object_rows, object_values
from ocula.core.services.service import Service
from ocula.core.store import bulk
from ocula.core.store import schema as t
from ocula.core.store.engine import Database, sqlite_url
from ocula.errors import BatchError, NotFoundError
from tests.conftest import make_images

ITEMS = {"a": _ItemKey("a", 1, "di_a", 100, 50), "b": _ItemKey("b", 2, "di_b", 40, 30)}


def _box(*args, cls=BoxAnnotation, **kw):  # type: ignore[no-untyped-def]
    kw.setdefault("reference_id", "a")
    return cls("car", *args, **kw)


GOOD = [_box(1, 2, 3, 4), _box(0.5, 0, 99.5, 50.5, metadata={"k": [1, "é", None]}),
        _box(-1, -1, 1, 1, reference_id="b", metadata={}), _box(3, 4, 0, 0, area=7.5),
        _box(10**3 // 100, 1, 5, 5, iscrowd=True)]
BAD = [_box(1, 2, 3, 4, reference_id="zzz"), _box(1, 2, 3, 4, reference_id=None),
       _box(math.nan, 2, 3, 4), _box(1, 2, math.inf, 4), _box(1, 2, -3, 4),
       _box(90, 2, 20, 4), _box(1, 40, 3, 20, reference_id="b"), _box(True, 2, 3, 4),
       _box("1", 2, 3, 4), _box(2**63, 2, 3, 4), BoxAnnotation("  ", 1, 1, 2, 2, "a"),
       BoxAnnotation(["x"], 1, 1, 2, 2, "a"),  # type: ignore[arg-type]
       _box(1, 2, 3, 4, metadata={"n": math.nan}), _box(1, 2, 3, 4, metadata=[1]),
       _box(1, 2, 3, 4, metadata={(1, 2): 3}), _box(1, 2, 3, 4, metadata={"s": {1}})]


def _one_by_one(objs, allowed=None, prediction=False):  # type: ignore[no-untyped-def]
    checked = [check_object(o, ITEMS, allowed, prediction=prediction) for o in objs]
    return ([str(e) for e, _ in checked if e is not None], [m for _, m in checked])


@pytest.mark.parametrize("bad", [None, *range(len(BAD))])
def test_check_objects_equals_check_object(bad: int | None) -> None:
    objs = GOOD + ([BAD[bad]] if bad is not None else []) + GOOD
    errors, metadata = check_objects(objs, ITEMS, None)
    expected_errors, expected_metadata = _one_by_one(objs)
    assert [str(e) for e in errors] == expected_errors
    assert len(expected_errors) == (bad is not None)
    if bad is None:
        assert metadata == expected_metadata


def test_check_objects_types_and_predictions() -> None:
    for allowed in (["box"], ["category"], None):
        errors, _ = check_objects(GOOD, ITEMS, allowed)
        assert [str(e) for e in errors] == _one_by_one(GOOD, allowed)[0]
    preds = [_box(1, 2, 3, 4, cls=BoxPrediction, confidence=c)
             for c in (None, 0, 1, 0.5, 1.5, -0.1, math.nan, True)]
    errors, metadata = check_objects(preds, ITEMS, None, prediction=True)
    assert [str(e) for e in errors] == _one_by_one(preds, prediction=True)[0]
    assert len(errors) == 4
    for bad in (math.nan, math.inf, -1, 1.01):  # in a batch of plain numbers only
        preds = [_box(1, 2, 3, 4, cls=BoxPrediction, confidence=c) for c in (None, 0.5, bad)]
        errors, _ = check_objects(preds, ITEMS, None, prediction=True)
        assert [str(e) for e in errors] == _one_by_one(preds, prediction=True)[0]
        assert len(errors) == 1, bad
    mixed = [*GOOD, CategoryAnnotation("x", reference_id="a", metadata={"m": 1})]
    assert check_objects(mixed, ITEMS, None)[1] == _one_by_one(mixed)[1]


def test_box_values_and_object_rows_equal_object_values() -> None:
    metadata = [check_object(o, ITEMS, None)[1] for o in GOOD]
    head = [[f"id{i}" for i in range(len(GOOD))], [7] * len(GOOD)]
    fields = box_columns(GOOD)
    assert fields is not None
    columns, constants, values = box_values(("id", "n"), head, fields, metadata)
    expected = ("id", "n", *OBJECT_COLUMNS)
    assert [dict(zip(columns, r, strict=True)) | constants
            for r in zip(*values, strict=True)] == [
        dict(zip(expected, (f"id{i}", 7, *object_values(o, m)), strict=True))
        for i, (o, m) in enumerate(zip(GOOD, metadata, strict=True))]
    mixed = [*GOOD, CategoryAnnotation("x", reference_id="a")]
    assert box_columns(mixed) is None
    columns, rows = object_rows(("n",), ([0] * len(mixed),), mixed, [*metadata, None])
    assert columns == ("n", *OBJECT_COLUMNS)
    assert list(rows) == [(0, *object_values(o, m))
                          for o, m in zip(mixed, [*metadata, None], strict=True)]


@pytest.mark.parametrize("n", [0, 1, 2978, 2 * bulk.MULTIROW + 3])
def test_insert_columns_equals_insert_rows(database_url: str, n: int) -> None:
    engine = create_engine(database_url)
    tables = [Table(f"t{k}", MetaData(), Column("pk", Integer, primary_key=True),
                    Column("a", String), Column("b", Float), Column("c", Boolean),
                    Column("d", Integer), Column("e", String)) for k in range(2)]
    for table in tables:
        table.metadata.drop_all(engine)
        table.metadata.create_all(engine)
    rows = [(f"r{i}", i / 7 if i % 3 else None, i % 2 == 0, i, None) for i in range(n)]
    constants = {"d": 5, "e": "it's"}
    with engine.begin() as conn:
        bulk.insert_rows(conn, tables[0], ("a", "b", "c"), [r[:3] for r in rows], constants)
        written = bulk.insert_columns(conn, tables[1], ("a", "b", "c"),
                                      [list(c) for c in zip(*[r[:3] for r in rows], strict=True)]
                                      if rows else [], constants)
    assert written == n
    with engine.connect() as conn:
        got = [conn.execute(select(*list(tb.c)[1:]).order_by(tb.c.pk)).all() for tb in tables]
    assert got[0] == got[1]
    assert got[1] == [(*r[:3], 5, "it's") for r in rows]
    for table in tables:
        table.metadata.drop_all(engine)
    engine.dispose()


def test_null_marks_and_numpy_columns(database_url: str) -> None:
    """A marked integer column stores NULL where it holds the mark, and numpy columns
    (ints, floats, booleans, object arrays with None) store what lists store, on both
    backends, in full statements and the short last one."""
    import numpy as np

    engine = create_engine(database_url)
    table = Table("t", MetaData(), Column("pk", Integer, primary_key=True),
                  Column("a", Integer), Column("b", Integer), Column("c", Float),
                  Column("d", Boolean), Column("e", String))
    table.metadata.create_all(engine)
    n = bulk.MULTIROW + 5
    a = [-1 if i % 3 == 0 else i for i in range(n)]
    c = [i / 7 for i in range(n)]
    d = [i % 2 == 0 for i in range(n)]
    e = [None if i % 5 == 0 else f"x{i % 4}" for i in range(n)]
    with engine.begin() as conn:
        written = bulk.insert_columns(
            conn, table, ("pk", "a", "b", "c", "d", "e"),
            [list(range(n)), np.array(a), [-1] * n, np.array(c), np.array(d),
             np.array(e, dtype=object)], null_marks={"a": -1})
    assert written == n
    with engine.connect() as conn:
        got = conn.execute(select(*list(table.c)[1:]).order_by(table.c.pk)).all()
    # Only the marked column turns its mark into NULL; another keeps -1 as a value.
    assert got == [(None if v == -1 else v, -1, f, b, s)
                   for v, f, b, s in zip(a, c, d, e, strict=True)]
    assert all(type(row[0]) is int or row[0] is None for row in got)
    engine.dispose()


def test_indexes_rebuilt_checks_keys_and_keeps_every_index(database_url: str) -> None:
    """Rows written inside ``indexes_rebuilt`` end with every index and constraint as
    before (PostgreSQL drops its primary key and UNIQUE constraints for the block too),
    and a duplicate key written there still fails the transaction, leaving nothing."""
    from sqlalchemy import Index, UniqueConstraint, func, inspect

    from ocula.core.store.engine import make_engine

    engine = make_engine(database_url)  # SQLite: begun as the catalog begins
    table = Table("t", MetaData(), Column("pk", Integer, primary_key=True),
                  Column("a", Integer), Column("b", Integer),
                  UniqueConstraint("a", "b", name="uq_t_a_b"), Index("ix_t_b", "b"))
    table.metadata.create_all(engine)

    def shape() -> tuple[Any, ...]:
        with engine.connect() as conn:
            seen = inspect(conn)
            return (seen.get_pk_constraint("t")["constrained_columns"],
                    sorted((u["name"], tuple(u["column_names"]))
                           for u in seen.get_unique_constraints("t")),
                    sorted((i["name"], tuple(i["column_names"]))
                           for i in seen.get_indexes("t") if i["name"] == "ix_t_b"))

    before = shape()
    assert before == (["pk"], [("uq_t_a_b", ("a", "b"))], [("ix_t_b", ("b",))])
    with engine.begin() as conn, bulk.indexes_rebuilt(conn, [table]):
        bulk.insert_rows(conn, table, ("pk", "a", "b"), [(i, i, i % 7) for i in range(50)])
    assert shape() == before
    for dupe in [(3, 100, 100), (100, 4, 4)]:  # the primary key's, then the UNIQUE one's
        with pytest.raises(IntegrityError), engine.begin() as conn, \
                bulk.indexes_rebuilt(conn, [table]):
            conn.execute(table.delete())
            bulk.insert_rows(conn, table, ("pk", "a", "b"),
                             [(i, i, i % 7) for i in range(10)] + [dupe])
        assert shape() == before
        with engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(table)) == 50
    engine.dispose()


def test_constant_columns(database_url: str) -> None:
    engine = create_engine(database_url)
    table = Table("t", MetaData(), Column("pk", Integer, primary_key=True),
                  Column("a", String), Column("b", Integer), Column("c", String),
                  Column("d", String))
    table.metadata.create_all(engine)
    with engine.begin() as conn:
        bulk.insert_stream(conn, table, ("a",), iter([("x",), ("y",)]),
                           {"b": 3, "c": "it's 100% ?", "d": None})
    with engine.connect() as conn:
        assert conn.execute(select(table.c.a, table.c.b, table.c.c, table.c.d)).all() == [
            ("x", 3, "it's 100% ?", None), ("y", 3, "it's 100% ?", None)]
    with pytest.raises(TypeError), engine.begin() as conn:
        bulk.insert_rows(conn, table, ("a",), [("x",)], {"b": 1.5})
    # The driver's own errors come out as SQLAlchemy's, as from any other statement.
    postgres = engine.dialect.name == "postgresql"
    with pytest.raises(DataError if postgres else IntegrityError), engine.begin() as conn:
        bulk.insert_rows(conn, table, ("pk", "a"), [(1, "x"), (1, "nul \x00" if postgres else 1)])
    engine.dispose()


@pytest.mark.parametrize("n", [0, 1, 5, 2 * bulk.MULTIROW + 3])
def test_multirow_insert(tmp_path: Path, n: int) -> None:
    engine = create_engine(sqlite_url(tmp_path / "t.db"))
    table = Table("t", MetaData(), Column("pk", Integer, primary_key=True),
                  Column("a", String), Column("b", Integer))
    table.metadata.create_all(engine)
    rows = [(f"r{i}", i if i % 3 else None) for i in range(n)]
    with engine.begin() as conn:
        written = bulk.insert_stream(conn, table, ("a", "b"), iter(rows))
    with engine.connect() as conn:
        assert conn.execute(select(table.c.a, table.c.b).order_by(table.c.pk)).all() == rows
    assert written == n
    engine.dispose()


def test_failed_bulk_insert_writes_nothing(tmp_path: Path) -> None:
    engine = create_engine(sqlite_url(tmp_path / "t.db"))
    table = Table("t", MetaData(), Column("pk", Integer, primary_key=True),
                  Column("a", String, nullable=False))
    table.metadata.create_all(engine)
    rows = [("x",)] * (bulk.MULTIROW + 10) + [(None,)]
    with pytest.raises(Exception, match="NOT NULL"), engine.begin() as conn:
        bulk.insert_stream(conn, table, ("a",), iter(rows))
    with engine.connect() as conn:
        assert conn.execute(select(table.c.a)).all() == []
    engine.dispose()


def test_writes_are_checkpointed_off_the_commit(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    db = Database(sqlite_url(path))
    table = Table("t", MetaData(), Column("pk", Integer, primary_key=True), Column("a", String))
    table.metadata.create_all(db.engine)
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    with db.write() as conn:
        bulk.insert_rows(conn, table, ("a",), [("x" * 100,)] * 20_000)
    checkpointer = db._checkpointer
    assert checkpointer is not None
    for _ in range(100):  # the checkpoint runs on its own thread: wait for the copy
        if path.stat().st_size > 2_000_000:
            break
        time.sleep(0.05)
    assert path.stat().st_size > 2_000_000
    db.dispose()
    assert not checkpointer._thread.is_alive()
    raw = sqlite3.connect(path)
    assert raw.execute("select count(*) from t").fetchone() == (20_000,)
    raw.close()


def test_replacing_annotations_of_many_neighbouring_items(client: ocula.Client,
                                                         tmp_path: Path) -> None:
    """Past 900 items in one batch, current annotations are read by one item range (the
    items in it but not in the batch are left alone)."""
    paths = make_images(tmp_path / "many", 1400, size=(8, 8), fmt="PNG")
    ds = client.create_dataset("neighbours")
    ds.append([DatasetItem(str(p), p.stem) for p in paths])
    ds.annotate([BoxAnnotation("x", 1, 1, 2, 2, reference_id=p.stem, annotation_id="a")
                 for p in paths])
    some = [p.stem for i, p in enumerate(paths) if i % 4]
    again = [BoxAnnotation("x", 2, 2, 3, 3, reference_id=r, annotation_id="a") for r in some]
    assert ds.annotate(again)["annotations_ignored"] == len(some)
    result = ds.annotate(again, update=True)
    assert (result["annotations_replaced"], result["annotations_processed"]) == (1050, 1050)
    boxes = {a.reference_id: a.x for a in ds.annotations()}
    assert len(boxes) == 1400
    assert all(boxes[p.stem] == (2 if i % 4 else 1) for i, p in enumerate(paths))


def test_item_look_ups_by_range_and_by_id(client: ocula.Client, tmp_path: Path) -> None:
    """Many reference ids are read by one scan of their range when they are neighbours,
    one by one (IN) when the range holds far more items; the same map either way."""
    paths = make_images(tmp_path / "spread", 5000, size=(8, 8), fmt="PNG")
    ds = client.create_dataset("spread")
    ds.append([DatasetItem(str(p), p.stem) for p in paths])
    service = client._backend
    with service.db.read() as conn:
        pk = service._dataset_row(conn, ds.id).pk
        for refs in ([p.stem for p in paths[1000:2000]], [p.stem for p in paths[::5]],
                     [p.stem for p in paths[::5]] + ["nowhere"]):
            found = service._item_map(conn, pk, refs)
            assert sorted(found) == sorted(r for r in refs if r != "nowhere")
            assert all((found[r].width, found[r].height) == (8, 8) for r in found)


@pytest.mark.parametrize("plain", [True, False])
def test_items_deleted_between_check_and_write(service: Service, tmp_path: Path,
                                               plain: bool) -> None:
    """Annotation inserts skip SQLite's per-row foreign-key look-ups and check the items
    once per batch inside the write: an item deleted after the batch was checked fails
    the batch, which writes nothing; foreign keys are enforced again afterwards."""
    paths = make_images(tmp_path / "fk", 3, size=(16, 16), fmt="PNG")
    ds = service.create_dataset("fk")["id"]
    service.append(ds, [DatasetItem(str(p), p.stem) for p in paths])
    refs = [p.stem for p in paths]
    anns = [BoxAnnotation("car", 1, 1, 2, 2, reference_id=r, annotation_id=f"{r}-{k}")
            for r in refs for k in range(3)]
    if not plain:  # the per-object path
        anns.append(CategoryAnnotation("day", reference_id=refs[0], annotation_id="c"))
    checked = service._check_annotations(ds, anns)
    assert (checked.boxes is not None) == plain
    service.delete_item(ds, refs[1])
    with pytest.raises(NotFoundError, match="deleted"):
        service._write_checked(checked, False, None)
    assert service.list_annotations(ds) == []
    assert service.annotate(ds, [a for a in anns if a.reference_id != refs[1]])[
        "annotations_processed"] == len(anns) - 3
    with service.db.read() as conn:
        if conn.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    service.delete_item(ds, refs[0])  # cascades to its annotations
    assert {a["reference_id"] for a in service.list_annotations(ds)} == {refs[2]}
    with service.db.read() as conn:
        orphans = conn.execute(select(t.annotations.c.pk).where(
            t.annotations.c.item_pk.not_in(select(t.items.c.pk)))).all()
    assert orphans == []


def test_count_where_in_by_range_and_by_lists(service: Service, tmp_path: Path) -> None:
    """The batch's item check counts in the database: by one range when the pks are
    consecutive, else by IN lists; a deleted item, or another dataset's, is not counted."""
    paths = make_images(tmp_path / "count", 2000, size=(8, 8), fmt="PNG")
    mine = service.create_dataset("mine")["id"]
    other = service.create_dataset("other")["id"]
    service.append(mine, [DatasetItem(str(p), p.stem) for p in paths[:1500]])
    service.append(other, [DatasetItem(str(p), p.stem) for p in paths[1500:]])
    i = t.items
    with service.db.read() as conn:
        pk_of = dict(conn.execute(select(i.c.reference_id, i.c.pk)).all())
    service.delete_item(mine, paths[700].stem)
    with service.db.read() as conn:
        ds_pk = service._dataset_row(conn, mine).pk

        def count(stems: list[str]) -> int:
            return count_where_in(conn, i.c.pk, {pk_of[s] for s in stems}, i.c.dataset_pk == ds_pk)

        stems = [p.stem for p in paths]
        assert count(stems[:700]) == 700  # one range
        assert count(stems[:1500]) == 1499  # one range, over the deleted item
        assert count(stems[701:1500:2]) == len(stems[701:1500:2])  # IN lists, 400 values
        assert count(stems[:1500:3]) == 500  # IN lists: not counted twice, none missing
        assert count(stems[1400:1600]) == 100  # another dataset's 100
        assert count([]) == 0
        gone = pk_of[stems[700]]
        assert count_where_in(conn, i.c.pk, {gone - 1, gone, gone + 1},
                              i.c.dataset_pk == ds_pk) == 2  # a range
        assert count_where_in(conn, i.c.pk, {gone - 2, gone, gone + 2},
                              i.c.dataset_pk == ds_pk) == 2  # IN


def test_bulk_tuning_is_shared_and_restored() -> None:
    """Overlapping bulk operations (two threads) share one change of the process's
    settings; the last to leave restores the application's own values."""
    before = sys.getswitchinterval()
    entered, leave = threading.Event(), threading.Event()

    def other() -> None:
        with tuned_for_bulk(switches=True):
            entered.set()
            leave.wait()

    assert gc.isenabled()
    with tuned_for_bulk(switches=True):
        assert sys.getswitchinterval() == 0.0005 and not gc.isenabled()
        worker = threading.Thread(target=other)
        worker.start()
        entered.wait()
    # The other user is still inside: nothing restored under its feet.
    assert sys.getswitchinterval() == 0.0005 and not gc.isenabled()
    leave.set()
    worker.join()
    assert sys.getswitchinterval() == before and gc.isenabled()
    # An application that runs with the collector off keeps it off.
    gc.disable()
    try:
        with tuned_for_bulk():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_tune_runtime_false_leaves_the_process_alone(tmp_path: Path) -> None:
    seen = []
    svc = Service.open(tmp_path / "home", tune_runtime=False)
    try:
        ds = svc.create_dataset("d")["id"]
        real = svc._check_annotations

        def spy(*args: Any, **kwargs: Any) -> Any:
            seen.append((gc.isenabled(), sys.getswitchinterval()))
            return real(*args, **kwargs)

        svc._check_annotations = spy  # type: ignore[method-assign]
        svc.annotate(ds, [])
        list(svc.annotate_batches(ds, [[]]))
    finally:
        svc.close()
    assert seen == [(True, sys.getswitchinterval())] * 2


def test_prediction_columns_equal_the_per_object_path(service: Service,
                                                      tmp_path: Path) -> None:
    """A run of plain boxes is inserted column by column; with one other type among
    them, object by object. Both store the same predictions."""
    paths = make_images(tmp_path / "preds", 2, size=(40, 30), fmt="PNG")
    ds = service.create_dataset("preds")["id"]
    service.append(ds, [DatasetItem(str(p), p.stem) for p in paths])
    refs = [p.stem for p in paths]
    boxes = [BoxPrediction("car", 1.5, 2, 10, 5, reference_id=refs[0], confidence=0.9,
                           annotation_id="a", metadata={"k": 1, "s": "é"}),
             BoxPrediction("bus", 0, 0, 40, 30, reference_id=refs[1], confidence=None,
                           class_pdf={"bus": 0.7, "car": 0.3}, iscrowd=True, area=99.5),
             BoxPrediction("car", 3, 4, 0, 0, reference_id=refs[1], confidence=1)]
    category = CategoryPrediction("day", reference_id=refs[0], confidence=0.5)
    service.add_model("m", "m")
    stored = []
    for name, preds in (("columns", boxes), ("objects", [*boxes, category])):
        run = service.create_run("m", ds, name, preds)
        assert run["prediction_count"] == len(preds)
        rows = service.list_predictions(run["id"])
        stored.append([{k: v for k, v in r.items() if k != "id"} for r in rows
                       if r["type"] == "box"])
    assert stored[0] == stored[1]
    assert [r.get("confidence") for r in stored[0]] == [
        0.9, None, 1]
    assert stored[0][1]["class_pdf"] == {"bus": 0.7, "car": 0.3}
    assert stored[0][1]["iscrowd"] is True and stored[0][1]["area"] == 99.5
    with pytest.raises(BatchError) as err:
        service.create_run("m", ds, "bad", [*boxes, BoxAnnotation("x", 1, 1, 1, 1, refs[0]),
                                            BoxPrediction("car", 1, 1, 99, 1, refs[0])])
    assert len(err.value.errors) == 2


def test_awkward_text_survives_the_bulk_paths(service: Service, tmp_path: Path) -> None:
    """Tabs, newlines, backslashes, COPY's null marker, quotes and non-ASCII text come
    back as written, in items, annotations and predictions (COPY on PostgreSQL)."""
    odd = ["tab\there", "line\nbreak\r\n", "back\\slash", "\\N", "it's \"quoted\" 100%",
           "ünï ☃ 𝔘", "?1 ?2 ?"]
    paths = make_images(tmp_path / "odd", len(odd), size=(20, 20), fmt="PNG")
    ds = service.create_dataset("odd")["id"]
    service.append(ds, [DatasetItem(str(p), f"ref {text}", {"note": text})
                        for p, text in zip(paths, odd, strict=True)])
    items = {i["reference_id"]: i for i in service.list_items(ds)["items"]}
    assert {ref: item["metadata"] for ref, item in items.items()} == {
        f"ref {text}": {"note": text} for text in odd}
    boxes = [BoxAnnotation(text, 1, 1, 5, 5, reference_id=f"ref {text}",
                           annotation_id=f"id {text}", metadata={text: [text]})
             for text in odd]
    assert service.annotate(ds, boxes)["annotations_processed"] == len(odd)
    stored = {a["label"]: (a["reference_id"], a["annotation_id"], a["metadata"])
              for a in service.list_annotations(ds)}
    assert stored == {text: (f"ref {text}", f"id {text}", {text: [text]}) for text in odd}
    service.add_model("m", "m")
    run = service.create_run("m", ds, "odd", [
        BoxPrediction(text, 1, 1, 5, 5, reference_id=f"ref {text}", confidence=0.5,
                      metadata={"note": text}) for text in odd])
    assert sorted((p["label"], p["metadata"]["note"])
                  for p in service.list_predictions(run["id"])) == sorted(
        (text, text) for text in odd)
