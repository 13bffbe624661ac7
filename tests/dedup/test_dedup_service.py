"""Deduplication through the service on both databases: scopes, the hash cache and
when it is recomputed, unreadable images, bad input."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ocula.core.services import Service
from ocula.core.store import schema as t
from ocula.core.types import DatasetItem
from ocula.errors import BatchError, NotFoundError, ValidationError
from tests.dedup.images import picture, save


def _photos(folder: Path) -> dict[str, Path]:
    """Three pictures, plus a smaller copy and a recompressed copy of the first."""
    out = {f"p{s}": save(picture(s), folder / f"p{s}.png") for s in (1, 2, 3)}
    out["p1_small"] = save(picture(1).resize((80, 60)), folder / "p1_small.png")
    out["p1_jpeg"] = save(picture(1), folder / "p1_jpeg.jpg", quality=50)
    return out


@pytest.fixture
def ds(service: Service, tmp_path: Path) -> tuple[Service, dict[str, Path]]:
    photos = _photos(tmp_path / "photos")
    service.create_dataset("d")
    service.append("d", [DatasetItem(str(p), ref) for ref, p in photos.items()])
    return service, photos


def _hash_rows(service: Service) -> int:
    with service.db.read() as conn:
        return conn.scalar(select(func.count()).select_from(t.item_phashes))


def test_groups_and_nucleus_lists(ds: tuple[Service, dict[str, Path]]) -> None:
    service, _ = ds
    r = service.deduplicate("d", threshold=10)
    assert r["stats"] == {"threshold": 10, "original_count": 5, "deduplicated_count": 3,
                          "duplicate_count": 2, "group_count": 1, "hashed": 5}
    (group,) = r["groups"]
    kept = group["reference_id"]
    assert {kept} | {d["reference_id"] for d in group["duplicates"]} == \
        {"p1", "p1_small", "p1_jpeg"}
    assert all(d["distance"] <= 10 for d in group["duplicates"])
    assert set(r["unique_reference_ids"]) == {kept, "p2", "p3"}
    items = {it["reference_id"]: it["id"] for it in service.list_items("d")["items"]}
    assert r["unique_item_ids"] == [items[ref] for ref in r["unique_reference_ids"]]
    assert group["item_id"] == items[kept] and r["errors"] == []
    # Each group carries the item query that opens it.
    opened = service.query_items("d", group["query"])["items"]
    assert {it["reference_id"] for it in opened} == {"p1", "p1_small", "p1_jpeg"}
    # Exact hashes only: the edited copies are no longer duplicates.
    assert service.deduplicate("d", threshold=0)["stats"]["deduplicated_count"] == 5
    assert service.deduplicate("d", threshold=64)["stats"]["deduplicated_count"] == 1


def test_scopes(ds: tuple[Service, dict[str, Path]]) -> None:
    service, _ = ds
    items = {it["reference_id"]: it["id"] for it in service.list_items("d")["items"]}
    by_ref = service.deduplicate("d", reference_ids=["p1", "p1_small", "p2"])
    assert by_ref["stats"]["original_count"] == 3 and by_ref["stats"]["group_count"] == 1
    by_id = service.deduplicate("d", item_ids=[items["p1_jpeg"], items["p3"]])
    assert sorted(by_id["unique_reference_ids"]) == ["p1_jpeg", "p3"]
    service.create_slice("d", "some", ["p1", "p1_jpeg", "p3"])
    sliced = service.deduplicate("d", slice="some")
    assert sliced["stats"]["original_count"] == 3 and sliced["slice"] == "some"
    queried = service.deduplicate("d", query='reference_id in ["p1", "p1_small"]')
    assert queried["stats"]["deduplicated_count"] == 1
    both = service.deduplicate("d", slice="some", query='reference_id = "p3"')
    assert both["unique_reference_ids"] == ["p3"]
    assert service.deduplicate("d", max_groups=0)["groups"] == []


def test_bad_input(ds: tuple[Service, dict[str, Path]]) -> None:
    service, _ = ds
    for bad in (-1, 65, 10.5, None, True):
        with pytest.raises(ValidationError, match="between 0 and 64"):
            service.deduplicate("d", threshold=bad)  # type: ignore[arg-type]
    with pytest.raises(NotFoundError, match="nope"):
        service.deduplicate("d", reference_ids=["p1", "nope"])
    with pytest.raises(NotFoundError, match="di_nope"):
        service.deduplicate("d", item_ids=["di_nope"])
    with pytest.raises(ValidationError, match="not both"):
        service.deduplicate("d", reference_ids=["p1"], item_ids=["x"])
    with pytest.raises(ValidationError, match="leave it out"):
        service.deduplicate("d", reference_ids=[])
    with pytest.raises(ValidationError, match="not both"):
        service.deduplicate("d", reference_ids=["p1"], slice="x")
    with pytest.raises(NotFoundError):
        service.deduplicate("nope")
    with pytest.raises(ValidationError, match="on_error"):
        service.deduplicate("d", on_error="ignore")  # type: ignore[arg-type]
    assert _hash_rows(service) == 0  # nothing was hashed for a refused call


def test_hashes_are_kept_and_recomputed_when_the_image_changes(
        ds: tuple[Service, dict[str, Path]]) -> None:
    service, photos = ds
    service.deduplicate("d")
    assert _hash_rows(service) == 5
    again = service.deduplicate("d")
    assert again["stats"]["hashed"] == 0 and again["stats"]["group_count"] == 1
    # Rewritten in place with another picture: hashed again, no longer a duplicate.
    save(picture(9).resize((80, 60)), photos["p1_small"])
    os.utime(photos["p1_small"], ns=(1, 1))  # even with an old modification time
    changed = service.deduplicate("d")
    assert changed["stats"]["hashed"] == 1
    assert len(changed["groups"][0]["duplicates"]) == 1
    # Re-appended (update) with a copy of p2: hashed again, now p2's duplicate.
    service.append("d", [DatasetItem(str(photos["p2"]), "p3")], update=True)
    after = service.deduplicate("d")
    assert after["stats"]["hashed"] == 1 and after["stats"]["group_count"] == 2
    # Deleting an item or the dataset drops its hashes.
    service.delete_item("d", "p3")
    assert _hash_rows(service) == 4
    service.delete_dataset("d")
    assert _hash_rows(service) == 0


def test_stored_copies_are_checked_by_key(service: Service, tmp_path: Path) -> None:
    photos = _photos(tmp_path / "photos")
    service.create_dataset("c")
    service.append("c", [DatasetItem(str(p), ref) for ref, p in photos.items()],
                   copy_media=True)
    first = service.deduplicate("c", threshold=8)
    for p in photos.values():
        p.unlink()  # stored copies are read, not the originals
    again = service.deduplicate("c", threshold=8)
    assert again["stats"]["hashed"] == 0 and again["groups"] == first["groups"]


def test_unreadable_images_fail_or_are_skipped(ds: tuple[Service, dict[str, Path]]) -> None:
    service, photos = ds
    photos["p2"].unlink()
    photos["p3"].write_bytes(b"no longer an image")
    with pytest.raises(BatchError) as caught:
        service.deduplicate("d")
    assert sorted(e.reference_id for e in caught.value.errors) == ["p2", "p3"]
    skipped = service.deduplicate("d", on_error="skip")
    assert skipped["stats"]["original_count"] == 3
    assert skipped["stats"]["hashed"] == 0  # the failed call kept the readable ones' hashes
    assert sorted(e["reference_id"] for e in skipped["errors"]) == ["p2", "p3"]


def test_empty_dataset(service: Service) -> None:
    service.create_dataset("e")
    r = service.deduplicate("e")
    assert r["stats"]["original_count"] == 0 and r["unique_item_ids"] == []


def test_concurrent_deduplications_agree(ds: tuple[Service, dict[str, Path]]) -> None:
    service, _ = ds
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda _: service.deduplicate("d", threshold=10), range(3)))
    assert all(a["unique_item_ids"] == answers[0]["unique_item_ids"] for a in answers)
    assert _hash_rows(service) == 5
    # A hash kept under an old tag (as another process may leave) is replaced.
    with service.db.write() as conn:
        conn.execute(t.item_phashes.update().values(tag="stale", phash=0))
    again = service.deduplicate("d", threshold=10)
    assert again["stats"]["hashed"] == 5 and again["groups"] == answers[0]["groups"]
    assert _hash_rows(service) == 5
