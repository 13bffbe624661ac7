"""Hardening of the HTTP edge (issue 12): malformed entries, lone surrogates and deep or
big metadata are a 4xx naming where, with nothing written and the connection kept;
writes take only the content types their clients send; a 401 invites no browser to
keep credentials."""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from ocula.core.services import Service
from ocula.core.validation import (
    MAX_CATALOG_METADATA_BYTES,
    MAX_METADATA_BYTES,
    MAX_METADATA_DEPTH,
)
from ocula.server import ServerSettings, create_app
from ocula.server.background import serve_in_background
from ocula.server.deps import get_service
from tests.conftest import make_images, nested_metadata
from tests.server.conftest import Live


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[tuple[Live, dict[str, str]]]:
    """A live server on each backend with a dataset ``d`` (items r0, r1; a box on r0), a
    model and a run; and the ids of these."""
    service = Service.open(tmp_path / "home", database_url, local_roots=[])
    key = service.create_key("tests")["key"]
    paths = make_images(tmp_path / "imgs", 2)
    app = create_app(service, settings=ServerSettings(job_workers=1))
    with serve_in_background(app) as url:
        live = Live(url, key, service, app)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as h:
            ds = h.post("/api/v1/datasets", json={"name": "d"}).json()["id"]
            files = [("file", (p.name, p.read_bytes())) for p in paths]
            staged = h.post("/api/v1/uploads", files=files).json()["uploads"]
            h.post(f"/api/v1/datasets/{ds}/items", json={
                "items": [{"reference_id": f"r{i}", "image_url": p.name}
                          for i, p in enumerate(paths)],
                "uploads": {f"r{i}": s["upload_id"] for i, s in enumerate(staged)}}
                   ).raise_for_status()
            h.post(f"/api/v1/datasets/{ds}/annotations", json={"annotations": [
                {"type": "box", "label": "car", "reference_id": "r0",
                 "geometry": {"x": 1, "y": 1, "width": 5, "height": 5}}]}).raise_for_status()
            model = h.post("/api/v1/models", json={"name": "m", "reference_id": "m"}).json()
            run = h.post("/api/v1/runs", json={"model": model["id"], "dataset": ds,
                                               "name": "run"}).json()
        yield live, {"ds": ds, "run": run["model_run_id"], "model": model["id"]}
    service.close()


def _state(service: Any, ids: dict[str, str]) -> tuple[Any, ...]:
    """Everything the bad requests below might write."""
    items = service.list_items(ids["ds"])["items"]
    return (tuple((i["reference_id"], json.dumps(i.get("metadata"))) for i in items),
            len(service.list_annotations(ids["ds"])),
            len(service.list_predictions(ids["run"])),
            len(service.list_runs()), len(service.list_models()),
            len(service.list_datasets()), len(service.list_slices(ids["ds"])))


def _readable(h: httpx.Client, ids: dict[str, str]) -> None:
    """Every read the tester found answering 500 after a bad write."""
    ds = ids["ds"]
    for path in (f"/api/v1/datasets/{ds}/items", f"/api/v1/datasets/{ds}/item?reference_id=r0",
                 f"/v1/nucleus/dataset/{ds}/exportForTraining",
                 f"/v1/nucleus/dataset/{ds}/datasetItems"):
        assert h.get(path).status_code == 200, path
    answer = h.post(f"/api/v1/datasets/{ds}/query/objects", json={"query": 'label = "car"'})
    assert answer.status_code == 200, answer.text


# --- malformed entries and lone surrogates -----------------------------------------

ITEM = '{"reference_id": "r9", "image_url": "x.jpg"}'
BOX = ('{"type": "box", "label": "car", "reference_id": "r1", '
       '"geometry": {"x": 1, "y": 1, "width": 2, "height": 2}}')
UPDATE = '{"reference_id": "r1", "metadata": {"k": 1}}'
# (route, the body with BAD where one entry goes, a good entry to sit beside it)
ROUTES = [
    ("/api/v1/datasets/{ds}/items", '{"items": [ENTRY, BAD]}', ITEM),
    ("/api/v1/datasets/{ds}/items?async=true", '{"items": [ENTRY, BAD]}', ITEM),
    ("/api/v1/datasets/{ds}/annotations", '{"annotations": [ENTRY, BAD]}', BOX),
    ("/api/v1/runs/{run}/predictions", '{"predictions": [ENTRY, BAD]}', BOX),
    ("/api/v1/runs", '{"model": "{model}", "dataset": "{ds}", "name": "r2", '
                     '"predictions": [ENTRY, BAD]}', BOX),
    ("/api/v1/datasets/{ds}/items/metadata", '{"updates": [ENTRY, BAD]}', UPDATE),
    ("/api/v1/datasets/{ds}/slices", '{"name": "s", "reference_ids": [ENTRY, BAD]}', '"r0"'),
    ("/v1/nucleus/dataset/{ds}/append", '{"items": [ENTRY, BAD]}', ITEM),
    ("/v1/nucleus/dataset/{ds}/append?async=1", '{"items": [ENTRY, BAD]}', ITEM),
    ("/v1/nucleus/dataset/{ds}/annotate", '{"annotations": [ENTRY, BAD]}', BOX),
    ("/v1/nucleus/dataset/{ds}/annotate?async=1", '{"annotations": [ENTRY, BAD]}', BOX),
    ("/v1/nucleus/modelRun/{run}/predict", '{"annotations": [ENTRY, BAD]}', BOX),
    ("/v1/nucleus/dataset/{ds}/metadata", '{"metadata": [ENTRY, BAD], "level": "item"}',
     UPDATE),
    ("/v1/nucleus/dataset/{ds}/create_slice", '{"name": "s", "reference_ids": [ENTRY, BAD]}',
     '"r0"'),
]
BAD = {"null": "null", "number": "5", "nan": "NaN",
       "surrogate": "SURROGATE"}  # the good entry, its first text a lone surrogate


def _bad_body(template: str, good: str, bad: str, ids: dict[str, str]) -> str:
    if bad == "SURROGATE":
        bad = re.sub(r'"(r[019])"', r'"\\ud800\1"', good, count=1)
    body = template.replace("ENTRY", good).replace("BAD", bad)
    for name, value in ids.items():
        body = body.replace("{" + name + "}", value)
    return body


@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize(("route", "template", "good"), ROUTES,
                         ids=[r[0].split("}")[-1] or r[0] for r in ROUTES])
def test_a_malformed_entry_is_a_422_naming_it(server: tuple[Live, dict[str, str]], route: str,
                                              template: str, good: str, bad: str) -> None:
    live, ids = server
    before = _state(live.service, ids)
    path = route.format(**ids)
    body = _bad_body(template, good, BAD[bad], ids)
    # One connection throughout: a 500 used to close it under the next request.
    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {live.key}",
                                                  "Content-Type": "application/json"}) as h:
        answer = h.post(path, content=body.encode())
        assert answer.status_code == 422, answer.text
        # The entry is named by its index: "#1", "[1]" or a location ending in ".1".
        assert re.search(r"#1\b|\[1\]|\.1\b", answer.json()["detail"]), answer.text
        _readable(h, ids)
    assert _state(live.service, ids) == before


def test_a_malformed_annotation_field_is_a_422(live: Live) -> None:
    h = {"Authorization": f"Bearer {live.key}"}
    for route in ("/api/v1/datasets/x/annotations", "/v1/nucleus/dataset/x/annotate"):
        # A geometry that is not an object (found by the REST fuzzer: a 500 for each
        # type that read a field of it).
        odd = [{"type": kind, "reference_id": "r", "label": "a", "geometry": geometry}
               for kind in ("box", "polygon", "line", "multicategory", "keypoints")
               for geometry in (True, [1], "x", 5)]
        for row in ({"type": [1]}, {"type": "box", "area": "x", "reference_id": "r",
                                    "geometry": {"x": 1, "y": 1, "width": 1, "height": 1}},
                    *odd):
            answer = httpx.post(f"{live.url}{route}", json={"annotations": [row]}, headers=h)
            assert answer.status_code == 422 and "#0" in answer.text, answer.text


# --- deep and big metadata -----------------------------------------------------------


def _metadata_writes(ids: dict[str, str], md: Any, catalog_md: Any
                     ) -> list[tuple[str, dict[str, Any]]]:
    """Every route that stores metadata, with ``md`` as the metadata of items, annotations
    and predictions, ``catalog_md`` as that of datasets, models and runs."""
    box = {"type": "box", "label": "car", "reference_id": "r1", "metadata": md,
           "geometry": {"x": 1, "y": 1, "width": 2, "height": 2}}
    ds, run = ids["ds"], ids["run"]
    return [
        (f"/api/v1/datasets/{ds}/items/metadata",
         {"updates": [{"reference_id": "r0", "metadata": md}]}),
        (f"/api/v1/datasets/{ds}/items", {"items": [{"reference_id": "r0", "image_url": "x",
                                                     "metadata": md}], "update": True}),
        (f"/api/v1/datasets/{ds}/annotations", {"annotations": [box]}),
        (f"/api/v1/runs/{run}/predictions", {"predictions": [box]}),
        ("/api/v1/datasets", {"name": "d2", "metadata": catalog_md}),
        ("/api/v1/models", {"name": "m2", "reference_id": "m2", "metadata": catalog_md}),
        ("/api/v1/runs", {"model": ids["model"], "dataset": ds, "name": "r2",
                          "metadata": catalog_md}),
        (f"/v1/nucleus/dataset/{ds}/metadata",
         {"metadata": [{"reference_id": "r0", "metadata": md}], "level": "item"}),
        (f"/v1/nucleus/dataset/{ds}/append", {"items": [{"reference_id": "r0",
                                                         "image_url": "x", "metadata": md}],
                                              "update": True}),
        (f"/v1/nucleus/dataset/{ds}/annotate", {"annotations": [box]}),
        (f"/v1/nucleus/modelRun/{run}/predict", {"annotations": [box]}),
        ("/v1/nucleus/models/add", {"name": "m3", "reference_id": "m3", "metadata": catalog_md}),
        (f"/v1/nucleus/dataset/{ds}/modelRun/create", {"reference_id": "m", "name": "r3",
                                                       "metadata": catalog_md}),
    ]


@pytest.mark.parametrize("how", ["deep", "very deep", "big"])
def test_deep_or_big_metadata_is_refused_everywhere(server: tuple[Live, dict[str, str]],
                                                     how: str) -> None:
    live, ids = server
    md = {"deep": nested_metadata(MAX_METADATA_DEPTH + 1), "very deep": nested_metadata(300),
          "big": {"pad": "x" * MAX_METADATA_BYTES}}[how]
    catalog_md = {"pad": "x" * MAX_CATALOG_METADATA_BYTES} if how == "big" else md
    before = _state(live.service, ids)
    with httpx.Client(base_url=live.url, timeout=60,
                      headers={"Authorization": f"Bearer {live.key}"}) as h:
        for path, body in _metadata_writes(ids, md, catalog_md):
            answer = h.post(path, json=body)
            assert answer.status_code in (413, 422), (path, answer.text[:300])
            assert answer.json()["error"] in ("bad_metadata", "batch_rejected", "too_large"), \
                (path, answer.text[:300])
        _readable(h, ids)
    assert _state(live.service, ids) == before


def test_metadata_at_the_limits_is_kept(server: tuple[Live, dict[str, str]]) -> None:
    live, ids = server
    deepest = nested_metadata(MAX_METADATA_DEPTH)
    biggest = {"pad": "x" * (MAX_METADATA_BYTES - len('{"pad":""}'))}
    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {live.key}"}) as h:
        for md in (deepest, biggest):
            answer = h.post(f"/api/v1/datasets/{ids['ds']}/items/metadata",
                            json={"updates": [{"reference_id": "r0", "metadata": md}],
                                  "replace": True})
            assert answer.status_code == 200, answer.text[:300]
            got = h.get(f"/api/v1/datasets/{ids['ds']}/item?reference_id=r0").json()
            assert got["item"]["metadata"] == md
        # Each update within the limit, their merge past it: refused, nothing kept.
        answer = h.post(f"/api/v1/datasets/{ids['ds']}/items/metadata",
                        json={"updates": [{"reference_id": "r0", "metadata": {"more": "y"}}]})
        assert answer.status_code == 422, answer.text[:300]
        _readable(h, ids)


# --- content types and the 401 challenge ---------------------------------------------


def _writes(routes: list[Any], prefix: str = "") -> list[tuple[str, str]]:
    """(method, path) of every state-changing route, path parameters filled in."""
    out = []
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI >= 0.16x
        if included is not None:
            out += _writes(included.routes, prefix + route.include_context.prefix)
        elif isinstance(route, APIRoute):
            for method in sorted(route.methods & {"POST", "PUT", "PATCH", "DELETE"}):
                out.append((method, re.sub(r"\{[^}]+\}", "x", prefix + route.path)))
    return out


def test_writes_take_only_json_or_their_uploads(live: Live) -> None:
    writes = _writes(live.app.routes)
    assert len(writes) > 40
    h = {"Authorization": f"Bearer {live.key}"}
    forms = [("text/plain", b'{"items": []}'), ("application/x-www-form-urlencoded", b"a=b"),
             ("multipart/form-data; boundary=b", b"--b--\r\n"), ("", b'{"name": "x"}')]
    with httpx.Client(base_url=live.url, headers=h) as client:
        for method, path in writes:
            if path.startswith("/v1/nucleus/upload/"):  # the signed URL: no ambient key
                continue
            multipart = path in ("/api/v1/uploads", "/v1/nucleus/dataset/x/append",
                                 "/v1/nucleus/dataset/x/annotate",
                                 "/v1/nucleus/modelRun/x/predict",
                                 "/v1/nucleus/dataset/x/model/x/uploadPredictions")
            for ctype, body in forms:
                if multipart and ctype.startswith("multipart/"):
                    continue
                headers = {"Content-Type": ctype} if ctype else {}
                answer = client.request(method, path, content=body, headers=headers)
                assert answer.status_code == 415, (method, path, ctype, answer.text)
                assert answer.json()["error"] == "unsupported_media_type"
        # A DELETE without a body needs no type; JSON is what every write takes.
        assert client.delete("/api/v1/datasets/ds_none").status_code == 404
        assert client.post("/api/v1/datasets", json={"name": "ok"}).status_code == 201
        answer = client.post("/api/v1/datasets", content=b'{"name": "ok2"}',
                             headers={"Content-Type": "Application/JSON; charset=utf-8"})
        assert answer.status_code == 201


def test_no_browser_challenge(live: Live) -> None:
    for path in ("/api/v1/datasets", "/v1/nucleus/dataset"):
        answer = httpx.get(f"{live.url}{path}")
        assert answer.status_code == 401
        assert not answer.headers.get("www-authenticate", "").lower().startswith("basic")


def test_an_unexpected_error_keeps_the_connection(live: Live) -> None:
    class Broken:
        def list_datasets(self) -> None:
            raise RuntimeError("boom")

    live.app.dependency_overrides[get_service] = lambda: Broken()
    host, port = live.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    headers = {"Authorization": f"Bearer {live.key}"}
    try:
        conn.request("GET", "/api/v1/datasets", headers=headers)
        answer = conn.getresponse()
        assert answer.status == 500
        assert json.loads(answer.read()) == {"error": "internal",
                                             "detail": "internal server error"}
        live.app.dependency_overrides.clear()
        conn.request("GET", "/api/v1/datasets", headers=headers)  # same socket
        assert conn.getresponse().status == 200
    finally:
        conn.close()
        live.app.dependency_overrides.clear()


def test_a_body_that_is_not_utf8_is_a_422(live: Live) -> None:
    h = {"Authorization": f"Bearer {live.key}", "Content-Type": "application/json"}
    for raw in (b'{"name": "\xff"}', b'{"name": "\xed\xa0\x80"}'):  # the second: U+D800
        answer = httpx.post(f"{live.url}/api/v1/datasets", content=raw, headers=h)
        assert answer.status_code == 422, answer.text
    # An astral character spelled as a surrogate pair is text: kept.
    answer = httpx.post(f"{live.url}/api/v1/datasets", content=b'{"name": "\\ud83d\\ude00"}',
                        headers=h)
    assert answer.status_code == 201 and answer.json()["name"] == "\U0001f600"


# --- found by tests/server/test_nucleus_properties.py --------------------------------

NOT_TEXT = {"number": "5", "object": '{"a": 1}', "array": "[1]", "boolean": "true"}


@pytest.mark.parametrize("value", NOT_TEXT)
@pytest.mark.parametrize("route", ["/v1/nucleus/dataset/{ds}/append",
                                   "/v1/nucleus/dataset/{ds}/append?async=1",
                                   "/api/v1/datasets/{ds}/items"])
def test_an_item_whose_reference_id_is_not_text_is_reported(
        server: tuple[Live, dict[str, str]], route: str, value: str) -> None:
    # An object or a list as reference_id was a 500 (unhashable, looking for duplicates);
    # a number was stored nowhere and reported as "has no reference_id".
    live, ids = server
    before = _state(live.service, ids)
    bad = f'{{"reference_id": {NOT_TEXT[value]}, "image_url": "x.jpg"}}'
    body = f'{{"items": [{ITEM}, {bad}]}}'
    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {live.key}",
                                                  "Content-Type": "application/json"}) as h:
        answer = h.post(route.format(**ids), content=body.encode())
        assert answer.status_code == 422, answer.text
        assert re.search(r"#1\b|\[1\]|\.1\b", answer.json()["detail"]), answer.text
        _readable(h, ids)
    assert _state(live.service, ids) == before


def test_the_service_reports_a_reference_id_that_is_not_text(
        server: tuple[Live, dict[str, str]]) -> None:
    from ocula import DatasetItem
    from ocula.errors import BatchError

    live, ids = server
    before = _state(live.service, ids)
    with pytest.raises(BatchError) as err:
        live.service.append(ids["ds"], [DatasetItem("a.jpg", {"a": 1}),
                                        DatasetItem("b.jpg", ["r"]), DatasetItem("c.jpg", 7)])
    details = [e.message for e in err.value.errors]
    assert details == [f"item #{i}: reference_id must be text, got {kind}" for i, kind in
                       [(0, "dict {'a': 1}"), (1, "list ['r']"), (2, "int 7")]]
    assert _state(live.service, ids) == before


@pytest.mark.parametrize("ref", ["n\n", "a\nb", "\n", "tab\tand\r\n"])
def test_a_reference_id_with_a_newline_is_found_by_its_path(
        server: tuple[Live, dict[str, str]], tmp_path: Path, ref: str) -> None:
    # Starlette's {x:path} is ".*", which stops at a newline, and the route's "$" then
    # matched before a final one: refloc/n%0A looked up "n" (or no route at all).
    from urllib.parse import quote

    from ocula import DatasetItem

    live, ids = server
    image = make_images(tmp_path / "nl", 1)[0].read_bytes()
    live.service.append(ids["ds"], [DatasetItem("nl.jpg", ref)], uploads={ref: image})
    other = ref.replace("\n", "") or "x"  # what the path used to find instead
    live.service.append(ids["ds"], [DatasetItem("n.jpg", other)], uploads={other: image})
    base = f"/v1/nucleus/dataset/{ids['ds']}/refloc/{quote(ref, safe='')}"
    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {live.key}"}) as h:
        answer = h.get(base)
        assert answer.status_code == 200, answer.text
        assert answer.json()["item"]["reference_id"] == ref
        run = h.get(f"/v1/nucleus/modelRun/{ids['run']}/refloc/{quote(ref, safe='')}")
        assert run.status_code == 200 and run.json() == {"annotations": {}}, run.text
        assert h.delete(base).status_code == 200
        assert h.get(base).status_code == 404
    assert ref not in {i["reference_id"] for i in live.service.list_items(ids["ds"])["items"]}
    assert other in {i["reference_id"] for i in live.service.list_items(ids["ds"])["items"]}


@pytest.mark.parametrize("mode", ['{"a": 1}', "[1]", "5", "true"])
def test_a_patch_mode_that_is_not_text_is_a_422(server: tuple[Live, dict[str, str]],
                                                mode: str) -> None:
    # An object or a list was a 500: it was looked up in the dict of modes.
    live, ids = server
    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {live.key}",
                                                  "Content-Type": "application/json"}) as h:
        answer = h.post(f"/v1/nucleus/dataset/{ids['ds']}/queryObjectsPage",
                        content=f'{{"patch_mode": {mode}}}'.encode())
        assert answer.status_code == 422, answer.text
        assert "patch_mode" in answer.json()["detail"]
