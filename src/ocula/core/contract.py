"""The one typed contract between the Python client and the catalog.

:class:`Backend` is what :class:`ocula.Client` calls. Two classes implement it: the
embedded :class:`~ocula.core.services.Service` and, over the network,
:class:`~ocula.client.http.HttpBackend` (one REST route per method). Methods take plain
values and domain objects and return JSON-able dicts, so both give the same results
and raise the same typed errors. ``tests/client/test_backend_contract.py`` fails when a
public service method is missing here (and is not one of :data:`SERVER_LOCAL`), or when
a signature here, in the service or in the HTTP backend differs from the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from ocula.core.types import DatasetItem, Scene

__all__ = ["SERVER_LOCAL", "Backend", "SetOperation"]

SetOperation = Literal["union", "intersection", "difference"]

#: Public service methods that are not part of the client contract, and why.
SERVER_LOCAL: dict[str, str] = {
    "create_job": "jobs are made by the server for its own long work (REST: read them)",
    "update_job": "jobs are made by the server for its own long work (REST: read them)",
    "run_job": "jobs run in the server's threads",
    "fail_unfinished_jobs": "run at server start",
    "create_key": "API keys are administered on the server host (ocula keys)",
    "list_keys": "API keys are administered on the server host (ocula keys)",
    "revoke_key": "API keys are administered on the server host (ocula keys)",
    "verify_key": "the server checks each request's key",
    "open_item_image": "images travel as image routes and signed URLs, not open files",
    "key_id": "signed image URLs carry the signing key's id (server-side signing)",
    "key_id_is_live": "the server checks a signed URL's key at each read",
    "live_key_name": "the server checks a session's key at each request",
    "thumbnail": "thumbnails travel as an image route",
    "item_segmentation_png": "index masks travel as an image route; the client rebuilds "
                             "one from the masks it reads (Dataset.segmentation_mask)",
    "local_image_paths": "file paths of this machine, for embedded readers (to_torch); "
                         "a server never names its paths (images travel as routes)",
    "scan_insights": "a reference implementation the insights totals are tested against",
    "dataset_tags": "Nucleus protocol only for now (docs/nucleus.md)",
    "add_dataset_tags": "Nucleus protocol only for now (docs/nucleus.md)",
    "remove_dataset_tags": "Nucleus protocol only for now (docs/nucleus.md)",
    "model_tags": "Nucleus protocol only for now (docs/nucleus.md)",
    "add_model_tags": "Nucleus protocol only for now (docs/nucleus.md)",
    "remove_model_tags": "Nucleus protocol only for now (docs/nucleus.md)",
    "model_run_on": "Nucleus protocol only: a model's predictions without a run "
                    "(uploadPredictions) go to its run on the dataset",
}


class Backend(Protocol):
    """The catalog as the client sees it (see the module docstring); each method is
    documented on :class:`~ocula.core.services.Service`."""

    # annotations
    def annotate(
        self,
        dataset: str,
        annotations: Sequence[Any],
        *,
        update: bool = False,
        message: str | None = None,
    ) -> dict[str, Any]: ...
    def annotate_batches(
        self,
        dataset: str,
        batches: Iterable[Sequence[Any]],
        *,
        update: bool = False,
        message: str | None = None,
    ) -> Iterator[dict[str, Any]]: ...
    def delete_annotations(
        self,
        dataset: str,
        *,
        reference_ids: Sequence[str] | None = None,
        annotation_ids: Sequence[str] | None = None,
        message: str | None = None,
    ) -> dict[str, Any]: ...
    def list_versions(self, dataset: str) -> list[dict[str, Any]]: ...
    def tag_version(
        self, dataset: str, name: str, version: int | None = None
    ) -> dict[str, Any]: ...
    def list_annotations(
        self,
        dataset: str,
        *,
        version: int | str | None = None,
        reference_ids: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]: ...

    # edits
    def edit_annotations(
        self,
        dataset: str,
        reference_id: str,
        edits: Sequence[Mapping[str, Any]],
        *,
        author: str | None = None,
        message: str | None = None,
    ) -> dict[str, Any]: ...
    def item_history(
        self, dataset: str, reference_id: str, *, limit: int = 100
    ) -> list[dict[str, Any]]: ...

    # datasets
    def create_dataset(
        self,
        name: str,
        *,
        allowed_types: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        is_scene: bool = False,
    ) -> dict[str, Any]: ...
    def list_datasets(self) -> list[dict[str, Any]]: ...
    def get_dataset(self, dataset: str) -> dict[str, Any]: ...
    def dataset_info(self, dataset: str) -> dict[str, Any]: ...
    def delete_dataset(self, dataset: str) -> dict[str, Any]: ...

    # scenes and tracks
    def append_scenes(
        self,
        dataset: str,
        scenes: Sequence[Scene],
        *,
        update: bool = False,
        uploads: Mapping[str, bytes] | None = None,
    ) -> dict[str, Any]: ...
    def list_scenes(self, dataset: str) -> list[dict[str, Any]]: ...
    # taxonomies
    def add_taxonomy(self, dataset: str, name: str, taxonomy_type: str, labels: list[str],
                     *, update: bool = False) -> dict[str, Any]: ...
    def list_taxonomies(self, dataset: str) -> list[dict[str, Any]]: ...
    def delete_taxonomy(self, dataset: str, name: str) -> dict[str, Any]: ...
    def get_scene(
        self,
        dataset: str,
        reference_id: str | None = None,
        *,
        item_reference_id: str | None = None,
    ) -> dict[str, Any]: ...
    def update_scene_metadata(
        self, dataset: str, updates: Mapping[str, Any], *, replace: bool = False
    ) -> dict[str, Any]: ...
    def delete_scene(self, dataset: str, reference_id: str) -> dict[str, Any]: ...
    def list_tracks(self, dataset: str) -> list[dict[str, Any]]: ...
    def update_track(
        self,
        dataset: str,
        reference_id: str,
        metadata: dict[str, Any],
        *,
        replace: bool = False,
    ) -> dict[str, Any]: ...
    def delete_tracks(self, dataset: str, reference_ids: Sequence[str]) -> dict[str, Any]: ...

    # evaluation
    def commit_run(
        self,
        run_id: str,
        *,
        class_agnostic: bool = False,
        allowed_label_matches: Iterable[Mapping[str, Any]] | None = None,
        iou_threshold: float = 0.5,
        annotation_version: int | str | None = None,
        iou_type: str = "bbox",
        kpt_sigmas: Sequence[float] | Mapping[str, Sequence[float]] | None = None,
    ) -> dict[str, Any]: ...
    def run_metrics(
        self,
        run_id: str,
        *,
        slice: str | None = None,
        iou_threshold: float | None = None,
        annotation_version: int | str | None = None,
        confidence_threshold: float = 0.5,
        iou_type: str = "bbox",
        query: str | None = None,
        cells: bool = False,
    ) -> dict[str, Any]: ...
    def compare_runs(
        self,
        run_a: str,
        run_b: str,
        *,
        slice: str | None = None,
        iou_threshold: float | None = None,
        limit: int | None = None,
    ) -> dict[str, Any]: ...
    def compare_items(
        self,
        run_a: str,
        run_b: str,
        *,
        only: Literal["a", "b"] = "b",
        slice: str | None = None,
        page_size: int = 100,
        cursor: str | None = None,
    ) -> dict[str, Any]: ...
    def run_failures(
        self, run_id: str, *, kind: str = "fp", limit: int = 20, min_confidence: float = 0.0
    ) -> list[dict[str, Any]]: ...
    def failure_summary(
        self, run_id: str, *, slice: str | None = None, query: str | None = None
    ) -> dict[str, Any]: ...
    def run_error_breakdown(
        self,
        run_id: str,
        *,
        slice: str | None = None,
        annotation_version: int | str | None = None,
        iou_type: str = "bbox",
        pos_threshold: float = 0.5,
        background_threshold: float = 0.1,
        max_ids: int | None = None,
        query: str | None = None,
    ) -> dict[str, Any]: ...

    # deduplication
    def deduplicate(
        self,
        dataset: str,
        *,
        threshold: int = 10,
        reference_ids: Sequence[str] | None = None,
        item_ids: Sequence[str] | None = None,
        slice: str | None = None,
        query: str | None = None,
        max_groups: int | None = None,
        on_error: Literal["raise", "skip"] = "raise",
    ) -> dict[str, Any]: ...

    # scenario tests (model CI)
    def eval_functions(self) -> list[dict[str, Any]]: ...
    def create_scenario_test(self, name: str, slice: str,  # noqa: A002
                             criteria: Sequence[Any]) -> dict[str, Any]: ...
    def get_scenario_test(self, test: str) -> dict[str, Any]: ...
    def list_scenario_tests(self, dataset: str | None = None) -> list[dict[str, Any]]: ...
    def delete_scenario_test(self, test: str) -> dict[str, Any]: ...
    def set_scenario_criterion(self, test: str, function: str, *,
                               arguments: Mapping[str, Any] | None = None,
                               threshold: float | None = None,
                               comparison: str = "greater_than_equal_to") -> dict[str, Any]: ...
    def set_criterion_threshold(self, test: str, function: str, threshold: float | None,
                                comparison: str | None = None) -> dict[str, Any]: ...
    def remove_scenario_criterion(self, test: str, function: str) -> dict[str, Any]: ...
    def scenario_test_items(self, test: str) -> list[dict[str, Any]]: ...
    def set_scenario_baseline(self, test: str, run: str | None) -> dict[str, Any]: ...
    def evaluate_scenario_test(self, test: str, run: str, *,
                               annotation_version: int | str | None = None
                               ) -> dict[str, Any]: ...
    def scenario_test_history(self, test: str, *, run: str | None = None,
                              limit: int = 100) -> list[dict[str, Any]]: ...
    def scenario_evaluation(self, evaluation_id: str) -> dict[str, Any]: ...

    # insights
    def insights(
        self,
        dataset: str,
        *,
        slice: str | None = None,
        query: str | None = None,
        metadata_sample: int = 1000,
        fresh: bool = False,
    ) -> dict[str, Any]: ...

    # items
    def append(
        self,
        dataset: str,
        items: Sequence[DatasetItem],
        *,
        update: bool = False,
        copy_media: bool = False,
        uploads: Mapping[str, bytes] | None = None,
        on_error: Literal["raise", "skip"] = "raise",
    ) -> dict[str, Any]: ...
    def list_items(
        self, dataset: str, *, limit: int | None = None, after: str | None = None
    ) -> dict[str, Any]: ...
    def get_item(
        self,
        dataset: str,
        *,
        reference_id: str | None = None,
        item_id: str | None = None,
        index: int | None = None,
        with_predictions: bool = False,
    ) -> dict[str, Any]: ...
    def update_metadata(
        self, dataset: str, updates: Sequence[Mapping[str, Any]], *, replace: bool = False
    ) -> dict[str, Any]: ...
    def delete_item(self, dataset: str, reference_id: str) -> dict[str, Any]: ...

    # jobs
    def job_info(self, job_id: str) -> dict[str, Any]: ...
    def list_jobs(self, *, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]: ...

    # models
    def add_model(
        self, name: str, reference_id: str, metadata: dict[str, Any] | None = None
    ) -> dict[str, Any]: ...
    def list_models(self) -> list[dict[str, Any]]: ...
    def get_model(self, model: str) -> dict[str, Any]: ...
    def delete_model(self, model: str) -> dict[str, Any]: ...
    def create_run(
        self,
        model: str,
        dataset: str,
        name: str,
        predictions: Sequence[Any] = (),
        *,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]: ...
    def predict(
        self, run_id: str, predictions: Sequence[Any], *, update: bool = False
    ) -> dict[str, Any]: ...
    def run_info(self, run_id: str) -> dict[str, Any]: ...
    def list_runs(
        self, dataset: str | None = None, model: str | None = None
    ) -> list[dict[str, Any]]: ...
    def find_run(self, dataset: str, name_or_id: str) -> dict[str, Any]: ...
    def list_predictions(
        self, run_id: str, reference_ids: Sequence[str] | None = None
    ) -> list[dict[str, Any]]: ...
    def delete_run(self, run_id: str) -> dict[str, Any]: ...

    # query
    def query_items(
        self,
        dataset: str,
        query: str,
        *,
        slice: str | None = None,
        page_size: int = 100,
        cursor: str | None = None,
        with_total: bool = False,
    ) -> dict[str, Any]: ...
    def query_objects(
        self,
        dataset: str,
        query: str,
        *,
        slice: str | None = None,
        page_size: int = 100,
        cursor: str | None = None,
        with_total: bool = False,
    ) -> dict[str, Any]: ...
    def describe_query(
        self, dataset: str, query: str, target: Literal["items", "objects"] = "items"
    ) -> dict[str, Any]: ...
    def create_slice_from_query(
        self,
        dataset: str,
        name: str,
        query: str,
        *,
        target: Literal["items", "objects"] = "items",
        slice: str | None = None,
        description: str | None = None,
    ) -> dict[str, Any]: ...
    def slice_append_query(
        self, slice_id: str, query: str, *, within: str | None = None
    ) -> dict[str, Any]: ...
    def slice_remove_query(
        self, slice_id: str, query: str, *, within: str | None = None
    ) -> dict[str, Any]: ...
    def slice_summary(self, slice_id: str) -> dict[str, Any]: ...
    def slice_objects(
        self, slice_id: str, *, page_size: int = 100, cursor: str | None = None
    ) -> dict[str, Any]: ...
    def combine_slices(
        self,
        dataset: str,
        name: str,
        operation: SetOperation,
        slices: Sequence[str],
        *,
        description: str | None = None,
    ) -> dict[str, Any]: ...
    def slice_contents(self, slice_id: str) -> dict[str, Any]: ...
    def delete_slice_objects(self, slice_id: str) -> dict[str, Any]: ...

    # service
    def close(self) -> None: ...

    # slices
    def create_slice(
        self,
        dataset: str,
        name: str,
        reference_ids: Sequence[str] = (),
        *,
        description: str | None = None,
    ) -> dict[str, Any]: ...
    def slice_info(self, slice_id: str) -> dict[str, Any]: ...
    def list_slices(self, dataset: str) -> list[dict[str, Any]]: ...
    def slice_items(self, slice_id: str) -> list[dict[str, Any]]: ...
    def slice_append(self, slice_id: str, reference_ids: Sequence[str]) -> dict[str, Any]: ...
    def slice_remove(self, slice_id: str, reference_ids: Sequence[str]) -> dict[str, Any]: ...
    def delete_slice(self, slice_id: str) -> dict[str, Any]: ...
    def find_slice(self, dataset: str, name_or_id: str) -> dict[str, Any]: ...
