"""Ocula's REST API, one router per resource; each route is one service call.

Adding a route for a new service method (``commit``, ``metrics``, ``query``...): add a
function to the resource's router (or a new module listed in ``ROUTERS``) that parses
the body with a pydantic model and returns ``service.<method>(...)``; errors need no
handling, the app maps ``OculaError`` to JSON. Then add the same-named method to
``ocula.client.http.HttpBackend`` calling that route.
"""

from fastapi import APIRouter

from ocula.server.api import (
    annotations,
    datasets,
    dedup,
    edits,
    items,
    jobs,
    media,
    models,
    query,
    runs,
    scenario_tests,
    scenes,
    slices,
    taxonomies,
)

ROUTERS: list[APIRouter] = [datasets.router, items.router, annotations.router, edits.router,
                            slices.router, models.router, runs.router, jobs.router,
                            query.router, scenario_tests.router, scenes.router,
                            taxonomies.router, dedup.router]

__all__ = ["ROUTERS", "media"]
