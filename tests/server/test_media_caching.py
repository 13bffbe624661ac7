"""Images and thumbnails carry an ETag made from their content and answer a matching
``If-None-Match`` with a 304; a URL that names the content (``v=``) is cached for good,
any other is revalidated. A new image under the same item gets a new tag and thumbnail.
On both databases (the tag of a stored copy is read from its item row)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from ocula.core.services import Service
from ocula.core.types import DatasetItem
from ocula.server import ServerSettings, create_app
from ocula.server.api.media import FOREVER, REVALIDATE
from ocula.server.background import serve_in_background
from tests.conftest import make_images


@pytest.fixture
def site(service: Service) -> Iterator[str]:
    app = create_app(service, auth=False, settings=ServerSettings(auth=False, job_workers=1))
    with serve_in_background(app) as url:
        yield f"{url}/api/v1"


@pytest.mark.parametrize("copy_media", [True, False], ids=["stored", "in-place"])
@pytest.mark.parametrize("route", ["image", "thumbnail"])
def test_etag_304_and_cache_headers(service: Service, site: str, tmp_path: Path,
                                    copy_media: bool, route: str) -> None:
    path = make_images(tmp_path / "imgs", 1, size=(640, 480))[0]
    service.create_dataset("d")
    service.append("d", [DatasetItem(str(path), "a")], copy_media=copy_media)
    item = service.get_item("d", reference_id="a")["item"]["id"]
    url = f"{site}/items/{item}/{route}"
    first = httpx.get(url)
    assert first.status_code == 200 and first.content
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 20
    assert first.headers["cache-control"] == REVALIDATE
    assert first.headers["x-content-type-options"] == "nosniff"
    if copy_media:  # a stored copy's tag is its content hash
        stored = [p.name for p in (service.media.root / "media").glob("*/*")]
        assert [name.split(".")[0] for name in stored] == [etag.strip('"')]

    again = httpx.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    other = httpx.get(url, headers={"If-None-Match": '"something-else", W/"x"'})
    assert other.status_code == 200 and other.content == first.content
    listed = httpx.get(url, headers={"If-None-Match": f'"x", {etag}'})
    assert listed.status_code == 304

    named = httpx.get(url, params={"v": etag.strip('"')})
    assert named.status_code == 200 and named.headers["cache-control"] == FOREVER
    assert named.content == first.content
    stale = httpx.get(url, params={"v": "0" * 40})
    assert stale.headers["cache-control"] == REVALIDATE


@pytest.mark.parametrize("copy_media", [True, False], ids=["stored", "in-place"])
def test_a_new_image_gets_a_new_tag_and_thumbnail(service: Service, site: str,
                                                  tmp_path: Path, copy_media: bool) -> None:
    folder = tmp_path / "imgs"
    first_path, second_path = make_images(folder, 2, size=(320, 240))
    service.create_dataset("d")
    service.append("d", [DatasetItem(str(first_path), "a")], copy_media=copy_media)
    item = service.get_item("d", reference_id="a")["item"]["id"]
    url = f"{site}/items/{item}/thumbnail"
    before = httpx.get(url)
    if copy_media:
        service.append("d", [DatasetItem(str(second_path), "a")], update=True,
                       copy_media=True)
    else:  # the same file rewritten in place
        Image.new("RGB", (320, 240), (250, 10, 10)).save(first_path, "JPEG")
    after = httpx.get(url, headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200
    assert after.headers["etag"] != before.headers["etag"]
    assert after.content != before.content
    # The thumbnail shows the new pixels (make_images' second colour, or the red one).
    expected = (37, 91, 13) if copy_media else (250, 10, 10)
    with Image.open(io.BytesIO(after.content)) as img:
        got = img.convert("RGB").getpixel((img.width // 2, img.height // 2))
    assert all(abs(a - b) <= 8 for a, b in zip(got, expected, strict=True)), got
