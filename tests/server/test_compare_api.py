"""``GET /api/v1/compare`` and ``/compare/items`` over HTTP: answers in their documented
shapes, every page of a list, and refusals as JSON 4xx with the reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from ocula import BoxAnnotation, BoxPrediction, DatasetItem
from ocula.client.client import Client
from ocula.server.api.schemas import Comparison, ComparisonItems
from tests.conftest import make_images
from tests.server.conftest import Live


def _runs(live: Live, tmp_path: Path) -> tuple[str, str, str]:
    """Run a finds the car on r0–r2 only; run b on all six items: b fixes r3–r5."""
    paths = make_images(tmp_path / "imgs", 6)
    with Client(live.url, api_key=live.key) as c:
        ds = c.create_dataset("cmp")
        ds.append([DatasetItem(str(p), f"r{i}") for i, p in enumerate(paths)])
        ds.annotate([BoxAnnotation("car", 2, 2, 20, 20, reference_id=f"r{i}")
                     for i in range(6)])
        model = c.add_model("m", "m")

        def run(name: str, n: int, commit: bool = True) -> str:
            r = model.create_run(name, ds, [
                BoxPrediction("car", 2, 2, 20, 20, reference_id=f"r{i}", confidence=0.9)
                for i in range(n)])
            if commit:
                r.commit()
            return r.id

        return run("a", 3), run("b", 6), run("open", 6, commit=False)


def _get(live: Live, path: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{live.url}/api/v1{path}", params=params,
                     headers={"Authorization": f"Bearer {live.key}"})


def test_compare_and_its_pages(live: Live, tmp_path: Path) -> None:
    a, b, _ = _runs(live, tmp_path)
    answer = _get(live, "/compare", run_a=a, run_b=b, limit=1)
    assert answer.status_code == 200
    diff = Comparison.model_validate(answer.json()).model_dump()
    assert diff["only_b_right"] == ["r3"] and diff["only_b_right_count"] == 3
    assert diff["per_class"][0]["label"] == "car" and diff["per_class"][0]["delta"]["ar"] > 0
    refs, cursor = [], None
    while True:
        params: dict[str, Any] = {"run_a": a, "run_b": b, "only": "b", "page_size": 2}
        if cursor:
            params["cursor"] = cursor
        page = ComparisonItems.model_validate(_get(live, "/compare/items", **params).json())
        refs += [it.reference_id for it in page.items]
        assert page.total == 3
        cursor = page.next_cursor
        if cursor is None:
            break
    assert refs == ["r3", "r4", "r5"]


def test_refusals_are_json_4xx(live: Live, tmp_path: Path) -> None:
    a, b, open_run = _runs(live, tmp_path)
    for path in ("/compare", "/compare/items"):
        answer = _get(live, path, run_a=a, run_b=open_run)
        assert answer.status_code == 422
        assert "'open' is not committed" in answer.json()["detail"]
        assert _get(live, path, run_a=a, run_b="run_nope").status_code == 404
    bad = _get(live, "/compare/items", run_a=a, run_b=b, cursor="AAAA")
    assert bad.status_code == 422 and "cursor" in bad.json()["detail"]
    assert _get(live, "/compare/items", run_a=a, run_b=b, page_size=0).status_code == 422
    assert _get(live, "/compare/items", run_a=a, run_b=b, only="c").status_code == 422
    assert _get(live, "/compare", run_a=a, run_b=b, limit=-1).status_code == 422
