"""What counts as a value, a missing value and a category: one rule for training and serving.

Boxkite binned ``-inf`` differently at training and at serving time, which made a
clean feature look drifted. Every path that turns a raw value into a count goes
through this module so that cannot happen here: the baseline builder, the
single-row hot path and the vectorised batch path.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np

# Above this magnitude not every integer is a float; keep such numbers in float form.
_EXACT_INT = 2**53


def as_number(value: Any) -> float | None:
    """A finite float for a numeric value, or None when it must count as missing.

    Bools and numeric-looking strings are the wrong type, not numbers: JSON ``true``
    in a numeric feature is a client bug worth seeing in the missing counter.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        return None
    try:
        number = float(value)
    except (OverflowError, ValueError):
        return None
    return number if math.isfinite(number) else None


def category_key(value: Any) -> str | None:
    """The label string of a categorical value, or None when it is missing.

    Numbers use their shortest form so that ``1`` and ``1.0`` are the same
    category whether they came from a pandas float column or from JSON.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, Integral):
        return str(int(value))
    if isinstance(value, Real):
        number = float(value)
        if not math.isfinite(number):
            return None
        if number.is_integer() and abs(number) < _EXACT_INT:
            return str(int(number))
        return repr(number)
    return None


def to_floats(values: Iterable[Any] | np.ndarray) -> np.ndarray:
    """Float64 array of ``values`` with NaN wherever :func:`as_number` says missing."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "iuf":
        return values.astype(np.float64, copy=False)
    if not isinstance(values, (list, tuple, np.ndarray)):
        values = list(values)
    if isinstance(values, (list, tuple)) and set(map(type, values)) <= {float, int}:
        try:
            return np.array(values, dtype=np.float64)
        except OverflowError:
            pass  # an int beyond float range: the slow path marks it missing
    out = np.empty(len(values), dtype=np.float64)
    for i, value in enumerate(values):
        number = as_number(value)
        out[i] = np.nan if number is None else number
    return out


def bin_floats(edges: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, int, float]:
    """Counts per bin, missing count and sum of the finite values.

    Bin ``i`` holds ``edges[i-1] < v <= edges[i]`` (Prometheus ``le`` semantics);
    the first and last bins are open-ended. Non-finite values are missing.
    """
    finite = np.isfinite(values)
    good = values[finite] if not finite.all() else values
    index = np.searchsorted(edges, good, side="left")
    counts = np.bincount(index, minlength=len(edges) + 1)
    return counts.astype(np.int64), int(len(values) - len(good)), float(good.sum())


def category_codes(
    index: dict[str, int], other: int, values: Sequence[Any]
) -> tuple[np.ndarray, int]:
    """Bin position of each categorical value (unseen -> ``other``); -1 marks missing."""
    codes = np.empty(len(values), dtype=np.int64)
    missing = 0
    for i, value in enumerate(values):
        key = value if type(value) is str else category_key(value)
        if key is None:
            codes[i] = -1
            missing += 1
        else:
            codes[i] = index.get(key, other)
    return codes, missing
