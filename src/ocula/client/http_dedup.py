"""The HTTP backend's deduplication (``POST /datasets/{id}/deduplicate``): the same
signature and result as :meth:`~ocula.core.services.dedup.DedupService.deduplicate`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal


class DedupHttp:
    """Mixed into :class:`~ocula.client.http.HttpBackend`, which provides ``_call``,
    ``_wait`` and ``_ds``."""

    _call: Any
    _wait: Any
    _ds: Any

    def deduplicate(self, dataset: str, *, threshold: int = 10,
                    reference_ids: Sequence[str] | None = None,
                    item_ids: Sequence[str] | None = None,
                    slice: str | None = None,  # noqa: A002
                    query: str | None = None, max_groups: int | None = None,
                    on_error: Literal["raise", "skip"] = "raise") -> dict[str, Any]:
        # Always a job: hashing a large dataset for the first time outlasts proxies'
        # timeouts, and a job survives a dropped connection.
        job = self._call("POST", f"/datasets/{self._ds(dataset)}/deduplicate",
                         params={"async": True}, body={
                             "threshold": threshold,
                             "reference_ids": None if reference_ids is None
                             else list(reference_ids),
                             "item_ids": None if item_ids is None else list(item_ids),
                             "slice": slice, "query": query, "max_groups": max_groups,
                             "on_error": on_error})
        return self._wait(job)
