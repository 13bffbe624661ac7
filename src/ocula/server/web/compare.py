"""The page that compares two committed runs of a dataset on one scope.

``/datasets/{dataset}/compare?a=<run name>&b=<run name>&slice=<slice id>``: the server
renders the choices (committed runs, item slices); ``static/compare.js`` reads the
comparison and pages the fixed and broken items from the REST API
(``/api/v1/compare``, ``/api/v1/compare/items``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ocula.server.web.pages import MISSING, _counts, _page, missing_page

router = APIRouter(include_in_schema=False)


@router.get("/datasets/{dataset}/compare")
def compare_page(request: Request, dataset: str) -> Response:
    """Two runs side by side. The runs and slice come from the URL and are checked by
    the page's script, which says why a run cannot be compared (not committed, not in
    this dataset) rather than failing the page."""
    service = request.app.state.service
    try:
        ds = _counts(service, dataset)
    except MISSING as exc:
        return missing_page(request, exc)
    runs = [{"id": r["id"], "name": r["name"], "committed": r["committed"]}
            for r in service.list_runs(ds["id"])]
    slices = [{"id": s["id"], "name": s["name"], "length": s["length"]}
              for s in service.list_slices(ds["id"]) if s["kind"] == "item"]
    return _page(request, "compare.html", ds=ds, runs=runs, slices=slices)
