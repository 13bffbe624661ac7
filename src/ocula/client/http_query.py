"""The HTTP backend's query calls (docs/query-language.md): items and objects by query,
slices from queries and slice algebra, object slices, insights."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal
from urllib.parse import quote

from ocula.core.contract import SetOperation


def segment(value: str) -> str:
    """One URL path segment, ``/`` included, percent-encoded."""
    return quote(str(value), safe="")


class QueryCalls:
    """Mixed into :class:`~ocula.client.http.HttpBackend` (``_call``, ``_ds`` are its
    own)."""

    _call: Any
    _ds: Any

    def query_items(self, dataset: str, query: str, *, slice: str | None = None,  # noqa: A002
                    page_size: int = 100, cursor: str | None = None,
                    with_total: bool = False) -> dict[str, Any]:
        return self._query(dataset, "items", query, slice=slice, page_size=page_size,
                           cursor=cursor, with_total=with_total)

    def query_objects(self, dataset: str, query: str, *, slice: str | None = None,  # noqa: A002
                      page_size: int = 100, cursor: str | None = None,
                      with_total: bool = False) -> dict[str, Any]:
        return self._query(dataset, "objects", query, slice=slice, page_size=page_size,
                           cursor=cursor, with_total=with_total)

    def _query(self, dataset: str, target: str, query: str, *,
               slice: str | None = None,  # noqa: A002
               page_size: int = 100, cursor: str | None = None,
               with_total: bool = False) -> dict[str, Any]:
        return self._call("POST", f"/datasets/{self._ds(dataset)}/query/{target}", body={
            "query": query, "slice": slice, "page_size": page_size, "cursor": cursor,
            "with_total": with_total})

    def describe_query(self, dataset: str, query: str,
                       target: Literal["items", "objects"] = "items") -> dict[str, Any]:
        return self._call("POST", f"/datasets/{self._ds(dataset)}/query/describe",
                          body={"query": query, "target": target})

    def create_slice_from_query(self, dataset: str, name: str, query: str, *,
                                target: Literal["items", "objects"] = "items",
                                slice: str | None = None,
                                description: str | None = None) -> dict[str, Any]:
        return self._call("POST", f"/datasets/{self._ds(dataset)}/slices/from_query",
                          body={"name": name, "query": query, "target": target,
                                "slice": slice, "description": description})

    def slice_append_query(self, slice_id: str, query: str, *,
                           within: str | None = None) -> dict[str, Any]:
        return self._call("POST", f"/slices/{segment(slice_id)}/items/from_query",
                          body={"query": query, "within": within})

    def slice_remove_query(self, slice_id: str, query: str, *,
                           within: str | None = None) -> dict[str, Any]:
        return self._call("POST", f"/slices/{segment(slice_id)}/items/remove_query",
                          body={"query": query, "within": within})

    def combine_slices(self, dataset: str, name: str,
                       operation: SetOperation,
                       slices: Sequence[str], *,
                       description: str | None = None) -> dict[str, Any]:
        return self._call("POST", f"/datasets/{self._ds(dataset)}/slices/combine", body={
            "name": name, "operation": operation, "slices": list(slices),
            "description": description})

    def slice_summary(self, slice_id: str) -> dict[str, Any]:
        return self._call("GET", f"/slices/{segment(slice_id)}/summary")

    def slice_objects(self, slice_id: str, *, page_size: int = 100,
                      cursor: str | None = None) -> dict[str, Any]:
        return self._call("GET", f"/slices/{segment(slice_id)}/objects",
                          params={"page_size": page_size, "cursor": cursor})

    def delete_slice_objects(self, slice_id: str) -> dict[str, Any]:
        return self._call("DELETE", f"/slices/{segment(slice_id)}/objects")

    def slice_contents(self, slice_id: str) -> dict[str, Any]:
        return self._call("GET", f"/slices/{segment(slice_id)}/contents")

    def insights(self, dataset: str, *, slice: str | None = None,  # noqa: A002
                 query: str | None = None, metadata_sample: int = 1000,
                 fresh: bool = False) -> dict[str, Any]:
        # POST: a query may be longer than a URL comfortably holds.
        return self._call("POST", f"/datasets/{self._ds(dataset)}/insights", body={
            "slice": slice, "query": query, "metadata_sample": metadata_sample,
            "fresh": fresh})
