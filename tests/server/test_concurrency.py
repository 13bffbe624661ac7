"""Eight clients append, annotate and read one dataset at once, through one server on
SQLite, for ``OCULA_CONCURRENCY_S`` seconds (default 30): no errors, and every write
is there at the end (the counts add up)."""

from __future__ import annotations

import os
import random
import threading
import time
from pathlib import Path

import pytest

from ocula import BoxAnnotation, DatasetItem
from ocula.client.client import Client
from tests.conftest import make_images
from tests.server.conftest import Live

CLIENTS = 8
DURATION_S = float(os.environ.get("OCULA_CONCURRENCY_S", "30"))


@pytest.mark.slow
def test_eight_clients_no_lost_writes(live: Live, tmp_path: Path) -> None:
    images = make_images(tmp_path / "imgs", 10)
    with Client(live.url, api_key=live.key) as setup:
        setup.create_dataset("shared")
    stop_at = time.monotonic() + DURATION_S
    done: dict[int, dict[str, int]] = {}
    failures: list[str] = []

    def worker(k: int) -> None:
        rng = random.Random(k)
        counts = {"items": 0, "annotations": 0, "versions": 0, "slices": 0, "reads": 0}
        try:
            with Client(live.url, api_key=live.key) as c:
                ds = c.get_dataset("shared")
                n = 0
                while time.monotonic() < stop_at:
                    refs = [f"w{k}/{n}/{j}" for j in range(3)]
                    result = ds.append([DatasetItem(str(rng.choice(images)), r)
                                        for r in refs])
                    assert result["new_items"] == 3, result
                    counts["items"] += 3
                    anns = [BoxAnnotation("car", 1, 1, 5, 5, reference_id=r) for r in refs[:2]]
                    assert ds.annotate(anns)["annotations_processed"] == 2
                    counts["annotations"] += 2
                    counts["versions"] += 1
                    if n % 5 == 0:
                        ds.create_slice(f"w{k}-{n}", refs)
                        counts["slices"] += 1
                    # Reads interleaved with everyone's writes.
                    assert ds.refloc(refs[0])["annotations"]["box"][0].label == "car"
                    assert ds.info()["length"] >= counts["items"]
                    ds._backend.list_items(ds.id, limit=50)
                    counts["reads"] += 3
                    n += 1
        except Exception as exc:  # noqa: BLE001 - collected and reported below
            failures.append(f"client {k}: {exc.__class__.__name__}: {exc}")
        done[k] = counts

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=DURATION_S + 120)
    assert not failures, "\n".join(failures)
    assert len(done) == CLIENTS and all(c["items"] > 0 for c in done.values())
    with Client(live.url, api_key=live.key) as c:
        info = c.get_dataset("shared").info()
        assert info["length"] == sum(d["items"] for d in done.values())
        assert info["annotation_count"] == sum(d["annotations"] for d in done.values())
        assert info["annotation_version"] == sum(d["versions"] for d in done.values())
        assert len(info["slice_ids"]) == sum(d["slices"] for d in done.values())
        refs = {i.reference_id for i in c.get_dataset("shared").items_iter()}
    assert all(f"w{k}/0/2" in refs for k in range(CLIENTS))
