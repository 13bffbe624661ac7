"""The server's worker threads for jobs (bookkeeping: ``ocula.core.services.jobs``).

Work handed to :meth:`JobRunner.submit` runs in this process's pool, not in the request,
so a client may disconnect and poll ``GET /api/v1/jobs/{id}`` later. Work that reads
what earlier jobs write (a deduplication after an append) can ask to start only once
every job submitted before it has finished (``after_earlier``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from ocula.core.services.jobs import Progress


class JobRunner:
    """A fixed pool of worker threads running jobs recorded through ``service``."""

    def __init__(self, service: Any, workers: int = 2):
        self.service = service
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ocula-job")
        self._unfinished: set[Future[Any]] = set()
        self._lock = threading.Lock()

    def submit(self, kind: str, work: Callable[[Progress], dict[str, Any]], *,
               total_steps: int = 0, message: str | None = None,
               after_earlier: bool = False) -> dict[str, Any]:
        """Record a job and queue ``work(progress)``; return the job (``Queued``).
        With ``after_earlier`` it starts once every job submitted before it has
        finished (Nucleus clients send an append as a job and may deduplicate at once).
        The pool takes jobs in order, so a job only ever waits on jobs already taken:
        nothing waits in a circle."""
        job = self.service.create_job(kind, total_steps=total_steps, message=message)
        with self._lock:
            earlier = list(self._unfinished) if after_earlier else []

            def run() -> None:
                wait(earlier)
                self.service.run_job(job["id"], work)

            future = self._pool.submit(run)
            self._unfinished.add(future)
        future.add_done_callback(self._finished)
        return job

    def _finished(self, future: Future[Any]) -> None:
        with self._lock:
            self._unfinished.discard(future)

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
