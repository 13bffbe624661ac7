"""``ocula.Client``: one facade over an embedded catalog or a remote server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ocula.client.dataset import Dataset, Slice
from ocula.client.model import Model, ModelRun
from ocula.client.scenario import ScenarioTest
from ocula.core.contract import Backend
from ocula.core.services import Service


class Client:
    """Entry point of the Python API.

    ``Client()`` opens the embedded catalog under ``$OCULA_HOME`` (default
    ``~/.ocula``): SQLite plus a media folder, no server needed.
    ``Client(home="/data/ocula")`` picks the folder; ``database_url=`` points the catalog
    at PostgreSQL (``postgresql+psycopg://user@host/db``) while media stay under home.
    ``Client("http://host:8000", api_key=...)`` talks to an ``ocula serve`` server
    instead, with the same methods, results and errors. Bulk writes pause Python's
    cyclic garbage collector and shorten its thread switch interval while they run (about
    3x faster ingest), restoring both after; ``tune_runtime=False`` leaves them alone.
    """

    def __init__(self, home: str | Path | None = None, *, database_url: str | None = None,
                 api_key: str | None = None, tune_runtime: bool = True):
        if isinstance(home, str) and home.startswith(("http://", "https://")):
            from ocula.client.http import HttpBackend  # httpx only loads for remote use

            self._backend: Backend = HttpBackend(home, api_key=api_key)
            return
        from ocula.fetch import fetch_url  # httpx loads with the client, never with the core

        self._backend = Service.open(home, database_url, tune_runtime=tune_runtime,
                                     fetcher=fetch_url)

    def close(self) -> None:
        self._backend.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- datasets -------------------------------------------------------------------

    def create_dataset(self, name: str, *, allowed_types: list[str] | None = None,
                       metadata: dict[str, Any] | None = None,
                       is_scene: bool = False) -> Dataset:
        """Create an empty dataset. ``allowed_types`` restricts the annotation types it
        accepts (``box``, ``polygon``, ``line``, ``keypoints``, ``category``,
        ``multicategory``, ``mask``); a scene
        dataset (``is_scene``) takes its items as frames of scenes (``append_scenes``)."""
        body = self._backend.create_dataset(name, allowed_types=allowed_types,
                                            metadata=metadata, is_scene=is_scene)
        return Dataset(self, body["id"], body["name"])

    @property
    def datasets(self) -> list[Dataset]:
        return [Dataset(self, d["id"], d["name"]) for d in self._backend.list_datasets()]

    def list_datasets(self) -> list[dict[str, Any]]:
        return self._backend.list_datasets()

    def get_dataset(self, dataset_id: str) -> Dataset:
        """A dataset by id (``ds_…``) or by name."""
        body = self._backend.get_dataset(dataset_id)
        return Dataset(self, body["id"], body["name"])

    def delete_dataset(self, dataset_id: str) -> dict[str, Any]:
        return self._backend.delete_dataset(dataset_id)

    def get_slice(self, slice_id: str) -> Slice:
        body = self._backend.slice_info(slice_id)
        return Slice(self, body["slice_id"], body["name"], body["dataset_id"])

    # --- models ---------------------------------------------------------------------

    def add_model(self, name: str, reference_id: str,
                  metadata: dict[str, Any] | None = None) -> Model:
        return Model(self, self._backend.add_model(name, reference_id, metadata))

    @property
    def models(self) -> list[Model]:
        return [Model(self, m) for m in self._backend.list_models()]

    def get_model(self, model_id: str) -> Model:
        """A model by id (``prj_…``) or reference id."""
        return Model(self, self._backend.get_model(model_id))

    def delete_model(self, model_id: str) -> dict[str, Any]:
        return self._backend.delete_model(model_id)

    def get_model_run(self, run_id: str) -> ModelRun:
        return ModelRun(self, self._backend.run_info(run_id))

    # --- scenario tests (model CI) --------------------------------------------------

    def eval_functions(self) -> list[dict[str, Any]]:
        """The evaluation functions scenario tests can use, with their default
        arguments (those Ocula cannot compute are listed with ``supported: False``)."""
        return self._backend.eval_functions()

    def create_scenario_test(self, name: str, slice: Any,  # noqa: A002
                             criteria: list[Any]) -> ScenarioTest:
        """A scenario test of an item slice (a handle or id) with criteria: function
        names, or ``{"function", "arguments", "threshold", "comparison"}`` (comparison
        ``">="`` by default; ``">"``, ``"<"``, ``"<="`` or Nucleus' words), e.g.
        ``client.create_scenario_test("night", slc, [{"function": "bbox_recall",
        "threshold": 0.8}])``."""
        slice_id = slice if isinstance(slice, str) else slice.id
        return ScenarioTest(self, self._backend.create_scenario_test(name, slice_id, criteria))

    @property
    def scenario_tests(self) -> list[ScenarioTest]:
        return [ScenarioTest(self, b) for b in self._backend.list_scenario_tests()]

    def get_scenario_test(self, test: str) -> ScenarioTest:
        """A scenario test by id (``st_…``) or name."""
        return ScenarioTest(self, self._backend.get_scenario_test(test))

    def delete_scenario_test(self, test: str) -> dict[str, Any]:
        return self._backend.delete_scenario_test(test)
