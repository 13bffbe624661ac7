"""The web app's run pages: a dataset's runs with their headline numbers, and one run's
metrics (COCO numbers, per-class table, curves, confusion matrix, failure summary, TIDE
error breakdown, the run against two label versions side by side).

The server renders the frame (names as autoescaped text, the scope choosers); the
numbers come from ``/api/v1/runs/{id}/metrics`` in ``run.js`` / ``runlist.js``, for the
scope (``?slice=``, an item slice's id) and label version (``?version=``) in the URL.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ocula.server.web.pages import MISSING, _counts, _page, missing_page

router = APIRouter(include_in_schema=False)


def _frame(service: Any, dataset: str) -> dict[str, Any]:
    """What both pages show around their numbers: the dataset, its item slices (an
    object slice holds no items to score on), its label versions and its runs."""
    ds = _counts(service, dataset)
    slices = [{"id": s["id"], "name": s["name"], "length": s["length"]}
              for s in service.list_slices(ds["id"]) if s["kind"] == "item"]
    versions = [{"version": v["version"], "name": v["name"]}
                for v in service.list_versions(ds["id"])]
    runs = [{"id": r["id"], "name": r["name"], "model": r["model_name"],
             "committed": r["committed"], "predictions": r["prediction_count"]}
            for r in service.list_runs(ds["id"])]
    return {"ds": ds, "slices": slices, "versions": versions, "runs": runs}


@router.get("/datasets/{dataset}/runs")
def runs_page(request: Request, dataset: str) -> Response:
    try:
        frame = _frame(request.app.state.service, dataset)
    except MISSING as exc:
        return missing_page(request, exc)
    return _page(request, "run_list.html", **frame)


@router.get("/datasets/{dataset}/runs/{name:path}")
def run_page(request: Request, dataset: str, name: str) -> Response:
    """One run, by name (what the runs list links to) or id."""
    service = request.app.state.service
    try:
        frame = _frame(service, dataset)
        run = service.find_run(frame["ds"]["id"], name)
    except MISSING as exc:
        return missing_page(request, exc)
    config = run["commit_config"] or {}
    info = {"id": run["id"], "name": run["name"], "model": run["model_name"],
            "committed": run["committed"], "predictions": run["prediction_count"],
            "committed_at": run["committed_at"] or "",
            "iou_type": config.get("iou_type", "bbox"),
            "iou_threshold": config.get("iou_threshold", 0.5),
            "committed_version": run["committed_version"]}
    return _page(request, "run.html", run=info, **_version_choices(frame["versions"]),
                 **frame)


def _version_choices(versions: list[dict[str, Any]]) -> dict[str, Any]:
    """The label versions the "Compare label versions" selects offer: named ones first
    (newest first), then the others, then the current labels; by default the newest
    named version (else the newest) against the current labels."""
    ordered = sorted(versions, key=lambda v: (v["name"] is None, -v["version"]))
    choices = [{"value": str(v["version"]),
                "text": f"Version {v['version']}" + (f" · {v['name']}" if v["name"] else "")}
               for v in ordered]
    choices.append({"value": "current", "text": "Current labels"})
    return {"vs_choices": choices, "vs_default": (choices[0]["value"], "current")}
