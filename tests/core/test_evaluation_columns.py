"""Rows read for an evaluation become the engine's columns, a column at a time; NULLs
(an empty mask's box, a missing area, confidence, crowd flag or label) get the values
the engine has always given them."""

from __future__ import annotations

import numpy as np
import pytest

from ocula.core.services.side_columns import row_columns

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
