"""Signed image URLs stay the same within a window: two reads of one item, a second or
more apart, name its image by one URL (the Nucleus client compares items read twice),
and that URL still opens the image without a key."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from ocula.server.api.media import url_window
from ocula.server.signing import Signer
from tests.core.test_remote_media import http_root  # noqa: F401  (fixture)

nucleus = pytest.importorskip(
    "nucleus", reason="scale-nucleus is not installed (pip install scale-nucleus==0.22.3)")


def test_expiry_is_rounded_up_to_the_window(tmp_path: Path) -> None:
    signer = Signer.for_home(tmp_path)
    first = signer.sign("image:x", 600, kid="k", window_s=60, now=1_000_000.2)
    later = signer.sign("image:x", 600, kid="k", window_s=60, now=1_000_019.9)
    assert first == later and int(first["exp"]) == 1_000_620
    # The next window signs a new URL; the lifetime is never shorter than asked (to
    # the second).
    nxt = signer.sign("image:x", 600, kid="k", window_s=60, now=1_000_021.0)
    assert int(nxt["exp"]) == 1_000_680 and nxt["sig"] != first["sig"]
    for at in (1_000_000.0, 1_000_019.9, 1_000_020.5):
        exp = int(signer.sign("image:x", 600, window_s=60, now=at)["exp"])
        assert at + 599 < exp < at + 660
    # Without a window, one URL per second as before.
    assert signer.sign("s", 10, now=5.5)["exp"] == "15"
    assert signer.check("image:x", first["exp"], first["sig"], kid="k") is False  # expired


def test_window_is_a_tenth_of_the_lifetime_at_most_an_hour() -> None:
    assert url_window(24 * 3600) == 3600
    assert url_window(600) == 60
    assert url_window(5) == 1


def test_two_reads_of_an_item_name_one_image_url(nc: Any, http_root: Any  # noqa: F811
                                                 ) -> None:
    base, _ = http_root
    ds = nc.create_dataset("twice")
    ds.append([nucleus.DatasetItem(image_location=f"{base}/img_000{i}.jpg",
                                   reference_id=f"r{i}") for i in range(2)],
              asynchronous=True).sleep_until_complete(verbose_std_out=False)
    first = {it.reference_id: it for it in ds.items}
    # Cross a second boundary: before, each read signed a URL expiring a second later.
    time.sleep(1.05)
    paged = {it.reference_id: it for it in ds.items_generator(page_size=1)}
    assert set(first) == set(paged) == {"r0", "r1"}
    for ref, item in first.items():
        assert paged[ref] == item
        assert ds.refloc(ref)["item"].image_location == item.image_location
    # The stable URL still opens the image, without a key.
    got = httpx.get(first["r0"].image_location, timeout=10)
    assert got.status_code == 200 and got.headers["content-type"].startswith("image/")
