"""Rows read for an evaluation become the engine's columns: the fast conversion (a
column at a time) equals the general one, and rows with NULLs take the general one."""

from __future__ import annotations

import numpy as np
import pytest

from ocula.core.services.evaluation_sides import _columns, _general_columns, _plain_columns

ROWS = [(7, 10, "car", 1.5, 2.0, 3.0, 4.0, 12.0, 0.5), (3, 11, "dog", 0, 0, 5, 5, 25.0, 1),
        (9, 10, "car", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0), (4, 12, "zebra crossing", 1, 2, 3, 4,
                                                         12.5, 0.25)]


@pytest.mark.parametrize("scores", [True, False])
def test_the_fast_conversion_equals_the_general_one(scores: bool) -> None:
    fast = _plain_columns(ROWS, scores=scores)
    general = _general_columns(ROWS, scores=scores)
    assert fast.keys() == general.keys()
    for key, value in general.items():
        assert value.dtype == fast[key].dtype, key
        np.testing.assert_array_equal(value, fast[key], err_msg=key)
    out = _columns(ROWS, scores=scores)
    assert out["label"].tolist() == ["car", "dog", "car", "zebra crossing"]
    assert out["extra"].dtype == (np.float64 if scores else bool)


@pytest.mark.parametrize("scores", [True, False])
def test_nulls_take_the_general_conversion(scores: bool) -> None:
    rows = [(1, 10, "car", None, None, None, None, None, None),
            (2, 11, "dog", 1.0, 1.0, 2.0, 2.0, None, 0.3)]
    with pytest.raises((TypeError, ValueError)):
        _plain_columns(rows, scores=scores)
    out = _columns(rows, scores=scores)
    # An empty mask's box is [0, 0, 0, 0]; a missing area is the box's; no confidence 1.
    np.testing.assert_array_equal(out["bbox"], [[0, 0, 0, 0], [1, 1, 2, 2]])
    np.testing.assert_array_equal(out["area"], [0, 4])
    if scores:
        np.testing.assert_array_equal(out["extra"], [1.0, 0.3])
    else:
        np.testing.assert_array_equal(out["extra"], [False, True])
