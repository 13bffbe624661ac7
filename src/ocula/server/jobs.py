"""The server's worker threads for jobs (bookkeeping: ``ocula.core.services.jobs``).

Work handed to :meth:`JobRunner.submit` runs in this process's pool, not in the request,
so a client may disconnect and poll ``GET /api/v1/jobs/{id}`` later.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ocula.core.services.jobs import Progress


class JobRunner:
    """A fixed pool of worker threads running jobs recorded through ``service``."""

    def __init__(self, service: Any, workers: int = 2):
        self.service = service
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ocula-job")

    def submit(self, kind: str, work: Callable[[Progress], dict[str, Any]], *,
               total_steps: int = 0, message: str | None = None) -> dict[str, Any]:
        """Record a job and queue ``work(progress)``; return the job (``Queued``)."""
        job = self.service.create_job(kind, total_steps=total_steps, message=message)
        self._pool.submit(self.service.run_job, job["id"], work)
        return job

    def submit_commit(self, run_id: str, options: dict[str, Any]) -> dict[str, Any]:
        """Queue ``service.commit_run`` (matching predictions to ground truth) as a job;
        options left None take the service's defaults."""
        self.service.run_info(run_id)  # 404 now, not inside the job
        kwargs = {k: v for k, v in options.items() if v is not None}

        def work(progress: Progress) -> dict[str, Any]:
            return self.service.commit_run(run_id, **kwargs)

        return self.submit("commit", work, message=f"commit {run_id}")

    def shutdown(self) -> None:
        """Finish running jobs, drop queued ones (marked errored, to be re-run)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.service.fail_unfinished_jobs("the server stopped before this job started; "
                                          "run it again")
