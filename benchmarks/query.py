"""Query-language benchmark: seeded synthetic catalog, p50/p95 of the documented queries.

Usage::

    python benchmarks/query.py                       # 1M items on embedded SQLite
    python benchmarks/query.py --items 20000         # CI-size smoke run
    python benchmarks/query.py --database-url postgresql+psycopg://postgres@127.0.0.1/test
    python benchmarks/query.py --both                # SQLite, then the local PostgreSQL

The generator is deterministic (``--seed``): ``items`` images with metadata (weather,
time_of_day, camera_id, speed, and a unique ``frame`` number and ``source`` name per
item, as imported datasets have), ~5 ground-truth boxes per item, one run of ~0.75
predictions per box plus background false positives, and that run's match rows
(``match_predictions``/``match_annotations``/``match_items``) written directly in bulk,
as ``commit`` would. A slice ``training_set`` holds half of the items. The SQLite file
is cached under ``/tmp/ocula-bench/`` and a PostgreSQL catalog in schema
``bench_<items>_<seed>_<generator version>``, so only the first run pays for generation;
every open runs the migrations, so a cached catalog gains any index added since. Rows
written in bulk bypass the service, so the running insights totals its writes would keep
are counted once after generation (printed). Insights are timed three ways: a whole
dataset from those totals, the same right after label edits made through the service,
and by scanning the rows (what the totals replace; the run fails unless both give the
same result).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import create_engine, func, select, text

from ocula.core.services import Service, stats
from ocula.core.store import schema as t

CACHE = Path("/tmp/ocula-bench")
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
LABELS = ["car", "pedestrian", "bicycle", "truck", "bus", "traffic_light"]
LABEL_P = [0.45, 0.25, 0.08, 0.1, 0.04, 0.08]
WEATHER = ["clear", "rain", "snow", "fog"]
TIMES = ["day", "night", "dusk"]
STAMP = "2026-01-01 00:00:00.000000"
DATASET = "bench"
# Part of the cache key: bump when the generated data changes.
GENERATOR = "v2"
RUN = "frcnn-v2"

QUERIES: list[tuple[str, str]] = [
    ("items", 'metadata.weather in ["rain", "snow"] and count(label = "pedestrian") > 3'),
    ("items", 'run("frcnn-v2").fn > 0 and not in_slice("training_set")'),
    ("objects", 'type = prediction and run = "frcnn-v2" and status = fp and confidence > 0.8 '
                "order by confidence desc"),
    ("objects", 'type = annotation and label = "pedestrian" and area < 400 and status = fn'),
]


# --- generation ------------------------------------------------------------------------


def _generate(n_items: int, seed: int) -> dict[str, Iterable[tuple]]:
    """Every row of the synthetic catalog as lazy tuples (columns as in ``COLUMNS``)."""
    rng = np.random.default_rng(seed)
    rows: dict[str, Iterable[tuple]] = {}
    weather = rng.choice(len(WEATHER), n_items, p=[0.5, 0.25, 0.15, 0.1]).tolist()
    tod = rng.choice(len(TIMES), n_items, p=[0.6, 0.3, 0.1]).tolist()
    camera = rng.integers(0, 50, n_items).tolist()
    speed = np.round(rng.gamma(4.0, 8.0, n_items), 1).tolist()
    has_speed = (rng.random(n_items) > 0.05).tolist()

    def items() -> Iterable[tuple]:
        for i in range(n_items):
            md: dict[str, Any] = {"weather": WEATHER[weather[i]], "time_of_day": TIMES[tod[i]],
                                  "camera_id": camera[i], "frame": i,
                                  "source": f"cam{camera[i]:02d}/{i:07d}.jpg"}
            if has_speed[i]:
                md["speed"] = speed[i]
            yield (i + 1, f"di_{i + 1:020x}", 1, f"img_{i:07d}", f"/data/img_{i:07d}.jpg",
                   1920, 1080, json.dumps(md), STAMP, STAMP)

    rows["items"] = items()

    # Ground truth: Poisson(5) boxes per item.
    per_item = rng.poisson(5.0, n_items)
    n_ann = int(per_item.sum())
    ann_item = np.repeat(np.arange(1, n_items + 1), per_item)
    label = rng.choice(len(LABELS), n_ann, p=LABEL_P)
    w = np.clip(rng.lognormal(3.3, 0.8, n_ann), 2, 1500).round(1)
    h = np.clip(w * rng.lognormal(0.2, 0.5, n_ann), 2, 1000).round(1)
    x = (rng.random(n_ann) * (1920 - w)).round(1)
    y = (rng.random(n_ann) * (1080 - h)).round(1)
    names = np.array(LABELS, dtype=object)
    pks = range(1, n_ann + 1)
    rows["annotations"] = (
        (k, f"ann_{k:020x}", 1, it, f"a{k}", "box", lab, xx, yy, ww, hh, round(ww * hh, 2),
         False, 1)
        for k, it, lab, xx, yy, ww, hh in zip(pks, ann_item.tolist(), names[label].tolist(),
                                              x.tolist(), y.tolist(), w.tolist(), h.tolist(),
                                              strict=True))

    # Predictions: 75% of boxes found (jittered, 95% with the right label), plus
    # Poisson(1) false positives per item; right-label finds are tp, the rest fp/fn.
    found = rng.random(n_ann) < 0.75
    tp_idx = np.flatnonzero(found)
    n_fp = rng.poisson(1.0, n_items)
    fp_item = np.repeat(np.arange(1, n_items + 1), n_fp)
    n_pred = len(tp_idx) + len(fp_item)
    p_item = np.concatenate([ann_item[tp_idx], fp_item])
    p_label = np.concatenate([
        np.where(rng.random(len(tp_idx)) < 0.95, label[tp_idx],
                 rng.choice(len(LABELS), len(tp_idx))),
        rng.choice(len(LABELS), len(fp_item), p=LABEL_P)])
    jitter = 1 + rng.normal(0, 0.05, (len(tp_idx), 2))
    p_w = np.concatenate([w[tp_idx] * jitter[:, 0], rng.lognormal(3.0, 0.7, len(fp_item))])
    p_h = np.concatenate([h[tp_idx] * jitter[:, 1], rng.lognormal(3.2, 0.6, len(fp_item))])
    p_x = np.concatenate([x[tp_idx], rng.random(len(fp_item)) * 1800])
    p_y = np.concatenate([y[tp_idx], rng.random(len(fp_item)) * 1000])
    conf = np.concatenate([rng.beta(5, 2, len(tp_idx)), rng.beta(2, 4, len(fp_item))]).round(4)
    is_tp = np.concatenate([p_label[:len(tp_idx)] == label[tp_idx],
                            np.zeros(len(fp_item), bool)])
    iou = np.where(is_tp, rng.uniform(0.5, 0.98, n_pred), rng.uniform(0, 0.4, n_pred)).round(3)
    p_names = names[p_label].tolist()
    ppks = range(1, n_pred + 1)
    rows["predictions"] = (
        (k, f"pred_{k:020x}", 1, it, None, "box", lab, round(xx, 1), round(yy, 1),
         round(ww, 1), round(hh, 1), round(ww * hh, 2), False, c)
        for k, it, lab, xx, yy, ww, hh, c in zip(ppks, p_item.tolist(), p_names, p_x.tolist(),
                                                 p_y.tolist(), p_w.tolist(), p_h.tolist(),
                                                 conf.tolist(), strict=True))
    matched_ann = np.concatenate([tp_idx + 1, np.zeros(len(fp_item), int)])
    status = np.where(is_tp, "tp", "fp").tolist()
    rows["match_predictions"] = (
        (1, k, it, a if s == "tp" else None, i, s, lab, c)
        for k, it, a, i, s, lab, c in zip(ppks, p_item.tolist(), matched_ann.tolist(),
                                          iou.tolist(), status, p_names, conf.tolist(),
                                          strict=True))
    ann_tp = np.zeros(n_ann, bool)
    ann_pred = np.zeros(n_ann, int)
    ann_iou = np.zeros(n_ann)
    tp_preds = np.flatnonzero(is_tp)
    ann_tp[tp_idx[tp_preds]] = True
    ann_pred[tp_idx[tp_preds]] = tp_preds + 1
    ann_iou[tp_idx[tp_preds]] = iou[tp_preds]
    a_status = np.where(ann_tp, "tp", "fn").tolist()
    rows["match_annotations"] = (
        (1, k, it, p if s == "tp" else None, i, s, lab)
        for k, it, p, i, s, lab in zip(pks, ann_item.tolist(), ann_pred.tolist(),
                                       ann_iou.tolist(), a_status, names[label].tolist(),
                                       strict=True))
    tp_c = np.bincount(p_item[is_tp], minlength=n_items + 1).tolist()
    fp_c = np.bincount(p_item[~is_tp], minlength=n_items + 1).tolist()
    fn_c = np.bincount(ann_item[~ann_tp], minlength=n_items + 1).tolist()
    rows["match_items"] = ((1, i, tp_c[i], fp_c[i], fn_c[i]) for i in range(1, n_items + 1))
    chosen = (np.flatnonzero(rng.random(n_items) < 0.5) + 1).tolist()
    rows["slice_items"] = ((1, i) for i in chosen)
    return rows


COLUMNS = {
    "items": ["pk", "id", "dataset_pk", "reference_id", "image_location", "width", "height",
              "metadata", "created_at", "updated_at"],
    "annotations": ["pk", "id", "dataset_pk", "item_pk", "annotation_id", "type", "label",
                    "x", "y", "width", "height", "area", "iscrowd", "version_from"],
    "predictions": ["pk", "id", "run_pk", "item_pk", "annotation_id", "type", "label", "x",
                    "y", "width", "height", "area", "iscrowd", "confidence"],
    "match_predictions": ["run_pk", "prediction_pk", "item_pk", "annotation_pk", "iou",
                          "status", "label", "confidence"],
    "match_annotations": ["run_pk", "annotation_pk", "item_pk", "prediction_pk", "iou",
                          "status", "label"],
    "match_items": ["run_pk", "item_pk", "tp", "fp", "fn"],
    "slice_items": ["slice_pk", "item_pk"],
}
def _load(svc: Service, rows: dict[str, Iterable[tuple]]) -> None:
    """Write the rows with the big tables' secondary indexes dropped, then rebuild them."""
    engine = svc.db.engine
    stamp = datetime(2026, 1, 1, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(t.datasets.insert().values(pk=1, id="ds_bench", name=DATASET,
                                                created_at=stamp))
        conn.execute(t.annotation_versions.insert().values(pk=1, dataset_pk=1, version=1,
                                                           created_at=stamp))
        conn.execute(t.models.insert().values(pk=1, id="prj_bench", name="frcnn",
                                              reference_id="frcnn", created_at=stamp))
        conn.execute(t.model_runs.insert().values(
            pk=1, id="run_bench", model_pk=1, dataset_pk=1, name=RUN, created_at=stamp,
            committed_at=stamp, committed_version=1, commit_config={"iou": 0.5}))
        conn.execute(t.slices.insert().values(pk=1, id="slc_bench", dataset_pk=1,
                                              name="training_set", kind="item",
                                              created_at=stamp))
    big = [getattr(t, name) for name in COLUMNS]
    for table in big:
        for index in table.indexes:
            index.drop(engine, checkfirst=True)
    raw = engine.raw_connection()
    try:
        for name, cols in COLUMNS.items():
            started = time.perf_counter()
            if svc.db.dialect == "sqlite":
                cur = raw.cursor()
                cur.execute("BEGIN")
                marks = ", ".join("?" * len(cols))
                cur.executemany(f"INSERT INTO {name} ({', '.join(cols)}) VALUES ({marks})",
                                rows[name])
                cur.execute("COMMIT")
            else:
                _copy(raw, name, cols, rows[name])
                raw.commit()
            print(f"  {name} in {time.perf_counter() - started:.1f}s", flush=True)
    finally:
        raw.close()
    started = time.perf_counter()
    for table in big:
        for index in table.indexes:
            index.create(engine, checkfirst=True)
    if svc.db.dialect == "postgresql":
        with engine.begin() as conn:
            for table in ("datasets", "annotation_versions", "models", "model_runs", "slices",
                          *COLUMNS):
                if "pk" in table_columns(table):
                    conn.execute(text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'pk'), "
                        f"(SELECT max(pk) FROM {table}))"))
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    print(f"  indexes + analyze in {time.perf_counter() - started:.1f}s", flush=True)


def table_columns(name: str) -> list[str]:
    return [c.name for c in getattr(t, name).columns]


def _copy(raw: Any, table: str, cols: Sequence[str], data: Iterable[tuple]) -> None:
    cur = raw.cursor()
    with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
        buf = io.StringIO()
        for n, row in enumerate(data):
            buf.write("\t".join("\\N" if v is None else str(v) for v in row))
            buf.write("\n")
            if n % 100_000 == 99_999:
                copy.write(buf.getvalue())
                buf = io.StringIO()
        copy.write(buf.getvalue())


def open_catalog(n_items: int, seed: int, database_url: str | None,
                 cache: Path = CACHE) -> Service:
    """The cached benchmark catalog, generated first if missing."""
    home = cache / f"{n_items}_{seed}_{GENERATOR}"
    home.mkdir(parents=True, exist_ok=True)
    url = database_url
    if database_url is not None and database_url.startswith("postgresql"):
        schema = f"bench_{n_items}_{seed}_{GENERATOR}"
        admin = create_engine(database_url)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        admin.dispose()
        sep = "&" if "?" in database_url else "?"
        url = f"{database_url}{sep}options=-csearch_path%3D{schema}"
    started = time.perf_counter()
    svc = Service.open(home, url)
    with svc.db.read() as conn:
        ready = conn.scalar(select(func.count()).select_from(t.match_items))
    if not ready:
        print(f"generating {n_items:,} items on {svc.db.dialect} (seed {seed}) ...", flush=True)
        rows = _generate(n_items, seed)
        _load(svc, rows)
    with svc.db.read() as conn:
        totals = stats.is_ready(conn, 1)
    if not totals:
        # The rows above were written in bulk, not through the service, so the running
        # totals its writes keep are counted once here, as for a pre-existing dataset.
        began = time.perf_counter()
        with svc.db.write() as conn:
            stats.rebuild(conn, 1)
        print(f"  insights totals counted in {time.perf_counter() - began:.1f}s", flush=True)
    print(f"catalog ready in {time.perf_counter() - started:.1f}s ({svc.db.dialect})",
          flush=True)
    return svc


# --- timing ----------------------------------------------------------------------------


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """p50 and p95 in milliseconds over ``repeat`` calls after one warm-up."""
    fn()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, int(round(0.95 * (len(samples) - 1))))]
    return statistics.median(samples), p95


def run_benchmark(svc: Service, repeat: int, page_size: int,
                  insights_repeat: int) -> list[tuple[str, float, float]]:
    results = []
    for kind, query in QUERIES:
        method = svc.query_items if kind == "items" else svc.query_objects
        p50, p95 = timed(lambda m=method, q=query: m(DATASET, q, page_size=page_size), repeat)
        results.append((f"first page  {kind}: {query}", p50, p95))
    # Walk to page 1,000 of the slice query once, then time fetching that page.
    kind, query = QUERIES[1]
    cursor = None
    pages = 0
    for _ in range(999):
        page = svc.query_items(DATASET, query, page_size=page_size, cursor=cursor)
        cursor = page["next_cursor"]
        pages += 1
        if cursor is None:
            break
    label = f"page {pages + 1:,}  items: {query}"
    p50, p95 = timed(lambda: svc.query_items(DATASET, query, page_size=page_size,
                                             cursor=cursor), repeat)
    results.append((label, p50, p95))
    # A whole dataset reads the running totals; never cached, so every call is a real one.
    p50, p95 = timed(lambda: svc.insights(DATASET), repeat)
    results.append(("insights, whole dataset (running totals)", p50, p95))
    results.append(_insights_after_writes(svc, repeat))
    # What the totals replace: every GROUP BY over the rows.
    scanned: list[Any] = []
    p50, p95 = timed(lambda: scanned.append(svc.scan_insights(DATASET)), 1)
    results.append(("insights, whole dataset, by scanning the rows (for comparison)", p50,
                    p95))
    same = same_insights(svc.insights(DATASET), scanned[-1])
    print(f"whole-dataset insights from totals == by scanning: {same}", flush=True)
    if not same:
        raise SystemExit("insights from the running totals differ from a scan")
    query = 'metadata.weather = "snow" and metadata.time_of_day = "night"'
    p50, p95 = timed(lambda: svc.insights(DATASET, query=query, fresh=True), insights_repeat)
    results.append((f"insights of a query result, computed: {query}", p50, p95))
    return results


def same_insights(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal insights, but for which values a free-text field lists among equally
    frequent ones (its top values: ties may be broken either way)."""
    a, b = json.loads(json.dumps(a)), json.loads(json.dumps(b))
    for field, x in a["metadata"].items():
        y = b["metadata"].get(field, {})
        if x.get("type") == y.get("type") == "categorical" and x["values"] != y["values"]:
            if (sorted(v["count"] for v in x["values"]) != sorted(v["count"] for v in y["values"])
                    or x["other"] != y["other"]):
                return False
            a["metadata"][field] = b["metadata"][field] = None
    return a == b


def _insights_after_writes(svc: Service, repeat: int) -> tuple[str, float, float]:
    """Insights right after each of ``repeat`` label edits (1,000 boxes replaced on 200
    items): the totals follow every write, no recount."""
    from ocula import BoxAnnotation

    samples = []
    for r in range(repeat + 1):
        label = LABELS[r % len(LABELS)]
        svc.annotate(DATASET, [
            BoxAnnotation(label, 10.0 + r, 20.0, 30.0 + j, 40.0, reference_id=f"img_{i:07d}",
                          annotation_id=f"bench-edit-{i}-{j}")
            for i in range(200) for j in range(5)], update=True)
        started = time.perf_counter()
        svc.insights(DATASET)
        if r:  # the first is a warm-up
            samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, int(round(0.95 * (len(samples) - 1))))]
    return ("insights, whole dataset, right after replacing 1,000 boxes",
            statistics.median(samples), p95)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--database-url", default=None,
                    help="PostgreSQL URL (default: embedded SQLite under /tmp)")
    ap.add_argument("--both", action="store_true", help=f"SQLite, then {PG_DEFAULT}")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--page-size", type=int, default=100)
    ap.add_argument("--insights-repeat", type=int, default=3)
    ap.add_argument("--generate-only", action="store_true")
    ap.add_argument("--cache", type=Path, default=CACHE,
                    help=f"folder of generated SQLite catalogs (default {CACHE})")
    args = ap.parse_args(argv)
    urls = [None, args.database_url or PG_DEFAULT] if args.both else [args.database_url]
    report = []
    for url in urls:
        svc = open_catalog(args.items, args.seed, url, args.cache)
        try:
            if not args.generate_only:
                report.append((svc.db.dialect, run_benchmark(
                    svc, args.repeat, args.page_size, args.insights_repeat)))
        finally:
            svc.close()
    for dialect, results in report:
        print(f"\n{dialect}, {args.items:,} items, page size {args.page_size}")
        print(f"{'p50 ms':>9} {'p95 ms':>9}  what")
        for label, p50, p95 in results:
            print(f"{p50:9.1f} {p95:9.1f}  {label}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
