"""Client-side handle for scenario tests ("model CI")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ocula.client.client import Client
    from ocula.client.model import ModelRun


def _run_id(run: ModelRun | str) -> str:
    return run if isinstance(run, str) else run.id


class ScenarioTest:
    """A slice plus criteria (evaluation function, arguments, threshold, comparison).

    ``test.evaluate(run)`` computes every criterion on the slice's items and keeps the
    result in the test's history; ``result["passed"]`` is True when every criterion
    passes. See ``client.eval_functions()`` for the functions and their arguments.
    """

    def __init__(self, client: Client, body: dict[str, Any]):
        self._client = client
        self._backend = client._backend
        self._set(body)

    def _set(self, body: dict[str, Any]) -> None:
        self.id: str = body["id"]
        self.name: str = body["name"]
        self.slice_id: str = body["slice_id"]
        self.dataset_id: str = body["dataset_id"]
        self.baseline_run_id: str | None = body.get("baseline_run_id")
        self.criteria: list[dict[str, Any]] = body["criteria"]

    def __repr__(self) -> str:
        names = [c["function"] for c in self.criteria]
        return f"ScenarioTest(id={self.id!r}, name={self.name!r}, criteria={names})"

    def refresh(self) -> ScenarioTest:
        self._set(self._backend.get_scenario_test(self.id))
        return self

    def evaluate(self, run: ModelRun | str, *,
                 annotation_version: int | str | None = None) -> dict[str, Any]:
        """Evaluate a run of the test's dataset (a handle, id or name): each criterion's
        ``value``, ``threshold``, ``passed``, its items' values and the ids behind it."""
        return self._backend.evaluate_scenario_test(
            self.id, _run_id(run), annotation_version=annotation_version)

    def history(self, run: ModelRun | str | None = None, *,
                limit: int = 100) -> list[dict[str, Any]]:
        """Earlier evaluations, newest first (of one run with ``run``)."""
        return self._backend.scenario_test_history(
            self.id, run=None if run is None else _run_id(run), limit=limit)

    def add_criterion(self, function: str, threshold: float | None = None,
                      comparison: str = ">=", *,
                      arguments: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Add a criterion (or replace the one of that function)."""
        out = self._backend.set_scenario_criterion(
            self.id, function, arguments=arguments, threshold=threshold,
            comparison=comparison)
        self.refresh()
        return out

    def set_threshold(self, function: str, threshold: float | None,
                      comparison: str | None = None) -> dict[str, Any]:
        out = self._backend.set_criterion_threshold(self.id, function, threshold, comparison)
        self.refresh()
        return out

    def remove_criterion(self, function: str) -> dict[str, Any]:
        out = self._backend.remove_scenario_criterion(self.id, function)
        self.refresh()
        return out

    def set_baseline(self, run: ModelRun | str | None) -> None:
        """A run evaluated on this test as its baseline: criteria without a threshold
        then compare with its value (None clears it)."""
        self._set(self._backend.set_scenario_baseline(
            self.id, None if run is None else _run_id(run)))

    def items(self) -> list[dict[str, Any]]:
        return self._backend.scenario_test_items(self.id)

    def delete(self) -> dict[str, Any]:
        return self._backend.delete_scenario_test(self.id)
