"""Jobs: long work (large appends, commits) recorded in the ``jobs`` table.

A job row is the only shared state between the worker that does the work and whoever
asks about it, so a job outlives the request that started it and is visible from the
CLI (``ocula jobs``) of another process. The thread pool that runs jobs belongs to the
server (``ocula.server.jobs``); here are the bookkeeping and :meth:`run_job`, which
wraps any callable with status, progress and error recording.

Status strings are Nucleus': ``Queued``, ``Running``, ``Completed``, ``Errored_User``
(an :class:`~ocula.errors.OculaError`: bad input), ``Errored_Server`` (a bug or a
crash), ``Errored_Partial`` (finished, some entries rejected).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select, update

from ocula.core.ids import new_id
from ocula.core.services.base import ServiceBase, iso, now
from ocula.core.store import schema as t
from ocula.errors import NotFoundError, OculaError, ValidationError

log = logging.getLogger(__name__)

QUEUED = "Queued"
RUNNING = "Running"
COMPLETED = "Completed"
ERRORED_USER = "Errored_User"
ERRORED_SERVER = "Errored_Server"
ERRORED_PARTIAL = "Errored_Partial"
FINISHED = (COMPLETED, ERRORED_USER, ERRORED_SERVER, ERRORED_PARTIAL)
# Progress writes are throttled: a row update per item would make a big append spend
# its time bookkeeping and hold SQLite's single write lock against real writers.
PROGRESS_EVERY_S = 0.5

Progress = Callable[..., None]
"""``progress(completed_steps, total_steps=None, message=None)``."""


def _job_payload(row: Any) -> dict[str, Any]:
    total = row.total_steps or 0
    return {
        "job_id": row.id,
        "id": row.id,
        "type": row.type,
        "status": row.status,
        "message": row.message,
        "completed_steps": row.completed_steps or 0,
        "total_steps": total,
        "job_progress": round((row.completed_steps or 0) / total, 4) if total else (
            1.0 if row.status == COMPLETED else 0.0),
        "errors": row.errors or [],
        "result": row.result,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


class JobService(ServiceBase):
    def create_job(self, kind: str, *, total_steps: int = 0,
                   message: str | None = None) -> dict[str, Any]:
        """Record a new job (status ``Queued``) and return it."""
        stamp = now()
        job_id = new_id("job")
        with self.db.write() as conn:
            conn.execute(t.jobs.insert().values(
                id=job_id, type=kind, status=QUEUED, message=message, completed_steps=0,
                total_steps=total_steps, errors=None, result=None, created_at=stamp,
                updated_at=stamp))
        return self.job_info(job_id)

    def update_job(self, job_id: str, **values: Any) -> None:
        """Set columns of a job row (status, message, completed_steps, total_steps,
        errors, result)."""
        allowed = {"status", "message", "completed_steps", "total_steps", "errors", "result"}
        unknown = set(values) - allowed
        if unknown:
            raise ValidationError(f"unknown job field(s) {sorted(unknown)}")
        with self.db.write() as conn:
            hit = conn.execute(update(t.jobs).where(t.jobs.c.id == job_id)
                               .values(**values, updated_at=now()))
            if hit.rowcount == 0:
                raise NotFoundError(f"no job {job_id!r}")

    def job_info(self, job_id: str) -> dict[str, Any]:
        """Status, progress, errors and (when done) the result of a job."""
        with self.db.read() as conn:
            row = conn.execute(select(t.jobs).where(t.jobs.c.id == job_id)).first()
        if row is None:
            raise NotFoundError(f"no job {job_id!r}")
        return _job_payload(row)

    def list_jobs(self, *, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Newest jobs first, optionally only those with one status."""
        q = select(t.jobs).order_by(t.jobs.c.pk.desc()).limit(limit)
        if status is not None:
            q = q.where(t.jobs.c.status == status)
        with self.db.read() as conn:
            return [_job_payload(r) for r in conn.execute(q)]

    def fail_unfinished_jobs(self, message: str = "the server stopped before this job "
                             "finished; run it again") -> int:
        """Mark jobs left ``Queued``/``Running`` by a stopped process as errored.

        Jobs run in the server's threads, so at server start any unfinished row belongs
        to a process that is gone; without this it would read "Running" forever.
        """
        with self.db.write() as conn:
            hit = conn.execute(update(t.jobs).where(t.jobs.c.status.in_([QUEUED, RUNNING]))
                               .values(status=ERRORED_SERVER, message=message,
                                       updated_at=now()))
        return hit.rowcount

    def run_job(self, job_id: str, work: Callable[[Progress], dict[str, Any]]) -> None:
        """Run ``work(progress)`` as job ``job_id``, recording how it ends.

        ``work`` returns the job's result (a JSON-able dict); a result with a non-empty
        ``errors`` list ends as ``Errored_Partial``. An :class:`OculaError` ends the job
        as ``Errored_User`` with the error's JSON in ``errors``; any other exception as
        ``Errored_Server`` (logged with its traceback here, never shown to clients).
        """
        last = [0.0]

        def progress(completed: int, total: int | None = None,
                     message: str | None = None) -> None:
            stamp = time.monotonic()
            if stamp - last[0] < PROGRESS_EVERY_S and (total is None or completed < total):
                return
            last[0] = stamp
            values: dict[str, Any] = {"completed_steps": completed}
            if total is not None:
                values["total_steps"] = total
            if message is not None:
                values["message"] = message
            self.update_job(job_id, **values)

        self.update_job(job_id, status=RUNNING)
        try:
            result = work(progress)
        except OculaError as exc:
            self.update_job(job_id, status=ERRORED_USER, message=exc.message,
                            errors=[exc.to_dict()])
            return
        except Exception:  # noqa: BLE001 - a job must end with a status, whatever broke
            log.exception("job %s failed", job_id)
            self.update_job(job_id, status=ERRORED_SERVER,
                            message="internal error; see the server log")
            return
        errors = list(result.get("errors") or []) if isinstance(result, dict) else []
        info = self.job_info(job_id)
        self.update_job(
            job_id, status=ERRORED_PARTIAL if errors else COMPLETED, result=result,
            errors=errors or None, completed_steps=max(info["total_steps"],
                                                       info["completed_steps"]),
            message=(f"{len(errors)} entr{'y' if len(errors) == 1 else 'ies'} rejected"
                     if errors else "done"))
