"""``/scenario_tests`` and ``/eval_functions``: model CI. A scenario test is a slice
plus criteria (evaluation function, arguments, threshold, comparison); evaluating a run
on it gives each criterion's value and pass, kept as the test's history."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from ocula.server.api.common import MAX_LIST, Name
from ocula.server.api.schemas import CREATE, READ, WRITE, Deleted, Open, errors, ok
from ocula.server.deps import ServiceDep

router = APIRouter(tags=["scenario tests"])

Id = Annotated[str, Field(max_length=255)]
# A function by name or id (``bbox_iou``, ``ef_bbox_iou``): an unknown one is a 404, one
# Ocula lists but cannot compute a 501 naming it (``/eval_functions`` lists both kinds).
FunctionName = Annotated[str, Field(min_length=1, max_length=64)]
FunctionPath = Annotated[str, Path(min_length=1, max_length=64)]
Unit = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Threshold = Annotated[float | None, Field(allow_inf_nan=False)]
ComparisonName = Literal["greater_than", "greater_than_equal_to", "less_than",
                         "less_than_equal_to", ">", ">=", "<", "<="]


def _ok_or_501(model: Any, *codes: int, status: int = 200) -> dict[str, Any]:
    """:func:`ok`, plus the 501 of a function Ocula lists but cannot compute."""
    kwargs = ok(model, *codes, status=status)
    return {**kwargs, "responses": {**kwargs["responses"], **errors(501)}}


class EvalFunction(Open):
    id: str
    name: str
    kind: str = Field(description="the sides it reads: bbox, segm, category, unsupported")
    supported: bool
    arguments: dict[str, Any] = Field(description="arguments and their defaults")


class Criterion(Open):
    function: str
    eval_function_id: str
    arguments: dict[str, Any]
    threshold: float | None
    comparison: str


class ScenarioTest(Open):
    id: str
    name: str
    dataset_id: str
    slice_id: str
    baseline_run_id: str | None
    criteria: list[Criterion]


class CriterionResult(Open):
    id: str
    function: str
    value: float | None
    threshold: float | None
    comparison: str
    passed: bool
    counts: dict[str, Any]


class ScenarioEvaluation(Open):
    id: str
    scenario_test_id: str
    model_run_id: str
    passed: bool
    results: list[CriterionResult]


class ArgumentsIn(BaseModel):
    """Arguments of evaluation functions (each takes some: ``/eval_functions``)."""

    model_config = ConfigDict(extra="forbid")
    enforce_label_match: bool | None = None
    iou_threshold: Unit | None = None
    confidence_threshold: Unit | None = None
    f1_method: Literal["macro", "micro", "weighted"] | None = None
    annotation_filters: None = None
    prediction_filters: None = None


def _arguments(body: ArgumentsIn | None) -> dict[str, Any] | None:
    return None if body is None else body.model_dump(exclude_none=True)


class CriterionIn(BaseModel):
    function: FunctionName
    arguments: ArgumentsIn | None = None
    threshold: Threshold = None
    comparison: ComparisonName = "greater_than_equal_to"


class ScenarioTestIn(BaseModel):
    name: Name
    slice: Id
    criteria: Annotated[list[CriterionIn], Field(min_length=1, max_length=100)]


class CriterionSetIn(BaseModel):
    arguments: ArgumentsIn | None = None
    threshold: Threshold = None
    comparison: ComparisonName = "greater_than_equal_to"


class ThresholdIn(BaseModel):
    threshold: Threshold
    comparison: ComparisonName | None = None


class BaselineIn(BaseModel):
    run: Id | None


class EvaluateIn(BaseModel):
    run: Id
    annotation_version: int | Id | None = None


@router.get("/eval_functions", **ok([EvalFunction]))
def eval_functions(service: ServiceDep) -> list[dict[str, Any]]:
    """The evaluation functions criteria can use (those Ocula cannot compute too, with
    ``supported: false`` and the reason)."""
    return service.eval_functions()


@router.get("/scenario_tests", **ok([ScenarioTest], *READ))
def list_tests(service: ServiceDep,
               dataset: Annotated[str | None, Query(max_length=255)] = None
               ) -> list[dict[str, Any]]:
    return service.list_scenario_tests(dataset)


@router.post("/scenario_tests", **_ok_or_501(ScenarioTest, *CREATE, status=201))
def create_test(body: ScenarioTestIn, service: ServiceDep) -> dict[str, Any]:
    """A test of an item slice (by id) with its criteria; names are unique."""
    return service.create_scenario_test(body.name, body.slice, [
        {**c.model_dump(), "arguments": _arguments(c.arguments)} for c in body.criteria])


@router.get("/scenario_tests/{test}", **ok(ScenarioTest, *READ))
def get_test(test: str, service: ServiceDep) -> dict[str, Any]:
    return service.get_scenario_test(test)


@router.delete("/scenario_tests/{test}", **ok(Deleted, *READ))
def delete_test(test: str, service: ServiceDep) -> dict[str, Any]:
    return service.delete_scenario_test(test)


@router.put("/scenario_tests/{test}/criteria/{function}", **_ok_or_501(Criterion, *WRITE))
def set_criterion(test: str, function: FunctionPath, body: CriterionSetIn,
                  service: ServiceDep) -> dict[str, Any]:
    """Add a criterion, or replace the test's criterion of that function."""
    return service.set_scenario_criterion(test, function, arguments=_arguments(body.arguments),
                                          threshold=body.threshold,
                                          comparison=body.comparison)


@router.post("/scenario_tests/{test}/criteria/{function}/threshold", **ok(Criterion, *WRITE))
def set_threshold(test: str, function: FunctionPath, body: ThresholdIn,
                  service: ServiceDep) -> dict[str, Any]:
    return service.set_criterion_threshold(test, function, body.threshold, body.comparison)


@router.delete("/scenario_tests/{test}/criteria/{function}", **ok(Open, *READ))
def remove_criterion(test: str, function: FunctionPath, service: ServiceDep) -> dict[str, Any]:
    return service.remove_scenario_criterion(test, function)


@router.get("/scenario_tests/{test}/items", **ok([Open], *READ))
def test_items(test: str, service: ServiceDep) -> list[dict[str, Any]]:
    return service.scenario_test_items(test)


@router.put("/scenario_tests/{test}/baseline", **ok(ScenarioTest, *WRITE))
def set_baseline(test: str, body: BaselineIn, service: ServiceDep) -> dict[str, Any]:
    """A run evaluated on the test as its baseline (null clears it)."""
    return service.set_scenario_baseline(test, body.run)


@router.post("/scenario_tests/{test}/evaluate", **ok(ScenarioEvaluation, *WRITE))
def evaluate(test: str, body: EvaluateIn, service: ServiceDep) -> dict[str, Any]:
    """Evaluate a run (id, or name in the test's dataset) on the test, and keep it."""
    return service.evaluate_scenario_test(test, body.run,
                                          annotation_version=body.annotation_version)


@router.get("/scenario_tests/{test}/history", **ok([ScenarioEvaluation], *READ))
def history(test: str, service: ServiceDep,
            run: Annotated[str | None, Query(max_length=255)] = None,
            limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 100) -> list[dict[str, Any]]:
    return service.scenario_test_history(test, run=run, limit=limit)


@router.get("/scenario_evaluations/{evaluation_id}", **ok(ScenarioEvaluation, *READ))
def evaluation(evaluation_id: str, service: ServiceDep) -> dict[str, Any]:
    """One evaluation with each criterion's item values and the ids behind them."""
    return service.scenario_evaluation(evaluation_id)
