"""The REST API's own guarantees: keys, JSON errors without stack traces, size limits,
no server-side paths for remote clients, image routes, jobs."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from ocula import BoxAnnotation, BoxPrediction, DatasetItem
from ocula.client.client import Client
from ocula.client.http import HttpBackend
from ocula.core.services import Service
from ocula.errors import AuthError, BatchError, ImageError, NotFoundError, ValidationError
from ocula.server import ServerSettings, create_app
from ocula.server.api.media import sign_image
from ocula.server.background import serve_in_background
from ocula.server.guard import loopback_host
from tests.conftest import make_images
from tests.server.conftest import Live


def _basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


def test_every_route_needs_a_live_key(live: Live) -> None:
    api = f"{live.url}/api/v1"
    assert httpx.get(f"{api}/health").json() == {"status": "ok"}
    answer = httpx.get(f"{api}/datasets")
    assert answer.status_code == 401 and answer.json()["error"] == "unauthorized"
    # A Basic challenge would make a browser prompt and then send the key with a page's
    # cross-site requests; clients send their key unasked.
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert httpx.get(f"{api}/datasets", headers={"Authorization": _basic(live.key)}).json() == []
    assert httpx.get(f"{api}/datasets",
                     headers={"Authorization": f"Bearer {live.key}"}).status_code == 200
    assert httpx.get(f"{api}/datasets", headers={"Authorization": "Basic !!"}).status_code == 401
    assert httpx.get(f"{api}/items/di_x/image").status_code == 401
    second = live.service.create_key("second")["key"]
    with Client(live.url, api_key=second) as c:
        c.create_dataset("ok")
        live.service.revoke_key("second")
        with pytest.raises(AuthError):
            c.list_datasets()
    assert [k["revoked"] for k in live.service.list_keys()] == [False, True]


def test_no_auth_mode(tmp_path: Path) -> None:
    service = Service.open(tmp_path / "home", local_roots=[])
    with serve_in_background(create_app(service, auth=False)) as url, Client(url) as c:
        assert c.create_dataset("open").name == "open"
        # Without keys only loopback names are answered: a page whose DNS name is
        # rebound to 127.0.0.1 gets nothing, through the app or the API.
        for host in ("evil.example", "evil.example:80", "10.0.0.1", "127.0.0.1.evil.example"):
            answer = httpx.get(f"{url}/api/v1/datasets", headers={"Host": host})
            assert answer.status_code == 400 and answer.json()["error"] == "bad_host", host
        port = url.rsplit(":", 1)[1]
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", "127.0.0.2"):
            assert httpx.get(f"{url}/api/v1/datasets", headers={"Host": host}).json()[0][
                "name"] == "open", host
    service.close()
    # With keys, the host is not the guard: a key is.
    assert loopback_host("[::1]:8000") and loopback_host("[::1]")
    assert not loopback_host("[::1") and not loopback_host("::1:80:x")


def test_errors_are_json_with_the_right_status(live: Live) -> None:
    h = {"Authorization": f"Bearer {live.key}"}
    api = f"{live.url}/api/v1"
    cases = [
        (httpx.get(f"{api}/nope", headers=h), 404, "not_found"),
        (httpx.delete(f"{api}/datasets", headers=h), 405, "method_not_allowed"),
        (httpx.post(f"{api}/datasets", headers=h, json={"nme": "x"}), 422, "invalid"),
        (httpx.post(f"{api}/datasets", headers={**h, "Content-Type": "application/json"},
                    content=b"{not json"), 422, "invalid"),
        (httpx.post(f"{api}/datasets", headers=h, content=b"{not json"), 415,
         "unsupported_media_type"),
        (httpx.get(f"{api}/datasets/ds_missing/info", headers=h), 404, "not_found"),
        (httpx.get(f"{api}/datasets/x/items", params={"limit": 10**30}, headers=h), 422,
         "invalid"),
    ]
    for answer, status, code in cases:
        assert (answer.status_code, answer.json()["error"]) == (status, code), answer.text
        assert "Traceback" not in answer.text
    first = httpx.post(f"{api}/datasets", headers=h, json={"name": "d"}).json()
    second = httpx.post(f"{api}/datasets", headers=h, json={"name": "d"}).json()
    assert first["id"] != second["id"]  # names are labels; ids are identity
    answer = httpx.get(f"{api}/datasets/d/info", headers=h)
    assert answer.status_code == 409 and answer.json()["error"] == "ambiguous_name"
    assert answer.json()["info"]["ids"] == [first["id"], second["id"]]


def test_digits_that_int_refuses_are_not_numbers(live: Live, tmp_path: Path) -> None:
    """"³" is a digit to str.isdigit() but not to int(): a version or a signed URL's
    expiry written with it is a name or a refusal, never a 500 (found by the fuzzer)."""
    _, ds_id, item_id = _one_image(live, tmp_path, (32, 32))
    api = f"{live.url}/api/v1"
    h = {"Authorization": f"Bearer {live.key}"}
    answers = [httpx.get(f"{api}/datasets/{ds_id}/annotations", params={"version": v},
                         headers=h) for v in ("³", "١")]
    assert answers[0].status_code == 404  # the name of no version
    assert answers[1].status_code == 200  # an Arabic-Indic 1, which int() reads
    answer = httpx.get(f"{api}/items/{item_id}/image", params={"exp": "³", "sig": "0" * 64})
    assert answer.status_code == 401


def test_unexpected_errors_are_500_json_without_traceback(tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    class Broken(Service):
        def list_datasets(self) -> list[dict[str, object]]:
            raise RuntimeError("secret internals")

    service = Broken.open(tmp_path / "home", local_roots=[])
    with serve_in_background(create_app(service, auth=False)) as url:
        answer = httpx.get(f"{url}/api/v1/datasets")
    assert answer.status_code == 500
    assert answer.json() == {"error": "internal", "detail": "internal server error"}
    assert "secret" not in answer.text
    assert "secret internals" in caplog.text  # logged server-side
    service.close()


def test_body_size_limits(tmp_path: Path) -> None:
    service = Service.open(tmp_path / "home", local_roots=[])
    settings = ServerSettings(max_json_bytes=1000, max_upload_bytes=5000)
    with serve_in_background(create_app(service, auth=False, settings=settings)) as url:
        api = f"{url}/api/v1"
        big = {"name": "x", "metadata": {"pad": "y" * 2000}}
        answer = httpx.post(f"{api}/datasets", json=big)
        assert answer.status_code == 413 and answer.json()["error"] == "too_large"
        # A chunked body (no Content-Length) is cut off as it streams.
        answer = httpx.post(f"{api}/uploads", content=iter([b"x" * 4000] * 3),
                            headers={"Content-Type": "multipart/form-data; boundary=b"})
        assert answer.status_code == 413
        answer = httpx.post(f"{api}/uploads", files={"file": ("a.jpg", b"x" * 6000)})
        assert answer.status_code == 413
        assert httpx.post(f"{api}/datasets", json={"name": "small"}).status_code == 201
    service.close()


def test_server_never_reads_server_side_paths(live: Live, tmp_path: Path) -> None:
    secret = make_images(tmp_path / "server-only", 1)[0]
    api = f"{live.url}/api/v1"
    h = {"Authorization": f"Bearer {live.key}"}
    httpx.post(f"{api}/datasets", headers=h, json={"name": "d"})
    # A hand-made request naming a path on the server, with no upload.
    answer = httpx.post(f"{api}/datasets/d/items", headers=h, json={
        "items": [{"image_url": str(secret), "reference_id": "x"}]})
    assert answer.status_code == 422
    assert "outside the configured media roots" in answer.text
    answer = httpx.post(f"{api}/datasets/d/items", headers=h, json={
        "items": [{"image_url": "a.jpg", "reference_id": "x"}], "uploads": {"x": "../../etc"}})
    assert answer.status_code == 422 and "malformed upload id" in answer.text


def test_media_roots_allow_listed_folders(tmp_path: Path) -> None:
    shared = make_images(tmp_path / "nas", 2)
    service = Service.open(tmp_path / "home", local_roots=[tmp_path / "nas"])
    elsewhere = make_images(tmp_path / "private", 1)[0]
    with serve_in_background(create_app(service, auth=False)) as url:
        http = HttpBackend(url)
        http.create_dataset("d")
        # Sent without upload (as a path on the server): allowed only under a root.
        body = {"items": [{"image_url": str(shared[0]), "reference_id": "nas"},
                          {"image_url": str(elsewhere), "reference_id": "private"}],
                "on_error": "skip"}
        result = http._call("POST", "/datasets/d/items", body=body)
        assert result["new_items"] == 1 and result["errors"][0]["reference_id"] == "private"
        http.close()
    service.close()


def _one_image(live: Live, tmp_path: Path, size: tuple[int, int]) -> tuple[Path, str, str]:
    """A dataset of one real image on the live server: its path, the dataset and item ids."""
    path = make_images(tmp_path / "imgs", 1, size=size)[0]
    with Client(live.url, api_key=live.key) as c:
        ds = c.create_dataset("d")
        ds.append([DatasetItem(str(path), "a")])
        return path, ds.id, ds.items[0].item_id


def test_images_thumbnails_and_signed_urls(live: Live, tmp_path: Path) -> None:
    path, _, item_id = _one_image(live, tmp_path, (640, 480))
    api = f"{live.url}/api/v1"
    h = {"Authorization": f"Bearer {live.key}"}
    image = httpx.get(f"{api}/items/{item_id}/image", headers=h)
    assert image.content == path.read_bytes() and image.headers["content-type"] == "image/jpeg"
    thumb = httpx.get(f"{api}/items/{item_id}/thumbnail", params={"size": 64}, headers=h)
    assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"
    kid = live.service.key_id(live.key)
    signed = sign_image(live.app.state.signer, item_id, kid, 60)
    assert httpx.get(f"{api}/items/{item_id}/image", params=signed).status_code == 200
    forged = {**signed, "sig": "0" * 64}
    assert httpx.get(f"{api}/items/{item_id}/image", params=forged).status_code == 401
    assert httpx.get(f"{api}/items/di_missing/image", headers=h).status_code == 404


def test_large_append_runs_as_a_job(live: Live, tmp_path: Path) -> None:
    paths = make_images(tmp_path / "imgs", 3)
    http = HttpBackend(live.url, api_key=live.key, async_append_from=2)
    http.create_dataset("d")
    items = [DatasetItem(str(p), f"r{i}") for i, p in enumerate(paths)]
    # The same file twice is uploaded once.
    items.append(DatasetItem(str(paths[0]), "again"))
    result = http.append("d", items)
    assert result["new_items"] == 4 and result["errors"] == []
    jobs = http.list_jobs()
    assert jobs[0]["type"] == "append" and jobs[0]["status"] == "Completed"
    assert jobs[0]["completed_steps"] == jobs[0]["total_steps"] == 4
    with pytest.raises(BatchError) as err:
        http.append("d", [DatasetItem(str(tmp_path / "gone.jpg"), "x"),
                          DatasetItem(str(paths[1]), "y")])
    assert isinstance(err.value.errors[0], ImageError)
    assert http.list_jobs()[0]["status"] == "Errored_User"
    with pytest.raises(NotFoundError):
        http.append("missing", items)
    assert list((live.service.media.root / "uploads").iterdir()) == []
    http.close()


def test_commit_runs_as_a_job(live: Live, tmp_path: Path) -> None:
    paths = make_images(tmp_path / "imgs", 1)
    http = HttpBackend(live.url, api_key=live.key)
    with Client(live.url, api_key=live.key) as c:
        ds = c.create_dataset("d")
        ds.append([DatasetItem(str(paths[0]), "a")])
        ds.annotate([BoxAnnotation("car", 1, 1, 10, 10, reference_id="a")])
        run = c.add_model("m", "m").create_run("r", ds, [BoxPrediction(
            "car", 1, 1, 10, 10, reference_id="a", confidence=0.9)])
    if hasattr(live.service, "commit_run"):
        result = http.commit_run(run.id, class_agnostic=False)
        assert result["model_run_id"] == run.id
        assert http.run_info(run.id)["committed"] is True
    else:
        with pytest.raises(Exception, match="not available"):
            http.commit_run(run.id)
    with pytest.raises(NotFoundError):
        http.commit_run("run_missing")
    with pytest.raises(ValidationError):
        http._call("POST", f"/runs/{run.id}/commit",
                   body={"allowed_label_matches": [{"ground_truth_label": "car"}]})
    http.close()


def test_nucleus_appends_cannot_name_server_paths(live: Live, tmp_path: Path) -> None:
    secret = make_images(tmp_path / "server-only", 1)[0]
    base = f"{live.url}/v1/nucleus"
    auth = (live.key, "")
    ds = httpx.post(f"{base}/dataset/create", auth=auth, json={"name": "n"}).json()
    answer = httpx.post(f"{base}/dataset/{ds['dataset_id']}/append", auth=auth, json={
        "items": [{"image_url": str(secret), "reference_id": "x"}]}).json()
    assert answer["new_items"] == 0
    assert answer["upload_errors"] == 1
    assert "outside the configured media roots" in answer["errors"][0]["detail"]


def test_a_job_outlives_the_request_that_started_it(live: Live, tmp_path: Path) -> None:
    paths = make_images(tmp_path / "imgs", 2)
    h = {"Authorization": f"Bearer {live.key}"}
    with httpx.Client(base_url=f"{live.url}/api/v1", headers=h) as first:
        first.post("/datasets", json={"name": "d"})
        staged = first.post("/uploads", files=[("file", (p.name, p.read_bytes()))
                                               for p in paths]).json()["uploads"]
        job = first.post("/datasets/d/items", params={"async": "true"}, json={
            "items": [{"image_url": p.name, "reference_id": p.name} for p in paths],
            "uploads": {p.name: s["upload_id"] for p, s in zip(paths, staged, strict=True)},
        }).json()
    # That connection is gone; another client follows the job to its end.
    http = HttpBackend(live.url, api_key=live.key)
    assert http._wait(http.job_info(job["job_id"]))["new_items"] == 2
    assert http.dataset_info("d")["length"] == 2
    http.close()


def test_slice_export_route_formats_what_the_service_gives(live: Live, tmp_path: Path) -> None:
    """The COCO of a slice is made in the server adapter from ``slice_contents``."""
    h = {"Authorization": f"Bearer {live.key}"}
    api = f"{live.url}/api/v1"
    paths = make_images(tmp_path / "exp", 2)
    with Client(live.url, api_key=live.key) as c:
        ds = c.create_dataset("exp")
        ds.append([DatasetItem(str(p), f"e{i}") for i, p in enumerate(paths)])
        ds.annotate([BoxAnnotation("car", 1, 1, 5, 5, reference_id="e0")])
        sl = ds.create_slice("one", ["e0"])
    coco = httpx.get(f"{api}/slices/{sl.id}/export", headers=h).json()
    assert [i["file_name"] for i in coco["images"]] == ["e0"]
    assert [a["bbox"] for a in coco["annotations"]] == [[1, 1, 5, 5]]
    bad = httpx.get(f"{api}/slices/{sl.id}/export", headers=h, params={"format": "voc"})
    assert bad.status_code == 422 and "unknown export format" in bad.json()["detail"]
    assert httpx.get(f"{api}/slices/slc_nope/export", headers=h).status_code == 404


def test_building_the_app_writes_nothing_starting_it_fails_old_jobs(tmp_path: Path) -> None:
    """Startup work (failing jobs a dead process left running) belongs to the server's
    start, not to create_app."""
    service = Service.open(tmp_path / "home", local_roots=[])
    try:
        job = service.create_job("commit", message="left running")["job_id"]
        service.update_job(job, status="Running")
        app = create_app(service)
        assert service.job_info(job)["status"] == "Running"
        with serve_in_background(app):
            assert service.job_info(job)["status"] != "Running"
    finally:
        service.close()
