"""Local image paths that are not plain image files: each is a typed ImageError that
``on_error="skip"`` skips, embedded and with media roots, on both databases; a FIFO is
refused without being opened (opening one blocks until a writer comes)."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ocula import DatasetItem, Segment, SegmentationAnnotation
from ocula.core.services import Service
from ocula.core.store import media as m
from ocula.errors import AuthError, BatchError, ImageError, OculaError, ValidationError
from tests.conftest import make_images


def bad_paths(folder: Path) -> dict[str, Path]:
    """reference id -> a path under ``folder`` that cannot be an image file."""
    good = make_images(folder, 1)[0]
    loop = folder / "loop.jpg"
    loop.symlink_to(loop)
    fifo = folder / "pipe.jpg"
    os.mkfifo(fifo)
    return {"long": folder / ("x" * 300 + ".jpg"), "through": good / "x",
            "loop": loop, "fifo": fifo, "dir": folder}


def no_hang(fifo: Path, call: Callable[[], Any]) -> Any:
    """Run ``call``; if it still blocks on ``fifo`` after a while, open the FIFO's write
    end (which releases the reader) and fail, instead of hanging the test run."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            out["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(20)
    if worker.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(20)
        pytest.fail("reading the item's image blocked on a FIFO")
    if "error" in out:
        raise out["error"]
    return out["value"]


@pytest.mark.parametrize("roots", [False, True], ids=["embedded", "media-roots"])
def test_bad_local_paths_are_typed_and_skippable(database_url: str, tmp_path: Path,
                                                 roots: bool) -> None:
    folder = tmp_path / "nas"
    paths = bad_paths(folder)
    good = folder / "img_0000.jpg"
    service = Service.open(tmp_path / "home", database_url,
                           local_roots=[folder] if roots else None)
    try:
        service.create_dataset("d")
        items = [DatasetItem(str(p), ref) for ref, p in paths.items()]
        with pytest.raises(BatchError) as err:
            no_hang(paths["fifo"], lambda: service.append("d", items))
        by_ref = {e.reference_id: e for e in err.value.errors}
        assert set(by_ref) == set(paths)
        assert all(isinstance(e, ImageError) for e in by_ref.values()), by_ref
        assert "regular file" in by_ref["fifo"].message
        assert service.list_items("d")["items"] == []
        out = no_hang(paths["fifo"], lambda: service.append(
            "d", [*items, DatasetItem(str(good), "good")], on_error="skip"))
        assert out["new_items"] == 1
        assert {e["reference_id"] for e in out["errors"]} == set(paths)
        assert all(e["error"] == "bad_image" for e in out["errors"])
    finally:
        service.close()


def test_a_fifo_is_never_opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    opened: list[str] = []
    real_open = os.open

    def spy(path: Any, flags: int, *args: Any, **kw: Any) -> int:
        opened.append(str(path))
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", spy)
    with pytest.raises(ImageError, match="regular file"):
        no_hang(fifo, lambda: m.probe_file(fifo))
    assert str(fifo) not in opened


def test_open_image_checks_the_root_at_each_read(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "nas"
    image = make_images(root, 1)[0]
    outside = make_images(tmp_path / "private", 1)[0]
    link = root / "link.jpg"
    link.symlink_to(image)
    roots = [str(root)]
    with m.open_image(str(link), roots, "item 'a'") as fp:
        assert fp.read() == image.read_bytes()
    link.unlink()
    link.symlink_to(outside)
    with pytest.raises(ImageError, match="outside the configured media roots") as err:
        m.open_image(str(link), roots, "item 'a'")
    assert str(tmp_path) not in err.value.message
    # Swaps between resolving the path and opening it: resolving is made to return what
    # it saw before the swap, so only the checks of the opened file can refuse.
    monkeypatch.setattr(os.path, "realpath", lambda p, strict=False: str(p))
    with pytest.raises(ImageError):  # the last component became a link
        m.open_image(str(link), roots, "item 'a'")
    sub = root / "sub"
    sub.symlink_to(outside.parent)  # a folder on the way became a link out of the root
    with pytest.raises(ImageError, match="outside"):
        m.open_image(str(sub / outside.name), roots, "item 'a'")


def test_media_root_may_not_hold_the_home(tmp_path: Path) -> None:
    for root in (tmp_path, tmp_path / "home", tmp_path / "home" / "media"):
        with pytest.raises(ValidationError, match="home"):
            Service.open(tmp_path / "home", local_roots=[root])
    Service.open(tmp_path / "home", local_roots=[tmp_path / "nas"]).close()


def test_home_and_catalog_are_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    old = os.umask(0o022)
    try:
        service = Service.open(home)
        service.create_dataset("d")
        files = [home / "catalog.db", home / "catalog.db-wal", home / "catalog.db-shm"]
        with service.db.read():  # an open connection keeps the WAL and its index
            assert all(f.exists() for f in files)
            assert stat.S_IMODE(home.stat().st_mode) == 0o700
            for f in files:
                assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
        service.close()
        # A home made world-readable by an earlier version is tightened when opened.
        home.chmod(0o755)
        (home / "catalog.db").chmod(0o644)
        Service.open(home).close()
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
        assert stat.S_IMODE((home / "catalog.db").stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_segmentation_masks_are_read_the_same_safe_way(service: Service,
                                                       tmp_path: Path) -> None:
    image = make_images(tmp_path / "imgs", 1)[0]
    service.create_dataset("d")
    service.append("d", [DatasetItem(str(image), "a")])
    fifo = tmp_path / "mask.png"
    os.mkfifo(fifo)
    seg = SegmentationAnnotation(str(fifo), [Segment("road", 1)], reference_id="a")
    with pytest.raises(OculaError) as err:
        no_hang(fifo, lambda: service.annotate("d", [seg]))
    found = err.value.errors if isinstance(err.value, BatchError) else [err.value]
    assert isinstance(found[0], ImageError) and "regular file" in found[0].message
    assert found[0].reference_id == "a"


def test_signed_url_key_ids(service: Service) -> None:
    key = service.create_key("k")["key"]
    kid = service.key_id(key)
    assert service.key_id_is_live(kid)
    for odd in ("999999999", "9" * 19, "", "١", "-1", "1e3"):
        assert not service.key_id_is_live(odd)
    service.revoke_key("k")
    assert not service.key_id_is_live(kid)
    with pytest.raises(AuthError):
        service.key_id(key)
