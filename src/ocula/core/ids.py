"""Prefixed string ids, as Nucleus uses them: the prefix names the kind of object."""

from __future__ import annotations

import itertools
import secrets
import time

PREFIXES = {
    "dataset": "ds_",
    "item": "di_",
    "slice": "slc_",
    "model": "prj_",
    "run": "run_",
    "annotation": "ann_",
    "prediction": "pred_",
    "job": "job_",
    "scenario_test": "st_",
    "test_evaluation": "ste_",
    "test_result": "str_",
    "scene": "scn_",
}


def new_id(kind: str) -> str:
    """A fresh random id such as ``ds_3f9c1a2b7d4e5f60a1b2``."""
    return PREFIXES[kind] + secrets.token_hex(10)


def new_ids(kind: str, n: int) -> list[str]:
    """Many ids at once, ordered: milliseconds, 32 random bits, then a counter.

    Bulk inserts then append to the end of the id index instead of scattering random
    keys over it, which halves SQLite's insert cost at millions of rows.
    """
    head = f"{PREFIXES[kind]}{int(time.time() * 1000):012x}{secrets.token_hex(4)}"
    # The counter as 4 + 3 hex digits, joined without a Python frame per id.
    highs = [f"{i:04x}" for i in range(-(-n // 4096))]
    return list(itertools.islice(map("".join, itertools.product((head,), highs, _LOW)), n))


_LOW = [f"{i:03x}" for i in range(4096)]
