"""Nucleus' ``validate/…`` routes (Model CI): evaluation functions, scenario tests,
their criteria ("metrics"), evaluations and history, over Ocula's scenario tests
(``ocula.core.services.scenarios``).

Nucleus evaluates a *model* on tests by their names; Ocula evaluates the model's run
on each test's dataset (its newest: see ``Service.model_run_on``). One Nucleus
"evaluation" is one criterion's result: its id is Ocula's result id (``str_…``).
External evaluation functions and results computed outside Ocula are not supported.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from ocula.core.evaluation.eval_functions import eval_function
from ocula.errors import NotSupportedError, ValidationError
from ocula.server.compat import nucleus_format as fmt
from ocula.server.compat.nucleus_exports import UrlsDep
from ocula.server.deps import JobsDep, ServiceDep

router = APIRouter()
JsonBody = Annotated[dict[str, Any], Body(default_factory=dict)]


def _test_info(test: dict[str, Any], service: Any) -> dict[str, Any]:
    baseline = None
    if test["baseline_run_id"] is not None:
        baseline = service.run_info(test["baseline_run_id"])["model_id"]
    return {"id": test["id"], "name": test["name"], "slice_id": test["slice_id"],
            "baseline_model_id": baseline}


def _given_arguments(criterion: dict[str, Any]) -> dict[str, Any]:
    """The arguments that differ from the function's defaults: what a Nucleus client
    sent (its ``ScenarioTestMetric`` compares them)."""
    defaults = eval_function(criterion["function"]).arguments()
    return {k: v for k, v in criterion["arguments"].items() if defaults.get(k) != v}


def _metric(test_id: str, criterion: dict[str, Any]) -> dict[str, Any]:
    return {"scenario_test_id": test_id, "eval_function_id": criterion["eval_function_id"],
            "threshold": criterion["threshold"],
            "threshold_comparison": criterion["comparison"],
            "eval_func_arguments": _given_arguments(criterion)}


def _evaluation(ev: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    return {"id": result["id"], "scenario_test_id": ev["scenario_test_id"],
            "eval_function_id": result["eval_function_id"], "model_id": ev["model_id"],
            "model_run_id": ev["model_run_id"], "status": "completed",
            "result": result["value"], "pass": result["passed"],
            "threshold": result["threshold"],
            "threshold_comparison": result["comparison"], "created_at": ev["created_at"]}


@router.get("/validate/eval_fn")
def list_eval_functions(service: ServiceDep) -> dict[str, Any]:
    """Every function Ocula knows, public; those it cannot compute are listed too, and
    choosing one answers 501 naming it."""
    return {"eval_functions": [
        {"id": f["id"], "name": f["name"], "is_public": True, "is_external_function": False,
         "user_id": "ocula", "serialized_fn": None, "raw_source": None}
        for f in service.eval_functions()]}


@router.post("/validate/eval_fn")
def create_eval_function(body: JsonBody) -> dict[str, Any]:
    raise NotSupportedError(f"external evaluation functions ({body.get('name')!r}) are not "
                            "supported by Ocula: its functions are computed on the server")


@router.post("/validate/scenario_test/upload_results")
def upload_results(body: JsonBody) -> dict[str, Any]:
    raise NotSupportedError("uploading evaluation results computed outside Ocula "
                            "(external functions) is not supported by Ocula")


@router.post("/validate/scenario_test")
def create_test(body: JsonBody, service: ServiceDep) -> dict[str, Any]:
    functions = body.get("evaluation_functions")
    if not isinstance(functions, list):
        raise ValidationError("evaluation_functions must be a list")
    criteria = []
    for f in functions:
        if not isinstance(f, dict):
            raise ValidationError(f"an evaluation function is an object, got {f!r}")
        criteria.append({"function": f.get("id"),
                         "arguments": f.get("eval_func_arguments") or None})
    test = service.create_scenario_test(body.get("name"), body.get("slice_id"), criteria)
    return {"scenario_test_id": test["id"]}


@router.get("/validate/scenario_test/details")
def list_tests(service: ServiceDep) -> list[dict[str, Any]]:
    return [_test_info(t, service) for t in service.list_scenario_tests()]


@router.get("/validate/scenario_test/{test_id}")
def get_test(test_id: str, service: ServiceDep) -> dict[str, Any]:
    return {"unit_test": _test_info(service.get_scenario_test(test_id), service)}


@router.get("/validate/scenario_test/{test_id}/info")
def test_info(test_id: str, service: ServiceDep) -> dict[str, Any]:
    return _test_info(service.get_scenario_test(test_id), service)


@router.delete("/validate/scenario_test/{test_id}")
def delete_test(test_id: str, service: ServiceDep) -> dict[str, Any]:
    service.delete_scenario_test(test_id)
    return {"success": True}


@router.get("/validate/scenario_test/{test_id}/metrics")
def test_metrics(test_id: str, service: ServiceDep) -> dict[str, Any]:
    test = service.get_scenario_test(test_id)
    return {"scenario_test_metrics": [_metric(test["id"], c) for c in test["criteria"]]}


@router.post("/validate/scenario_test_eval_function")
def add_criterion(body: JsonBody, service: ServiceDep) -> dict[str, Any]:
    """A criterion without a threshold (Nucleus adds the function, then sets one)."""
    name = body.get("scenario_test_name")
    if not isinstance(name, str):
        raise ValidationError("scenario_test_name must be a test's name")
    fn = body.get("eval_function_id")
    added = service.set_scenario_criterion(name, fn if isinstance(fn, str) else "")
    return _metric(added["scenario_test_id"], added)


@router.post("/validate/metric/set_threshold/{test_id}/{function_id}")
def set_threshold(test_id: str, function_id: str, body: JsonBody,
                  service: ServiceDep) -> dict[str, Any]:
    row = service.set_criterion_threshold(test_id, function_id, body.get("threshold"))
    return _metric(row["scenario_test_id"], row)


@router.get("/validate/scenario_test/{test_id}/items")
def test_items(test_id: str, service: ServiceDep, urls: UrlsDep) -> dict[str, Any]:
    """The slice's items and, on a scene dataset, the scenes with a frame in the slice
    and the tracks on those scenes. An item uploaded from a URL is named by that URL, as
    Nucleus names it here (the client compares it with what it appended); a local
    upload by Ocula's signed URL."""
    def named(body: dict[str, Any]) -> dict[str, Any]:
        row = fmt.item(body, urls)
        original = row.get("original_image_url") or ""
        if original.startswith(("http://", "https://", "s3://", "gs://")):
            row["image_url"] = original
        return row
    items = service.scenario_test_items(test_id)
    scenes, tracks = _scenes_of(service, service.get_scenario_test(test_id)["dataset_id"],
                                {i["id"] for i in items})
    return {"dataset_items": [named(r) for r in items], "scenes": scenes, "tracks": tracks}


def _scenes_of(service: Any, ds: str, item_ids: set[str]
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Scenes (``{id, reference_id, metadata}``) with a frame among ``item_ids``, and
    the tracks on them, in Nucleus' forms."""
    if not service.get_dataset(ds)["is_scene"]:
        return [], []
    scenes: list[dict[str, Any]] = []
    on: dict[str, None] = {}
    for listed in service.list_scenes(ds):
        scene = service.get_scene(ds, listed["reference_id"])
        if any(f["id"] in item_ids for f in scene["frames"]):
            scenes.append({"id": scene["id"], "reference_id": scene["reference_id"],
                           "metadata": scene["metadata"]})
            on.update(dict.fromkeys(scene["tracks"]))
    tracks = [tr for tr in service.list_tracks(ds) if tr["reference_id"] in on]
    return scenes, tracks


@router.post("/validate/scenario_test/{test_id}/set_baseline_model/{model_id}")
def set_baseline(test_id: str, model_id: str, service: ServiceDep) -> dict[str, Any]:
    test = service.get_scenario_test(test_id)
    run = service.model_run_on(test["dataset_id"], model_id)
    service.set_scenario_baseline(test["id"], run["id"])
    return {"baseline_model_id": run["model_id"]}


@router.get("/validate/scenario_test/{test_id}/eval_history/details")
def eval_history(test_id: str, service: ServiceDep) -> list[dict[str, Any]]:
    return [_evaluation(ev, r) for ev in service.scenario_test_history(test_id, limit=1000)
            for r in ev["results"]]


@router.get("/validate/eval/{evaluation_id}/info")
def evaluation_info(evaluation_id: str, service: ServiceDep) -> dict[str, Any]:
    """One criterion's result (``str_…``) with its items' results."""
    ev = service.scenario_evaluation(evaluation_id)
    result = next((r for r in ev["results"] if r["id"] == evaluation_id), ev["results"][0])
    return {"scenario_test_evaluation": _evaluation(ev, result),
            "scenario_test_item_evaluations": [
                {"evaluation_id": result["id"], "scenario_test_id": ev["scenario_test_id"],
                 "eval_function_id": result["eval_function_id"],
                 "dataset_item_id": i["item_id"], "reference_id": i["reference_id"],
                 "result": i["value"], "pass": i["passed"]} for i in result["items"]]}


@router.post("/validate/{model_id}/evaluate")
def evaluate(model_id: str, body: JsonBody, service: ServiceDep,
             jobs: JobsDep) -> dict[str, Any]:
    """Evaluate the model's run on each named test's dataset, as a job (its result
    lists each test's evaluation)."""
    names = body.get("test_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ValidationError("test_names must be a non-empty list of scenario test names")
    # Unknown tests and models without a run are 4xx now, not a failed job later.
    runs = {}
    for name in names:
        test = service.get_scenario_test(name)
        runs[name] = service.model_run_on(test["dataset_id"], model_id)["id"]

    def work(progress: Any) -> dict[str, Any]:
        done = []
        for k, name in enumerate(names):
            done.append(service.evaluate_scenario_test(name, runs[name]))
            progress(k + 1, len(names))
        return {"evaluations": [{"id": e["id"], "scenario_test_id": e["scenario_test_id"],
                                 "passed": e["passed"]} for e in done]}

    return fmt.job_ref(jobs.submit("scenario_test_evaluation", work, total_steps=len(names),
                                   message=f"evaluate {model_id} on {len(names)} test(s)"))
