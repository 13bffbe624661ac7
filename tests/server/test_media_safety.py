"""How the server reads and serves image files: checked at every read, typed 4xx for any
bad path, served by content with headers a browser cannot run, URLs that do not outlive
their purpose or their key, no server paths in answers, a private home."""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from PIL import Image
from typer.testing import CliRunner

from ocula.core.services import Service
from ocula.server import ServerSettings, create_app
from ocula.server.background import serve_in_background
from ocula.server.signing import SECRET_FILE
from tests.conftest import make_images
from tests.core.test_media_safety import bad_paths
from tests.server.test_cli import app as cli_app


class Nas:
    """A live server with a media root ``nas`` and a key, and a dataset ``d``."""

    def __init__(self, url: str, service: Service, key: str, root: Path, tmp: Path):
        self.api = f"{url}/api/v1"
        self.base = url
        self.service = service
        self.key = key
        self.root = root
        self.tmp = tmp
        self.h = {"Authorization": f"Bearer {key}"}

    def append(self, items: dict[str, Path], **body: object) -> httpx.Response:
        rows = [{"image_url": str(p), "reference_id": ref} for ref, p in items.items()]
        return httpx.post(f"{self.api}/datasets/d/items", headers=self.h, timeout=30,
                          json={"items": rows, **body})

    def item_id(self, ref: str) -> str:
        return str(self.service.get_item("d", reference_id=ref)["item"]["id"])


@pytest.fixture
def nas(tmp_path: Path) -> Iterator[Nas]:
    root = tmp_path / "nas"
    root.mkdir()
    service = Service.open(tmp_path / "home", local_roots=[root])
    key = service.create_key("tests")["key"]
    service.create_dataset("d")
    with serve_in_background(create_app(service, settings=ServerSettings())) as url:
        yield Nas(url, service, key, root, tmp_path)
    service.close()


def test_a_swapped_link_never_serves_the_secret(nas: Nas) -> None:
    real = make_images(nas.root, 1)[0]
    link = nas.root / "link.jpg"
    link.symlink_to(real)
    assert nas.append({"a": link}).status_code == 200
    item = nas.item_id("a")
    image = f"{nas.api}/items/{item}/image"
    assert httpx.get(image, headers=nas.h).content == real.read_bytes()
    secret = (nas.tmp / "home" / SECRET_FILE).read_bytes()
    outside = make_images(nas.tmp / "private", 1)[0]
    notes = nas.root / "notes.txt"
    notes.write_text("not an image")
    for target in (nas.tmp / "home" / SECRET_FILE, outside, notes):
        link.unlink()
        link.symlink_to(target)
        for route in ("image", "thumbnail"):
            answer = httpx.get(f"{nas.api}/items/{item}/{route}", headers=nas.h)
            assert answer.status_code == 404, (target, route, answer.status_code)
            assert answer.json()["error"] == "not_found"
            assert secret not in answer.content and str(nas.tmp) not in answer.text


def test_bad_paths_are_422_and_skippable(nas: Nas) -> None:
    paths = bad_paths(nas.root)
    good = nas.root / "img_0000.jpg"
    try:
        answer = nas.append(paths)
        assert answer.status_code == 422, answer.text
        errors = answer.json()["info"]["errors"]
        assert {e["reference_id"] for e in errors} == set(paths)
        assert {e["error"] for e in errors} == {"bad_image"}
        assert str(nas.tmp) not in answer.text  # errors name items, not server folders
        answer = nas.append({**paths, "good": good}, on_error="skip")
        assert answer.status_code == 200 and answer.json()["new_items"] == 1
        assert {e["reference_id"] for e in answer.json()["errors"]} == set(paths)
    finally:  # had the server opened the FIFO, this lets its thread go
        os.close(os.open(paths["fifo"], os.O_RDWR | os.O_NONBLOCK))


def test_images_are_served_by_content_with_safe_headers(nas: Nas) -> None:
    jpeg = make_images(nas.root, 1)[0]
    poly = nas.root / "poly.html"
    poly.write_bytes(jpeg.read_bytes())
    png = nas.root / "really-a-png.jpg"
    Image.new("RGB", (8, 8)).save(png, "PNG")
    assert nas.append({"poly": poly, "png": png}).status_code == 200
    for ref, mime in (("poly", "image/jpeg"), ("png", "image/png")):
        answer = httpx.get(f"{nas.api}/items/{nas.item_id(ref)}/image", headers=nas.h)
        assert answer.headers["content-type"] == mime
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["content-security-policy"] == "default-src 'none'; sandbox"
        assert int(answer.headers["content-length"]) == len(answer.content)
        thumb = httpx.get(f"{nas.api}/items/{nas.item_id(ref)}/thumbnail", headers=nas.h)
        assert thumb.headers["content-type"] == "image/jpeg"
        assert thumb.headers["x-content-type-options"] == "nosniff"
        assert thumb.headers["content-security-policy"] == "default-src 'none'; sandbox"


def test_upload_urls_are_single_use_and_short_lived(nas: Nas) -> None:
    ds = nas.service.get_dataset("d")["id"]
    signed = httpx.get(f"{nas.base}/v1/nucleus/dataset/{ds}/signedUrl/req1",
                       auth=(nas.key, "")).json()["signed_url"]
    exp = int(parse_qs(urlsplit(signed).query)["exp"][0])
    assert exp - time.time() <= ServerSettings().upload_url_ttl_s <= 15 * 60
    assert httpx.put(signed, content=b"{}\n").status_code == 200
    replay = httpx.put(signed, content=b'{"evil": 1}\n')
    assert replay.status_code == 409 and replay.json()["error"] == "conflict"
    drop = nas.tmp / "home" / "nucleus_uploads" / f"{ds}-req1.ndjson"
    assert drop.read_bytes() == b"{}\n"


def test_signed_image_urls_die_with_their_key(nas: Nas) -> None:
    make_images(nas.root, 1)
    assert nas.append({"a": nas.root / "img_0000.jpg"}).status_code == 200
    other = nas.service.create_key("other")["key"]
    urls = {}
    for key in (nas.key, other):
        loc = httpx.get(f"{nas.base}/v1/nucleus/dataset/d/loc/{nas.item_id('a')}",
                        auth=(key, "")).json()
        urls[key] = loc["item"]["image_url"]
    assert all(httpx.get(u).status_code == 200 for u in urls.values())
    nas.service.revoke_key("other")
    assert httpx.get(urls[other]).status_code == 401
    assert httpx.get(urls[nas.key]).status_code == 200
    # A signature moved to another key id, or written in odd characters, is refused.
    moved = urls[nas.key].replace("kid=", "kid=9")
    assert httpx.get(moved).status_code == 401
    assert httpx.get(urls[nas.key].split("sig=")[0] + "sig=é").status_code == 401


def test_server_answers_name_items_not_paths(nas: Nas) -> None:
    make_images(nas.root, 2)
    answer = nas.append({"gone": nas.root / "missing.jpg"})
    assert answer.status_code == 422 and "item 'gone'" in answer.text
    assert str(nas.tmp) not in answer.text
    answer = nas.append({"out": nas.tmp / "elsewhere.jpg"})
    assert "outside the configured media roots" in answer.text
    assert str(nas.tmp) not in answer.text
    assert nas.append({"a": nas.root / "img_0001.jpg"}).status_code == 200
    (nas.root / "img_0001.jpg").unlink()
    item = nas.item_id("a")
    for route in ("image", "thumbnail"):
        answer = httpx.get(f"{nas.api}/items/{item}/{route}", headers=nas.h)
        assert answer.status_code == 404 and item in answer.text
        assert str(nas.tmp) not in answer.text


def test_home_and_secret_are_private(nas: Nas) -> None:
    home = nas.tmp / "home"
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for name in (SECRET_FILE, "catalog.db"):
        assert stat.S_IMODE((home / name).stat().st_mode) == 0o600


def test_serve_refuses_a_media_root_over_its_home(tmp_path: Path) -> None:
    out = CliRunner().invoke(cli_app, ["serve", "--data", str(tmp_path / "home"),
                                       "--media-root", str(tmp_path)])
    assert out.exit_code == 2 and "overlaps" in out.output


def test_a_fifo_does_not_block_the_server(nas: Nas) -> None:
    fifo = nas.root / "pipe.jpg"
    os.mkfifo(fifo)
    released = threading.Event()

    def release_later() -> None:  # lets a blocked server thread go if the test fails
        if not released.wait(20):
            os.close(os.open(fifo, os.O_RDWR | os.O_NONBLOCK))

    threading.Thread(target=release_later, daemon=True).start()
    try:
        started = time.monotonic()
        answer = nas.append({"p": fifo})
        assert answer.status_code == 422 and time.monotonic() - started < 10
    finally:
        released.set()
