"""Items given by http(s) URL: fetched (from a real local HTTP server), stored
content-addressed, and clear errors for dead links, non-images and slow servers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import ocula
from ocula import DatasetItem
from ocula import fetch as media
from ocula.errors import BatchError, ImageError
from tests.conftest import make_images


class _Handler(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path.startswith("/slow"):
            time.sleep(2)
        super().do_GET()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the timeout test hangs up on purpose


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    make_images(root, 2, size=(40, 30))
    (root / "notes.txt").write_text("not an image")
    server = _QuietServer(("127.0.0.1", 0), partial(_Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def test_url_items_are_fetched_and_stored(client: ocula.Client, http_root,
                                          tmp_path: Path) -> None:
    base, root = http_root
    ds = client.create_dataset("web")
    local = make_images(tmp_path / "local", 1)[0]
    out = ds.append([DatasetItem(f"{base}/img_0000.jpg", "a"), DatasetItem(str(local), "l"),
                     DatasetItem(f"{base}/img_0001.jpg", "b")])
    assert out["new_items"] == 3
    # URLs are fetched in parallel; the items still keep the order they were given in.
    assert [it.reference_id for it in ds.items] == ["a", "l", "b"]
    item = ds.refloc("a")["item"]
    assert (item.width, item.height) == (40, 30)
    assert item.image_location == f"{base}/img_0000.jpg"
    stored = sorted((tmp_path / "home" / "media").rglob("*.jpeg"))
    assert len(stored) == 2
    assert stored[0].read_bytes() in {p.read_bytes() for p in root.glob("*.jpg")}


def test_dead_links_and_non_images(client: ocula.Client, http_root) -> None:
    base, _ = http_root
    ds = client.create_dataset("dead")
    with pytest.raises(BatchError) as err:
        ds.append([DatasetItem(f"{base}/missing.jpg", "404"),
                   DatasetItem(f"{base}/notes.txt", "txt"),
                   DatasetItem("http://127.0.0.1:9/refused.jpg", "refused")])
    by_ref = {e.reference_id: e for e in err.value.errors}
    assert set(by_ref) == {"404", "txt", "refused"}
    assert all(isinstance(e, ImageError) for e in by_ref.values())
    assert "HTTP 404" in by_ref["404"].message
    assert ds.info()["length"] == 0


def test_fetch_times_out(http_root) -> None:
    base, _ = http_root
    with pytest.raises(ImageError, match="ReadTimeout|timed out|Timeout"):
        media.fetch_url(f"{base}/slow/img_0000.jpg", timeout=0.5)


def test_server_mode_refuses_private_urls(http_root, tmp_path: Path) -> None:
    from ocula.core.services import Service

    base, _ = http_root
    service = Service.open(tmp_path / "srv", local_roots=[], allow_private_urls=False,
                           fetcher=media.fetch_url)
    try:
        ds = service.create_dataset("ssrf")
        with pytest.raises(BatchError) as err:
            service.append(ds["id"], [DatasetItem(f"{base}/img_0000.jpg", "inside"),
                                      DatasetItem("http://169.254.169.254/latest/x.jpg",
                                                  "metadata")])
        messages = {e.reference_id: e.message for e in err.value.errors}
        assert set(messages) == {"inside", "metadata"}
        assert all("not a public address" in m for m in messages.values())
    finally:
        service.close()


def test_a_service_without_a_fetcher_refuses_url_items(tmp_path: Path) -> None:
    """The core holds no HTTP client: a service opened without one says so per item."""
    from ocula.core.services import Service

    service = Service.open(tmp_path / "bare")
    try:
        ds = service.create_dataset("bare")
        with pytest.raises(BatchError, match="opened without a URL fetcher"):
            service.append(ds["id"], [DatasetItem("http://127.0.0.1:9/x.jpg", "x")])
    finally:
        service.close()
