"""``ocula.launch_app``: the web app on an embedded catalog, from Python."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import ocula
from ocula.server.launch import stop_app
from tests.web.conftest import shoot

pw = pytest.importorskip("playwright.sync_api")
expect = pw.expect


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Any]:
    from PIL import Image

    Image.new("RGB", (320, 240), (90, 90, 120)).save(tmp_path / "a.jpg")
    with ocula.Client(home=tmp_path / "home") as client:
        ds = client.create_dataset("notebook set")
        ds.append([ocula.DatasetItem(str(tmp_path / "a.jpg"), "frame-1")])
        ds.annotate([ocula.BoxAnnotation("cat", 40, 30, 100, 80, reference_id="frame-1")])
        yield client
        stop_app(client)


def test_launch_app_serves_the_dataset(anon: Any, client: Any) -> None:
    ds = client.get_dataset("notebook set")
    url = ocula.launch_app(ds)
    assert url.startswith("http://127.0.0.1:") and url.endswith(f"/datasets/{ds.id}")
    base = url.split("/datasets/")[0]
    assert ocula.launch_app(client) == base + "/"  # the same app, not a second one
    # No login (keys off, loopback only), and the grid draws the embedded image.
    anon.goto(url)
    anon.wait_for_selector(".tile rect.box")
    assert anon.locator(".ds-name").inner_text() == "notebook set"
    expect(anon.locator(".tile img")).to_have_js_property("complete", True)
    assert anon.locator(".tile img").evaluate("i => i.naturalWidth") > 0
    anon.goto(base + "/")
    assert anon.get_by_text("notebook set", exact=True).is_visible()
    shoot(anon, "launch-app")
    # What the client writes shows at once: the app runs on the client's own catalog.
    client.create_dataset("written later")
    anon.reload()
    assert anon.get_by_text("written later", exact=True).is_visible()
    # A request for another host name (DNS rebinding to 127.0.0.1) is refused.
    assert httpx.get(base + "/", headers={"Host": "evil.example"}).status_code == 400
    assert not anon.js_errors


def test_stop_app(client: Any) -> None:
    url = ocula.launch_app(client)
    assert httpx.get(url).status_code == 200
    assert stop_app(client) and not stop_app(client)
    with pytest.raises(httpx.ConnectError):
        httpx.get(url)
