"""A committed run's match rows kept in memory by the process that wrote them
(``committed_matches``): what they answer for the committed-match queries is what SQL
selects, and every change since the commit that could make the two differ (labels
edited, an item deleted, a commit at an older label version) sends the next request
back to SQL. On both databases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from ocula import BoxAnnotation
from ocula.core.services import Service, committed_matches, run_results
from ocula.core.services.evaluation_links import plain_query
from ocula.core.services.insights_scan import quote
from ocula.core.store import schema as t
from tests.core.test_metric_links import _scene as _links_scene
from tests.core.test_run_results import _scene


def _run(conn: Any, run: str) -> Any:
    return conn.execute(select(t.model_runs).where(t.model_runs.c.id == run)).one()


def _recall(service: Service, run: str) -> committed_matches.CommittedMatches | None:
    with service.db.read() as conn:
        return committed_matches.recall(conn, _run(conn, run))


@pytest.mark.parametrize("confidence", [0.0, 0.5, 0.9])
def test_kept_rows_answer_what_sql_selects(service: Service, tmp_path: Path,
                                           confidence: float) -> None:
    ds, run = _scene(service, tmp_path / "img")
    rows = _recall(service, run)
    assert rows is not None
    with service.db.read() as conn:
        row = _run(conn, run)
        even = conn.scalar(select(t.slices.c.pk).where(t.slices.c.name == "even"))
        members = run_results.slice_members(conn, even)
        for scope, items in ((None, None), ("even", members)):
            for kind in ("annotation", "tp", "fp"):
                query = plain_query(kind, f"run = {quote(row.name)}", None, confidence)
                sql = service._pks_by(conn, ds, query, scope)
                assert sql, (kind, scope)
                kept = rows.by_label(kind, confidence, items)
                assert kept.keys() == sql.keys(), (kind, scope)
                for label, pks in sql.items():
                    assert kept[label].tolist() == pks.tolist(), (kind, scope, label)


def test_a_change_since_the_commit_sends_requests_back_to_sql(service: Service,
                                                              tmp_path: Path) -> None:
    ds, run = _scene(service, tmp_path / "img")
    assert _recall(service, run) is not None
    service.annotate(ds, [BoxAnnotation("car", 1, 1, 5, 5, reference_id="r0")])
    assert _recall(service, run) is None  # the queries would see the new box
    service.commit_run(run)
    assert _recall(service, run) is not None
    service.delete_item(ds, "r1")  # its match rows deleted with it
    assert _recall(service, run) is None
    service.commit_run(run)
    assert _recall(service, run) is not None
    # Rows of a label version the queries do not see: not kept.
    service.commit_run(run, annotation_version=1)
    assert _recall(service, run) is None


@pytest.mark.parametrize("confidence", [0.2, 0.5])
def test_links_are_the_same_from_memory_and_from_sql(service: Service, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     confidence: float) -> None:
    """Cells too big to list by id (test_metric_links' scene), on every scope kind."""
    ds, run = _links_scene(service, tmp_path / "img")
    version = max(v["version"] for v in service.list_versions(ds))
    scopes: list[dict[str, Any]] = [{}, {"slice": "first"}, {"query": 'has(label = "car")'}]
    asked = {"annotation_version": version, "confidence_threshold": confidence}
    answered: list[str] = []
    real = committed_matches.CommittedMatches.by_label

    def spy(self: Any, kind: str, *args: Any) -> Any:
        answered.append(kind)
        return real(self, kind, *args)
    monkeypatch.setattr(committed_matches.CommittedMatches, "by_label", spy)
    memory = [service.run_metrics(run, **scope, **asked) for scope in scopes]
    assert answered  # from memory
    answered.clear()
    committed_matches.forget_all()
    assert _recall(service, run) is None
    sql = [service.run_metrics(run, **scope, **asked) for scope in scopes]
    assert not answered and memory == sql
    plain = [q for body in memory for row in body["confusion_matrix"]["queries"]
             for q in row if q is not None and "status = " in q and "id in [" not in q]
    assert plain  # the committed-match queries were asked, and answered
    assert np.sum(memory[0]["confusion_matrix"]["counts"]) > 0
