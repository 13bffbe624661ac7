"""Scenario tests ("model CI"): a slice plus criteria, each an evaluation function with
its arguments, a threshold and a comparison. Evaluating a run on a test computes every
function on the slice's items with the evaluation engine
(:mod:`ocula.core.evaluation.eval_functions`), compares each value with its threshold
and keeps the result, with each item's value and the ids behind the number, as the
test's history.

A criterion without a threshold only reports its value, unless the test has a baseline
run: its latest value on the test is then the threshold (Nucleus' baseline model).

A model's predictions uploaded without a run (Nucleus' ``uploadPredictions``) go to the
model's run on that dataset (:meth:`ScenarioService.model_run_on`): the newest one, or a
new run named after the model's reference id. Nucleus' model-level reads and
``validate/{model}/evaluate`` read that run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy import Connection, and_, select, update
from sqlalchemy.exc import IntegrityError

from ocula.core.evaluation.eval_functions import (
    CategoryColumns,
    compare,
    comparison_name,
    eval_function,
    eval_functions,
    function_id,
)
from ocula.core.ids import new_id, new_ids
from ocula.core.services import scenario_rows
from ocula.core.services.annotations import at_version
from ocula.core.services.base import iso, now
from ocula.core.services.evaluation import EvaluationService
from ocula.core.services.evaluation_sides import read_sides
from ocula.core.store import schema as t
from ocula.core.validation import require_name
from ocula.errors import (
    ConflictError,
    DuplicateIdError,
    NotFoundError,
    ParameterError,
    ValidationError,
)

__all__ = ["MAX_IDS", "ScenarioService"]

#: Ids kept behind each number (per role): enough to open the worst cases in the app.
MAX_IDS = 1000


def _threshold(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(f"a threshold must be a finite number or null, got {value!r}")
    return float(value)


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _criterion(spec: Any) -> dict[str, Any]:
    """A criterion as stored, from a mapping ``{function, arguments, threshold,
    comparison}`` (``eval_function_id`` and ``eval_func_arguments``, Nucleus' names,
    too) or a function name alone."""
    if isinstance(spec, str):
        spec = {"function": spec}
    if not isinstance(spec, Mapping):
        raise ValidationError(f"a criterion is a function name or a mapping, got {spec!r}")
    known = {"function", "eval_function_id", "arguments", "eval_func_arguments",
             "threshold", "comparison", "threshold_comparison", "id"}
    if unknown := sorted(set(spec) - known):
        raise ValidationError(f"unknown criterion field(s) {unknown}")
    name = spec.get("function") or spec.get("eval_function_id") or spec.get("id")
    fn = eval_function(name)
    args = spec.get("arguments", spec.get("eval_func_arguments"))
    comparison = spec.get("comparison", spec.get("threshold_comparison"))
    return {"function": fn.name, "arguments": fn.arguments(args),
            "threshold": _threshold(spec.get("threshold")),
            "comparison": comparison_name(comparison or "greater_than_equal_to")}


def _criterion_payload(row: Any) -> dict[str, Any]:
    return {"function": row.function, "eval_function_id": function_id(row.function),
            "arguments": row.arguments, "threshold": row.threshold,
            "comparison": row.comparison}


class ScenarioService(EvaluationService):
    # --- catalogue ------------------------------------------------------------------

    def eval_functions(self) -> list[dict[str, Any]]:
        """The evaluation functions scenario tests can use: name, id, the sides they
        read, default arguments, and whether Ocula computes them (and why not)."""
        return [fn.describe() for fn in eval_functions()]

    # --- tests ----------------------------------------------------------------------

    def _test_row(self, conn: Connection, test: str) -> Any:
        """A scenario test by id (``st_…``) or by name."""
        col = t.scenario_tests.c.id if test.startswith("st_") else t.scenario_tests.c.name
        return self._one(conn, t.scenario_tests, col, test, "scenario test")

    def _test_payload(self, conn: Connection, row: Any) -> dict[str, Any]:
        ds_id = conn.scalar(select(t.datasets.c.id).where(t.datasets.c.pk == row.dataset_pk))
        slc = conn.execute(select(t.slices.c.id, t.slices.c.name)
                           .where(t.slices.c.pk == row.slice_pk)).one()
        baseline = None if row.baseline_run_pk is None else conn.scalar(
            select(t.model_runs.c.id).where(t.model_runs.c.pk == row.baseline_run_pk))
        crit = conn.execute(select(t.scenario_test_criteria).where(
            t.scenario_test_criteria.c.test_pk == row.pk)
            .order_by(t.scenario_test_criteria.c.pk)).all()
        return {"id": row.id, "scenario_test_id": row.id, "name": row.name,
                "dataset_id": ds_id, "slice_id": slc.id, "slice_name": slc.name,
                "baseline_run_id": baseline,
                "criteria": [_criterion_payload(c) for c in crit],
                "created_at": iso(row.created_at)}

    def create_scenario_test(self, name: str, slice: str,  # noqa: A002
                             criteria: Sequence[Any]) -> dict[str, Any]:
        """A scenario test of an item slice (by id) with at least one criterion: a
        function name, or ``{"function", "arguments", "threshold", "comparison"}``
        (comparison ``greater_than_equal_to`` by default, or ``>``, ``>=``, ``<``,
        ``<=``). Test names are unique."""
        require_name(name, "scenario test name")
        if isinstance(criteria, str | bytes | Mapping) or not criteria:
            raise ValidationError("a scenario test needs a list of at least one criterion")
        rows = [_criterion(c) for c in criteria]
        functions = [r["function"] for r in rows]
        if len(set(functions)) != len(functions):
            raise DuplicateIdError(f"each function appears once in a test, got {functions}")
        test_id = new_id("scenario_test")
        try:
            with self.db.write() as conn:
                slc = self._slice_row(conn, slice)
                if slc.kind != "item":
                    raise ConflictError(f"slice {slc.name!r} is a slice of objects: a "
                                          "scenario test evaluates an item slice")
                created = now()
                pk = conn.execute(t.scenario_tests.insert().values(
                    id=test_id, name=name.strip(), dataset_pk=slc.dataset_pk, slice_pk=slc.pk,
                    created_at=created)).inserted_primary_key[0]
                conn.execute(t.scenario_test_criteria.insert(), [
                    {**r, "test_pk": pk, "created_at": created} for r in rows])
        except IntegrityError as exc:
            raise ConflictError(f"a scenario test named {name!r} exists") from exc
        return self.get_scenario_test(test_id)

    def get_scenario_test(self, test: str) -> dict[str, Any]:
        """A scenario test by id or name, with its criteria."""
        with self.db.read() as conn:
            return self._test_payload(conn, self._test_row(conn, test))

    def list_scenario_tests(self, dataset: str | None = None) -> list[dict[str, Any]]:
        """Every scenario test, or those of one dataset, oldest first."""
        with self.db.read() as conn:
            q = select(t.scenario_tests).order_by(t.scenario_tests.c.pk)
            if dataset is not None:
                q = q.where(t.scenario_tests.c.dataset_pk == self._dataset_row(conn, dataset).pk)
            return [self._test_payload(conn, r) for r in conn.execute(q).all()]

    def delete_scenario_test(self, test: str) -> dict[str, Any]:
        """Delete a test with its criteria and history."""
        with self.db.write() as conn:
            row = self._test_row(conn, test)
            scenario_rows.drop_tests(conn, [row.pk])
        return {"deleted": row.id}

    def set_scenario_criterion(self, test: str, function: str, *,
                               arguments: Mapping[str, Any] | None = None,
                               threshold: float | None = None,
                               comparison: str = "greater_than_equal_to") -> dict[str, Any]:
        """Add a criterion to a test, or replace the one of the same function."""
        row = _criterion({"function": function, "arguments": arguments,
                          "threshold": threshold, "comparison": comparison})
        with self.db.write() as conn:
            test_row = self._test_row(conn, test)
            c = t.scenario_test_criteria
            where = and_(c.c.test_pk == test_row.pk, c.c.function == row["function"])
            if conn.execute(select(c.c.pk).where(where)).first() is None:
                conn.execute(c.insert().values(**row, test_pk=test_row.pk, created_at=now()))
            else:
                conn.execute(update(c).where(where).values(**row))
        return {"scenario_test_id": test_row.id, **_criterion_payload_of(row)}

    def set_criterion_threshold(self, test: str, function: str, threshold: float | None,
                                comparison: str | None = None) -> dict[str, Any]:
        """Change one criterion's threshold (None: report only) and comparison."""
        values: dict[str, Any] = {"threshold": _threshold(threshold)}
        if comparison is not None:
            values["comparison"] = comparison_name(comparison)
        name = eval_function(function).name
        with self.db.write() as conn:
            test_row = self._test_row(conn, test)
            c = t.scenario_test_criteria
            where = and_(c.c.test_pk == test_row.pk, c.c.function == name)
            if conn.execute(update(c).where(where).values(**values)).rowcount == 0:
                raise NotFoundError(f"scenario test {test_row.name!r} has no {name} criterion")
            row = conn.execute(select(c).where(where)).one()
        return {"scenario_test_id": test_row.id, **_criterion_payload(row)}

    def remove_scenario_criterion(self, test: str, function: str) -> dict[str, Any]:
        """Remove a criterion; a test keeps at least one."""
        name = eval_function(function).name
        with self.db.write() as conn:
            test_row = self._test_row(conn, test)
            c = t.scenario_test_criteria
            names = conn.scalars(select(c.c.function).where(c.c.test_pk == test_row.pk)).all()
            if name not in names:
                raise NotFoundError(f"scenario test {test_row.name!r} has no {name} criterion")
            if len(names) == 1:
                raise ConflictError(f"{name} is the last criterion of scenario test "
                                      f"{test_row.name!r}: a test keeps at least one")
            conn.execute(c.delete().where(c.c.test_pk == test_row.pk, c.c.function == name))
        return {"scenario_test_id": test_row.id, "removed": name}

    def scenario_test_items(self, test: str) -> list[dict[str, Any]]:
        """The items a test evaluates (its slice's items)."""
        with self.db.read() as conn:
            slice_id = conn.scalar(select(t.slices.c.id).where(
                t.slices.c.pk == self._test_row(conn, test).slice_pk))
        return self.slice_items(slice_id)  # type: ignore[attr-defined]

    def set_scenario_baseline(self, test: str, run: str | None) -> dict[str, Any]:
        """Make a run the test's baseline (it must have been evaluated on the test), or
        clear it with None: criteria without a threshold then compare with its value."""
        with self.db.write() as conn:
            row = self._test_row(conn, test)
            run_pk = None
            if run is not None:
                run_row = self._test_run(conn, row, run)
                ev = t.scenario_test_evaluations
                if conn.execute(select(ev.c.pk).where(ev.c.test_pk == row.pk,
                                                      ev.c.run_pk == run_row.pk)).first() is None:
                    raise ConflictError(f"model run {run_row.name!r} has not been evaluated "
                                          f"on scenario test {row.name!r}: evaluate it first")
                run_pk = run_row.pk
            conn.execute(update(t.scenario_tests).where(t.scenario_tests.c.pk == row.pk)
                         .values(baseline_run_pk=run_pk))
            return self._test_payload(conn, self._test_row(conn, row.id))

    def _test_run(self, conn: Connection, test_row: Any, run: str) -> Any:
        """A run (id, or name in the test's dataset) that can be evaluated on the test."""
        if run.startswith("run_"):
            row = self._run_row(conn, run)
            if row.dataset_pk != test_row.dataset_pk:
                raise ParameterError(f"model run {row.name!r} is on another dataset than "
                                      f"scenario test {test_row.name!r}")
            return row
        ds = conn.execute(select(t.datasets).where(t.datasets.c.pk == test_row.dataset_pk)).one()
        return self._run_in(conn, ds, run)

    # --- model runs of models -------------------------------------------------------

    def model_run_on(self, dataset: str, model: str, *, create: bool = False) -> dict[str, Any]:
        """The model's run on a dataset: its newest. With ``create``, a model without
        one gets a run named after its reference id (Nucleus' ``uploadPredictions``)."""
        with self.db.read() as conn:
            ds = self._dataset_row(conn, dataset)
            mdl = self._model_row(conn, model)
            run_id = conn.scalar(select(t.model_runs.c.id).where(
                t.model_runs.c.dataset_pk == ds.pk, t.model_runs.c.model_pk == mdl.pk)
                .order_by(t.model_runs.c.pk.desc()).limit(1))
            taken = set(conn.scalars(select(t.model_runs.c.name).where(
                t.model_runs.c.dataset_pk == ds.pk)))
        if run_id is not None:
            return self.run_info(run_id)  # type: ignore[attr-defined]
        if not create:
            raise NotFoundError(f"model {mdl.name!r} has no predictions on dataset {ds.name!r}")
        name = mdl.reference_id
        if name in taken:  # another model's run has the name
            name = f"{mdl.reference_id} ({mdl.id})"
        return self.create_run(mdl.id, ds.id, name)  # type: ignore[attr-defined]

    # --- evaluation -----------------------------------------------------------------

    def evaluate_scenario_test(self, test: str, run: str, *,
                               annotation_version: int | str | None = None) -> dict[str, Any]:
        """Evaluate a run (id, or name in the test's dataset) on a test: each criterion's
        value on the slice's items, its threshold and pass, and ``passed`` overall (every
        criterion passes). The result is kept in the test's history."""
        with self.db.read() as conn:
            test_row = self._test_row(conn, test)
            run_row = self._test_run(conn, test_row, run)
            version = self._resolve_version(conn, run_row.dataset_pk, annotation_version)
            criteria = conn.execute(select(t.scenario_test_criteria).where(
                t.scenario_test_criteria.c.test_pk == test_row.pk)
                .order_by(t.scenario_test_criteria.c.pk)).all()
            scope = select(t.slice_items.c.item_pk).where(
                t.slice_items.c.slice_pk == test_row.slice_pk)
            items = np.array(sorted(conn.scalars(scope)), dtype=np.int64)
            baseline = self._baseline_values(conn, test_row)
            sides: dict[str, Any] = {}
            results = []
            for c in criteria:
                fn = eval_function(c.function)
                config = fn.config(c.arguments)
                if fn.kind not in sides:
                    sides[fn.kind] = (_category_columns(conn, run_row, version, scope)
                                      if fn.kind == "category"
                                      else read_sides(conn, run_row, version, scope, fn.kind))
                if fn.kind == "category":
                    res = fn.method(sides[fn.kind], config, items=items)
                else:
                    gt, dt, pair_iou = sides[fn.kind]
                    res = fn.method(gt, dt, config, items=items, pair_iou=pair_iou)
                threshold = c.threshold if c.threshold is not None else baseline.get(c.function)
                results.append(self._result_row(conn, c, res, threshold))
        passed = all(r["passed"] for r in results)
        eval_id = new_id("test_evaluation")
        with self.db.write() as conn:
            self._test_row(conn, test_row.id)  # still there
            pk = conn.execute(t.scenario_test_evaluations.insert().values(
                id=eval_id, test_pk=test_row.pk, run_pk=run_row.pk, annotation_version=version,
                passed=passed, created_at=now())).inserted_primary_key[0]
            ids = new_ids("test_result", len(results))
            conn.execute(t.scenario_test_results.insert(), [
                {**r, "id": i, "evaluation_pk": pk} for r, i in zip(results, ids, strict=True)])
        return self.scenario_evaluation(eval_id)

    def _baseline_values(self, conn: Connection, test_row: Any) -> dict[str, float]:
        """The baseline run's latest value of each function on the test."""
        if test_row.baseline_run_pk is None:
            return {}
        ev, res = t.scenario_test_evaluations, t.scenario_test_results
        last = conn.scalar(select(ev.c.pk).where(
            ev.c.test_pk == test_row.pk, ev.c.run_pk == test_row.baseline_run_pk)
            .order_by(ev.c.pk.desc()).limit(1))
        rows = conn.execute(select(res.c.function, res.c.value).where(
            res.c.evaluation_pk == last)).all()
        return {f: v for f, v in rows if v is not None}

    def _result_row(self, conn: Connection, criterion: Any, res: Any,
                    threshold: float | None) -> dict[str, Any]:
        value = _finite(res.value)
        comparison = criterion.comparison
        item_pks = np.array(sorted(res.items), dtype=np.int64)
        refs = self._item_ids_of(conn, item_pks)
        items = [{"item_id": refs[pk][0], "reference_id": refs[pk][1],
                  "value": _finite(v), "passed": compare(_finite(v), threshold, comparison)
                  if v is not None else True}
                 for pk, v in sorted(res.items.items()) if pk in refs]
        ids: dict[str, list[str]] = {}
        truncated = False
        for role, pks in res.ids.items():
            table = t.predictions if role.endswith("predictions") else t.annotations
            truncated |= len(pks) > MAX_IDS
            public = self._public_ids(conn, table, np.array(pks[:MAX_IDS], dtype=np.int64))
            ids[role] = [public[p] for p in pks[:MAX_IDS] if p in public]
        return {"function": criterion.function, "arguments": criterion.arguments,
                "threshold": threshold, "comparison": comparison, "value": value,
                "passed": compare(value, threshold, comparison),
                "details": {"counts": res.counts, "items": items, "ids": ids,
                            "ids_truncated": truncated}}

    def _item_ids_of(self, conn: Connection, item_pks: np.ndarray) -> dict[int, tuple[str, str]]:
        out: dict[int, tuple[str, str]] = {}
        wanted = item_pks.tolist()
        for i in range(0, len(wanted), 10_000):  # bound the IN list
            out.update((pk, (i_, ref)) for pk, i_, ref in conn.execute(
                select(t.items.c.pk, t.items.c.id, t.items.c.reference_id)
                .where(t.items.c.pk.in_(wanted[i:i + 10_000]))))
        return out

    # --- history --------------------------------------------------------------------

    def _evaluation_payload(self, conn: Connection, row: Any, *,
                            details: bool) -> dict[str, Any]:
        test_row = conn.execute(select(t.scenario_tests).where(
            t.scenario_tests.c.pk == row.test_pk)).one()
        run = conn.execute(select(t.model_runs.c.id, t.model_runs.c.name, t.models.c.id)
                           .join(t.models, t.models.c.pk == t.model_runs.c.model_pk)
                           .where(t.model_runs.c.pk == row.run_pk)).one()
        res = conn.execute(select(t.scenario_test_results).where(
            t.scenario_test_results.c.evaluation_pk == row.pk)
            .order_by(t.scenario_test_results.c.pk)).all()
        results = []
        for r in res:
            body = {"id": r.id, "function": r.function,
                    "eval_function_id": function_id(r.function), "arguments": r.arguments,
                    "threshold": r.threshold, "comparison": r.comparison, "value": r.value,
                    "passed": r.passed, "counts": r.details.get("counts", {})}
            if details:
                body.update(items=r.details.get("items", []), ids=r.details.get("ids", {}),
                            ids_truncated=r.details.get("ids_truncated", False))
            results.append(body)
        return {"id": row.id, "scenario_test_id": test_row.id,
                "scenario_test_name": test_row.name, "model_run_id": run[0],
                "run_name": run[1], "model_id": run[2],
                "annotation_version": row.annotation_version, "passed": row.passed,
                "created_at": iso(row.created_at), "results": results}

    def scenario_evaluation(self, evaluation_id: str) -> dict[str, Any]:
        """One evaluation with every criterion's items and ids (``ste_…``, or the id of
        one of its results, ``str_…``)."""
        with self.db.read() as conn:
            ev = t.scenario_test_evaluations
            if evaluation_id.startswith("str_"):
                pk = conn.scalar(select(t.scenario_test_results.c.evaluation_pk).where(
                    t.scenario_test_results.c.id == evaluation_id))
                if pk is None:
                    raise NotFoundError(f"no scenario test result {evaluation_id!r}")
                row = conn.execute(select(ev).where(ev.c.pk == pk)).one()
            else:
                row = self._one(conn, ev, ev.c.id, evaluation_id, "scenario test evaluation")
            return self._evaluation_payload(conn, row, details=True)

    def scenario_test_history(self, test: str, *, run: str | None = None,
                              limit: int = 100) -> list[dict[str, Any]]:
        """A test's evaluations, newest first (of one run with ``run``), without the
        per-item details (:meth:`scenario_evaluation` has them)."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValidationError(f"limit must be a positive integer, got {limit!r}")
        with self.db.read() as conn:
            test_row = self._test_row(conn, test)
            ev = t.scenario_test_evaluations
            q = select(ev).where(ev.c.test_pk == test_row.pk).order_by(ev.c.pk.desc()).limit(limit)
            if run is not None:
                q = q.where(ev.c.run_pk == self._test_run(conn, test_row, run).pk)
            return [self._evaluation_payload(conn, r, details=False)
                    for r in conn.execute(q).all()]


def _criterion_payload_of(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"function": row["function"], "eval_function_id": function_id(row["function"]),
            "arguments": row["arguments"], "threshold": row["threshold"],
            "comparison": row["comparison"]}


def _category_columns(conn: Connection, run: Any, version: int | None,
                      scope: Any) -> CategoryColumns:
    """Category labels in scope: each item's first category annotation (by pk) at the
    label version, and the run's category predictions."""
    a, p = t.annotations, t.predictions
    gt = conn.execute(select(a.c.pk, a.c.item_pk, a.c.label).where(
        a.c.dataset_pk == run.dataset_pk, a.c.type == "category", at_version(a, version),
        a.c.item_pk.in_(scope)).order_by(a.c.pk)).all()
    seen: set[int] = set()
    gt = [r for r in gt if not (r.item_pk in seen or seen.add(r.item_pk))]
    dt = conn.execute(select(p.c.pk, p.c.item_pk, p.c.label, p.c.confidence).where(
        p.c.run_pk == run.pk, p.c.type == "category", p.c.item_pk.in_(scope))
        .order_by(p.c.pk)).all()
    return CategoryColumns(
        gt_item=np.array([r.item_pk for r in gt], dtype=np.int64),
        gt_label=np.array([r.label for r in gt], dtype=object),
        gt_id=np.array([r.pk for r in gt], dtype=np.int64),
        dt_item=np.array([r.item_pk for r in dt], dtype=np.int64),
        dt_label=np.array([r.label for r in dt], dtype=object),
        dt_score=np.array([1.0 if r.confidence is None else r.confidence for r in dt],
                          dtype=np.float64),
        dt_id=np.array([r.pk for r in dt], dtype=np.int64))
