"""Background threads that give way to the caller's work (Linux thread niceness)."""

from __future__ import annotations

import contextlib
import os
import sys
import threading

__all__ = ["BACKGROUND_NICENESS", "lower_priority"]

#: How many nice steps below the caller the store's background threads run.
BACKGROUND_NICENESS = 10


def lower_priority(steps: int = BACKGROUND_NICENESS) -> None:
    """Run the calling thread ``steps`` nice steps lower (Linux, where niceness is a
    thread's own; elsewhere nothing). Only that thread gives way: the process's other
    threads, and other processes, keep their priority. A sandbox that refuses it leaves
    the thread as it was."""
    if not sys.platform.startswith("linux"):
        return
    tid = threading.get_native_id()
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, tid,
                       min(os.getpriority(os.PRIO_PROCESS, tid) + steps, 19))
