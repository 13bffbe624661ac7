"""Rows read for an evaluation become the engine's columns, a column at a time; NULLs
(an empty mask's box, a missing area, confidence, crowd flag or label) get the values
the engine has always given them. PostgreSQL's reads as binary arrays give the same
columns."""

from __future__ import annotations

import numpy as np
import pytest

from ocula.core.services.side_columns import array_columns, row_columns
from ocula.core.store.copy_binary import array_values

ROWS = [(7, 10, "car", 1.5, 2.0, 3.0, 4.0, 12.0, 0.5), (3, 11, "dog", 0, 0, 5, 5, 25.0, 1),
        (9, 10, "car", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        (4, 12, "zebra crossing", 1, 2, 3, 4, 12.5, 0.25)]


@pytest.mark.parametrize("scores", [True, False])
def test_rows_become_columns(scores: bool) -> None:
    out = row_columns(ROWS, scores=scores)
    np.testing.assert_array_equal(out["id"], [7, 3, 9, 4])
    np.testing.assert_array_equal(out["image"], [10, 11, 10, 12])
    assert out["label"].tolist() == ["car", "dog", "car", "zebra crossing"]
    assert out["label"].dtype == np.dtype("<U14")
    np.testing.assert_array_equal(out["bbox"], [r[3:7] for r in ROWS])
    np.testing.assert_array_equal(out["area"], [12.0, 25.0, 0.0, 12.5])
    if scores:
        np.testing.assert_array_equal(out["extra"], [0.5, 1.0, 0.0, 0.25])
    else:
        np.testing.assert_array_equal(out["extra"], [True, True, False, True])
    assert out["extra"].dtype == (np.float64 if scores else bool)
    assert out["id"].dtype == out["image"].dtype == np.int64


@pytest.mark.parametrize("scores", [True, False])
def test_nulls_get_the_engine_values(scores: bool) -> None:
    rows = [(1, 10, "car", None, None, None, None, None, None),
            (2, 11, None, 1.0, 1.0, 2.0, 2.0, None, 0.3)]
    out = row_columns(rows, scores=scores)
    # An empty mask's box is [0, 0, 0, 0]; a missing area is the box's; no confidence 1.
    np.testing.assert_array_equal(out["bbox"], [[0, 0, 0, 0], [1, 1, 2, 2]])
    np.testing.assert_array_equal(out["area"], [0, 4])
    assert out["label"].tolist() == ["car", "None"]
    if scores:
        np.testing.assert_array_equal(out["extra"], [1.0, 0.3])
    else:
        np.testing.assert_array_equal(out["extra"], [False, True])


def _as_arrays(rows: list[tuple], names: list[str | None]) -> list[np.ndarray]:
    """Rows as PostgreSQL's array read gives them: labels as codes into ``names``, NULL
    floats NaN, a NULL crowd flag false."""
    cols = list(zip(*rows, strict=True))
    return [np.array(cols[0], dtype=np.int64), np.array(cols[1], dtype=np.int64),
            np.array([names.index(v) for v in cols[2]], dtype=np.int64),
            *(np.array([np.nan if v is None else v for v in c], dtype=np.float64)
              for c in cols[3:9])]


@pytest.mark.parametrize("scores", [True, False])
def test_arrays_become_the_columns_rows_become(scores: bool) -> None:
    """:func:`array_columns` equals :func:`row_columns` of the same rows, to the dtype:
    NULLs, a NULL label beside a label named "None", and labels listed but unused
    (which must not widen the label dtype)."""
    rows = [*ROWS, (1, 10, "car", None, None, None, None, None, None),
            (2, 11, None, 1.0, 1.0, 2.0, 2.0, None, 0.3), (5, 13, "None", 1, 1, 1, 1, 1, 1)]
    names = [None, "None", "a label nobody used, longer than the rest", "car", "dog",
             "zebra crossing"]
    arrays = _as_arrays(rows, names)
    if not scores:
        arrays[8] = np.nan_to_num(arrays[8]).astype(bool)
    want, got = row_columns(rows, scores=scores), array_columns(arrays, names, scores=scores)
    for name, column in want.items():
        assert got[name].dtype == column.dtype, name
        np.testing.assert_array_equal(got[name], column, err_msg=name)
    empty = array_columns([np.empty(0, np.int64)] * 9, [None], scores=scores)
    assert {k: (v.dtype, v.shape[0]) for k, v in empty.items()} == {
        k: (v.dtype, v.shape[0]) for k, v in row_columns([], scores=scores).items()}


def _array_value(values: list[float | None]) -> bytes:
    """``array_send`` of a one-dimensional float8 array (NULLs as length -1)."""
    head = np.array([1, int(None in values), 701, len(values), 1], ">i4").tobytes()
    body = b"".join(np.array([-1], ">i4").tobytes() if v is None
                    else np.array([8], ">i4").tobytes() + np.array([v], ">f8").tobytes()
                    for v in values)
    return head + body


def test_array_values_reads_a_binary_array_and_refuses_other_layouts() -> None:
    np.testing.assert_array_equal(array_values(_array_value([1.5, -2.0, np.nan]), "float8"),
                                  [1.5, -2.0, np.nan])
    assert array_values(None, "int8").shape == (0,)
    assert array_values(None, "bool").dtype == bool
    with pytest.raises(ValueError, match="without NULLs"):
        array_values(_array_value([1.0, None]), "float8")
    with pytest.raises(ValueError, match="int4"):
        array_values(_array_value([1.0, 2.0]), "int4")  # 8-byte elements
