"""Metadata JSON: the fast encoder (orjson) accepts and refuses exactly what the standard
library does (refusing, beyond it, text with no UTF-8 form), and writes the same values."""

from __future__ import annotations

import datetime
import enum
import json
import math
import random
import uuid
from collections import OrderedDict
from typing import Any

import numpy as np
import pytest

from ocula.core.validation import dump_metadata, dump_metadata_column
from ocula.errors import MetadataError


class Colour(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


def _reference(md: Any) -> Any:
    """What the standard library makes of one entry: its value read back, or an error."""
    if md is None or md == {}:
        return None
    if not isinstance(md, dict):
        return MetadataError
    try:
        # A lone surrogate has no UTF-8 form: refused (UnicodeEncodeError).
        return json.loads(json.dumps(md, allow_nan=False, ensure_ascii=False).encode())
    except (TypeError, ValueError, RecursionError):
        return MetadataError


def _fast(md: Any) -> Any:
    try:
        text = dump_metadata(md, "test", "r")
    except MetadataError:
        return MetadataError
    return None if text is None else json.loads(text)


SCALARS: list[Any] = [0, -1, 2**63 - 1, 2**64 - 1, 2**64, -(2**70), 1.5, -0.0, 1e-7, 1e300,
                      5e-324, True, False, None, "", "é", "日本", "a\"b\\c\n", "null",
                      "\ud800", math.nan, math.inf, -math.inf]
ODD: list[Any] = [uuid.UUID(int=7), Colour.RED, Level.HIGH, datetime.date(2026, 1, 1),
                  datetime.datetime(2026, 1, 1), object(), {1, 2}, b"x", np.float64(1.5),
                  np.int64(3), [1, [2, None]], {"in": {"deep": [1.0, "x"]}}, (1, 2),
                  OrderedDict(a=1)]
KEYS: list[Any] = ["k", "null", "é", 1, 2.5, True, None, (1, 2)]


def _random_metadata(rng: random.Random) -> Any:
    roll = rng.random()
    if roll < 0.05:
        return None
    if roll < 0.08:
        return {}
    if roll < 0.1:
        return rng.choice([[1], "text", 3, OrderedDict(a=1)])
    pool = SCALARS if rng.random() < 0.7 else SCALARS + ODD
    keys = KEYS if rng.random() < 0.2 else ["a", "b", "c", "d"]
    return {rng.choice(keys): rng.choice(pool) for _ in range(rng.randint(1, 4))}


@pytest.mark.parametrize("seed", range(4))
def test_each_entry_as_the_standard_library(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(3000):
        md = _random_metadata(rng)
        expected, got = _reference(md), _fast(md)
        assert got == expected or (got is expected), md


@pytest.mark.parametrize("seed", range(4))
def test_column_as_entries(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(300):
        column = [_random_metadata(rng) for _ in range(rng.randint(1, 12))]
        if rng.random() < 0.5:  # mostly plain columns, as real uploads are
            column = [{"a": rng.choice(SCALARS[:20]), "b": rng.randint(0, 9)}
                      if rng.random() < 0.9 else None for _ in column]
        expected = [_reference(md) for md in column]
        out = dump_metadata_column(column)
        if MetadataError in expected or any(md is not None and type(md) is not dict
                                            for md in column):
            # The column path gives up; the per-entry path explains each failure.
            assert out is None
            continue
        if out is None:  # allowed: entries the column path does not take (nested, odd keys)
            assert [_fast(md) for md in column] == expected
            continue
        assert [None if text is None else json.loads(text) for text in out] == expected


def test_orjson_only_values_are_refused_as_before() -> None:
    for value in (uuid.UUID(int=1), Colour.RED, datetime.datetime(2026, 1, 1), math.nan):
        with pytest.raises(MetadataError):
            dump_metadata({"v": value}, "item 'r'", "r")
        assert dump_metadata_column([{"v": 1}, {"v": value}]) is None
    # What the standard library writes, this writes too (as the same JSON value).
    assert json.loads(dump_metadata({1: Level.HIGH, "n": None}, "x", "r") or "") == {
        "1": 3, "n": None}
    # A lone surrogate has no UTF-8 form (PostgreSQL and JSON answers cannot hold it).
    assert dump_metadata_column([{"s": "\ud800"}]) is None
    with pytest.raises(MetadataError, match="lone surrogate"):
        dump_metadata({"s": {"t": ["\udfff"]}}, "x", "r")
