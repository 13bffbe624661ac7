"""The HTTP backend's scenario-test methods (``/scenario_tests``, ``/eval_functions``):
the same signatures and results as :class:`~ocula.core.services.scenarios.ScenarioService`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote


def _seg(value: str) -> str:
    return quote(str(value), safe="")


class ScenarioHttp:
    """Mixed into :class:`~ocula.client.http.HttpBackend`, which provides ``_call``."""

    _call: Any

    def eval_functions(self) -> list[dict[str, Any]]:
        return self._call("GET", "/eval_functions")

    def create_scenario_test(self, name: str, slice: str,  # noqa: A002
                             criteria: Sequence[Any]) -> dict[str, Any]:
        wire = [{"function": c} if isinstance(c, str) else dict(c) for c in criteria]
        return self._call("POST", "/scenario_tests", body={
            "name": name, "slice": slice, "criteria": wire})

    def get_scenario_test(self, test: str) -> dict[str, Any]:
        return self._call("GET", f"/scenario_tests/{_seg(test)}")

    def list_scenario_tests(self, dataset: str | None = None) -> list[dict[str, Any]]:
        return self._call("GET", "/scenario_tests", params={"dataset": dataset})

    def delete_scenario_test(self, test: str) -> dict[str, Any]:
        return self._call("DELETE", f"/scenario_tests/{_seg(test)}")

    def set_scenario_criterion(self, test: str, function: str, *,
                               arguments: Mapping[str, Any] | None = None,
                               threshold: float | None = None,
                               comparison: str = "greater_than_equal_to") -> dict[str, Any]:
        return self._call("PUT", f"/scenario_tests/{_seg(test)}/criteria/{_seg(function)}",
                          body={"arguments": None if arguments is None else dict(arguments),
                                "threshold": threshold, "comparison": comparison})

    def set_criterion_threshold(self, test: str, function: str, threshold: float | None,
                                comparison: str | None = None) -> dict[str, Any]:
        return self._call(
            "POST", f"/scenario_tests/{_seg(test)}/criteria/{_seg(function)}/threshold",
            body={"threshold": threshold, "comparison": comparison})

    def remove_scenario_criterion(self, test: str, function: str) -> dict[str, Any]:
        return self._call("DELETE",
                          f"/scenario_tests/{_seg(test)}/criteria/{_seg(function)}")

    def scenario_test_items(self, test: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/scenario_tests/{_seg(test)}/items")

    def set_scenario_baseline(self, test: str, run: str | None) -> dict[str, Any]:
        return self._call("PUT", f"/scenario_tests/{_seg(test)}/baseline", body={"run": run})

    def evaluate_scenario_test(self, test: str, run: str, *,
                               annotation_version: int | str | None = None
                               ) -> dict[str, Any]:
        return self._call("POST", f"/scenario_tests/{_seg(test)}/evaluate", body={
            "run": run, "annotation_version": annotation_version})

    def scenario_test_history(self, test: str, *, run: str | None = None,
                              limit: int = 100) -> list[dict[str, Any]]:
        return self._call("GET", f"/scenario_tests/{_seg(test)}/history",
                          params={"run": run, "limit": limit})

    def scenario_evaluation(self, evaluation_id: str) -> dict[str, Any]:
        return self._call("GET", f"/scenario_evaluations/{_seg(evaluation_id)}")
