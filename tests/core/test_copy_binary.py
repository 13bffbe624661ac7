"""COPY's binary data laid out by numpy (``store.copy_binary``) loads, on a real
PostgreSQL, exactly the rows that writing them one by one through psycopg loads: every
type the store sends, NULLs in each column, empty and non-ASCII text, NaN and
infinities, and data split into several blocks."""

from __future__ import annotations

import os

import numpy as np
import psycopg
import pytest

from ocula.core.store.copy_binary import Column, binary_copy_data
from tests.conftest import _PG_PROBLEM

pytestmark = pytest.mark.skipif(_PG_PROBLEM is not None and not os.environ.get(
    "OCULA_REQUIRE_PG"), reason=f"PostgreSQL not reachable: {_PG_PROBLEM}")

_URL = "postgresql://postgres@127.0.0.1:5432/test"
_TABLE = ("(k int8, a int2, b int4, c int8, f float8, t text, u bool, "
          "v varchar(255))")
_TYPES = ["int8", "int2", "int4", "int8", "float8", "text", "bool", "text"]


def _columns(rng: np.random.Generator, n: int) -> tuple[list[Column], list[tuple]]:
    """Random columns, and the same rows as Python tuples (None for NULL)."""
    words = ["", "car", "vélo", "人", "a much longer label, with a comma", "tp"]
    k = np.arange(n, dtype=np.int64)
    a = rng.integers(-2**15, 2**15, n)
    b = rng.integers(-2**31, 2**31, n)
    c = rng.integers(-2**62, 2**62, n)
    f = rng.normal(0, 1e6, n)
    f[rng.random(n) < 0.05] = np.nan
    f[rng.random(n) < 0.02] = np.inf
    f[rng.random(n) < 0.02] = -np.inf
    t = rng.integers(0, len(words), n)
    u = rng.random(n) < 0.5
    v = np.array(words, dtype=object)[rng.integers(0, len(words), n)]
    v_texts, v_codes = np.unique(v.astype(str), return_inverse=True)
    nulls = [None, rng.random(n) < 0.2, rng.random(n) < 0.1, None, rng.random(n) < 0.1,
             rng.random(n) < 0.1, rng.random(n) < 0.3, None]
    cols = [Column("int8", k), Column("int2", a, nulls[1]), Column("int4", b, nulls[2]),
            Column("int8", c), Column("float8", f, nulls[4]),
            Column("text", t, nulls[5], texts=words), Column("bool", u, nulls[6]),
            Column("text", v_codes, texts=v_texts.tolist())]
    values = [k.tolist(), a.tolist(), b.tolist(), c.tolist(), f.tolist(),
              [words[i] for i in t.tolist()], u.tolist(), v.tolist()]
    rows = []
    for r in range(n):
        rows.append(tuple(None if m is not None and m[r] else col[r]
                          for col, m in zip(values, nulls, strict=True)))
    return cols, rows


def _loaded(cur: psycopg.Cursor, table: str) -> list[tuple]:
    cur.execute(f"SELECT * FROM {table} ORDER BY k")
    return [tuple("nan" if isinstance(x, float) and x != x else x for x in row)
            for row in cur.fetchall()]


@pytest.mark.parametrize(("seed", "n", "block"), [(0, 1, 1 << 24), (1, 500, 1 << 24),
                                                  (2, 3000, 4096), (3, 0, 1 << 24)])
def test_numpy_laid_out_rows_load_as_rows_written_one_by_one(seed: int, n: int,
                                                              block: int) -> None:
    cols, rows = _columns(np.random.default_rng(seed), n)
    with psycopg.connect(_URL) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TEMP TABLE by_rows {_TABLE}")
        cur.execute(f"CREATE TEMP TABLE by_numpy {_TABLE}")
        with cur.copy("COPY by_rows FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_TYPES)
            for row in rows:
                copy.write_row(row)
        blocks = list(binary_copy_data(cols, max_bytes=block))
        with cur.copy("COPY by_numpy FROM STDIN (FORMAT BINARY)") as copy:
            for data in blocks:
                copy.write(data)
        assert _loaded(cur, "by_numpy") == _loaded(cur, "by_rows")
        cur.execute("SELECT count(*) FROM by_numpy")
        assert cur.fetchone() == (n,)
    if n > 1000:
        assert len(blocks) > 3  # split into blocks of about max_bytes
