"""Prefixed string ids, as Nucleus uses them: the prefix names the kind of object."""

from __future__ import annotations

import secrets

PREFIXES = {
    "dataset": "ds_",
    "item": "di_",
    "slice": "slc_",
    "model": "prj_",
    "run": "run_",
    "annotation": "ann_",
    "prediction": "pred_",
    "job": "job_",
}


def new_id(kind: str) -> str:
    """A fresh random id such as ``ds_3f9c1a2b7d4e5f60a1b2``."""
    return PREFIXES[kind] + secrets.token_hex(10)


def new_ids(kind: str, n: int) -> list[str]:
    """Many ids at once; one ``token_bytes`` call is much cheaper than ``n``."""
    prefix = PREFIXES[kind]
    raw = secrets.token_bytes(10 * n).hex()
    return [prefix + raw[i * 20:(i + 1) * 20] for i in range(n)]
