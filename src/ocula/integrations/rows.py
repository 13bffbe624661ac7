"""A dataset's (or slice's, or query's) items with their labels, read in bulk.

Training loaders need every item and its ground truth at once. This reads them with a
few backend calls whatever the size: the items in pages (:data:`PAGE_SIZE` items of the
whole dataset, :data:`QUERY_PAGE_SIZE` of what an item query selects; a slice in one
call), then their labels at one label version in one call (or one call per
:data:`REFS_PER_CALL` items for a small part of a large dataset). It uses only the
client contract, so it reads the same rows embedded and from a server.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ocula.client.dataset import Dataset, Slice

# The REST bounds: 100,000 items a page for a listing, 10,000 for a query.
PAGE_SIZE = 50_000
QUERY_PAGE_SIZE = 10_000
REFS_PER_CALL = 2000


@dataclass
class ItemRows:
    """Items (JSON, in the dataset's order) and their labels by reference id."""

    items: list[dict[str, Any]]
    annotations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def labels(self) -> list[str]:
        """The distinct labels of the rows' annotations, sorted."""
        return sorted({a["label"] for anns in self.annotations.values() for a in anns
                       if a.get("label") is not None})


def slice_id(dataset: Dataset, slice: Slice | str | None) -> str | None:  # noqa: A002
    """The id of a slice given as a :class:`Slice`, an id or a name (None: none)."""
    if slice is None:
        return None
    if not isinstance(slice, str):
        return slice.id
    return dataset.get_slice(slice).id


def _item_pages(dataset: Dataset, chosen: str | None, query: str | None
                ) -> Iterator[list[dict[str, Any]]]:
    backend = dataset._backend
    if query is not None:
        cursor: str | None = None
        while True:
            page = backend.query_items(dataset.id, query, slice=chosen,
                                       page_size=QUERY_PAGE_SIZE, cursor=cursor)
            yield page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return
    if chosen is not None:
        yield backend.slice_items(chosen)
        return
    after: str | None = None
    while True:
        page = backend.list_items(dataset.id, limit=PAGE_SIZE, after=after)
        yield page["items"]
        after = page["next_cursor"]
        if after is None:
            return


def read_rows(dataset: Dataset, *, slice: Slice | str | None = None,  # noqa: A002
              query: str | None = None, annotation_version: int | str | None = None
              ) -> ItemRows:
    """The items of ``dataset`` (or of ``slice``, or matching the item ``query``,
    within ``slice`` when both are given) with their ground truth at
    ``annotation_version`` (number or name; None: current labels)."""
    chosen = slice_id(dataset, slice)
    items = [it for page in _item_pages(dataset, chosen, query) for it in page]
    refs = [it["reference_id"] for it in items]
    wanted = set(refs)
    backend = dataset._backend
    if chosen is None and query is None:
        found = backend.list_annotations(dataset.id, version=annotation_version)
    elif len(refs) > REFS_PER_CALL * 4:
        # A large part: one read of the whole dataset's labels beats many id lists.
        found = backend.list_annotations(dataset.id, version=annotation_version)
    else:
        found = [a for i in range(0, len(refs), REFS_PER_CALL)
                 for a in backend.list_annotations(
                     dataset.id, version=annotation_version,
                     reference_ids=refs[i:i + REFS_PER_CALL])]
    by_ref: dict[str, list[dict[str, Any]]] = {ref: [] for ref in refs}
    for ann in found:
        if ann["reference_id"] in wanted:
            by_ref[ann["reference_id"]].append(ann)
    return ItemRows(items, by_ref)
