"""``HttpBackend``: the service's methods, called on a remote Ocula server.

``Client("http://host:8000", api_key=...)`` puts this where the embedded client has a
:class:`~ocula.core.services.Service`: same method names, arguments and JSON results,
and the same typed :mod:`ocula.errors` rebuilt from the server's ``{error, detail}``
bodies. Objects travel in their Nucleus JSON form (``to_payload``). Images on this
machine are uploaded (``POST /uploads``) before the append that names them; the server
never reads a path of ours.

To expose a new service method remotely: add its route (see ``ocula.server.api``) and
a method here with the service's signature that calls it through :meth:`_call`.
"""

from __future__ import annotations

import base64
import json
import random
import re
import ssl
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Literal

import httpx

from ocula import errors as E
from ocula.client.http_dedup import DedupHttp
from ocula.client.http_query import QueryCalls
from ocula.client.http_query import segment as _seg
from ocula.client.http_scenarios import ScenarioHttp
from ocula.client.http_scenes import SceneCalls, TaxonomyCalls, item_payload
from ocula.core.types import MASK_PNG_KEY, DatasetItem, SegmentationAnnotation

# Appends of at least this many items run as a server job (the request returns at once;
# we poll), so a long append survives a dropped connection or proxy timeout.
ASYNC_APPEND_FROM = 2000
# Uploads are sent in requests of at most this many bytes / files.
UPLOAD_CHUNK_BYTES = 32 * 1024 * 1024
UPLOAD_CHUNK_FILES = 500
FINISHED = ("Completed", "Errored_User", "Errored_Server", "Errored_Partial")

# Retries (see HttpBackend._send): tries in all, the first pause (doubled each time, with
# jitter), the longest pause, and the time after which no new try starts.
MAX_TRIES = 4
RETRY_BACKOFF_S = 0.25
RETRY_MAX_PAUSE_S = 8.0
RETRY_TOTAL_S = 60.0
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({502, 503, 504})
# Routes that only read, sent as POST because their bodies (queries, id lists) can be
# long: as safe to send twice as a GET.
_READ_ONLY_POST = re.compile(
    r"/(annotations/search|query/(items|objects|describe)|insights|predictions/search)$")
# Errors that may pass if tried again: the connection failed, broke or timed out.
_TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def _error_classes() -> dict[str, type[E.OculaError]]:
    found: dict[str, type[E.OculaError]] = {}
    todo: list[type[E.OculaError]] = [E.OculaError]
    while todo:
        cls = todo.pop()
        found.setdefault(cls.code, cls)
        todo.extend(cls.__subclasses__())
    return found


_BY_STATUS: dict[int, type[E.OculaError]] = {
    400: E.QueryError, 401: E.AuthError, 404: E.NotFoundError, 409: E.ConflictError,
    413: E.ValidationError, 422: E.ValidationError}


def error_from_dict(body: dict[str, Any], status: int | None = None) -> E.OculaError:
    """The typed error a server's ``{error, detail, reference_id?, info?}`` stands for."""
    code = str(body.get("error", ""))
    cls = _error_classes().get(code) or _BY_STATUS.get(status or 0, E.RemoteError)
    info = dict(body.get("info") or {})
    if cls is E.BatchError:
        return E.BatchError([error_from_dict(e) for e in info.get("errors") or []])
    exc = cls.__new__(cls)
    E.OculaError.__init__(exc, str(body.get("detail", code or "error")),
                          reference_id=body.get("reference_id"), **info)
    if isinstance(exc, E.QueryError):
        exc.line, exc.column = info.get("line"), info.get("column")
    return exc


def _worth_retrying(exc: httpx.HTTPError, replayable: bool) -> bool:
    """Whether a request that failed with ``exc`` may be sent again: one that never
    left (the connection could not be opened) always, since it cannot be repeated; one
    whose connection broke or timed out only if ``replayable``. A certificate the
    client refuses does not pass by trying again."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return False
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return True
    return replayable and isinstance(exc, _TRANSIENT)


def _wire(obj: Any) -> Any:
    """An annotation or prediction as JSON; the flag keeps a plain annotation from being
    read as a prediction on the server (the service then rejects it, as embedded)."""
    if not hasattr(obj, "to_payload"):
        return {"type": f"<{type(obj).__name__}>"}
    body = obj.to_payload()
    body["is_prediction"] = bool(getattr(obj, "is_prediction", False))
    if isinstance(obj, SegmentationAnnotation):
        # The server reads no path of this machine: a local mask travels inline.
        data = obj.mask_bytes
        if data is None and isinstance(obj.mask_url, str) and \
                not obj.mask_url.startswith(("http://", "https://")):
            try:
                data = Path(obj.mask_url).read_bytes()
            except OSError as exc:
                raise E.ImageError(f"cannot read segmentation mask {obj.mask_url}: {exc}",
                                   reference_id=obj.reference_id) from exc
        if data is not None:
            body[MASK_PNG_KEY] = base64.b64encode(data).decode("ascii")
    return body


class HttpBackend(ScenarioHttp, SceneCalls, TaxonomyCalls, DedupHttp, QueryCalls):
    """A remote Ocula server behind the service's interface."""

    def __init__(self, url: str, *, api_key: str | None = None, timeout: float = 300.0,
                 async_append_from: int = ASYNC_APPEND_FROM,
                 transport: httpx.BaseTransport | None = None,
                 max_tries: int = MAX_TRIES, retry_backoff_s: float = RETRY_BACKOFF_S,
                 retry_total_s: float = RETRY_TOTAL_S):
        base = url.rstrip("/")
        if not base.endswith("/api/v1"):
            base += "/api/v1"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.url = base
        self.api_key = api_key  # for readers in other processes (to_torch's images)
        self.async_append_from = async_append_from
        self.max_tries = max(1, max_tries)
        self.retry_backoff_s = retry_backoff_s
        self.retry_total_s = retry_total_s
        self._http = httpx.Client(base_url=base, timeout=timeout, headers=headers,
                                  transport=transport)

    def close(self) -> None:
        self._http.close()

    # --- transport ------------------------------------------------------------------

    def _call(self, method: str, path: str, *, body: Any = None,
              params: Mapping[str, Any] | None = None, files: Any = None) -> Any:
        """One request; a non-2xx answer raises the typed error it carries."""
        kwargs: dict[str, Any] = {}
        if params:
            kwargs["params"] = {k: ("true" if v is True else "false" if v is False else v)
                                for k, v in params.items() if v is not None}
        if files is not None:
            kwargs["files"] = files
        elif body is not None:
            # httpx refuses NaN; send it (as Python's json does) so the server's
            # validation reports a bad coordinate, exactly as embedded use does.
            kwargs["content"] = json.dumps(body, allow_nan=True).encode()
            kwargs["headers"] = {"Content-Type": "application/json"}
        resp = self._send(method, path, kwargs)
        if resp.status_code >= 400:
            try:
                payload = resp.json()
            except ValueError:
                payload = None
            if isinstance(payload, dict) and "error" in payload:
                raise error_from_dict(payload, resp.status_code)
            raise E.RemoteError(f"HTTP {resp.status_code} from {method} {path}: "
                                f"{resp.text[:300]}")
        return resp.json()

    def _send(self, method: str, path: str, kwargs: dict[str, Any]) -> httpx.Response:
        """Send a request, trying again (at most ``max_tries`` tries, none started
        after ``retry_total_s``, pauses doubling from ``retry_backoff_s`` with jitter, or
        a ``Retry-After`` of up to ``RETRY_MAX_PAUSE_S``) where that cannot do harm:

        - a request that never left (the connection could not be opened): any method;
        - an idempotent method (GET, HEAD, PUT, DELETE, OPTIONS) or a read-only POST
          (searches, queries, insights) whose connection broke or timed out, or that
          was answered 502, 503 or 504 (a proxy or an overloaded server).

        Other POSTs are sent once, appends included. The service ignores an item whose
        reference id exists, so the catalog would end up the same, but a request that
        arrived and whose answer was lost would, sent again, report its items as
        ignored instead of new, and would name staged uploads that the first append
        already discarded (refused as "not on the server"). Calling ``append`` again
        is the safe retry: it uploads anew and skips the items already there.
        A retried DELETE whose first try did arrive answers 404.
        """
        replayable = method in IDEMPOTENT_METHODS or (
            method == "POST" and _READ_ONLY_POST.search(path) is not None)
        deadline = time.monotonic() + self.retry_total_s
        for attempt in range(1, self.max_tries + 1):
            try:
                resp = self._http.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                if not (_worth_retrying(exc, replayable) and self._pause(attempt, deadline)):
                    raise E.RemoteError(f"cannot reach the Ocula server at {self.url}: "
                                        f"{exc.__class__.__name__}: {exc}") from exc
                continue
            if not (replayable and resp.status_code in RETRY_STATUSES
                    and self._pause(attempt, deadline, resp.headers.get("Retry-After"))):
                return resp
        raise AssertionError("unreachable: the last try returns or raises")

    def _pause(self, attempt: int, deadline: float, retry_after: str | None = None) -> bool:
        """Sleep before try ``attempt + 1``; False (no sleep) when no try is left."""
        if attempt >= self.max_tries:
            return False
        step = min(self.retry_backoff_s * 2 ** (attempt - 1), RETRY_MAX_PAUSE_S)
        delay = step / 2 + random.uniform(0, step / 2)  # jitter: clients do not retry in step
        if retry_after is not None and retry_after.strip().isdigit():
            delay = max(delay, min(float(retry_after), RETRY_MAX_PAUSE_S))
        if time.monotonic() + delay > deadline:
            return False
        time.sleep(delay)
        return True

    def _wait(self, job: dict[str, Any]) -> dict[str, Any]:
        """Poll a job until it ends; its result, or the error it ended with."""
        delay = 0.05
        while job["status"] not in FINISHED:
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
            job = self.job_info(job["job_id"])
        if job["status"] == "Errored_User" and job["errors"]:
            raise error_from_dict(job["errors"][0])
        if job["status"] == "Errored_Server":
            raise E.RemoteError(f"job {job['job_id']} failed on the server: {job['message']}")
        return job["result"]

    def _ds(self, dataset: str) -> str:
        """The path segment of a dataset: its id; a name is looked up first, since names
        may hold characters (``/``) that cannot travel in one path segment."""
        if isinstance(dataset, str) and dataset.startswith("ds_"):
            return _seg(dataset)
        return _seg(self.get_dataset(dataset)["id"])

    # --- datasets -------------------------------------------------------------------

    def create_dataset(self, name: str, *, allowed_types: list[str] | None = None,
                       metadata: dict[str, Any] | None = None,
                       is_scene: bool = False) -> dict[str, Any]:
        return self._call("POST", "/datasets", body={
            "name": name, "allowed_types": allowed_types, "metadata": metadata,
            "is_scene": is_scene})

    def list_datasets(self) -> list[dict[str, Any]]:
        return self._call("GET", "/datasets")

    def get_dataset(self, dataset: str) -> dict[str, Any]:
        return self._call("GET", "/datasets/_lookup", params={"name": dataset})

    def dataset_info(self, dataset: str) -> dict[str, Any]:
        return self._call("GET", f"/datasets/{self._ds(dataset)}/info")

    def delete_dataset(self, dataset: str) -> dict[str, Any]:
        return self._call("DELETE", f"/datasets/{self._ds(dataset)}")

    # --- items ----------------------------------------------------------------------

    def append(self, dataset: str, items: Sequence[DatasetItem], *, update: bool = False,
               copy_media: bool = False, uploads: Mapping[str, bytes] | None = None,
               on_error: Literal["raise", "skip"] = "raise") -> dict[str, Any]:
        """Upload the local images of ``items`` (and any ``uploads`` bytes), then append.
        ``copy_media`` has no effect remotely: uploaded images are always stored."""
        ds = self._ds(dataset)
        payloads: list[Any] = []
        local: dict[str, Path] = {}
        for it in items:
            if not isinstance(it, DatasetItem):
                payloads.append(None)
                continue
            payloads.append(item_payload(it, uploads or {}, local))
        staged = self._stage(local, uploads or {})
        body = {"items": payloads, "update": update, "copy_media": copy_media,
                "on_error": on_error, "uploads": staged}
        if len(payloads) >= self.async_append_from:
            job = self._call("POST", f"/datasets/{ds}/items", body=body,
                             params={"async": True})
            return self._wait(job)
        return self._call("POST", f"/datasets/{ds}/items", body=body)

    def _stage(self, paths: Mapping[str, Path], blobs: Mapping[str, bytes]) -> dict[str, str]:
        """Upload files and bytes; reference_id -> upload id. Each distinct file is sent
        once, in requests of bounded size."""
        sources: dict[Any, list[str]] = {}
        for ref, path in paths.items():
            sources.setdefault(path.resolve(), []).append(ref)
        for ref in blobs:
            sources.setdefault(("bytes", ref), []).append(ref)
        by_ref: dict[str, str] = {}
        for batch in self._upload_batches(list(sources), blobs):
            with ExitStack() as stack:
                files = []
                for src in batch:
                    data = blobs[src[1]] if isinstance(src, tuple) else stack.enter_context(
                        open(src, "rb"))
                    name = src[1] if isinstance(src, tuple) else src.name
                    files.append(("file", (name, data, "application/octet-stream")))
                answer = self._call("POST", "/uploads", files=files)
            for src, staged in zip(batch, answer["uploads"], strict=True):
                for ref in sources[src]:
                    by_ref[ref] = staged["upload_id"]
        return by_ref

    @staticmethod
    def _upload_batches(sources: list[Any], blobs: Mapping[str, bytes]) -> Iterator[list[Any]]:
        batch: list[Any] = []
        size = 0
        for src in sources:
            n = len(blobs[src[1]]) if isinstance(src, tuple) else src.stat().st_size
            if batch and (size + n > UPLOAD_CHUNK_BYTES or len(batch) >= UPLOAD_CHUNK_FILES):
                yield batch
                batch, size = [], 0
            batch.append(src)
            size += n
        if batch:
            yield batch

    def list_items(self, dataset: str, *, limit: int | None = None,
                   after: str | None = None) -> dict[str, Any]:
        return self._call("GET", f"/datasets/{self._ds(dataset)}/items",
                          params={"limit": limit, "after": after})

    def get_item(self, dataset: str, *, reference_id: str | None = None,
                 item_id: str | None = None, index: int | None = None,
                 with_predictions: bool = False) -> dict[str, Any]:
        return self._call("GET", f"/datasets/{self._ds(dataset)}/item", params={
            "reference_id": reference_id, "item_id": item_id, "index": index,
            "with_predictions": with_predictions})

    def delete_item(self, dataset: str, reference_id: str) -> dict[str, Any]:
        return self._call("DELETE", f"/datasets/{self._ds(dataset)}/item",
                          params={"reference_id": reference_id})

    def update_metadata(self, dataset: str, updates: Sequence[Mapping[str, Any]], *,
                        replace: bool = False) -> dict[str, Any]:
        return self._call("POST", f"/datasets/{self._ds(dataset)}/items/metadata",
                          body={"updates": [dict(u) for u in updates], "replace": replace})

    # --- ground truth ---------------------------------------------------------------

    def annotate(self, dataset: str, annotations: Sequence[Any], *, update: bool = False,
                 message: str | None = None) -> dict[str, Any]:
        return self._call("POST", f"/datasets/{self._ds(dataset)}/annotations", body={
            "annotations": [_wire(a) for a in annotations], "update": update,
            "message": message})

    def annotate_batches(self, dataset: str, batches: Iterable[Sequence[Any]], *,
                         update: bool = False, message: str | None = None
                         ) -> Iterator[dict[str, Any]]:
        for batch in batches:
            yield self.annotate(dataset, batch, update=update, message=message)

    def list_annotations(self, dataset: str, *, version: int | str | None = None,
                         reference_ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
        return self._call("POST", f"/datasets/{self._ds(dataset)}/annotations/search",
                          body={"version": version, "reference_ids": (
                              list(reference_ids) if reference_ids is not None else None)})

    def delete_annotations(self, dataset: str, *, reference_ids: Sequence[str] | None = None,
                           annotation_ids: Sequence[str] | None = None,
                           message: str | None = None) -> dict[str, Any]:
        return self._call("POST", f"/datasets/{self._ds(dataset)}/annotations/delete", body={
            "reference_ids": list(reference_ids) if reference_ids else None,
            "annotation_ids": list(annotation_ids) if annotation_ids else None,
            "message": message})

    def list_versions(self, dataset: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/datasets/{self._ds(dataset)}/versions")

    def tag_version(self, dataset: str, name: str, version: int | None = None) -> dict[str, Any]:
        return self._call("POST", f"/datasets/{self._ds(dataset)}/versions",
                          body={"name": name, "version": version})

    def edit_annotations(self, dataset: str, reference_id: str,
                         edits: Sequence[Mapping[str, Any]], *, author: str | None = None,
                         message: str | None = None) -> dict[str, Any]:
        """A server with API keys records the key's name as the author (``author`` is
        then ignored); one without keys records ``author``, else its own user."""
        return self._call("POST", f"/datasets/{self._ds(dataset)}/item/edits", body={
            "reference_id": reference_id,
            # Anything but a mapping travels as it is, for the server to refuse by index.
            "edits": [dict(e) if isinstance(e, Mapping) else e for e in edits],
            "author": author, "message": message})

    def item_history(self, dataset: str, reference_id: str, *, limit: int = 100
                     ) -> list[dict[str, Any]]:
        return self._call("GET", f"/datasets/{self._ds(dataset)}/item/history",
                          params={"reference_id": reference_id, "limit": limit})

    # --- slices ---------------------------------------------------------------------

    def create_slice(self, dataset: str, name: str, reference_ids: Sequence[str] = (), *,
                     description: str | None = None) -> dict[str, Any]:
        return self._call("POST", f"/datasets/{self._ds(dataset)}/slices", body={
            "name": name, "reference_ids": list(reference_ids), "description": description})

    def slice_info(self, slice_id: str) -> dict[str, Any]:
        return self._call("GET", f"/slices/{_seg(slice_id)}")

    def list_slices(self, dataset: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/datasets/{self._ds(dataset)}/slices")

    def slice_items(self, slice_id: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/slices/{_seg(slice_id)}/items")

    def slice_append(self, slice_id: str, reference_ids: Sequence[str]) -> dict[str, Any]:
        return self._call("POST", f"/slices/{_seg(slice_id)}/items",
                          body={"reference_ids": list(reference_ids)})

    def slice_remove(self, slice_id: str, reference_ids: Sequence[str]) -> dict[str, Any]:
        return self._call("POST", f"/slices/{_seg(slice_id)}/items/remove",
                          body={"reference_ids": list(reference_ids)})

    def delete_slice(self, slice_id: str) -> dict[str, Any]:
        return self._call("DELETE", f"/slices/{_seg(slice_id)}")

    def find_slice(self, dataset: str, name_or_id: str) -> dict[str, Any]:
        return self._call("GET", f"/datasets/{self._ds(dataset)}/slices/_lookup",
                          params={"name": name_or_id})

    # --- models and runs ------------------------------------------------------------

    def add_model(self, name: str, reference_id: str,
                  metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._call("POST", "/models", body={
            "name": name, "reference_id": reference_id, "metadata": metadata})

    def list_models(self) -> list[dict[str, Any]]:
        return self._call("GET", "/models")

    def get_model(self, model: str) -> dict[str, Any]:
        return self._call("GET", "/models/_lookup", params={"ref": model})

    def delete_model(self, model: str) -> dict[str, Any]:
        model_id = model if model.startswith("prj_") else self.get_model(model)["id"]
        return self._call("DELETE", f"/models/{_seg(model_id)}")

    def create_run(self, model: str, dataset: str, name: str,
                   predictions: Sequence[Any] = (), *,
                   metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._call("POST", "/runs", body={
            "model": model, "dataset": dataset, "name": name,
            "predictions": [_wire(p) for p in predictions], "metadata": metadata})

    def predict(self, run_id: str, predictions: Sequence[Any], *,
                update: bool = False) -> dict[str, Any]:
        return self._call("POST", f"/runs/{_seg(run_id)}/predictions", body={
            "predictions": [_wire(p) for p in predictions], "update": update})

    def run_info(self, run_id: str) -> dict[str, Any]:
        return self._call("GET", f"/runs/{_seg(run_id)}")

    def list_runs(self, dataset: str | None = None,
                  model: str | None = None) -> list[dict[str, Any]]:
        return self._call("GET", "/runs", params={"dataset": dataset, "model": model})

    def find_run(self, dataset: str, name_or_id: str) -> dict[str, Any]:
        return self._call("GET", f"/datasets/{self._ds(dataset)}/runs/_lookup",
                          params={"name": name_or_id})

    def list_predictions(self, run_id: str,
                         reference_ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
        return self._call("POST", f"/runs/{_seg(run_id)}/predictions/search", body={
            "reference_ids": list(reference_ids) if reference_ids is not None else None})

    def delete_run(self, run_id: str) -> dict[str, Any]:
        return self._call("DELETE", f"/runs/{_seg(run_id)}")

    def commit_run(self, run_id: str, *, class_agnostic: bool = False,
                   allowed_label_matches: Iterable[Mapping[str, Any]] | None = None,
                   iou_threshold: float = 0.5,
                   annotation_version: int | str | None = None,
                   iou_type: str = "bbox",
                   kpt_sigmas: Sequence[float] | Mapping[str, Sequence[float]] | None = None
                   ) -> dict[str, Any]:
        """Match the run against the ground truth on the server (a job; waits for it)."""
        sigmas = (None if kpt_sigmas is None else
                  {str(k): list(v) for k, v in kpt_sigmas.items()}
                  if isinstance(kpt_sigmas, Mapping) else list(kpt_sigmas))
        job = self._call("POST", f"/runs/{_seg(run_id)}/commit", body={
            "class_agnostic": class_agnostic,
            "allowed_label_matches": (None if allowed_label_matches is None
                                      else [dict(m) for m in allowed_label_matches]),
            "iou_threshold": iou_threshold, "annotation_version": annotation_version,
            "iou_type": iou_type, "kpt_sigmas": sigmas})
        return self._wait(job)

    def run_metrics(self, run_id: str, *, slice: str | None = None,  # noqa: A002
                    iou_threshold: float | None = None,
                    annotation_version: int | str | None = None,
                    confidence_threshold: float = 0.5,
                    iou_type: str = "bbox", query: str | None = None,
                    cells: bool = False) -> dict[str, Any]:
        return self._call("GET", f"/runs/{_seg(run_id)}/metrics", params={
            "slice": slice, "iou_threshold": iou_threshold,
            "annotation_version": annotation_version,
            "confidence_threshold": confidence_threshold, "iou_type": iou_type,
            "query": query, "cells": cells or None})

    def run_failures(self, run_id: str, *, kind: str = "fp", limit: int = 20,
                     min_confidence: float = 0.0) -> list[dict[str, Any]]:
        return self._call("GET", f"/runs/{_seg(run_id)}/failures", params={
            "kind": kind, "limit": limit, "min_confidence": min_confidence})

    def failure_summary(self, run_id: str, *, slice: str | None = None,  # noqa: A002
                        query: str | None = None) -> dict[str, Any]:
        return self._call("GET", f"/runs/{_seg(run_id)}/failure_summary",
                          params={"slice": slice, "query": query})

    def run_error_breakdown(self, run_id: str, *, slice: str | None = None,  # noqa: A002
                            annotation_version: int | str | None = None,
                            iou_type: str = "bbox", pos_threshold: float = 0.5,
                            background_threshold: float = 0.1,
                            max_ids: int | None = None,
                            query: str | None = None) -> dict[str, Any]:
        return self._call("GET", f"/runs/{_seg(run_id)}/errors", params={
            "slice": slice, "annotation_version": annotation_version, "iou_type": iou_type,
            "pos_threshold": pos_threshold, "background_threshold": background_threshold,
            "max_ids": max_ids, "query": query})

    def compare_runs(self, run_a: str, run_b: str, *, slice: str | None = None,  # noqa: A002
                     iou_threshold: float | None = None,
                     limit: int | None = None) -> dict[str, Any]:
        return self._call("GET", "/compare", params={
            "run_a": run_a, "run_b": run_b, "slice": slice, "iou_threshold": iou_threshold,
            "limit": limit})

    def compare_items(self, run_a: str, run_b: str, *, only: Literal["a", "b"] = "b",
                      slice: str | None = None,  # noqa: A002
                      page_size: int = 100, cursor: str | None = None) -> dict[str, Any]:
        return self._call("GET", "/compare/items", params={
            "run_a": run_a, "run_b": run_b, "only": only, "slice": slice,
            "page_size": page_size, "cursor": cursor})

    # --- jobs -----------------------------------------------------------------------

    def job_info(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/jobs/{_seg(job_id)}")

    def list_jobs(self, *, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        return self._call("GET", "/jobs", params={"status": status, "limit": limit})
