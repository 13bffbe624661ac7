"""Progress bars for long client calls (rich), shown only on an interactive terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

T = TypeVar("T")
# Below this many elements a bar is only noise.
MIN_FOR_BAR = 2_000


def batched(seq: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    if not seq:
        return
    for i in range(0, len(seq), size):
        yield seq[i:i + size]


@contextmanager
def progress_bar(title: str, total: int, enabled: bool | None) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``; a bar is drawn when ``enabled``, or by default when the
    work is large and stderr is a terminal."""
    show = enabled if enabled is not None else (total >= MIN_FOR_BAR and sys.stderr.isatty())
    if not show:
        yield lambda n: None
        return
    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeRemainingColumn(), transient=True) as bar:
        task = bar.add_task(title, total=total)
        yield lambda n: bar.advance(task, n)
