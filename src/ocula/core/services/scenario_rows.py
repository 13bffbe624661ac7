"""Removing scenario-test rows with what they hang on (a dataset, a run), child tables
first, so SQLite and PostgreSQL agree whatever their foreign keys cascade. Kept apart
from the scenario service so the dataset and model services can call it without
importing the evaluation stack."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update

from ocula.core.store import schema as t


def drop_evaluations(conn: Any, evaluation_pks: Any) -> None:
    """Delete evaluations (a SELECT of pks) and their results."""
    conn.execute(delete(t.scenario_test_results).where(
        t.scenario_test_results.c.evaluation_pk.in_(evaluation_pks)))
    conn.execute(delete(t.scenario_test_evaluations).where(
        t.scenario_test_evaluations.c.pk.in_(evaluation_pks)))


def drop_tests(conn: Any, test_pks: Any) -> None:
    """Delete scenario tests (a SELECT of pks or a list) with their criteria and history."""
    ev = t.scenario_test_evaluations
    drop_evaluations(conn, list(conn.scalars(select(ev.c.pk).where(ev.c.test_pk.in_(test_pks)))))
    conn.execute(delete(t.scenario_test_criteria).where(
        t.scenario_test_criteria.c.test_pk.in_(test_pks)))
    conn.execute(delete(t.scenario_tests).where(t.scenario_tests.c.pk.in_(test_pks)))


def drop_for_dataset(conn: Any, dataset_pk: int) -> None:
    """Delete a dataset's scenario tests (before its slices and runs go)."""
    drop_tests(conn, list(conn.scalars(select(t.scenario_tests.c.pk).where(
        t.scenario_tests.c.dataset_pk == dataset_pk))))


def drop_for_run(conn: Any, run_pk: int) -> None:
    """Forget a run in scenario tests: its evaluations go, and it is nobody's baseline."""
    ev = t.scenario_test_evaluations
    drop_evaluations(conn, list(conn.scalars(select(ev.c.pk).where(ev.c.run_pk == run_pk))))
    conn.execute(update(t.scenario_tests).where(t.scenario_tests.c.baseline_run_pk == run_pk)
                 .values(baseline_run_pk=None))
